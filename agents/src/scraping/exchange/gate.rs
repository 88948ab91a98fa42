//! Gate's announcements: Gate publishes them only over a WebSocket channel
//! (`wss://api.gateio.ws/ws/v4/ann`, channel `announcement.summary_listing`, documented in
//! Gate's "Announcement WebSocket" API), so a Gate announcement source keeps one
//! subscription open per process and each poll of the source takes what was pushed since.
//!
//! The exchange: a subscribe request `{"time", "channel", "event": "subscribe", "payload":
//! ["en"]}`, answered `{"event": "subscribe", "result": {"status": "success"}}` or with an
//! `error` object (`code`, `message`); then `{"event": "update", "result": {"title",
//! "brief", "origin_url", "published_at" (Unix seconds), "lang"}}` for each notice. The
//! server answers protocol pings (tungstenite answers Gate's); an application ping
//! (`announcement.ping`) every 15 s keeps idle connections open. Gate keeps no history: a
//! notice pushed while no process holds the subscription is not read (on subscribing, Gate
//! sends its latest notice again, which the store's idempotent ids absorb).
//!
//! The connection, its buffer, reconnects and problems are `push.rs`'s.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;

use super::super::parse::RawItem;
use super::push::{Problem, Protocol, Pushed, json_message};

/// Path of the announcement channel on Gate's WebSocket host.
pub const PATH: &str = "/ws/v4/ann";
/// The channel of new-listing notices.
pub const CHANNEL: &str = "announcement.summary_listing";
/// The application-level ping channel.
const PING_CHANNEL: &str = "announcement.ping";
/// Language of the notices asked for.
const LANGUAGE: &str = "en";
/// How often an application ping is sent.
const PING_EVERY: Duration = Duration::from_secs(15);

/// Gate's announcement channel.
#[derive(Debug, Default)]
pub struct Gate;

impl Protocol for Gate {
    fn exchange(&self) -> &'static str {
        "Gate"
    }

    fn request(&self, url: &str) -> Result<Request, String> {
        url.into_client_request()
            .map_err(|err| format!("invalid url {url}: {err}"))
    }

    fn opening(&self) -> Option<Message> {
        let request = json!({
            "time": Utc::now().timestamp(),
            "channel": CHANNEL,
            "event": "subscribe",
            "payload": [LANGUAGE],
        });
        Some(Message::text(request.to_string()))
    }

    fn subscribed_on_open(&self) -> bool {
        false
    }

    fn ping_every(&self) -> Duration {
        PING_EVERY
    }

    fn ping(&self) -> Message {
        let request = json!({"time": Utc::now().timestamp(), "channel": PING_CHANNEL});
        Message::text(request.to_string())
    }

    fn read(&self, text: &str) -> Result<Pushed, Problem> {
        read_message(text)
    }
}

/// Reads one text message of the channel.
pub fn read_message(text: &str) -> Result<Pushed, Problem> {
    let root = json_message(text)?;
    let channel = root.get("channel").and_then(Value::as_str).unwrap_or("");
    let event = root.get("event").and_then(Value::as_str).unwrap_or("");
    if let Some(error) = root.get("error").filter(|error| !error.is_null()) {
        let code = error.get("code").map_or("?".into(), Value::to_string);
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("(no message)");
        let reason = format!("Gate refused {event} on {channel}: code {code}: {message}");
        return Err(if event == "subscribe" {
            Problem::Refused(reason)
        } else {
            Problem::Bad(reason)
        });
    }
    match event {
        "subscribe" if channel == CHANNEL => {
            let status = root.pointer("/result/status").and_then(Value::as_str);
            match status {
                Some("success") => Ok(Pushed::Subscribed),
                other => Err(Problem::Refused(format!(
                    "the subscription to {CHANNEL} was answered with status {}",
                    other.unwrap_or("(none)")
                ))),
            }
        }
        "update" if channel == CHANNEL => notice(&root).map(|item| Pushed::Notice(Box::new(item))),
        _ => Ok(Pushed::Other),
    }
}

/// The notice of an `update` message.
fn notice(root: &Value) -> Result<RawItem, Problem> {
    let result = root
        .get("result")
        .filter(|result| result.is_object())
        .ok_or_else(|| Problem::Bad("an update without a result object".into()))?;
    let field = |name: &str| result.get(name).and_then(Value::as_str).map(str::trim);
    let title = field("title")
        .filter(|title| !title.is_empty())
        .ok_or_else(|| Problem::Bad("an update without result.title".into()))?;
    let link = field("origin_url")
        .filter(|link| !link.is_empty())
        .ok_or_else(|| Problem::Bad(format!("the update \"{title}\" has no result.origin_url")))?;
    let published = match result.get("published_at") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let seconds = value.as_i64().ok_or_else(|| {
                Problem::Bad(format!(
                    "the update \"{title}\" has result.published_at {value}, not Unix seconds"
                ))
            })?;
            Some(DateTime::<Utc>::from_timestamp(seconds, 0).ok_or_else(|| {
                Problem::Bad(format!(
                    "the update \"{title}\" has result.published_at {seconds}, out of range"
                ))
            })?)
        }
    };
    Ok(RawItem {
        title: title.to_owned(),
        link: Some(link.to_owned()),
        text: field("brief").unwrap_or("").replace("\r\n", "\n"),
        published,
        category: Some("listing".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_messages_are_read() {
        assert_eq!(
            read_message(
                r#"{"time":1,"time_ms":1000,"channel":"announcement.summary_listing","event":"subscribe","result":{"status":"success"}}"#
            ),
            Ok(Pushed::Subscribed)
        );
        let Ok(Pushed::Notice(item)) = read_message(
            r#"{"time":1700000100,"time_ms":1700000100789,"channel":"announcement.summary_listing","event":"update","result":{"lang":"en","origin_url":"https://www.gate.com/article/4242","title":"Gate lists Norvane (NRV)","brief":"Deposits open.\r\nTrading at 08:00 UTC.","published_at":1700000090}}"#,
        ) else {
            panic!("a notice");
        };
        assert_eq!(item.title, "Gate lists Norvane (NRV)");
        assert_eq!(
            item.link.as_deref(),
            Some("https://www.gate.com/article/4242")
        );
        assert_eq!(item.text, "Deposits open.\nTrading at 08:00 UTC.");
        assert_eq!(item.published.map(|at| at.timestamp()), Some(1_700_000_090));
        assert_eq!(
            read_message(
                r#"{"time":1,"channel":"announcement.pong","event":"","result":null,"error":null}"#
            ),
            Ok(Pushed::Other)
        );
    }

    #[test]
    fn refusals_and_bad_messages_say_what_was_wrong() {
        let Err(Problem::Refused(reason)) = read_message(
            r#"{"time":1,"channel":"announcement.summary_listing","event":"subscribe","error":{"code":2,"message":"Unknown channel"},"result":null}"#,
        ) else {
            panic!("refused");
        };
        assert!(reason.contains("code 2: Unknown channel"), "{reason}");
        let Err(Problem::Bad(reason)) = read_message("{not json") else {
            panic!("bad");
        };
        assert!(reason.contains("not JSON"), "{reason}");
        let Err(Problem::Bad(reason)) = read_message(
            r#"{"channel":"announcement.summary_listing","event":"update","result":{"title":"A notice"}}"#,
        ) else {
            panic!("bad");
        };
        assert!(reason.contains("no result.origin_url"), "{reason}");
        let Err(Problem::Bad(reason)) = read_message(
            r#"{"channel":"announcement.summary_listing","event":"update","result":{"title":"T","origin_url":"https://x","published_at":"yesterday"}}"#,
        ) else {
            panic!("bad");
        };
        assert!(reason.contains("not Unix seconds"), "{reason}");
    }
}
