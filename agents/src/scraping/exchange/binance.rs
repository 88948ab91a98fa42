//! Binance's announcement topic: the one push feed Binance documents for its announcements
//! ("Announcements", WebSocket API, under its developer documentation), signed with an API
//! key.
//!
//! The connection: `wss://api.binance.com/sapi/wss?random=..&topic=..&recvWindow=..&
//! timestamp=..&signature=..` with the key in the `X-MBX-APIKEY` header. The signature is
//! the hex HMAC-SHA256, keyed by the API secret, of every other parameter sorted by name
//! (`random=..&recvWindow=..&timestamp=..&topic=..`). The topic in the URL is the
//! subscription; a refused key or signature is an HTTP error at the handshake (quoted in
//! the source's error). Binance closes a connection after 24 hours and one that sent no
//! ping for a minute, so an empty ping frame goes every 30 s (Binance accepts at most 5
//! messages a second). Each notice comes as `{"type": "DATA", "topic":
//! "com_announcement_en", "data": "<JSON text>"}`, the data holding `catalogId`,
//! `catalogName`, `publishDate` (Unix milliseconds), `title`, `body` and `disclaimer`.
//!
//! The topic carries every English notice (maintenance, delistings, promotions); only the
//! catalogs of [`CATALOGS`] become documents. A notice carries no article code, so its link
//! is its catalog's page on binance.com.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use swarm_shared::config::Secret;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::super::parse::RawItem;
use super::push::{Problem, Protocol, Pushed, json_message, shorten};

/// Path of the announcement WebSocket on Binance's API host.
pub const PATH: &str = "/sapi/wss";
/// The topic of English announcements.
pub const TOPIC: &str = "com_announcement_en";
/// The header that carries the API key.
pub const KEY_HEADER: &str = "X-MBX-APIKEY";
/// How long a signed request stays valid (Binance accepts at most 60,000 ms).
pub const RECV_WINDOW_MS: u64 = 30_000;
/// The catalogs read, by id: new listings (launchpools, HODLer airdrops, pre-markets and
/// spot listings are announced there) and crypto airdrops.
pub const CATALOGS: [(i64, &str); 2] =
    [(48, "New Cryptocurrency Listing"), (128, "Crypto Airdrop")];
/// How far back the signed timestamp is set, so a clock slightly ahead of Binance's passes.
const CLOCK_MARGIN_MS: i64 = 1_000;
/// Binance's API host, the only public host the API key is sent to.
pub const HOST: &str = "api.binance.com";
/// How often a ping is sent (Binance asks for one every 30 s).
const PING_EVERY: Duration = Duration::from_secs(30);
/// Where a catalog's notices are listed on binance.com.
const CATALOG_PAGE: &str = "https://www.binance.com/en/support/announcement/list/";

/// Binance's announcement topic, signed with one API key.
#[derive(Debug)]
pub struct Binance {
    key: Secret,
    secret: Secret,
}

impl Binance {
    /// The topic read with `key`, requests signed with `secret`.
    pub fn new(key: Secret, secret: Secret) -> Binance {
        Binance { key, secret }
    }

    /// The signed query of one connection made at `timestamp_ms` with `random`.
    pub fn signed_query(&self, random: &str, timestamp_ms: i64) -> String {
        // Every parameter but the signature, sorted by name, as Binance signs them.
        let payload = format!(
            "random={random}&recvWindow={RECV_WINDOW_MS}&timestamp={timestamp_ms}&topic={TOPIC}"
        );
        let signature = sign(self.secret.expose(), &payload);
        format!(
            "random={random}&topic={TOPIC}&recvWindow={RECV_WINDOW_MS}&timestamp={timestamp_ms}&signature={signature}"
        )
    }
}

/// The hex HMAC-SHA256 of `payload` keyed by `secret`.
pub fn sign(secret: &str, payload: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(ring::hmac::sign(&key, payload.as_bytes()).as_ref())
}

/// 32 random hex digits, so no two signed requests are alike.
fn random() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "no random bytes from the system".to_owned())?;
    Ok(hex::encode(bytes))
}

impl Protocol for Binance {
    fn exchange(&self) -> &'static str {
        "Binance"
    }

    fn request(&self, url: &str) -> Result<Request, String> {
        // A second early: Binance refuses a timestamp more than a second ahead of its own
        // clock, and accepts one up to the window behind it.
        let timestamp = Utc::now().timestamp_millis() - CLOCK_MARGIN_MS;
        let query = self.signed_query(&random()?, timestamp);
        let signed = format!("{url}?{query}");
        let mut request = signed
            .as_str()
            .into_client_request()
            .map_err(|err| format!("invalid url {url}: {err}"))?;
        let key = HeaderValue::from_str(self.key.expose().trim()).map_err(|_| {
            format!(
                "{} holds characters a header cannot",
                swarm_shared::domain::BINANCE_KEY_ENV
            )
        })?;
        request.headers_mut().insert(KEY_HEADER, key);
        Ok(request)
    }

    fn opening(&self) -> Option<Message> {
        None
    }

    fn subscribed_on_open(&self) -> bool {
        true
    }

    fn ping_every(&self) -> Duration {
        PING_EVERY
    }

    fn ping(&self) -> Message {
        Message::Ping(Default::default())
    }

    fn read(&self, text: &str) -> Result<Pushed, Problem> {
        read_message(text)
    }
}

/// Reads one text message of the topic.
pub fn read_message(text: &str) -> Result<Pushed, Problem> {
    let root = json_message(text)?;
    let kind = root.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "DATA" => {
            let topic = root.get("topic").and_then(Value::as_str).unwrap_or("");
            if topic != TOPIC {
                return Ok(Pushed::Other);
            }
            let data = root.get("data").and_then(Value::as_str).ok_or_else(|| {
                Problem::Bad("a DATA message whose data is not a JSON text".into())
            })?;
            let notice: Value = serde_json::from_str(data).map_err(|err| {
                Problem::Bad(format!(
                    "a DATA message whose data is not JSON ({err}): {}",
                    shorten(data)
                ))
            })?;
            read_notice(&notice)
                .map(|item| item.map_or(Pushed::Other, |item| Pushed::Notice(Box::new(item))))
        }
        // Answers to commands (a subscription sent as a message): a failure is reported.
        "COMMAND" => match root.get("data").and_then(Value::as_str) {
            Some("SUCCESS") | None => Ok(Pushed::Other),
            Some(other) => Err(Problem::Bad(format!(
                "Binance answered a command with {other}: {}",
                shorten(text)
            ))),
        },
        _ => Ok(Pushed::Other),
    }
}

/// The item of one notice; `None` for a catalog this does not read.
fn read_notice(notice: &Value) -> Result<Option<RawItem>, Problem> {
    let catalog = notice
        .get("catalogId")
        .and_then(Value::as_i64)
        .ok_or_else(|| Problem::Bad("a notice without a numeric catalogId".into()))?;
    if !CATALOGS.iter().any(|(id, _)| *id == catalog) {
        return Ok(None);
    }
    let field = |name: &str| notice.get(name).and_then(Value::as_str).map(str::trim);
    let title = field("title")
        .filter(|title| !title.is_empty())
        .ok_or_else(|| Problem::Bad(format!("a notice of catalog {catalog} without a title")))?;
    let published = match notice.get("publishDate") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let millis = value.as_i64().ok_or_else(|| {
                Problem::Bad(format!(
                    "the notice \"{title}\" has publishDate {value}, not Unix milliseconds"
                ))
            })?;
            Some(
                DateTime::<Utc>::from_timestamp_millis(millis).ok_or_else(|| {
                    Problem::Bad(format!(
                        "the notice \"{title}\" has publishDate {millis}, out of range"
                    ))
                })?,
            )
        }
    };
    let category = field("catalogName")
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            CATALOGS
                .iter()
                .find(|(id, _)| *id == catalog)
                .map(|(_, name)| (*name).to_owned())
        });
    Ok(Some(RawItem {
        title: title.to_owned(),
        link: Some(format!("{CATALOG_PAGE}{catalog}")),
        text: field("body").unwrap_or("").replace("\r\n", "\n"),
        published,
        category,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(notice: &str) -> String {
        serde_json::json!({"type": "DATA", "topic": TOPIC, "data": notice}).to_string()
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_sorted_parameters() {
        // `printf %s 'random=...' | openssl dgst -sha256 -hmac 'test-secret'`
        let binance = Binance::new(Secret::new("test-key"), Secret::new("test-secret"));
        let query = binance.signed_query("0123456789abcdef0123456789abcdef", 1_765_000_000_000);
        assert_eq!(
            query,
            "random=0123456789abcdef0123456789abcdef&topic=com_announcement_en&recvWindow=30000\
             &timestamp=1765000000000&signature=\
             c384a927844df53101741e0a2490bc18396b737d8503af0d9e3fb476936f0b0c"
        );
        assert_eq!(random().unwrap().len(), 32);
        assert_ne!(random().unwrap(), random().unwrap());
    }

    #[test]
    fn the_request_carries_the_key_and_a_fresh_signature() {
        let binance = Binance::new(Secret::new(" test-key "), Secret::new("test-secret"));
        let request = binance.request("ws://127.0.0.1:9/sapi/wss").unwrap();
        assert_eq!(request.headers()[KEY_HEADER], "test-key");
        let query = request.uri().query().unwrap();
        assert!(query.starts_with("random="), "{query}");
        assert!(query.contains("&topic=com_announcement_en&recvWindow=30000&timestamp="));
        let bad = Binance::new(Secret::new("line\nbreak"), Secret::new("s"));
        let err = bad.request("ws://127.0.0.1:9/sapi/wss").unwrap_err();
        assert!(err.contains("TGE_SWARM_BINANCE_API_KEY"), "{err}");
    }

    #[test]
    fn documented_notices_are_read() {
        let message = data(
            r#"{"catalogId":48,"catalogName":"New Cryptocurrency Listing","publishDate":1765000000123,"title":"Binance Will List Norvane (NRV) and Quillo (QLO)","body":"Binance will list NRV and QLO.\r\nTrading opens at 2026-12-10 10:00 (UTC).","disclaimer":"Trade with care."}"#,
        );
        let Ok(Pushed::Notice(item)) = read_message(&message) else {
            panic!("a notice");
        };
        assert_eq!(
            item.title,
            "Binance Will List Norvane (NRV) and Quillo (QLO)"
        );
        assert_eq!(
            item.link.as_deref(),
            Some("https://www.binance.com/en/support/announcement/list/48")
        );
        assert_eq!(
            item.text,
            "Binance will list NRV and QLO.\nTrading opens at 2026-12-10 10:00 (UTC)."
        );
        assert_eq!(
            item.published.map(|at| at.timestamp_millis()),
            Some(1_765_000_000_123)
        );
        assert_eq!(item.category.as_deref(), Some("New Cryptocurrency Listing"));
        // Other catalogs, other topics and command answers carry nothing to read.
        assert_eq!(
            read_message(&data(
                r#"{"catalogId":161,"catalogName":"Delisting","publishDate":1,"title":"Notice of Removal","body":"b"}"#
            )),
            Ok(Pushed::Other)
        );
        assert_eq!(
            read_message(r#"{"type":"DATA","topic":"com_announcement_zh","data":"{}"}"#),
            Ok(Pushed::Other)
        );
        assert_eq!(
            read_message(
                r#"{"type":"COMMAND","data":"SUCCESS","subType":"SUBSCRIBE","code":"00000000"}"#
            ),
            Ok(Pushed::Other)
        );
    }

    #[test]
    fn bad_messages_say_what_was_wrong() {
        let bad = |text: &str| match read_message(text) {
            Err(Problem::Bad(reason)) => reason,
            other => panic!("{other:?}"),
        };
        assert!(bad("{not json").contains("not JSON"));
        assert!(
            bad(r#"{"type":"DATA","topic":"com_announcement_en","data":{"title":"x"}}"#)
                .contains("data is not a JSON text")
        );
        assert!(bad(&data("{oops")).contains("data is not JSON"));
        assert!(bad(&data(r#"{"catalogName":"x","title":"t"}"#)).contains("catalogId"));
        assert!(bad(&data(r#"{"catalogId":48,"title":" "}"#)).contains("without a title"));
        assert!(
            bad(&data(
                r#"{"catalogId":48,"title":"T","publishDate":"today"}"#
            ))
            .contains("not Unix milliseconds")
        );
        assert!(
            bad(r#"{"type":"COMMAND","data":"FAILED","subType":"SUBSCRIBE"}"#)
                .contains("answered a command with FAILED")
        );
    }
}
