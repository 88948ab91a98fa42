//! Sources: what is configured and validated, how a fetch went, the task that fetches it.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Exchange, ExchangeFeed, JsonMapping, Provenance};
use crate::error::{Error, Result};

/// How a source is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// RSS 2.0 feed.
    Rss,
    /// Atom feed.
    Atom,
    /// HTML page read with CSS selectors.
    Html,
    /// Local file (`file://`): a feed, an HTML page (with selectors) or JSON Lines documents.
    File,
    /// A JSON API read with a JSON-pointer mapping (`json`).
    Json,
    /// An exchange's public announcements or market lists (`exchange`, `feed`).
    Exchange,
    /// A public Telegram channel, read from its web preview page (`channel`).
    Telegram,
    /// X (Twitter) API v2: a recent search (`query`) or an account's posts (`account`).
    X,
}

impl SourceKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Rss => "rss",
            SourceKind::Atom => "atom",
            SourceKind::Html => "html",
            SourceKind::File => "file",
            SourceKind::Json => "json",
            SourceKind::Exchange => "exchange",
            SourceKind::Telegram => "telegram",
            SourceKind::X => "x",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<SourceKind> {
        match text {
            "rss" => Some(SourceKind::Rss),
            "atom" => Some(SourceKind::Atom),
            "html" => Some(SourceKind::Html),
            "file" => Some(SourceKind::File),
            "json" => Some(SourceKind::Json),
            "exchange" => Some(SourceKind::Exchange),
            "telegram" => Some(SourceKind::Telegram),
            "x" => Some(SourceKind::X),
            _ => None,
        }
    }
}

/// CSS selectors for HTML sources. `item` selects each entry; the others are relative to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selectors {
    /// Selects each item on the page (required for HTML sources).
    pub item: String,
    /// Selects the title inside an item; defaults to the item's first heading or link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Selects the link (`href`) inside an item; defaults to the first `a[href]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Selects the date inside an item (`datetime` attribute or text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Selects the body text inside an item; defaults to the item's whole text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// What a client sends to create or replace a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    /// Unique name.
    pub name: String,
    /// How the source is read.
    pub kind: SourceKind,
    /// `http(s)://` URL, or `file://` path for file sources. For `exchange` sources it is
    /// optional and replaces the scheme, host and port of the exchange's public API.
    #[serde(default)]
    pub url: String,
    /// Poll interval as a humantime string (`30s`, `5m`).
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "5m")]
    pub interval: Duration,
    /// CSS selectors (required for `html`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selectors: Option<Selectors>,
    /// The exchange (required for `exchange`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<Exchange>,
    /// The exchange's feed (required for `exchange`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<ExchangeFeed>,
    /// How items are read from the response (required for `json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonMapping>,
    /// The channel's public name, as in `t.me/<channel>` (required for `telegram`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// A recent-search query (`x` sources: this or `account`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// An account's handle, without `@` (`x` sources: this or `query`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// How primary its reports are (`official` for a project's own account, blog or
    /// channel); unset: from its kind (exchange, social for X and Telegram, media otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// Prior reliability of the source, 1 (best) to 4.
    #[serde(default = "default_tier")]
    pub tier: u8,
    /// Whether the queen schedules it.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

pub(super) fn default_tier() -> u8 {
    2
}

pub(super) fn default_true() -> bool {
    true
}

/// Shortest poll interval accepted, to protect the sources we read.
pub const MIN_SOURCE_INTERVAL: Duration = Duration::from_millis(200);
/// Longest poll interval accepted (30 days): a source polled less often is better disabled.
pub const MAX_SOURCE_INTERVAL: Duration = Duration::from_secs(30 * 24 * 3600);
/// X's API (v2 paths are added by the connector).
pub const X_API_BASE: &str = "https://api.twitter.com";
/// The environment variable X sources read their app-only bearer token from.
pub const X_TOKEN_ENV: &str = "TGE_SWARM_X_BEARER_TOKEN";
/// The environment variable holding the API key Binance's announcement WebSocket is
/// opened with (an `exchange` source of Binance's announcements reads it when set).
pub const BINANCE_KEY_ENV: &str = "TGE_SWARM_BINANCE_API_KEY";
/// The environment variable holding the secret Binance's requests are signed with.
pub const BINANCE_SECRET_ENV: &str = "TGE_SWARM_BINANCE_API_SECRET";
/// Longest recent-search query X accepts (512 characters on its basic access levels).
pub const MAX_X_QUERY_CHARS: usize = 512;

/// Where Telegram's public channel previews are (`https://t.me/s/<channel>`).
pub const TELEGRAM_BASE: &str = "https://t.me";

/// Longest source URL accepted, in bytes.
pub const MAX_SOURCE_URL_BYTES: usize = 2048;

impl SourceInput {
    /// The URL the source is fetched from: `url`; for an exchange source without one the
    /// exchange's public API; for a Telegram channel its preview page, `<url>/s/<channel>`
    /// (`url` is then the base, `https://t.me` by default).
    pub fn effective_url(&self) -> Cow<'_, str> {
        match (self.kind, self.exchange, self.feed, &self.channel) {
            (SourceKind::Exchange, Some(exchange), Some(feed), _) if self.url.trim().is_empty() => {
                Cow::Borrowed(exchange.default_base(feed))
            }
            (SourceKind::Telegram, _, _, Some(channel)) => {
                let base = self.url.trim().trim_end_matches('/');
                let page = format!("/s/{channel}");
                if base.ends_with(&page) {
                    Cow::Owned(base.to_owned())
                } else if base.is_empty() {
                    Cow::Owned(format!("{TELEGRAM_BASE}{page}"))
                } else {
                    Cow::Owned(format!("{base}{page}"))
                }
            }
            (SourceKind::X, ..) if self.url.trim().is_empty() => Cow::Borrowed(X_API_BASE),
            _ => Cow::Borrowed(&self.url),
        }
    }

    /// Checks the input; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(Error::Invalid("name: must be 1 to 200 characters".into()));
        }
        if self.interval < MIN_SOURCE_INTERVAL || self.interval > MAX_SOURCE_INTERVAL {
            return Err(Error::Invalid(format!(
                "interval: must be between {} and {}",
                humantime::format_duration(MIN_SOURCE_INTERVAL),
                humantime::format_duration(MAX_SOURCE_INTERVAL)
            )));
        }
        self.validate_kind_fields()?;
        if self.url.len() > MAX_SOURCE_URL_BYTES {
            return Err(Error::Invalid(format!(
                "url: must be at most {MAX_SOURCE_URL_BYTES} bytes"
            )));
        }
        if !(1..=4).contains(&self.tier) {
            return Err(Error::Invalid("tier: must be between 1 and 4".into()));
        }
        let url = self.effective_url();
        let parsed =
            url::Url::parse(&url).map_err(|err| Error::Invalid(format!("url: {err}: {url}")))?;
        match (self.kind, parsed.scheme()) {
            (SourceKind::File, "file") => {}
            (SourceKind::File, other) => {
                return Err(Error::Invalid(format!(
                    "url: file sources need a file:// url, got {other}://"
                )));
            }
            (_, "http" | "https") => {}
            (_, other) => {
                return Err(Error::Invalid(format!(
                    "url: {} sources need an http(s) url, got {other}://",
                    self.kind.as_str()
                )));
            }
        }
        if self.kind == SourceKind::Html && self.selectors.is_none() {
            return Err(Error::Invalid(
                "selectors: html sources need at least selectors.item".into(),
            ));
        }
        if let Some(selectors) = &self.selectors {
            validate_selector("selectors.item", Some(&selectors.item))?;
            validate_selector("selectors.title", selectors.title.as_deref())?;
            validate_selector("selectors.link", selectors.link.as_deref())?;
            validate_selector("selectors.date", selectors.date.as_deref())?;
            validate_selector("selectors.text", selectors.text.as_deref())?;
        }
        Ok(())
    }
}

impl SourceInput {
    /// The fields that belong to one kind are given for it and only for it.
    fn validate_kind_fields(&self) -> Result<()> {
        let kind = self.kind.as_str();
        match self.kind {
            SourceKind::Exchange => {
                if self.exchange.is_none() {
                    return Err(Error::Invalid(format!(
                        "exchange: required for exchange sources (one of {})",
                        Exchange::ALL.map(Exchange::as_str).join(", ")
                    )));
                }
                if self.feed.is_none() {
                    return Err(Error::Invalid(
                        "feed: required for exchange sources (announcements or markets)".into(),
                    ));
                }
            }
            _ if self.exchange.is_some() || self.feed.is_some() => {
                return Err(Error::Invalid(format!(
                    "exchange, feed: only for exchange sources, not {kind}"
                )));
            }
            _ => {}
        }
        match (&self.json, self.kind) {
            (Some(mapping), SourceKind::Json) => mapping.validate()?,
            (None, SourceKind::Json) => {
                return Err(Error::Invalid(
                    "json: required for json sources (at least json.title)".into(),
                ));
            }
            (Some(_), _) => {
                return Err(Error::Invalid(format!(
                    "json: only for json sources, not {kind}"
                )));
            }
            (None, _) => {}
        }
        if self.selectors.is_some() && !matches!(self.kind, SourceKind::Html | SourceKind::File) {
            return Err(Error::Invalid(format!(
                "selectors: only for html and file sources, not {kind}"
            )));
        }
        match (&self.channel, self.kind) {
            (Some(channel), SourceKind::Telegram) => validate_channel(channel)?,
            (None, SourceKind::Telegram) => {
                return Err(Error::Invalid(
                    "channel: required for telegram sources (the name in t.me/<channel>)".into(),
                ));
            }
            (Some(_), _) => {
                return Err(Error::Invalid(format!(
                    "channel: only for telegram sources, not {kind}"
                )));
            }
            (None, _) => {}
        }
        self.validate_x_fields()?;
        if !matches!(
            self.kind,
            SourceKind::Exchange | SourceKind::Telegram | SourceKind::X
        ) && self.url.trim().is_empty()
        {
            return Err(Error::Invalid(format!("url: required for {kind} sources")));
        }
        Ok(())
    }
}

impl SourceInput {
    /// An X source has a query or an account (not both); no other kind has either.
    fn validate_x_fields(&self) -> Result<()> {
        if self.kind != SourceKind::X {
            if self.query.is_some() || self.account.is_some() {
                return Err(Error::Invalid(format!(
                    "query, account: only for x sources, not {}",
                    self.kind.as_str()
                )));
            }
            return Ok(());
        }
        match (&self.query, &self.account) {
            (Some(_), Some(_)) => Err(Error::Invalid(
                "query, account: an x source reads a search or an account, not both".into(),
            )),
            (None, None) => Err(Error::Invalid(
                "query: x sources need a `query` (recent search) or an `account` (handle)".into(),
            )),
            (Some(query), None) => {
                let chars = query.trim().chars().count();
                if chars == 0 || chars > MAX_X_QUERY_CHARS {
                    return Err(Error::Invalid(format!(
                        "query: must be 1 to {MAX_X_QUERY_CHARS} characters"
                    )));
                }
                Ok(())
            }
            (None, Some(account)) => {
                let handle = account.trim_start_matches('@');
                let ok = (1..=15).contains(&handle.len())
                    && handle
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                if ok {
                    Ok(())
                } else {
                    Err(Error::Invalid(format!(
                        "account: `{account}` is not an X handle (1 to 15 letters, digits or _)"
                    )))
                }
            }
        }
    }
}

/// A public channel name as Telegram allows it: 5 to 32 letters, digits and underscores,
/// starting with a letter.
fn validate_channel(channel: &str) -> Result<()> {
    let ok = (5..=32).contains(&channel.len())
        && channel.starts_with(|c: char| c.is_ascii_alphabetic())
        && channel
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "channel: `{channel}` is not a public channel name (5 to 32 letters, digits or _, \
             starting with a letter)"
        )))
    }
}

pub(super) fn validate_selector(field: &str, selector: Option<&str>) -> Result<()> {
    let Some(selector) = selector else {
        return Ok(());
    };
    if selector.trim().is_empty() {
        return Err(Error::Invalid(format!("{field}: must not be empty")));
    }
    if selector.len() > 500 {
        return Err(Error::Invalid(format!(
            "{field}: longer than 500 characters"
        )));
    }
    Ok(())
}

/// Result of the last fetch of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FetchStatus {
    /// Fetched and parsed.
    Ok,
    /// 304: nothing new.
    NotModified,
    /// Failed; see `last_error`.
    Error,
    /// Skipped because the host's circuit breaker is open.
    CircuitOpen,
}

impl FetchStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchStatus::Ok => "ok",
            FetchStatus::NotModified => "not_modified",
            FetchStatus::Error => "error",
            FetchStatus::CircuitOpen => "circuit_open",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<FetchStatus> {
        match text {
            "ok" => Some(FetchStatus::Ok),
            "not_modified" => Some(FetchStatus::NotModified),
            "error" => Some(FetchStatus::Error),
            "circuit_open" => Some(FetchStatus::CircuitOpen),
            _ => None,
        }
    }
}

/// A stored source with its fetch health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Source {
    /// Identifier.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// How it is read.
    pub kind: SourceKind,
    /// Where it is read from.
    pub url: String,
    /// Poll interval (humantime).
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "5m")]
    pub interval: Duration,
    /// CSS selectors for HTML.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selectors: Option<Selectors>,
    /// The exchange, for `exchange` sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<Exchange>,
    /// The exchange's feed, for `exchange` sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<ExchangeFeed>,
    /// The item mapping, for `json` sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonMapping>,
    /// The channel, for `telegram` sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The recent-search query, for `x` sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The account's handle, for `x` sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// How primary its reports are, when configured (otherwise from its kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// Prior reliability tier, 1 (best) to 4.
    pub tier: u8,
    /// Whether it is scheduled.
    pub enabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the last fetch finished.
    pub last_fetch_at: Option<DateTime<Utc>>,
    /// Outcome of the last fetch.
    pub last_status: Option<FetchStatus>,
    /// Error of the last fetch, if it failed.
    pub last_error: Option<String>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Items parsed by the last successful fetch.
    pub last_item_count: u32,
    /// Interval until the next fetch, adapted to the source's yield (none: `interval`).
    #[serde(with = "humantime_serde::option")]
    #[schema(value_type = Option<String>, example = "7m 30s")]
    pub effective_interval: Option<Duration>,
    /// Hash of the last body, to recognise an unchanged one without validators.
    #[serde(skip)]
    pub content_hash: Option<String>,
    /// ETag of the last 200 response, for conditional GET.
    #[serde(skip)]
    pub etag: Option<String>,
    /// Last-Modified of the last 200 response, for conditional GET.
    #[serde(skip)]
    pub last_modified: Option<String>,
    /// Since when it is down (failing or silent), as subscribers were told; none while it is
    /// healthy.
    pub down_since: Option<DateTime<Utc>>,
    /// Why it is down.
    pub down_reason: Option<String>,
}

/// What a scraping agent reports about one fetch of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchReport {
    /// When the fetch finished.
    pub at: DateTime<Utc>,
    /// Outcome.
    pub status: FetchStatus,
    /// Error text when it failed.
    pub error: Option<String>,
    /// Items parsed.
    pub items: u32,
    /// New validators (only on 200).
    pub etag: Option<String>,
    /// New validators (only on 200).
    pub last_modified: Option<String>,
    /// Hash of the body (only on 200).
    pub content_hash: Option<String>,
    /// Interval until the next fetch; none keeps the current one.
    pub next_interval: Option<Duration>,
}

/// A scrape task: the queen asks a scraping agent to fetch one source now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScrapeTask {
    /// The source, as stored when the task was scheduled.
    pub source: Source,
    /// When the queen scheduled it.
    pub scheduled_at: DateTime<Utc>,
    /// ETag to send (`If-None-Match`); carried explicitly because the API hides it.
    #[serde(default)]
    pub etag: Option<String>,
    /// Last-Modified to send (`If-Modified-Since`).
    #[serde(default)]
    pub last_modified: Option<String>,
    /// Hash of the last body fetched, to skip an identical one.
    #[serde(default)]
    pub content_hash: Option<String>,
}
