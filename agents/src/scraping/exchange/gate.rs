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
//! A connection that fails or closes is opened again with exponential backoff (1 s to
//! 60 s). What went wrong (refused address, TLS, a refused subscription, a message that is
//! not JSON or lacks a field) is the source's error at its next poll when nothing was
//! pushed, so it shows in the source's health; notices received meanwhile are kept (at most
//! [`MAX_BUFFERED`], oldest dropped first, counted in the error). A subscription no poll
//! has read for [`IDLE`] (its source was removed or disabled) is closed.
//!
//! Hand-written over tokio-tungstenite: the connection goes through the outbound guard's
//! address checks like every fetch, which a WebSocket client's own connect cannot do.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use swarm_shared::outbound::{OutboundPolicy, resolve_allowed};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use super::super::parse::RawItem;

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
/// Notices held between polls at most.
pub const MAX_BUFFERED: usize = 1000;
/// A subscription no poll has read for this long is closed.
pub const IDLE: Duration = Duration::from_secs(15 * 60);
/// Largest message accepted.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// What one poll of a Gate announcement source found.
#[derive(Debug, PartialEq)]
pub enum Drained {
    /// Notices pushed since the last poll, oldest first.
    Notices(Vec<RawItem>),
    /// Nothing pushed, the subscription is open (or being opened for the first time).
    Nothing,
    /// Nothing pushed, and what went wrong since the last poll.
    Failed(String),
}

#[derive(Debug)]
struct State {
    items: VecDeque<RawItem>,
    /// Notices dropped because the buffer was full.
    dropped: usize,
    /// Problems since the last poll, newest last (at most a few kept).
    problems: Vec<String>,
    subscribed: bool,
    last_read: Instant,
}

impl State {
    fn problem(&mut self, problem: String) {
        tracing::warn!(problem = %problem, "gate announcement channel");
        if self.problems.len() >= 4 {
            self.problems.remove(0);
        }
        self.problems.push(problem);
    }

    fn push(&mut self, item: RawItem) {
        if self.items.len() >= MAX_BUFFERED {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(item);
    }
}

#[derive(Debug)]
struct Listener {
    state: Mutex<State>,
    stop: CancellationToken,
}

impl Listener {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the buffer half-written (every
        // change is one push or pop), so a poisoned lock is read as it is.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The open subscriptions of one process, by WebSocket URL. Dropping it closes them.
#[derive(Debug, Default)]
pub struct GateChannels {
    listeners: Mutex<HashMap<String, Arc<Listener>>>,
    stop: CancellationToken,
}

impl Drop for GateChannels {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How a subscription connects: the outbound guard and the connect timeout.
#[derive(Debug, Clone)]
pub struct Connect {
    /// The outbound guard.
    pub policy: Arc<OutboundPolicy>,
    /// Longest a TCP, TLS and WebSocket handshake may take.
    pub timeout: Duration,
}

impl GateChannels {
    /// Takes up to `max_items` notices pushed on `url` since the last call, opening the
    /// subscription on the first call for `url`.
    pub fn drain(&self, url: &str, connect: &Connect, max_items: usize) -> Drained {
        let listener = {
            let mut listeners = self
                .listeners
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            listeners.retain(|_, listener| {
                let idle = listener.state().last_read.elapsed() > IDLE;
                if idle {
                    listener.stop.cancel();
                }
                !idle
            });
            listeners
                .entry(url.to_owned())
                .or_insert_with(|| {
                    let listener = Arc::new(Listener {
                        state: Mutex::new(State {
                            items: VecDeque::new(),
                            dropped: 0,
                            problems: Vec::new(),
                            subscribed: false,
                            last_read: Instant::now(),
                        }),
                        stop: self.stop.child_token(),
                    });
                    tokio::spawn(listen(url.to_owned(), listener.clone(), connect.clone()));
                    listener
                })
                .clone()
        };
        let mut state = listener.state();
        state.last_read = Instant::now();
        let take = state.items.len().min(max_items);
        let items: Vec<RawItem> = state.items.drain(..take).collect();
        let dropped = std::mem::take(&mut state.dropped);
        if dropped > 0 {
            state.problems.push(format!(
                "{dropped} notices dropped: more than {MAX_BUFFERED} arrived between two polls"
            ));
        }
        let problems = std::mem::take(&mut state.problems);
        if !items.is_empty() {
            for problem in problems {
                tracing::warn!(url, problem = %problem, "gate announcement channel (notices read)");
            }
            return Drained::Notices(items);
        }
        if problems.is_empty() {
            Drained::Nothing
        } else {
            Drained::Failed(problems.join("; "))
        }
    }
}

/// Keeps the subscription of `url` open until stopped, reopening it with backoff.
async fn listen(url: String, listener: Arc<Listener>, connect: Connect) {
    let backoff = || {
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(60))
            .without_max_times()
            .with_jitter()
            .build()
    };
    let mut delays = backoff();
    loop {
        let ended = tokio::select! {
            () = listener.stop.cancelled() => return,
            ended = session(&url, &listener, &connect) => ended,
        };
        let subscribed = {
            let mut state = listener.state();
            let was = state.subscribed;
            state.subscribed = false;
            state.problem(ended);
            was
        };
        if subscribed {
            // It worked until it closed: reconnect at once, and back off afresh.
            delays = backoff();
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(60));
        tokio::select! {
            () = listener.stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection: connect, subscribe, read until it ends; returns why it ended.
async fn session(url: &str, listener: &Listener, connect: &Connect) -> String {
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(err) => return format!("invalid url {url}: {err}"),
    };
    let Some(host) = parsed.host_str().map(str::to_owned) else {
        return format!("no host in {url}");
    };
    let secure = parsed.scheme() == "wss";
    let port = parsed.port().unwrap_or(if secure { 443 } else { 80 });
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let opened = tokio::time::timeout(connect.timeout, async {
        let addresses = resolve_allowed(&connect.policy, &host, port)
            .await
            .map_err(|err| format!("{host}: {err}"))?;
        let tcp = tokio::net::TcpStream::connect(addresses.as_slice())
            .await
            .map_err(|err| format!("connecting to {host}:{port}: {err}"))?;
        if secure {
            let tls = tls_connector()?.clone();
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|err| format!("{host}: {err}"))?;
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|err| format!("TLS with {host}: {err}"))?;
            let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                .await
                .map_err(|err| format!("WebSocket handshake with {host}: {err}"))?;
            Ok(Session::Tls(Box::new(ws)))
        } else {
            let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
                .await
                .map_err(|err| format!("WebSocket handshake with {host}: {err}"))?;
            Ok(Session::Plain(Box::new(ws)))
        }
    })
    .await;
    let session = match opened {
        Ok(Ok(session)) => session,
        Ok(Err(reason)) => return reason,
        Err(_) => {
            return format!(
                "no WebSocket connection to {host}:{port} within {}",
                humantime::format_duration(connect.timeout)
            );
        }
    };
    match session {
        Session::Plain(ws) => subscribed(*ws, listener).await,
        Session::Tls(ws) => subscribed(*ws, listener).await,
    }
}

enum Session {
    Plain(Box<WebSocketStream<tokio::net::TcpStream>>),
    Tls(Box<WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>),
}

/// A TLS connector trusting the system's root certificates, built once per process (it
/// reads every root certificate from disk; reconnects reuse it).
fn tls_connector() -> Result<&'static tokio_rustls::TlsConnector, String> {
    static CONNECTOR: std::sync::OnceLock<Result<tokio_rustls::TlsConnector, String>> =
        std::sync::OnceLock::new();
    CONNECTOR
        .get_or_init(build_tls_connector)
        .as_ref()
        .map_err(Clone::clone)
}

fn build_tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err("no trusted root certificates found on this system".into());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| format!("TLS configuration: {err}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Subscribes and reads until the connection ends; returns why it ended.
async fn subscribed<S>(mut ws: WebSocketStream<S>, listener: &Listener) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = json!({
        "time": Utc::now().timestamp(),
        "channel": CHANNEL,
        "event": "subscribe",
        "payload": [LANGUAGE],
    });
    if let Err(err) = ws.send(Message::text(request.to_string())).await {
        return format!("sending the subscription: {err}");
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            _ = ping.tick() => {
                let request = json!({"time": Utc::now().timestamp(), "channel": PING_CHANNEL});
                if let Err(err) = ws.send(Message::text(request.to_string())).await {
                    return format!("sending a ping: {err}");
                }
            }
            message = ws.next() => match message {
                None => return "Gate closed the connection".into(),
                Some(Err(err)) => return format!("reading: {err}"),
                Some(Ok(Message::Text(text))) => match read_message(text.as_str()) {
                    Ok(Pushed::Subscribed) => {
                        let mut state = listener.state();
                        state.subscribed = true;
                    }
                    Ok(Pushed::Notice(item)) => listener.state().push(*item),
                    Ok(Pushed::Other) => {}
                    Err(Problem::Refused(reason)) => return reason,
                    Err(Problem::Bad(reason)) => listener.state().problem(reason),
                },
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(frame) => format!("Gate closed the connection: {} {}", frame.code, frame.reason),
                        None => "Gate closed the connection".into(),
                    };
                }
                Some(Ok(Message::Binary(_))) => {
                    listener.state().problem("a binary message, where JSON text was expected".into());
                }
                // Pings are answered by tungstenite; pongs and raw frames carry nothing.
                Some(Ok(_)) => {}
            },
        }
    }
}

/// What one message said.
#[derive(Debug, PartialEq)]
pub enum Pushed {
    /// The subscription was accepted.
    Subscribed,
    /// A notice.
    Notice(Box<RawItem>),
    /// A pong, or a channel this does not read.
    Other,
}

/// Why a message could not be used.
#[derive(Debug, PartialEq)]
pub enum Problem {
    /// Gate refused the request: the connection is of no use.
    Refused(String),
    /// The message was malformed or lacked a field: it is skipped.
    Bad(String),
}

/// Reads one text message of the channel.
pub fn read_message(text: &str) -> Result<Pushed, Problem> {
    let root: Value = serde_json::from_str(text).map_err(|err| {
        Problem::Bad(format!(
            "a message that is not JSON ({err}): {}",
            shorten(text)
        ))
    })?;
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

/// At most 200 bytes of `text`, for messages.
fn shorten(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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
