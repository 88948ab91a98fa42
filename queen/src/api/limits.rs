//! Limits on callers: rate limits per client address and per API key (tower-governor, 429 with
//! `Retry-After`), long URIs (414) and large headers (431) answered as problem documents, and
//! CORS for browsers (off unless origins are configured).
//!
//! Behind a reverse proxy every request comes from the proxy's address, so addresses listed
//! in `server.trusted_proxies` are looked through: the client is the last address of
//! `X-Forwarded-For` that is not itself a trusted proxy. A header from anyone else is ignored,
//! so a client cannot pick its own address.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use swarm_shared::config::ServerConfig;
use tower_governor::GovernorLayer;
use tower_governor::errors::GovernorError;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::auth::API_KEY_HEADER;
use super::error::ApiError;

/// Longest request target (path and query) answered; longer is a 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes (names, values) answered; more is a 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Who is calling, as far as the network says.
#[derive(Debug, Clone, Default)]
pub struct ClientIp {
    trusted: Arc<Vec<IpNet>>,
}

impl ClientIp {
    /// Looks through `trusted` proxies (addresses or CIDR ranges, already validated).
    pub fn new(trusted: &[String]) -> ClientIp {
        let trusted = trusted
            .iter()
            .filter_map(|entry| {
                entry
                    .parse::<IpNet>()
                    .ok()
                    .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
            })
            .collect();
        ClientIp {
            trusted: Arc::new(trusted),
        }
    }

    fn is_trusted(&self, ip: &IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// The client's address: the peer, or behind trusted proxies the last forwarded address
    /// that is not one of them. Unspecified when the server was started without connection
    /// information (routers driven in tests).
    pub fn of<T>(&self, request: &axum::http::Request<T>) -> IpAddr {
        let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        };
        let peer = peer.ip();
        if !self.is_trusted(&peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|part| part.trim().parse::<IpAddr>().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !self.is_trusted(ip))
            .unwrap_or(peer)
    }
}

/// Rate-limit key: the client's address.
#[derive(Debug, Clone)]
struct PerAddress(ClientIp);

impl KeyExtractor for PerAddress {
    type Key = IpAddr;

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<IpAddr, GovernorError> {
        Ok(self.0.of(request))
    }
}

/// Rate-limit key: the API key when one is sent (one budget however many addresses use it),
/// else the client's address.
#[derive(Debug, Clone)]
struct PerKey(ClientIp);

/// A caller for the per-key limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Caller {
    /// A hash of the key sent (the key itself is not kept).
    Key(u64),
    Address(IpAddr),
}

impl KeyExtractor for PerKey {
    type Key = Caller;

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<Caller, GovernorError> {
        Ok(match request.headers().get(API_KEY_HEADER) {
            Some(key) => {
                let mut hasher = DefaultHasher::new();
                key.as_bytes().hash(&mut hasher);
                Caller::Key(hasher.finish())
            }
            None => Caller::Address(self.0.of(request)),
        })
    }
}

/// 429 as a problem document with `Retry-After` in whole seconds (at least 1).
fn too_many_requests(error: GovernorError) -> Response<Body> {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            let wait = wait_time.max(1);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                format!("too many requests; try again in {wait} s"),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("rate limiting failed: {other}"),
        )
        .into_response(),
    }
}

/// `router` with a rate limit of `per_second` requests and bursts of `burst`, keyed by `key`;
/// as it is when `per_second` is 0. The limiter forgets idle callers every minute, so its
/// memory follows the callers of the last minute.
fn rate_limit<K, S>(router: Router<S>, key: K, per_second: u32, burst: u32) -> Router<S>
where
    K: KeyExtractor + Send + Sync + 'static,
    K::Key: Send + Sync + 'static,
    S: Clone + Send + Sync + 'static,
{
    if per_second == 0 {
        return router;
    }
    let Some(config) = GovernorConfigBuilder::default()
        .key_extractor(key)
        .period(Duration::from_secs(1) / per_second)
        .burst_size(burst.max(1))
        .finish()
    else {
        tracing::error!("rate limit not applied: the quota does not build");
        return router;
    };
    let limiter = Arc::downgrade(config.limiter());
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                match limiter.upgrade() {
                    Some(limiter) => limiter.retain_recent(),
                    None => break,
                }
            }
        });
    }
    router.layer(GovernorLayer::new(config).error_handler(too_many_requests))
}

/// 414 for a request target over [`MAX_URI_BYTES`], 431 for headers over
/// [`MAX_HEADER_BYTES`], as problem documents (hyper's own limits, far higher, answer with
/// an empty body).
pub async fn request_size(request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            format!("the request target is {target} bytes; at most {MAX_URI_BYTES}"),
        )
        .into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            format!("the request headers are {headers} bytes; at most {MAX_HEADER_BYTES}"),
        )
        .into_response();
    }
    next.run(request).await
}

/// CORS for `origins` (`*` for any); none when the list is empty (browsers then refuse
/// cross-origin calls).
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::HeaderName::from_static(API_KEY_HEADER),
            ])
            .expose_headers([header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}

/// The rate limits and CORS of `config` around `router`.
pub fn apply<S>(mut router: Router<S>, config: &ServerConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let client = ClientIp::new(&config.trusted_proxies);
    router = rate_limit(
        router,
        PerKey(client.clone()),
        config.rate_limit_per_key,
        config.rate_limit_burst,
    );
    router = rate_limit(
        router,
        PerAddress(client),
        config.rate_limit_per_address,
        config.rate_limit_burst,
    );
    if let Some(layer) = cors(&config.cors_origins) {
        router = router.layer(layer);
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, forwarded: Option<&str>) -> axum::http::Request<()> {
        let mut request = axum::http::Request::builder().uri("/api/v1/events");
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        let mut request = request.body(()).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        request
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let client = ClientIp::new(&["10.0.0.0/8".into(), "192.168.1.1".into()]);
        let cases = [
            ("203.0.113.9:5000", None, "203.0.113.9"),
            // A client's own header is ignored.
            ("203.0.113.9:5000", Some("1.2.3.4"), "203.0.113.9"),
            // Through one proxy.
            ("10.0.0.5:5000", Some("198.51.100.7"), "198.51.100.7"),
            // Through two, the client having forged a first entry.
            (
                "10.0.0.5:5000",
                Some("6.6.6.6, 198.51.100.7, 192.168.1.1"),
                "198.51.100.7",
            ),
            // A proxy that sent nothing usable: the proxy.
            ("192.168.1.1:5000", Some("not an address"), "192.168.1.1"),
        ];
        for (peer, forwarded, expected) in cases {
            assert_eq!(
                client.of(&request(peer, forwarded)),
                expected.parse::<IpAddr>().unwrap(),
                "{peer} {forwarded:?}"
            );
        }
        let no_info = axum::http::Request::builder().body(()).unwrap();
        assert!(client.of(&no_info).is_unspecified());
    }
}
