//! One attempt to send an alert through a subscription's channel, in the request shape each
//! receiver documents, and what its answer means for the alert (pure, table-tested).
//!
//! - Generic webhook: `POST` of a JSON body (`{"type": "tge.event.created", ...}`) signed
//!   with HMAC-SHA256: header `X-Tge-Swarm-Signature: t=<unix seconds>,v1=<hex>`, where the
//!   MAC is over `"<t>.<body>"` with the subscription's secret; `Idempotency-Key` and
//!   `X-Tge-Swarm-Event` name the alert and its type.
//! - Slack incoming webhook: `{"text": ...}`.
//! - Discord webhook: `{"content": ..., "allowed_mentions": {"parse": []}}` (an alert never
//!   pings anyone), at most 2,000 characters.
//! - Telegram Bot API: `POST /bot<token>/sendMessage` with `{"chat_id", "text"}`, at most
//!   4,096 characters; a 429's `parameters.retry_after` is honoured like Retry-After.
//! - E-mail goes through an SMTP relay instead ([`super::email`]); what its replies mean is
//!   decided here too ([`outcome`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng as _;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;
use swarm_shared::config::DeliveryConfig;
use swarm_shared::domain::{AlertKind, AttemptOutcome, ChannelInput, Source, TgeEvent};
use swarm_shared::outbound::{error_chain, retry_after};

/// The header carrying a webhook's signature.
pub const SIGNATURE_HEADER: &str = "X-Tge-Swarm-Signature";
/// The header naming the alert's type (`tge.event.created`, `tge.test`).
pub const EVENT_HEADER: &str = "X-Tge-Swarm-Event";
/// The header carrying the alert's idempotency key (the same on every attempt).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Slack's advice for a message's text (longer texts are cut by Slack itself).
const SLACK_MAX_CHARS: usize = 40_000;
/// Discord's limit on a message's content.
const DISCORD_MAX_CHARS: usize = 2_000;
/// Telegram's limit on a message's text.
const TELEGRAM_MAX_CHARS: usize = 4_096;
/// Most of a receiver's answer kept in the delivery log.
pub(super) const MAX_ERROR_CHARS: usize = 300;

/// What is sent: an event change, or a test alert.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// What the alert says.
    pub kind: AlertKind,
    /// The alert's idempotency key.
    pub idempotency_key: &'a str,
    /// The subscription it goes to.
    pub subscription_id: i64,
    /// Its name.
    pub subscription_name: &'a str,
    /// The event's revision (0 for a test alert).
    pub revision: i64,
    /// The event (none for a test alert or a source's health).
    pub event: Option<&'a TgeEvent>,
    /// The source whose health changed.
    pub source: Option<&'a Source>,
    /// Why the source is down.
    pub detail: Option<&'a str>,
}

impl Message<'_> {
    /// The alert's type as receivers see it.
    pub fn event_type(&self) -> &'static str {
        match self.kind {
            AlertKind::Created => "tge.event.created",
            AlertKind::Updated
            | AlertKind::Confirmed
            | AlertKind::DateMoved
            | AlertKind::VenueAdded => "tge.event.updated",
            AlertKind::SourceDown => "tge.source.down",
            AlertKind::SourceRecovered => "tge.source.recovered",
            AlertKind::Test => "tge.test",
        }
    }

    /// What an update says changed: `date_set`, `date_moved`, `venue_added` or `confirmed`
    /// (none for other alerts).
    pub fn change(&self) -> Option<&'static str> {
        match self.kind {
            AlertKind::Updated => Some("date_set"),
            AlertKind::Confirmed => Some("confirmed"),
            AlertKind::DateMoved => Some("date_moved"),
            AlertKind::VenueAdded => Some("venue_added"),
            _ => None,
        }
    }

    /// The generic webhook's JSON body.
    pub fn webhook_body(&self, sent_at: DateTime<Utc>) -> serde_json::Value {
        if self.kind.is_source_health() {
            return json!({
                "type": self.event_type(),
                "idempotency_key": self.idempotency_key,
                "subscription": {"id": self.subscription_id, "name": self.subscription_name},
                "incident": self.revision,
                "reason": self.detail,
                "sent_at": sent_at,
                "source": self.source,
            });
        }
        json!({
            "type": self.event_type(),
            "idempotency_key": self.idempotency_key,
            "subscription": {"id": self.subscription_id, "name": self.subscription_name},
            "revision": self.revision,
            "change": self.change(),
            "sent_at": sent_at,
            "event": self.event,
        })
    }

    /// The alert as text for chat channels, at most `max_chars` characters.
    pub fn text(&self, max_chars: usize) -> String {
        if let (true, Some(source)) = (self.kind.is_source_health(), self.source) {
            let text = match self.kind {
                AlertKind::SourceRecovered => format!(
                    "Source recovered: {} fetches again ({})\nIncident {} · {}",
                    source.name, source.url, self.revision, self.idempotency_key
                ),
                _ => format!(
                    "Source down: {} ({}): {}\nIncident {} · {}",
                    source.name,
                    source.url,
                    self.detail.unwrap_or("no fetch succeeds"),
                    self.revision,
                    self.idempotency_key
                ),
            };
            return truncate(&text, max_chars);
        }
        let Some(event) = self.event else {
            return truncate(
                &format!(
                    "tge-swarm test alert for subscription \"{}\": this channel receives alerts.",
                    self.subscription_name
                ),
                max_chars,
            );
        };
        let project = event.project.as_deref().unwrap_or("Unnamed project");
        // The first line is also an e-mail's subject.
        let what = match self.kind {
            AlertKind::Updated => "TGE update (date set)",
            AlertKind::Confirmed => "TGE update (confirmed by an analyst)",
            AlertKind::DateMoved => "TGE update (date moved)",
            AlertKind::VenueAdded => "TGE update (new venue)",
            _ => "TGE alert",
        };
        let mut text = match &event.token {
            Some(token) => format!("{what}: {project} (${token})"),
            None => format!("{what}: {project}"),
        };
        text.push_str(&format!(" · score {:.2}", event.score));
        if let Some(date) = &event.event_date {
            text.push_str(&format!(" · date {date}"));
        }
        if !event.venues.is_empty() {
            text.push_str(&format!(" · on {}", event.venues.join(", ")));
        }
        for source in event.sources.iter().take(3) {
            text.push_str(&format!(
                "\n{} ({}): {}",
                source.title, source.source_name, source.url
            ));
        }
        if event.sources.len() > 3 {
            text.push_str(&format!("\n+{} more sources", event.sources.len() - 3));
        }
        text.push_str(&format!("\nEvent {} · {}", event.id, self.idempotency_key));
        truncate(&text, max_chars)
    }
}

/// At most `max_chars` characters of `text`, with an ellipsis when cut.
pub(super) fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The webhook signature header's value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>">`. ring's HMAC is the one rustls already builds.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("t={timestamp},v1={}", hex::encode(context.sign().as_ref()))
}

/// What a receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Accepted {
        /// Status.
        status: u16,
    },
    /// Another status.
    Refused {
        /// Status.
        status: u16,
        /// How long it asked to wait (Retry-After, or Telegram's `retry_after`).
        retry_after: Option<Duration>,
        /// The start of its answer.
        detail: String,
    },
    /// An SMTP relay's refusal.
    Smtp {
        /// Its reply code, if it gave one.
        code: Option<u16>,
        /// A 5xx reply (or an address the message cannot carry): not retried.
        permanent: bool,
        /// What it said.
        detail: String,
    },
    /// No answer: refused connection, timeout, a destination the outbound guard refused.
    Transport {
        /// What failed.
        error: String,
    },
}

/// Sends one attempt.
pub async fn send(
    client: &reqwest::Client,
    channel: &ChannelInput,
    message: &Message<'_>,
    now: DateTime<Utc>,
) -> Answer {
    let url = match channel.endpoint() {
        Ok(Some(url)) => url,
        Ok(None) => {
            return Answer::Transport {
                error: format!("a {} channel is not sent over HTTP", channel.kind()),
            };
        }
        Err(err) => {
            return Answer::Transport {
                error: err.to_string(),
            };
        }
    };
    let request = client
        .post(url)
        .header(IDEMPOTENCY_HEADER, message.idempotency_key)
        .header(EVENT_HEADER, message.event_type());
    let request = match channel {
        ChannelInput::Webhook { secret, .. } => {
            let body = message.webhook_body(now).to_string();
            let signature = sign(secret, now.timestamp(), body.as_bytes());
            request
                .header(CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, signature)
                .body(body)
        }
        ChannelInput::Slack { .. } => {
            request.json(&json!({ "text": message.text(SLACK_MAX_CHARS) }))
        }
        ChannelInput::Discord { .. } => request.json(&json!({
            "content": message.text(DISCORD_MAX_CHARS),
            "allowed_mentions": {"parse": []},
        })),
        ChannelInput::Telegram { chat_id, .. } => request.json(&json!({
            "chat_id": chat_id,
            "text": message.text(TELEGRAM_MAX_CHARS),
            "link_preview_options": {"is_disabled": true},
        })),
        // Not reached: e-mail has no endpoint (above).
        ChannelInput::Email { .. } => request,
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => {
            return Answer::Transport {
                error: truncate(&error_chain(&err), MAX_ERROR_CHARS),
            };
        }
    };
    let status = response.status().as_u16();
    if response.status().is_success() {
        return Answer::Accepted { status };
    }
    let header_wait = retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    let telegram_wait = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value.pointer("/parameters/retry_after")?.as_u64())
        .map(Duration::from_secs);
    Answer::Refused {
        status,
        retry_after: header_wait.or(telegram_wait),
        detail: truncate(body.trim(), MAX_ERROR_CHARS),
    }
}

/// The delay before attempt `attempts + 1`: `retry_min_delay` doubled per attempt made after
/// the first, at most `retry_max_delay`, times a jitter factor in 0.8..=1.2.
pub fn backoff(config: &DeliveryConfig, attempts: u32, jitter: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    let base = config
        .retry_min_delay
        .saturating_mul(1_u32 << doublings)
        .min(config.retry_max_delay);
    base.mul_f64(jitter.clamp(0.8, 1.2))
}

/// A jitter factor for [`backoff`].
pub fn jitter() -> f64 {
    rand::rng().random_range(0.8..=1.2)
}

/// What an answer means for an alert that has had `attempts` attempts (this one included):
/// 2xx delivered; 408, 425, 429, 5xx and no answer retried after the backoff (and no sooner
/// than a Retry-After asks); any other status is a permanent refusal; the last allowed
/// attempt's failure is final.
pub fn outcome(
    answer: &Answer,
    attempts: u32,
    config: &DeliveryConfig,
    now: DateTime<Utc>,
    jitter: f64,
) -> AttemptOutcome {
    let (status_code, error, retry_after) = match answer {
        Answer::Accepted { status } => {
            return AttemptOutcome::Delivered {
                status_code: *status,
            };
        }
        Answer::Refused {
            status,
            retry_after,
            detail,
        } => {
            let error = if detail.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {detail}")
            };
            if !matches!(status, 408 | 425 | 429 | 500..=599) {
                return AttemptOutcome::Dead {
                    status_code: Some(*status),
                    error: format!("{error} (a permanent refusal; not retried)"),
                };
            }
            (Some(*status), error, *retry_after)
        }
        Answer::Smtp {
            code,
            permanent,
            detail,
        } => {
            let error = match code {
                Some(code) => format!("SMTP {code}: {detail}"),
                None => format!("SMTP: {detail}"),
            };
            if *permanent {
                return AttemptOutcome::Dead {
                    status_code: *code,
                    error: format!("{error} (a permanent refusal; not retried)"),
                };
            }
            (*code, error, None)
        }
        Answer::Transport { error } => (None, error.clone(), None),
    };
    if attempts >= config.max_attempts {
        return AttemptOutcome::Dead {
            status_code,
            error: format!("{error} (gave up after {attempts} attempts)"),
        };
    }
    let wait = backoff(config, attempts, jitter).max(retry_after.unwrap_or_default());
    AttemptOutcome::Retry {
        status_code,
        error,
        next_attempt_at: now
            + chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::days(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DeliveryConfig {
        DeliveryConfig {
            max_attempts: 4,
            retry_min_delay: Duration::from_secs(2),
            retry_max_delay: Duration::from_secs(10),
            ..DeliveryConfig::default()
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently with Python's hmac module:
        // hmac.new(b"Jefe", b'1733450000.{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            sign("Jefe", 1_733_450_000, br#"{"a":1}"#),
            "t=1733450000,v1=0de52ff991a2317db39fff3bb45949731c62ecfb13d1ba41ef895cd6cfac573c"
        );
        assert_ne!(
            sign("Jefe", 1_733_450_001, br#"{"a":1}"#),
            sign("Jefe", 1_733_450_000, br#"{"a":1}"#)
        );
    }

    #[test]
    fn answers_map_to_outcomes() {
        let config = config();
        let now = at(1_000);
        let refused = |status: u16, retry_after: Option<u64>| Answer::Refused {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            detail: "no".into(),
        };
        let cases: Vec<(Answer, u32, AttemptOutcome)> = vec![
            (
                Answer::Accepted { status: 204 },
                1,
                AttemptOutcome::Delivered { status_code: 204 },
            ),
            (
                refused(500, None),
                1,
                AttemptOutcome::Retry {
                    status_code: Some(500),
                    error: "HTTP 500: no".into(),
                    next_attempt_at: at(1_002),
                },
            ),
            (
                refused(503, None),
                3,
                AttemptOutcome::Retry {
                    status_code: Some(503),
                    error: "HTTP 503: no".into(),
                    next_attempt_at: at(1_008),
                },
            ),
            // A Retry-After longer than the backoff wins.
            (
                refused(429, Some(7)),
                1,
                AttemptOutcome::Retry {
                    status_code: Some(429),
                    error: "HTTP 429: no".into(),
                    next_attempt_at: at(1_007),
                },
            ),
            // The backoff is capped.
            (
                Answer::Transport {
                    error: "connection refused".into(),
                },
                3,
                AttemptOutcome::Retry {
                    status_code: None,
                    error: "connection refused".into(),
                    next_attempt_at: at(1_008),
                },
            ),
            (
                refused(404, None),
                1,
                AttemptOutcome::Dead {
                    status_code: Some(404),
                    error: "HTTP 404: no (a permanent refusal; not retried)".into(),
                },
            ),
            (
                refused(500, None),
                4,
                AttemptOutcome::Dead {
                    status_code: Some(500),
                    error: "HTTP 500: no (gave up after 4 attempts)".into(),
                },
            ),
            // SMTP: a 4xx reply is retried, a 5xx reply is final.
            (
                Answer::Smtp {
                    code: Some(451),
                    permanent: false,
                    detail: "try later".into(),
                },
                1,
                AttemptOutcome::Retry {
                    status_code: Some(451),
                    error: "SMTP 451: try later".into(),
                    next_attempt_at: at(1_002),
                },
            ),
            (
                Answer::Smtp {
                    code: Some(550),
                    permanent: true,
                    detail: "no such mailbox".into(),
                },
                1,
                AttemptOutcome::Dead {
                    status_code: Some(550),
                    error: "SMTP 550: no such mailbox (a permanent refusal; not retried)".into(),
                },
            ),
        ];
        for (answer, attempts, expected) in cases {
            assert_eq!(
                outcome(&answer, attempts, &config, now, 1.0),
                expected,
                "{answer:?} after {attempts} attempts"
            );
        }
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let config = DeliveryConfig {
            retry_min_delay: Duration::from_secs(2),
            retry_max_delay: Duration::from_secs(600),
            ..DeliveryConfig::default()
        };
        assert_eq!(backoff(&config, 1, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(&config, 2, 1.0), Duration::from_secs(4));
        assert_eq!(backoff(&config, 5, 1.0), Duration::from_secs(32));
        assert_eq!(backoff(&config, 40, 1.0), Duration::from_secs(600));
        assert_eq!(backoff(&config, 1, 0.5), Duration::from_millis(1_600));
        assert_eq!(backoff(&config, 1, 9.0), Duration::from_millis(2_400));
        for _ in 0..100 {
            let factor = jitter();
            assert!((0.8..=1.2).contains(&factor), "{factor}");
        }
    }

    #[test]
    fn chat_text_is_bounded_and_names_the_event() {
        let event = TgeEvent {
            provenance: None,
            proof: None,
            published_at: None,
            id: 7,
            project: Some("Curvance".into()),
            token: Some("CVE".into()),
            score: 0.931,
            event_date: Some("2026-12-10".into()),
            first_seen: at(0),
            last_seen: at(0),
            source_count: 1,
            sources: Vec::new(),
            evidence: Vec::new(),
            kind: swarm_shared::domain::EventKind::Tge,
            date_precision: None,
            venues: Vec::new(),
            event_day: None,
            starts_at: None,
            status: swarm_shared::domain::EventStatus::New,
            status_changed_at: None,
            status_by: None,
            revision: 1,
        };
        let message = Message {
            kind: AlertKind::Created,
            idempotency_key: "tge-swarm-1-7-1",
            subscription_id: 1,
            subscription_name: "desk",
            revision: 1,
            event: Some(&event),
            source: None,
            detail: None,
        };
        let text = message.text(4_096);
        assert!(text.starts_with("TGE alert: Curvance ($CVE) · score 0.93 · date 2026-12-10"));
        assert!(text.contains("tge-swarm-1-7-1"));
        let short = message.text(20);
        assert_eq!(short.chars().count(), 20);
        assert!(short.ends_with('…'));
        let body = message.webhook_body(at(5));
        assert_eq!(body["type"], "tge.event.created");
        assert_eq!(body["event"]["id"], 7);
        assert_eq!(body["idempotency_key"], "tge-swarm-1-7-1");
    }
}
