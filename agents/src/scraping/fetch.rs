//! Fetching a source's bytes: HTTP(S) through reqwest (timeouts, gzip, a streamed size cap,
//! conditional GET with ETag / Last-Modified, retries with exponential backoff and jitter for
//! transient failures only) and local files (`file://`, same size cap).
//!
//! Every fetch passes the outbound guard ([`swarm_shared::outbound`]): the URL and every
//! redirect hop are checked, and host names go through [`GuardedResolver`], which resolves
//! them once and hands reqwest only the addresses it allows, so the connection goes to a
//! checked address (no second resolution for a rebinding DNS server to answer differently).
//! System proxies are not used: through a proxy the guard would check the proxy, not the
//! source. Files are read only under `scraping.file_root`.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_TYPE, ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use swarm_shared::config::ScrapingConfig;
use swarm_shared::outbound::{OutboundPolicy, Refusal, error_chain, guarded_client, retry_after};
use tokio::io::AsyncReadExt;
use url::Url;

/// Why a fetch failed. Messages say what and where, for `GET /sources`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL cannot be fetched at all.
    #[error("invalid url {url}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// DNS or TCP connection failed.
    #[error("cannot connect to {host}: {reason}")]
    Connect {
        /// Host.
        host: String,
        /// Why.
        reason: String,
    },
    /// No complete response within the timeout.
    #[error("no complete response from {host} within {timeout:?}")]
    Timeout {
        /// Host.
        host: String,
        /// The limit.
        timeout: Duration,
    },
    /// The server answered with an error status.
    #[error("{host} answered HTTP {status}")]
    Status {
        /// Host.
        host: String,
        /// Status code.
        status: u16,
        /// Retry-After, if sent.
        retry_after: Option<Duration>,
    },
    /// The body is larger than the cap.
    #[error("response from {location} is larger than the {limit}-byte limit")]
    TooLarge {
        /// Host or path.
        location: String,
        /// The cap.
        limit: u64,
    },
    /// The outbound guard refused the destination (or a redirect hop).
    #[error("refused: {reason}")]
    Refused {
        /// Why, naming the host or path.
        reason: String,
    },
    /// Any other transport or file error.
    #[error("reading {location} failed: {reason}")]
    Read {
        /// Host or path.
        location: String,
        /// Why.
        reason: String,
    },
}

impl FetchError {
    /// Whether a retry may succeed (connection trouble, timeouts, 5xx except 501).
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Connect { .. } | FetchError::Timeout { .. } | FetchError::Read { .. } => {
                true
            }
            FetchError::Status { status, .. } => *status >= 500 && *status != 501,
            FetchError::InvalidUrl { .. }
            | FetchError::TooLarge { .. }
            | FetchError::Refused { .. } => false,
        }
    }

    /// Whether the server asked us to slow down (429, or 503 with Retry-After).
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, FetchError::Status { status: 429, .. })
            || matches!(
                self,
                FetchError::Status {
                    status: 503,
                    retry_after: Some(_),
                    ..
                }
            )
    }

    /// Retry-After sent with the error.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the failure says something about the host's health (for its breaker).
    pub fn counts_against_host(&self) -> bool {
        match self {
            FetchError::Connect { .. } | FetchError::Timeout { .. } | FetchError::Read { .. } => {
                true
            }
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            FetchError::InvalidUrl { .. }
            | FetchError::TooLarge { .. }
            | FetchError::Refused { .. } => false,
        }
    }
}

/// What a fetch returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: unchanged since the validators we sent.
    NotModified,
    /// A body.
    Body {
        /// The bytes.
        bytes: Vec<u8>,
        /// Content-Type, if any.
        content_type: Option<String>,
        /// New ETag.
        etag: Option<String>,
        /// New Last-Modified.
        last_modified: Option<String>,
        /// Every response header (rate-limit state, for the APIs that send it).
        headers: HeaderMap,
    },
}

/// Conditional GET validators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// ETag of the last 200.
    pub etag: Option<String>,
    /// Last-Modified of the last 200.
    pub last_modified: Option<String>,
}

/// Fetches sources. Cheap to clone (reqwest's client is shared).
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    config: ScrapingConfig,
    policy: Arc<OutboundPolicy>,
    /// Exchanges' announcement channels (Gate's, Binance's), held open between polls
    /// (closed when the last clone of the fetcher is dropped).
    channels: Arc<super::exchange::push::Channels>,
}

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// Installs rustls' ring provider for the process if none is installed yet. reqwest is built
/// without a provider so that the whole workspace uses one (sqlx's rustls uses ring; two
/// providers make rustls panic at the first TLS use, see CRATES.md).
pub fn install_crypto_provider() {
    swarm_shared::install_crypto_provider();
}

impl Fetcher {
    /// A fetcher with the configured limits and outbound policy.
    pub fn new(
        config: &ScrapingConfig,
    ) -> Result<Fetcher, Box<dyn std::error::Error + Send + Sync>> {
        install_crypto_provider();
        let policy = Arc::new(config.outbound()?);
        let client = guarded_client(policy.clone(), MAX_REDIRECTS)
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .build()?;
        Ok(Fetcher {
            client,
            config: config.clone(),
            policy,
            channels: Arc::default(),
        })
    }

    /// The exchanges' announcement channels and how they connect.
    pub fn push_channels(
        &self,
    ) -> (
        &super::exchange::push::Channels,
        super::exchange::push::Connect,
    ) {
        (
            &self.channels,
            super::exchange::push::Connect {
                policy: self.policy.clone(),
                timeout: self.config.connect_timeout,
            },
        )
    }

    /// The outbound guard.
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// The settings it fetches with.
    pub fn config(&self) -> &ScrapingConfig {
        &self.config
    }

    /// Fetches `url`, retrying transient failures.
    pub async fn fetch(&self, url: &str, validators: &Validators) -> Result<Fetched, FetchError> {
        self.fetch_with(url, validators, &HeaderMap::new()).await
    }

    /// Fetches `url` with extra request headers (an API's credentials), retrying transient
    /// failures. Redirects to another host drop `Authorization` (reqwest's policy).
    pub async fn fetch_with(
        &self,
        url: &str,
        validators: &Validators,
        extra: &HeaderMap,
    ) -> Result<Fetched, FetchError> {
        let parsed = Url::parse(url).map_err(|err| FetchError::InvalidUrl {
            url: url.to_owned(),
            reason: err.to_string(),
        })?;
        self.policy
            .check_url(&parsed)
            .map_err(|refusal| FetchError::Refused {
                reason: refusal.to_string(),
            })?;
        if parsed.scheme() == "file" {
            return self.read_file(&parsed).await;
        }
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.config.retry_min_delay)
            .with_max_delay(self.config.retry_max_delay)
            .with_max_times(self.config.retries as usize)
            .with_jitter();
        (|| self.fetch_once(&parsed, validators, extra))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(FetchError::is_transient)
            .notify(|err, delay| {
                tracing::debug!(url = %parsed, error = %err, ?delay, "fetch failed, retrying");
            })
            .await
    }

    async fn fetch_once(
        &self,
        url: &Url,
        validators: &Validators,
        extra: &HeaderMap,
    ) -> Result<Fetched, FetchError> {
        let host = url.host_str().unwrap_or("unknown host").to_owned();
        let mut request = self.client.get(url.clone()).headers(extra.clone());
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, modified);
        }
        let response = request
            .send()
            .await
            .map_err(|err| self.transport_error(&host, &err))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                host,
                status: status.as_u16(),
                retry_after: retry_after(response.headers()),
            });
        }
        let limit = self.config.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Err(FetchError::TooLarge {
                location: host,
                limit,
            });
        }
        let headers = response.headers().clone();
        let mut response = response;
        let mut bytes = Vec::new();
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|err| self.transport_error(&host, &err))?;
            let Some(chunk) = chunk else { break };
            if bytes.len() as u64 + chunk.len() as u64 > limit {
                return Err(FetchError::TooLarge {
                    location: host,
                    limit,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body {
            bytes,
            content_type: header_text(&headers, CONTENT_TYPE),
            etag: header_text(&headers, ETAG),
            last_modified: header_text(&headers, LAST_MODIFIED),
            headers,
        })
    }

    fn transport_error(&self, host: &str, err: &reqwest::Error) -> FetchError {
        if err.is_timeout() {
            return FetchError::Timeout {
                host: host.to_owned(),
                timeout: self.config.timeout,
            };
        }
        if let Some(refusal) = refusal_in(err) {
            return FetchError::Refused {
                reason: refusal.to_string(),
            };
        }
        let reason = error_chain(err);
        if err.is_connect() {
            return FetchError::Connect {
                host: host.to_owned(),
                reason,
            };
        }
        FetchError::Read {
            location: host.to_owned(),
            reason,
        }
    }

    /// Reads a file under `scraping.file_root`. Whatever stops it (outside the root, a link
    /// out of it, missing, unreadable) gives the same error, so errors tell nothing about
    /// what exists on the host.
    async fn read_file(&self, url: &Url) -> Result<Fetched, FetchError> {
        let policy = self.policy.clone();
        let target = url.clone();
        let refused = |refusal: Refusal| FetchError::Refused {
            reason: refusal.to_string(),
        };
        let path = tokio::task::spawn_blocking(move || policy.resolve_file(&target))
            .await
            .map_err(|err| FetchError::Read {
                location: url.path().to_owned(),
                reason: err.to_string(),
            })?
            .map_err(refused)?;
        let location = url.path().to_owned();
        let limit = self.config.max_body_bytes;
        let file = tokio::fs::File::open(&path).await.map_err(|_| {
            refused(Refusal::NotUnderRoot {
                path: location.clone(),
            })
        })?;
        let mut bytes = Vec::new();
        let read = file
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|err| FetchError::Read {
                location: location.clone(),
                reason: err.to_string(),
            })?;
        if read as u64 > limit {
            return Err(FetchError::TooLarge { location, limit });
        }
        Ok(Fetched::Body {
            bytes,
            content_type: None,
            etag: None,
            last_modified: None,
            headers: HeaderMap::new(),
        })
    }
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The guard's refusal inside a reqwest error (from the resolver or the redirect policy).
fn refusal_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refusal> {
    let mut current = Some(err);
    while let Some(error) = current {
        if let Some(refusal) = error.downcast_ref::<Refusal>() {
            return Some(refusal);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use reqwest::dns::{Name, Resolve};

    use super::*;

    fn resolver(allow: &[&str]) -> swarm_shared::outbound::GuardedResolver {
        let allow: Vec<String> = allow.iter().map(|entry| (*entry).to_owned()).collect();
        swarm_shared::outbound::GuardedResolver::new(Arc::new(
            OutboundPolicy::new(&allow, None).unwrap(),
        ))
    }

    /// A name is resolved once and only checked addresses are handed on: `localhost`
    /// (from /etc/hosts, no network needed) has none unless listed by name or range.
    #[tokio::test]
    async fn the_resolver_hands_on_only_allowed_addresses() {
        let name = || Name::from_str("localhost").unwrap();
        let Err(err) = resolver(&[]).resolve(name()).await else {
            panic!("localhost resolved to an address that was let through")
        };
        assert_eq!(
            err.downcast_ref::<Refusal>(),
            Some(&Refusal::NoPublicAddress {
                host: "localhost".into()
            })
        );
        let Ok(addrs) = resolver(&["localhost"]).resolve(name()).await else {
            panic!("a listed name is resolved")
        };
        assert!(addrs.into_iter().all(|addr| addr.ip().is_loopback()));
        let Ok(addrs) = resolver(&["127.0.0.0/8"]).resolve(name()).await else {
            panic!("a listed range is let through")
        };
        let addrs: Vec<std::net::SocketAddr> = addrs.collect();
        assert!(
            !addrs.is_empty() && addrs.iter().all(|addr| addr.is_ipv4()),
            "{addrs:?}"
        );
    }
}
