//! Subscriptions: who is told about which events, through which channel, and the alerts
//! delivered to them (the delivery log).
//!
//! Every event the store creates writes an outbox row in the same transaction; the queen's
//! deliverer fans each row out to the subscriptions whose filters it passes ([`AlertFilters`])
//! and sends one alert per (subscription, event, revision), named by its
//! [`idempotency_key`](super::idempotency_key) so a receiver can drop repeats.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;

use crate::domain::{Company, Source, TgeEvent};
use crate::error::{Error, Result};

/// Longest subscription name.
pub const MAX_SUBSCRIPTION_NAME: usize = 100;
/// Most tokens, words or sources in one filter.
pub const MAX_FILTER_ITEMS: usize = 100;
/// Longest quiet window, minutes (a week).
pub const MAX_QUIET_MINUTES: u32 = 10_080;
/// Shortest webhook signing secret, characters.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest secret, URL, token or chat id, characters.
pub const MAX_TARGET_LEN: usize = 2_048;
/// Most recipients of one e-mail subscription.
pub const MAX_EMAIL_RECIPIENTS: usize = 20;

/// Where and how a subscription's alerts are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelInput {
    /// A JSON POST to `url`, signed with HMAC-SHA256 over `"<timestamp>.<body>"` with
    /// `secret`, in the header `X-Tge-Swarm-Signature: t=<timestamp>,v1=<hex>`.
    Webhook {
        /// Where alerts are posted (http or https).
        url: String,
        /// The signing secret, at least 16 characters; never shown again.
        secret: String,
    },
    /// A Slack incoming webhook (`{"text": ...}`).
    Slack {
        /// The incoming webhook's URL; a secret, shown only as its host.
        url: String,
    },
    /// A Discord webhook (`{"content": ...}`).
    Discord {
        /// The webhook's URL; a secret, shown only as its host.
        url: String,
    },
    /// Telegram Bot API `sendMessage` to a chat.
    Telegram {
        /// The bot's token; never shown again.
        bot_token: String,
        /// The chat: a numeric id or `@channelname`.
        chat_id: String,
        /// The Bot API's base URL (default `https://api.telegram.org`), for a local Bot API
        /// server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_base: Option<String>,
    },
    /// E-mail through the relay of `[delivery.smtp]` (STARTTLS or TLS), one message to all
    /// recipients; its `Message-ID` is made from the alert's idempotency key.
    Email {
        /// The recipients' addresses (1 to 20).
        to: Vec<String>,
    },
}

impl ChannelInput {
    /// The channel's name as stored and shown.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelInput::Webhook { .. } => "webhook",
            ChannelInput::Slack { .. } => "slack",
            ChannelInput::Discord { .. } => "discord",
            ChannelInput::Telegram { .. } => "telegram",
            ChannelInput::Email { .. } => "email",
        }
    }

    /// The URL alerts are sent to; none for e-mail, which goes through the configured relay.
    pub fn endpoint(&self) -> Result<Option<Url>> {
        let url = match self {
            ChannelInput::Email { .. } => return Ok(None),
            ChannelInput::Webhook { url, .. }
            | ChannelInput::Slack { url }
            | ChannelInput::Discord { url } => url.clone(),
            ChannelInput::Telegram {
                bot_token,
                api_base,
                ..
            } => format!(
                "{}/bot{bot_token}/sendMessage",
                api_base
                    .as_deref()
                    .unwrap_or("https://api.telegram.org")
                    .trim_end_matches('/')
            ),
        };
        Url::parse(&url)
            .map(Some)
            .map_err(|err| Error::Invalid(format!("channel: `{url}` is not a URL: {err}")))
    }

    /// Checks the channel's fields; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let check_url = |field: &str, url: &str| -> Result<()> {
            if url.len() > MAX_TARGET_LEN {
                return Err(Error::Invalid(format!(
                    "channel.{field}: longer than {MAX_TARGET_LEN} characters"
                )));
            }
            let parsed = Url::parse(url).map_err(|err| {
                Error::Invalid(format!("channel.{field}: `{url}` is not a URL: {err}"))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(Error::Invalid(format!(
                    "channel.{field}: `{url}` is not an http or https URL with a host"
                )));
            }
            Ok(())
        };
        match self {
            ChannelInput::Webhook { url, secret } => {
                check_url("url", url)?;
                let len = secret.chars().count();
                if !(MIN_SECRET_LEN..=MAX_TARGET_LEN).contains(&len) {
                    return Err(Error::Invalid(format!(
                        "channel.secret: {len} characters; between {MIN_SECRET_LEN} and {MAX_TARGET_LEN} are needed"
                    )));
                }
                Ok(())
            }
            ChannelInput::Slack { url } | ChannelInput::Discord { url } => check_url("url", url),
            ChannelInput::Telegram {
                bot_token,
                chat_id,
                api_base,
            } => {
                // Bot API tokens are `<bot id>:<35 characters>`: digits, a colon, then
                // letters, digits, `_` and `-`.
                let token_ok = bot_token.split_once(':').is_some_and(|(id, rest)| {
                    !id.is_empty()
                        && id.bytes().all(|b| b.is_ascii_digit())
                        && !rest.is_empty()
                        && rest.len() <= 200
                        && rest
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
                if !token_ok {
                    return Err(Error::Invalid(
                        "channel.bot_token: not a Bot API token (`<bot id>:<secret>`)".into(),
                    ));
                }
                let chat_ok = match chat_id.strip_prefix('@') {
                    Some(name) => {
                        (1..=64).contains(&name.len())
                            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    }
                    None => {
                        let digits = chat_id.strip_prefix('-').unwrap_or(chat_id);
                        (1..=20).contains(&digits.len())
                            && digits.bytes().all(|b| b.is_ascii_digit())
                    }
                };
                if !chat_ok {
                    return Err(Error::Invalid(format!(
                        "channel.chat_id: `{chat_id}` is neither a numeric chat id nor `@channelname`"
                    )));
                }
                if let Some(base) = api_base {
                    check_url("api_base", base)?;
                }
                Ok(())
            }
            ChannelInput::Email { to } => {
                if to.is_empty() || to.len() > MAX_EMAIL_RECIPIENTS {
                    return Err(Error::Invalid(format!(
                        "channel.to: {} recipients; 1 to {MAX_EMAIL_RECIPIENTS} are needed",
                        to.len()
                    )));
                }
                for (index, address) in to.iter().enumerate() {
                    if !plausible_address(address) {
                        return Err(Error::Invalid(format!(
                            "channel.to[{index}]: `{address}` is not an e-mail address"
                        )));
                    }
                }
                Ok(())
            }
        }
    }

    /// The channel as shown: secrets left out, secret URLs reduced to their host.
    pub fn view(&self) -> ChannelView {
        let host_of = |url: &str| {
            Url::parse(url)
                .ok()
                .and_then(|url| url.host_str().map(str::to_owned))
                .unwrap_or_default()
        };
        match self {
            ChannelInput::Webhook { url, .. } => ChannelView {
                kind: "webhook".into(),
                url: Some(url.clone()),
                host: host_of(url),
                chat_id: None,
                to: None,
            },
            ChannelInput::Slack { url } | ChannelInput::Discord { url } => ChannelView {
                kind: self.kind().into(),
                url: None,
                host: host_of(url),
                chat_id: None,
                to: None,
            },
            ChannelInput::Telegram {
                chat_id, api_base, ..
            } => ChannelView {
                kind: "telegram".into(),
                url: None,
                host: host_of(api_base.as_deref().unwrap_or("https://api.telegram.org")),
                chat_id: Some(chat_id.clone()),
                to: None,
            },
            ChannelInput::Email { to } => ChannelView {
                kind: "email".into(),
                url: None,
                host: String::new(),
                chat_id: None,
                to: Some(to.clone()),
            },
        }
    }
}

/// A channel as the API shows it: no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelView {
    /// `webhook`, `slack`, `discord`, `telegram` or `email`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The webhook's URL (generic webhooks only: other channels' URLs are secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The host alerts go to (empty for e-mail, which goes through the configured relay).
    pub host: String,
    /// Telegram's chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// E-mail's recipients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
}

/// Which events a subscription is told about, and whether it hears of sources' health.
/// Empty lists match everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertFilters {
    /// Only events of projects on the watchlist (by name or alias).
    #[serde(default)]
    pub watchlist_only: bool,
    /// Lowest event score, 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
    /// Only events of these tokens (tickers, `$` and case ignored).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Only events whose project, token, source titles or evidence contain one of these
    /// words (case ignored).
    #[serde(default)]
    pub words: Vec<String>,
    /// Only events one of whose sources has one of these names (and only these sources'
    /// health).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Whether a source that goes down (keeps failing, or stays silent) and recovers is
    /// alerted too (default true).
    #[serde(default = "enabled")]
    pub source_health: bool,
}

impl Default for AlertFilters {
    fn default() -> Self {
        AlertFilters {
            watchlist_only: false,
            min_score: None,
            tokens: Vec::new(),
            words: Vec::new(),
            sources: Vec::new(),
            source_health: true,
        }
    }
}

impl AlertFilters {
    /// Checks ranges and sizes; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if let Some(score) = self.min_score
            && !(0.0..=1.0).contains(&score)
        {
            return Err(Error::Invalid(format!(
                "filters.min_score: {score} is outside 0..=1"
            )));
        }
        for (field, items) in [
            ("tokens", &self.tokens),
            ("words", &self.words),
            ("sources", &self.sources),
        ] {
            if items.len() > MAX_FILTER_ITEMS {
                return Err(Error::Invalid(format!(
                    "filters.{field}: {} items; at most {MAX_FILTER_ITEMS}",
                    items.len()
                )));
            }
            for (index, item) in items.iter().enumerate() {
                let trimmed = item.trim();
                if trimmed.is_empty() || trimmed.chars().count() > 200 {
                    return Err(Error::Invalid(format!(
                        "filters.{field}[{index}]: must be 1 to 200 characters"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether a change of `source`'s health is alerted: when the subscription wants source
    /// health, and the source is one of its `sources` (if it names any).
    pub fn matches_source(&self, source: &Source) -> bool {
        self.source_health
            && (self.sources.is_empty()
                || self
                    .sources
                    .iter()
                    .any(|wanted| wanted.trim().eq_ignore_ascii_case(&source.name)))
    }

    /// Whether `event` passes, given the watchlist.
    pub fn matches(&self, event: &TgeEvent, watchlist: &[Company]) -> bool {
        if let Some(min) = self.min_score
            && event.score < min
        {
            return false;
        }
        if !self.tokens.is_empty() {
            let Some(token) = &event.token else {
                return false;
            };
            let token = token.trim_start_matches('$');
            if !self.tokens.iter().any(|wanted| {
                wanted
                    .trim()
                    .trim_start_matches('$')
                    .eq_ignore_ascii_case(token)
            }) {
                return false;
            }
        }
        if !self.sources.is_empty()
            && !event.sources.iter().any(|source| {
                self.sources
                    .iter()
                    .any(|wanted| wanted.trim().eq_ignore_ascii_case(&source.source_name))
            })
        {
            return false;
        }
        if !self.words.is_empty() {
            let mut text = String::new();
            for part in [&event.project, &event.token].into_iter().flatten() {
                text.push_str(part);
                text.push('\n');
            }
            for source in &event.sources {
                text.push_str(&source.title);
                text.push('\n');
            }
            for evidence in &event.evidence {
                text.push_str(&evidence.snippet);
                text.push('\n');
            }
            let text = text.to_lowercase();
            if !self
                .words
                .iter()
                .any(|word| text.contains(&word.trim().to_lowercase()))
            {
                return false;
            }
        }
        if self.watchlist_only {
            let Some(project) = &event.project else {
                return false;
            };
            if !watchlist.iter().any(|company| company.goes_by(project)) {
                return false;
            }
        }
        true
    }
}

/// A subscription as a client sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    /// A name, unique.
    pub name: String,
    /// Where alerts go.
    pub channel: ChannelInput,
    /// Which events.
    #[serde(default)]
    pub filters: AlertFilters,
    /// At most one alert per event in this many minutes (0: every change), at most a week.
    #[serde(default)]
    pub quiet_minutes: u32,
    /// Whether alerts are sent.
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

impl SubscriptionInput {
    /// Checks every field; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_SUBSCRIPTION_NAME {
            return Err(Error::Invalid(format!(
                "name: must be 1 to {MAX_SUBSCRIPTION_NAME} characters"
            )));
        }
        self.channel.validate()?;
        self.filters.validate()?;
        if self.quiet_minutes > MAX_QUIET_MINUTES {
            return Err(Error::Invalid(format!(
                "quiet_minutes: {} is above {MAX_QUIET_MINUTES} (a week)",
                self.quiet_minutes
            )));
        }
        Ok(())
    }
}

/// A stored subscription. Its channel's secrets are kept for sending and never shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Where alerts go, with its secrets.
    pub channel: ChannelInput,
    /// Which events.
    pub filters: AlertFilters,
    /// Quiet window, minutes.
    pub quiet_minutes: u32,
    /// Whether alerts are sent.
    pub enabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl Subscription {
    /// As the API shows it.
    pub fn view(&self) -> SubscriptionView {
        SubscriptionView {
            id: self.id,
            name: self.name.clone(),
            channel: self.channel.view(),
            filters: self.filters.clone(),
            quiet_minutes: self.quiet_minutes,
            enabled: self.enabled,
            created_at: self.created_at,
        }
    }
}

/// A subscription as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Where alerts go (no secrets).
    pub channel: ChannelView,
    /// Which events.
    pub filters: AlertFilters,
    /// Quiet window, minutes.
    pub quiet_minutes: u32,
    /// Whether alerts are sent.
    pub enabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Whether `text` looks like one e-mail address (`local@domain`): a local part without
/// spaces, angle brackets, commas, quotes or line breaks, and a domain of dot-separated
/// labels of letters, digits and `-`. The SMTP library parses it fully when it sends.
pub fn plausible_address(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && !domain.is_empty()
        && !local.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '@' | '"')
        })
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
