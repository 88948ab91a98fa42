//! Announcement channels an exchange pushes over a WebSocket: Gate's public channel
//! (`gate.rs`) and Binance's signed topic (`binance.rs`). A source of such a channel keeps
//! one connection open per process and URL, and each poll takes what was pushed since.
//!
//! What is common lives here: the connection (through the outbound guard's address checks,
//! TLS with the system's roots, a size cap on messages), the buffer between polls, the
//! reconnects with exponential backoff (1 s to 60 s, afresh after a connection that worked),
//! the problems reported at the next poll, and closing a channel no poll has read for
//! [`IDLE`]. What differs is a [`Protocol`]: the handshake request (Binance signs each one),
//! what is sent once open, the keep-alive ping, and how a message is read.
//!
//! Hand-written over tokio-tungstenite: the connection goes through the outbound guard's
//! address checks like every fetch, which a WebSocket client's own connect cannot do.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use futures::{SinkExt, StreamExt};
use swarm_shared::outbound::{OutboundPolicy, resolve_allowed};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use super::super::parse::RawItem;

/// One exchange's channel protocol.
pub trait Protocol: Send + Sync + std::fmt::Debug + 'static {
    /// The exchange's name, for messages.
    fn exchange(&self) -> &'static str;
    /// The handshake request of one connection to `url` (called for every connection).
    fn request(&self, url: &str) -> Result<Request, String>;
    /// What is sent once the connection is open (a subscribe request), if anything.
    fn opening(&self) -> Option<Message>;
    /// Whether an open connection is already subscribed (the topic is in the URL), rather
    /// than once a message says so ([`Pushed::Subscribed`]).
    fn subscribed_on_open(&self) -> bool;
    /// How often the keep-alive ping is sent.
    fn ping_every(&self) -> Duration;
    /// The keep-alive ping, built at each tick.
    fn ping(&self) -> Message;
    /// Reads one text message.
    fn read(&self, text: &str) -> Result<Pushed, Problem>;
}

/// What one message said.
#[derive(Debug, PartialEq)]
pub enum Pushed {
    /// The subscription was accepted.
    Subscribed,
    /// A notice.
    Notice(Box<RawItem>),
    /// A pong, a command's answer, or a channel or category this does not read.
    Other,
}

/// Why a message could not be used.
#[derive(Debug, PartialEq)]
pub enum Problem {
    /// The exchange refused the request: the connection is of no use.
    Refused(String),
    /// The message was malformed or lacked a field: it is skipped.
    Bad(String),
}

/// Notices held between polls at most.
pub const MAX_BUFFERED: usize = 1000;
/// A subscription no poll has read for this long is closed.
pub const IDLE: Duration = Duration::from_secs(15 * 60);
/// A subscription that lasted this long worked: the reconnect after it backs off afresh.
const HEALTHY: Duration = Duration::from_secs(30);
/// A connection that received no frame for this many ping intervals is taken for dead.
const SILENT_PINGS: u32 = 3;
/// Largest message accepted.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// What one poll of a channel found.
#[derive(Debug, PartialEq)]
pub struct Drained {
    /// Notices pushed since the last poll, oldest first.
    pub notices: Vec<RawItem>,
    /// What went wrong since the last poll (empty when nothing did).
    pub problems: Vec<String>,
    /// Whether a subscription was opened since the last poll: notices published before it,
    /// while no connection was open, were not pushed.
    pub opened: bool,
    /// Whether the subscription is open now.
    pub subscribed: bool,
}

#[derive(Debug)]
struct State {
    items: VecDeque<RawItem>,
    /// Notices dropped because the buffer was full.
    dropped: usize,
    /// Problems since the last poll, newest last (at most a few kept).
    problems: Vec<String>,
    subscribed: bool,
    /// A subscription was opened since the last poll.
    opened: bool,
    /// Why the last connection ended, while no new one is subscribed.
    down: Option<String>,
    last_read: Instant,
}

impl State {
    fn problem(&mut self, problem: String) {
        tracing::warn!(problem = %problem, "announcement channel");
        if self.problems.len() >= 4 {
            self.problems.remove(0);
        }
        self.problems.push(problem);
    }

    fn subscribe(&mut self) {
        if !self.subscribed {
            self.subscribed = true;
            self.opened = true;
            self.down = None;
        }
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
    protocol: Arc<dyn Protocol>,
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
pub struct Channels {
    listeners: Mutex<HashMap<String, Arc<Listener>>>,
    stop: CancellationToken,
}

impl Drop for Channels {
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

impl Channels {
    /// Takes up to `max_items` notices pushed on `url` since the last call, opening the
    /// subscription with `protocol` on the first call for `url`.
    pub fn drain(
        &self,
        url: &str,
        protocol: &Arc<dyn Protocol>,
        connect: &Connect,
        max_items: usize,
    ) -> Drained {
        let listener = {
            let mut listeners = self
                .listeners
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            listeners.retain(|key, listener| {
                // The channel being polled is never idle, however long its interval.
                let idle = key != url && listener.state().last_read.elapsed() > IDLE;
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
                            opened: false,
                            down: None,
                            last_read: Instant::now(),
                        }),
                        stop: self.stop.child_token(),
                        protocol: protocol.clone(),
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
        let mut problems = std::mem::take(&mut state.problems);
        if problems.is_empty()
            && !state.subscribed
            && let Some(down) = &state.down
        {
            // Still down: every poll says so, not only the one after the failure.
            problems.push(format!("not connected: {down}"));
        }
        let opened = std::mem::take(&mut state.opened);
        Drained {
            notices: items,
            problems,
            opened,
            subscribed: state.subscribed,
        }
    }
}

impl Channels {
    /// Marks the channel of `url` as opened since the last poll again, so the next poll
    /// catches up as after a new subscription (the catch-up of this one failed).
    pub fn catch_up_again(&self, url: &str) {
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(listener) = listeners.get(url) {
            listener.state().opened = true;
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
        let started = Instant::now();
        let ended = tokio::select! {
            () = listener.stop.cancelled() => return,
            ended = session(&url, &listener, &connect) => ended,
        };
        let ended = format!("{}: {ended}", listener.protocol.exchange());
        let subscribed = {
            let mut state = listener.state();
            let was = state.subscribed;
            state.subscribed = false;
            state.down = Some(ended.clone());
            state.problem(ended);
            was
        };
        if subscribed && started.elapsed() >= HEALTHY {
            // It worked for a while until it closed: back off afresh (1 to 2 s). A server that
            // accepts and closes at once is backed off like one that refuses.
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
    let protocol = listener.protocol.clone();
    let request = match protocol.request(url) {
        Ok(request) => request,
        Err(reason) => return reason,
    };
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
            let (ws, _) =
                tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                    .await
                    .map_err(|err| handshake_failed(&host, err))?;
            Ok(Session::Tls(Box::new(ws)))
        } else {
            let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
                .await
                .map_err(|err| handshake_failed(&host, err))?;
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

/// Why a handshake failed; a refusal quotes the status and the start of the body (where an
/// exchange says what was wrong with the key or the signature).
fn handshake_failed(host: &str, err: tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match err {
        Error::Http(response) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let body = shorten(body.trim());
            if body.is_empty() {
                format!("{host} refused the connection: HTTP {}", response.status())
            } else {
                format!(
                    "{host} refused the connection: HTTP {}: {body}",
                    response.status()
                )
            }
        }
        other => format!("WebSocket handshake with {host}: {other}"),
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

/// Reads until the connection ends; returns why it ended.
async fn subscribed<S>(mut ws: WebSocketStream<S>, listener: &Listener) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let protocol = listener.protocol.clone();
    if let Some(opening) = protocol.opening()
        && let Err(err) = ws.send(opening).await
    {
        return format!("sending the subscription: {err}");
    }
    if protocol.subscribed_on_open() {
        listener.state().subscribe();
    }
    let every = protocol.ping_every();
    let mut pings = tokio::time::interval(every);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pings.tick().await;
    // Pings are answered, so a connection that stays silent past a few of them is half
    // open (the peer gone without a close): it is dropped and opened again.
    let mut last_frame = Instant::now();
    loop {
        tokio::select! {
            _ = pings.tick() => {
                let silent = last_frame.elapsed();
                if silent > every * SILENT_PINGS {
                    return format!(
                        "nothing received for {}, pings unanswered: the connection is taken for dead",
                        humantime::format_duration(Duration::from_secs(silent.as_secs()))
                    );
                }
                if let Err(err) = ws.send(protocol.ping()).await {
                    return format!("sending a ping: {err}");
                }
            }
            message = ws.next() => {
                last_frame = Instant::now();
                if let Some(ended) = received(message, &*protocol, listener) {
                    return ended;
                }
            }
        }
    }
}

/// Handles one message; returns why the connection ended when it did.
fn received(
    message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    protocol: &dyn Protocol,
    listener: &Listener,
) -> Option<String> {
    match message {
        None => Some("the server closed the connection".into()),
        Some(Err(err)) => Some(format!("reading: {err}")),
        Some(Ok(Message::Text(text))) => match protocol.read(text.as_str()) {
            Ok(Pushed::Subscribed) => {
                listener.state().subscribe();
                None
            }
            Ok(Pushed::Notice(item)) => {
                listener.state().push(*item);
                None
            }
            Ok(Pushed::Other) => None,
            Err(Problem::Refused(reason)) => Some(reason),
            Err(Problem::Bad(reason)) => {
                listener.state().problem(reason);
                None
            }
        },
        Some(Ok(Message::Close(frame))) => Some(match frame {
            Some(frame) => format!(
                "the server closed the connection: {} {}",
                frame.code, frame.reason
            ),
            None => "the server closed the connection".into(),
        }),
        Some(Ok(Message::Binary(_))) => {
            listener
                .state()
                .problem("a binary message, where JSON text was expected".into());
            None
        }
        // Pings are answered by tungstenite; pongs and raw frames carry nothing.
        Some(Ok(_)) => None,
    }
}

/// A text message as JSON, or the problem of one that is not.
pub fn json_message(text: &str) -> Result<serde_json::Value, Problem> {
    serde_json::from_str(text).map_err(|err| {
        Problem::Bad(format!(
            "a message that is not JSON ({err}): {}",
            shorten(text)
        ))
    })
}

/// At most 200 bytes of `text`, for messages.
pub fn shorten(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
