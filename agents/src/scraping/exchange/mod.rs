//! Exchange connectors: an `exchange` source reads one exchange's public announcement API
//! (its new-listing notices, with their own publish time, URL and category) or its market
//! lists (spot and perpetual symbols, for new-market detection), with the documented request
//! and response shapes of each exchange.
//!
//! Requests go through the same [`Fetcher`] as every source (outbound guard, size cap,
//! retries of transient failures, 429 with Retry-After reported to the swarm-wide breaker).
//! A configured `url` replaces scheme, host and port of every request (tests, proxies).
//!
//! Paging: announcements are read from the newest page; the next page is read only when
//! every notice of a full page is newer than the source's last fetch (notices may have been
//! missed beyond it), at most [`MAX_ANNOUNCEMENT_PAGES`]. The first read takes one page.
//! Market lists are read whole, following a cursor where the exchange pages them.

pub mod announcements;
pub mod binance;
pub mod gate;
pub mod listings;
pub mod markets;
pub mod push;

use serde_json::Value;
use swarm_shared::domain::{Exchange, ExchangeFeed, MarketListing, ScrapeTask, Source};

use super::body_hash;
use super::fetch::FetchError;
use super::fetch::{Fetched, Fetcher, Validators};
use super::parse::json::{parse_value, text_at};
use super::parse::{Limits, ParseError, RawItem};

/// Most announcement pages read in one poll.
pub const MAX_ANNOUNCEMENT_PAGES: u32 = 5;
/// Most pages of one market list followed by cursor in one poll.
pub const MAX_MARKET_PAGES: u32 = 20;

/// How an exchange's response says the call failed although HTTP said 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// A code field that holds `ok` on success (`"retCode": 0`, `"code": "00000"`).
    Code {
        /// Pointer to the code.
        pointer: &'static str,
        /// Its text on success.
        ok: &'static str,
        /// Pointer to the message.
        message: &'static str,
    },
    /// A boolean that is true on success (`"success": true`).
    Flag {
        /// Pointer to the flag.
        pointer: &'static str,
        /// Pointer to the message.
        message: &'static str,
    },
}

impl Envelope {
    /// Whether the response reports success; the error quotes the exchange's code and
    /// message. A response without the field is a changed shape.
    pub fn check(&self, root: &Value) -> Result<(), ParseError> {
        match *self {
            Envelope::Code {
                pointer,
                ok,
                message,
            } => match text_at(root, pointer) {
                Some(code) if code == ok => Ok(()),
                Some(code) => Err(ParseError::Api(format!(
                    "code {code}: {}",
                    shown(root, message)
                ))),
                None => Err(ParseError::Schema(format!("no status code at {pointer}"))),
            },
            Envelope::Flag { pointer, message } => match root.pointer(pointer) {
                Some(Value::Bool(true)) => Ok(()),
                Some(Value::Bool(false)) => Err(ParseError::Api(format!(
                    "{pointer} is false: {}",
                    shown(root, message)
                ))),
                _ => Err(ParseError::Schema(format!("no success flag at {pointer}"))),
            },
        }
    }
}

/// The text of a field, for error messages.
fn shown(root: &Value, pointer: &str) -> String {
    text_at(root, pointer).unwrap_or_else(|| "(none)".into())
}

/// Why a read of an exchange source failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// A request failed (status, transport, guard).
    #[error("{0}")]
    Fetch(FetchError),
    /// A response could not be read (invalid JSON, changed shape, the API's own error).
    #[error("{0}")]
    Parse(String),
}

/// The exchange and feed of an `exchange` source (validated when it was stored).
fn exchange_of(source: &Source) -> Result<(Exchange, ExchangeFeed), Failure> {
    match (source.exchange, source.feed) {
        (Some(exchange), Some(feed)) => Ok((exchange, feed)),
        _ => Err(Failure::Parse(
            "exchange sources need `exchange` and `feed`".into(),
        )),
    }
}

/// The URL of `path` on `host`, or on the source's configured `url` when it is not the
/// exchange's default (a test server or a proxy).
pub fn endpoint(
    source: &Source,
    exchange: Exchange,
    feed: ExchangeFeed,
    host: &str,
    path: &str,
) -> String {
    let configured = source.url.trim_end_matches('/');
    let base = if configured.is_empty() || configured == exchange.default_base(feed) {
        host
    } else {
        configured
    };
    format!("{base}{path}")
}

/// What one poll of an exchange source read.
#[derive(Debug)]
pub enum Read {
    /// Nothing changed since the last poll (same first page, same lists).
    Unchanged,
    /// Notices (or posts), newest first.
    Notices {
        /// The notices.
        items: Vec<RawItem>,
        /// What to remember: the hash of the first page (an X source's read marker).
        content_hash: String,
        /// How long the API asked not to be called again (a spent rate-limit window).
        hold: Option<std::time::Duration>,
    },
    /// Every symbol of the market lists.
    Markets {
        /// The exchange.
        exchange: Exchange,
        /// The symbols.
        listings: Vec<MarketListing>,
        /// Hash of every page read.
        content_hash: String,
    },
}

async fn get(fetcher: &Fetcher, url: &str) -> Result<Vec<u8>, Failure> {
    match fetcher.fetch(url, &Validators::default()).await {
        Ok(Fetched::Body { bytes, .. }) => Ok(bytes),
        // No validators were sent, so a 304 is the server's mistake; read it as unchanged.
        Ok(Fetched::NotModified) => Ok(Vec::new()),
        Err(err) => Err(Failure::Fetch(err)),
    }
}

/// Parses JSON off the async workers (market lists run to megabytes).
async fn parse_off_thread<T: Send + 'static>(
    bytes: Vec<u8>,
    read: impl FnOnce(&Value) -> Result<T, ParseError> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(move || parse_value(&bytes).and_then(|root| read(&root)))
        .await
        .map_err(|join| Failure::Parse(format!("parser crashed: {join}")))?
        .map_err(|err| Failure::Parse(err.to_string()))
}

/// Reads one poll of an exchange source.
pub async fn read(fetcher: &Fetcher, task: &ScrapeTask, limits: &Limits) -> Result<Read, Failure> {
    let source = &task.source;
    let (exchange, feed) = exchange_of(source)?;
    match feed {
        ExchangeFeed::Announcements => read_announcements(fetcher, task, exchange, limits).await,
        ExchangeFeed::Markets => read_markets(fetcher, task, exchange).await,
    }
}

async fn read_announcements(
    fetcher: &Fetcher,
    task: &ScrapeTask,
    exchange: Exchange,
    limits: &Limits,
) -> Result<Read, Failure> {
    if exchange == Exchange::Binance
        && let Some((key, secret)) = fetcher.config().binance_api.clone()
    {
        return read_binance(fetcher, task, binance::Binance::new(key, secret), limits).await;
    }
    match announcements::api(exchange) {
        Some(api) => read_listed(fetcher, task, exchange, api, limits).await,
        None => read_gate(fetcher, task, exchange, limits),
    }
}

/// Reads an exchange's announcement list, page by page.
async fn read_listed(
    fetcher: &Fetcher,
    task: &ScrapeTask,
    exchange: Exchange,
    api: announcements::AnnouncementApi,
    limits: &Limits,
) -> Result<Read, Failure> {
    let source = &task.source;
    let host = exchange.default_base(ExchangeFeed::Announcements);
    let mut items: Vec<RawItem> = Vec::new();
    let mut content_hash = String::new();
    for page in 1..=MAX_ANNOUNCEMENT_PAGES {
        let url = endpoint(
            source,
            exchange,
            ExchangeFeed::Announcements,
            host,
            &api.path(page),
        );
        let bytes = match get(fetcher, &url).await {
            Ok(bytes) => bytes,
            Err(err) if page == 1 => return Err(err),
            Err(err) => {
                // What the newer pages held is kept; the rest is older and read again later.
                tracing::warn!(source = %source.name, page, error = ?err, "a later announcement page failed");
                break;
            }
        };
        if page == 1 {
            content_hash = body_hash(&bytes);
            if task.content_hash.as_deref() == Some(content_hash.as_str()) {
                return Ok(Read::Unchanged);
            }
        }
        let max_items = limits.max_items;
        let page_items = parse_off_thread(bytes, move |root| {
            announcements::parse_page(&api, root, max_items)
        })
        .await;
        let page_items = match page_items {
            Ok(page_items) => page_items,
            Err(err) if page == 1 => return Err(err),
            Err(err) => {
                tracing::warn!(source = %source.name, page, error = ?err, "a later announcement page did not parse");
                break;
            }
        };
        let full = page_items.len() >= announcements::PAGE_SIZE;
        let oldest = page_items.iter().filter_map(|item| item.published).min();
        items.extend(page_items);
        let more = api.pages
            && full
            && items.len() < limits.max_items
            && match (source.last_fetch_at, oldest) {
                (Some(last), Some(oldest)) => oldest > last,
                _ => false,
            };
        if !more {
            break;
        }
    }
    items.truncate(limits.max_items);
    Ok(Read::Notices {
        items,
        content_hash,
        hold: None,
    })
}

/// The WebSocket URL of a channel at `path` on `host` (or the source's configured `url`),
/// checked by the outbound guard.
fn channel_url(
    fetcher: &Fetcher,
    task: &ScrapeTask,
    exchange: Exchange,
    host: &str,
    path: &str,
) -> Result<url::Url, Failure> {
    let http = endpoint(
        &task.source,
        exchange,
        ExchangeFeed::Announcements,
        host,
        path,
    );
    let mut url = url::Url::parse(&http)
        .map_err(|err| Failure::Parse(format!("invalid url {http}: {err}")))?;
    fetcher.policy().check_url(&url).map_err(|refusal| {
        Failure::Fetch(FetchError::Refused {
            reason: refusal.to_string(),
        })
    })?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|()| Failure::Parse(format!("{http} cannot be read over a WebSocket")))?;
    Ok(url)
}

/// Takes what a channel pushed since the last poll, its notices newest first.
fn drain_channel(
    fetcher: &Fetcher,
    url: &url::Url,
    protocol: std::sync::Arc<dyn push::Protocol>,
    limits: &Limits,
) -> push::Drained {
    let (channels, connect) = fetcher.push_channels();
    let mut drained = channels.drain(url.as_str(), &protocol, &connect, limits.max_items);
    // Newest first, like every announcement API.
    drained.notices.reverse();
    drained
}

/// What a channel's poll read: its notices, or, when there are none, the channel's problems
/// as the poll's error (logged when notices were read).
fn channel_read(
    exchange: Exchange,
    url: &url::Url,
    items: Vec<RawItem>,
    problems: &[String],
    content_hash: String,
) -> Result<Read, Failure> {
    if items.is_empty() {
        if problems.is_empty() {
            return Ok(Read::Unchanged);
        }
        return Err(Failure::Parse(format!(
            "{} announcement channel {url}: {}",
            exchange.display_name(),
            problems.join("; ")
        )));
    }
    for problem in problems {
        tracing::warn!(%url, problem = %problem, "announcement channel (notices read)");
    }
    Ok(Read::Notices {
        items,
        content_hash,
        hold: None,
    })
}

/// Takes what Gate's announcement channel pushed since the last poll (Gate publishes its
/// announcements only that way).
fn read_gate(
    fetcher: &Fetcher,
    task: &ScrapeTask,
    exchange: Exchange,
    limits: &Limits,
) -> Result<Read, Failure> {
    let url = channel_url(
        fetcher,
        task,
        exchange,
        exchange.default_base(ExchangeFeed::Announcements),
        gate::PATH,
    )?;
    let drained = drain_channel(fetcher, &url, std::sync::Arc::new(gate::Gate), limits);
    // Gate has no page to remember: the pushed notices' links stand for it.
    let links: Vec<&str> = drained
        .notices
        .iter()
        .filter_map(|item| item.link.as_deref())
        .collect();
    let content_hash = body_hash(links.join("\n").as_bytes());
    channel_read(
        exchange,
        &url,
        drained.notices,
        &drained.problems,
        content_hash,
    )
}

/// Whether Binance's API key may be sent to `host`: Binance's own API host, or one the
/// operator listed in `scraping.allow_hosts` (a proxy, a test server). Any other host a
/// source names would learn the key.
fn binance_key_may_go_to(fetcher: &Fetcher, host: &str) -> bool {
    let policy = fetcher.policy();
    host == binance::HOST
        || policy.host_allowed(host)
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| {
                swarm_shared::outbound::reserved_range(ip).is_some()
                    && policy.check_ip(host, ip).is_ok()
            })
}

/// Binance with an API key: what its signed announcement topic pushed since the last poll,
/// and its announcement list too on the first poll after each subscription and at every poll
/// while no subscription is open (the topic keeps no history: notices published while no
/// connection was open come from the list).
async fn read_binance(
    fetcher: &Fetcher,
    task: &ScrapeTask,
    protocol: binance::Binance,
    limits: &Limits,
) -> Result<Read, Failure> {
    let exchange = Exchange::Binance;
    let url = channel_url(
        fetcher,
        task,
        exchange,
        &format!("https://{}", binance::HOST),
        binance::PATH,
    )?;
    let host = url.host_str().unwrap_or_default();
    if !binance_key_may_go_to(fetcher, host) {
        return Err(Failure::Parse(format!(
            "Binance's API key is sent only to {} or to a host in scraping.allow_hosts, not to {host}",
            binance::HOST
        )));
    }
    let drained = drain_channel(fetcher, &url, std::sync::Arc::new(protocol), limits);
    let mut items = drained.notices;
    // The list's page hash is what a source remembers, so a catch-up parses the list only
    // when it changed; pushed notices leave it as it was.
    let mut content_hash = task.content_hash.clone().unwrap_or_default();
    if drained.opened || !drained.subscribed {
        let api = announcements::api(exchange)
            .ok_or_else(|| Failure::Parse("Binance has no announcement list".into()))?;
        match read_listed(fetcher, task, exchange, api, limits).await {
            Ok(Read::Notices {
                items: listed,
                content_hash: hash,
                ..
            }) => {
                items.extend(listed);
                content_hash = hash;
            }
            Ok(_) => {}
            Err(err) => {
                if drained.opened {
                    // Catch up at the next poll instead.
                    fetcher.push_channels().0.catch_up_again(url.as_str());
                }
                if items.is_empty() {
                    return Err(err);
                }
                tracing::warn!(source = %task.source.name, error = %err, "reading Binance's announcement list failed; read again at the next poll");
            }
        }
    }
    channel_read(exchange, &url, items, &drained.problems, content_hash)
}

async fn read_markets(
    fetcher: &Fetcher,
    task: &ScrapeTask,
    exchange: Exchange,
) -> Result<Read, Failure> {
    let source = &task.source;
    let mut listings = Vec::new();
    let mut hashes = Vec::new();
    for list in markets::lists(exchange) {
        let mut cursor: Option<(&str, String)> = None;
        for _ in 0..MAX_MARKET_PAGES {
            let mut url = endpoint(
                source,
                exchange,
                ExchangeFeed::Markets,
                list.host,
                list.path,
            );
            if let Some((parameter, value)) = &cursor {
                let mut parsed = url::Url::parse(&url)
                    .map_err(|err| Failure::Parse(format!("invalid url {url}: {err}")))?;
                parsed.query_pairs_mut().append_pair(parameter, value);
                url = parsed.to_string();
            }
            let bytes = get(fetcher, &url).await?;
            hashes.push(body_hash(&bytes));
            let (page, next) = parse_off_thread(bytes, move |root| {
                Ok((list.parse(root)?, list.next_cursor(root)))
            })
            .await
            .map_err(|err| match err {
                Failure::Parse(reason) => Failure::Parse(format!(
                    "{} {} market list: {reason}",
                    exchange.display_name(),
                    list.market.label()
                )),
                other => other,
            })?;
            listings.extend(page);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    let content_hash = body_hash(hashes.join("/").as_bytes());
    if task.content_hash.as_deref() == Some(content_hash.as_str()) {
        return Ok(Read::Unchanged);
    }
    Ok(Read::Markets {
        exchange,
        listings,
        content_hash,
    })
}
