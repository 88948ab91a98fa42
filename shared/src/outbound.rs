//! What user-added sources may reach: the rules of the outbound guard.
//!
//! Anyone with a write key can add a source, and the swarm fetches it from inside the
//! operator's network. So by default a source may only reach public addresses:
//! loopback, private, shared (CGNAT), link-local, unique-local, site-local, multicast,
//! documentation, benchmarking, reserved and unspecified ranges are refused, in every spelling
//! (the `url` crate reads `2130706433`, `0x7f.1` and `017700000001` as 127.0.0.1; IPv6 forms
//! that embed an IPv4 address, mapped, compatible, NAT64 and 6to4, are judged by that address).
//! Operators who need an internal feed list its host or range in `scraping.allow_hosts`.
//! `file` sources read only under `scraping.file_root`, and none without it.
//!
//! These are the pure rules, used when a source is added (a literal address or a path is
//! refused with a 422) and by the scraping agent, which also applies them to every address a
//! name resolves to and to every redirect hop, and connects to the address it checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

/// Why a destination is refused. Messages never say whether a file exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A literal address, or the only addresses a name resolves to, are not public.
    #[error(
        "{host} is a {range} address, not a public one; list it in scraping.allow_hosts (TGE_SWARM_ALLOW_HOSTS) to fetch it"
    )]
    NotPublic {
        /// The host as written.
        host: String,
        /// The range it falls in.
        range: &'static str,
    },
    /// A host name whose addresses are all refused.
    #[error(
        "{host} resolves to no public address; list it in scraping.allow_hosts (TGE_SWARM_ALLOW_HOSTS) to fetch it"
    )]
    NoPublicAddress {
        /// The host name.
        host: String,
    },
    /// A scheme the swarm does not fetch.
    #[error("{scheme}:// is not fetched (http, https, and file for file sources)")]
    Scheme {
        /// The scheme.
        scheme: String,
    },
    /// `file` sources without `scraping.file_root`.
    #[error(
        "file sources are off: set scraping.file_root (TGE_SWARM_FILE_ROOT) to the directory they may read"
    )]
    FilesOff,
    /// A path that is not a readable file under the root (outside it, through `..` or a
    /// link, missing or unreadable: one answer for all, so the error reveals nothing).
    #[error("{path} is not a readable file under scraping.file_root")]
    NotUnderRoot {
        /// The path asked for.
        path: String,
    },
}

/// One allow-list entry: a host name, an address or a range.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Host(String),
    Net(IpNet),
}

/// The outbound rules of one process, from `scraping.allow_hosts` and `scraping.file_root`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    allowed: Vec<Allowed>,
    file_root: Option<PathBuf>,
}

/// The reserved range `ip` falls in, or none for a public address.
pub fn reserved_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => reserved_v4(ip),
        IpAddr::V6(ip) => reserved_v6(ip),
    }
}

fn reserved_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified",
        (10, _, _) => "private",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local",
        (172, 16..=31, _) => "private",
        (192, 0, 0) => "IETF protocol",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay",
        (192, 168, _) => "private",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn reserved_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    match segments {
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d): the IPv4 address.
        [0, 0, 0, 0, 0, 0xffff, high, low] | [0, 0, 0, 0, 0, 0, high, low] => {
            reserved_v4(embedded(high, low))
        }
        // NAT64 (64:ff9b::a.b.c.d): the IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => reserved_v4(embedded(high, low)),
        // 6to4 (2002:aabb:ccdd::): the IPv4 address in the prefix.
        [0x2002, high, low, ..] => reserved_v4(embedded(high, low)),
        [0x0100, 0, 0, 0, ..] => Some("discard"),
        [0x2001, 0x0db8, ..] => Some("documentation"),
        // Teredo hides the real IPv4 address; nothing public is served from it.
        [0x2001, 0, ..] => Some("Teredo"),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some("unique-local"),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some("link-local"),
        [first, ..] if first & 0xffc0 == 0xfec0 => Some("site-local"),
        [first, ..] if first & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// A host name as compared: lower case, no trailing dot.
fn normal_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A policy that cannot be built: the setting at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct PolicyError {
    /// The setting (`scraping.allow_hosts` or `scraping.file_root`).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl OutboundPolicy {
    /// The rules for `allow_hosts` (host names, addresses, CIDR ranges) and `file_root` (an
    /// absolute directory). The error names the entry that does not parse.
    pub fn new(
        allow_hosts: &[String],
        file_root: Option<&Path>,
    ) -> Result<OutboundPolicy, PolicyError> {
        let mut allowed = Vec::with_capacity(allow_hosts.len());
        for entry in allow_hosts {
            let text = entry.trim();
            let bare = text.trim_start_matches('[').trim_end_matches(']');
            let parsed = if let Ok(net) = bare.parse::<IpNet>() {
                Allowed::Net(net.trunc())
            } else if let Ok(ip) = bare.parse::<IpAddr>() {
                Allowed::Net(IpNet::from(ip))
            } else if !text.is_empty()
                && text.len() <= 253
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                Allowed::Host(normal_host(text))
            } else {
                return Err(PolicyError {
                    field: "scraping.allow_hosts",
                    reason: format!(
                        "`{entry}` is neither a host name, an IP address nor a CIDR range"
                    ),
                });
            };
            allowed.push(parsed);
        }
        if let Some(root) = file_root
            && !root.is_absolute()
        {
            return Err(PolicyError {
                field: "scraping.file_root",
                reason: format!("file_root `{}` must be an absolute path", root.display()),
            });
        }
        Ok(OutboundPolicy {
            allowed,
            file_root: file_root.map(Path::to_owned),
        })
    }

    /// Whether the operator listed this host name (every address it resolves to is allowed).
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = normal_host(host);
        self.allowed
            .iter()
            .any(|allowed| matches!(allowed, Allowed::Host(name) if *name == host))
    }

    /// Whether `ip` may be connected to: public, or in a listed range.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Refusal> {
        let listed = |ip: IpAddr| {
            self.allowed
                .iter()
                .any(|allowed| matches!(allowed, Allowed::Net(net) if net.contains(&ip)))
        };
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        if listed(ip) || mapped.is_some_and(listed) {
            return Ok(());
        }
        match reserved_range(ip) {
            None => Ok(()),
            Some(range) => Err(Refusal::NotPublic {
                host: host.to_owned(),
                range,
            }),
        }
    }

    /// Checks what can be checked without the network: the scheme, a literal address,
    /// `localhost` names, and for `file` URLs the path against the root. Host names are
    /// checked again when they resolve (the scraping agent's resolver).
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        match url.scheme() {
            "http" | "https" => self.check_host(url),
            "file" => self.file_path(url).map(drop),
            other => Err(Refusal::Scheme {
                scheme: other.to_owned(),
            }),
        }
    }

    /// [`OutboundPolicy::check_url`] for a redirect: only `http` and `https` may follow.
    pub fn check_redirect(&self, url: &Url) -> Result<(), Refusal> {
        match url.scheme() {
            "http" | "https" => self.check_host(url),
            other => Err(Refusal::Scheme {
                scheme: other.to_owned(),
            }),
        }
    }

    fn check_host(&self, url: &Url) -> Result<(), Refusal> {
        match url.host() {
            Some(Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(&format!("[{ip}]"), IpAddr::V6(ip)),
            Some(Host::Domain(name)) => {
                let name = normal_host(name);
                let local = name == "localhost" || name.ends_with(".localhost");
                if local && !self.host_allowed(&name) {
                    return Err(Refusal::NotPublic {
                        host: name,
                        range: "loopback",
                    });
                }
                Ok(())
            }
            None => Err(Refusal::NoPublicAddress {
                host: String::new(),
            }),
        }
    }

    /// The path a `file` URL may read: under the root, without `..`. Links inside the root
    /// are followed only by [`OutboundPolicy::resolve_file`].
    pub fn file_path(&self, url: &Url) -> Result<PathBuf, Refusal> {
        let root = self.file_root.as_ref().ok_or(Refusal::FilesOff)?;
        let refused = || Refusal::NotUnderRoot {
            path: url.path().to_owned(),
        };
        let path = url.to_file_path().map_err(|()| refused())?;
        if path
            .components()
            .any(|component| matches!(component, Component::ParentDir))
            || !path.starts_with(root)
        {
            return Err(refused());
        }
        Ok(path)
    }

    /// The real path a `file` URL reads, links followed, still under the (real) root. Any
    /// failure, missing file included, is the same refusal.
    pub fn resolve_file(&self, url: &Url) -> Result<PathBuf, Refusal> {
        let path = self.file_path(url)?;
        let refused = || Refusal::NotUnderRoot {
            path: url.path().to_owned(),
        };
        let root = self.file_root.as_ref().ok_or(Refusal::FilesOff)?;
        let real_root = root.canonicalize().map_err(|_| refused())?;
        let real = path.canonicalize().map_err(|_| refused())?;
        if !real.starts_with(&real_root) || !real.is_file() {
            return Err(refused());
        }
        Ok(real)
    }
}

/// A reqwest client builder that reaches only what `policy` allows, for every request the
/// swarm makes to user-given destinations (sources, alert channels): names resolve through
/// [`GuardedResolver`] (the client connects to the addresses it checked), each redirect hop
/// is checked, at most `max_redirects` are followed, and no proxy is used. Callers add
/// their timeouts and user agent.
pub fn guarded_client(policy: Arc<OutboundPolicy>, max_redirects: usize) -> reqwest::ClientBuilder {
    let hops = policy.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max_redirects {
            return attempt.error(format!("more than {max_redirects} redirects"));
        }
        match hops.check_redirect(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(refusal) => attempt.error(refusal),
        }
    });
    reqwest::Client::builder()
        .redirect(redirects)
        .no_proxy()
        .dns_resolver(GuardedResolver::new(policy))
}

/// Retry-After as seconds (the HTTP-date form is rare and read as absent), or else the wait
/// until a spent rate-limit window resets (`x-rate-limit-reset`).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<std::time::Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(seconds) = header("retry-after").and_then(|text| text.trim().parse::<u64>().ok()) {
        return Some(std::time::Duration::from_secs(seconds));
    }
    // APIs that count requests per window (X's v2) say when the window resets instead:
    // `x-rate-limit-reset`, in seconds since the epoch, once `x-rate-limit-remaining` is 0.
    let spent = header("x-rate-limit-remaining").is_some_and(|left| left.trim() == "0");
    let reset = header("x-rate-limit-reset").and_then(|text| text.trim().parse::<i64>().ok())?;
    let wait = reset - chrono::Utc::now().timestamp();
    (spent && wait > 0).then(|| std::time::Duration::from_secs(wait as u64))
}

/// An error with its causes, each once (reqwest's own message rarely names the cause).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Why [`resolve_allowed`] found nowhere to connect.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The name did not resolve.
    #[error("{host} did not resolve: {source}")]
    Lookup {
        /// The host name.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// Every address it resolved to is refused.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// The addresses of `host` (with `port`) the outbound policy allows a connection to: all of
/// them for a host the operator listed, else only public ones; none is an error. For the
/// connections that do not go through reqwest (a WebSocket).
pub async fn resolve_allowed(
    policy: &OutboundPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<std::net::SocketAddr>, ResolveError> {
    let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| ResolveError::Lookup {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let allowed: Vec<std::net::SocketAddr> = if policy.host_allowed(host) {
        found
    } else {
        found
            .into_iter()
            .filter(|addr| policy.check_ip(host, addr.ip()).is_ok())
            .collect()
    };
    if allowed.is_empty() {
        return Err(Refusal::NoPublicAddress {
            host: host.to_owned(),
        }
        .into());
    }
    Ok(allowed)
}

/// Resolves host names for reqwest, keeping only the addresses the outbound policy allows
/// (all of them for a host name the operator listed). A name with none left is refused.
#[derive(Debug)]
pub struct GuardedResolver {
    policy: Arc<OutboundPolicy>,
}

impl GuardedResolver {
    /// A resolver applying `policy`.
    pub fn new(policy: Arc<OutboundPolicy>) -> GuardedResolver {
        GuardedResolver { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = resolve_allowed(&policy, &host, 0).await.map_err(
                |err| -> Box<dyn std::error::Error + Send + Sync> {
                    match err {
                        ResolveError::Refused(refusal) => Box::new(refusal),
                        ResolveError::Lookup { source, .. } => Box::new(source),
                    }
                },
            )?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    /// Every spelling of a refused destination the `url` crate accepts, and what it is.
    #[test]
    fn reserved_addresses_are_refused_in_every_spelling() {
        let policy = OutboundPolicy::default();
        let refused = [
            ("http://127.0.0.1/", "loopback"),
            ("http://127.1/", "loopback"),
            ("http://2130706433/", "loopback"),
            ("http://0x7f.0.0.1/", "loopback"),
            ("http://0x7f000001/", "loopback"),
            ("http://017700000001/", "loopback"),
            ("http://0177.0.0.1/", "loopback"),
            ("http://localhost:8080/", "loopback"),
            ("http://LOCALHOST./", "loopback"),
            ("http://api.localhost/", "loopback"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://0/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://[::1]/", "loopback"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[::ffff:7f00:1]/", "loopback"),
            ("http://[::127.0.0.1]/", "loopback"),
            ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),
            ("http://[2002:7f00:1::]/", "loopback"),
            ("http://10.1.2.3/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://[::ffff:192.168.1.1]/", "private"),
            ("http://100.64.0.1/", "shared (carrier-grade NAT)"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fd00::1]/", "unique-local"),
            ("http://[fc00::1]/", "unique-local"),
            ("http://[fec0::1]/", "site-local"),
            ("http://224.0.0.1/", "multicast"),
            ("http://[ff02::1]/", "multicast"),
            ("http://255.255.255.255/", "reserved"),
            ("http://240.0.0.1/", "reserved"),
            ("http://192.0.2.1/", "documentation"),
            ("http://[2001:db8::1]/", "documentation"),
            ("http://198.18.0.1/", "benchmarking"),
            ("http://[2001::1]/", "Teredo"),
        ];
        for (text, range) in refused {
            match policy.check_url(&url(text)) {
                Err(Refusal::NotPublic { range: found, .. }) => {
                    assert_eq!(found, range, "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in [
            "https://www.binance.com/en/support/announcement",
            "http://8.8.8.8/",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
            "http://[2606:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
            "http://[2002:808:808::]/",
        ] {
            assert_eq!(policy.check_url(&url(text)), Ok(()), "{text}");
        }
        let err = policy.check_url(&url("gopher://example.com/")).unwrap_err();
        assert!(err.to_string().contains("gopher:// is not fetched"));
    }

    #[test]
    fn the_allow_list_takes_hosts_addresses_and_ranges() {
        let allow: Vec<String> = [
            "127.0.0.1",
            "10.0.0.0/8",
            "feeds.internal.",
            "[::1]",
            "localhost",
        ]
        .map(String::from)
        .to_vec();
        let policy = OutboundPolicy::new(&allow, None).unwrap();
        for text in [
            "http://127.0.0.1:9000/feed",
            "http://[::ffff:127.0.0.1]/",
            "http://10.20.30.40/",
            "http://[::1]/",
            "http://localhost/",
        ] {
            assert_eq!(policy.check_url(&url(text)), Ok(()), "{text}");
        }
        assert!(policy.host_allowed("FEEDS.internal"));
        assert!(!policy.host_allowed("other.internal"));
        assert!(policy.check_url(&url("http://127.0.0.2/")).is_err());
        assert!(policy.check_url(&url("http://192.168.0.1/")).is_err());
        for bad in ["http://x", "10.0.0.0/99", "", "a b"] {
            let err = OutboundPolicy::new(&[bad.to_owned()], None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn files_are_read_only_under_the_root() {
        let off = OutboundPolicy::default();
        assert_eq!(
            off.check_url(&url("file:///etc/shadow")),
            Err(Refusal::FilesOff)
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("feeds");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.xml"), "<rss/>").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        let policy = OutboundPolicy::new(&[], Some(&root)).unwrap();
        let inside = Url::from_file_path(root.join("a.xml")).unwrap();
        assert_eq!(
            policy.resolve_file(&inside).unwrap(),
            root.join("a.xml").canonicalize().unwrap()
        );
        // Outside, through `..` (kept by from_file_path? the url crate folds it; both are
        // refused), through a link, missing, a directory, and a file that exists elsewhere:
        // one and the same answer.
        let secret = Url::from_file_path(dir.path().join("secret")).unwrap();
        let missing = Url::from_file_path(root.join("missing.xml")).unwrap();
        let link = Url::from_file_path(root.join("link")).unwrap();
        let directory = Url::from_file_path(&root).unwrap();
        let nowhere = Url::from_file_path(dir.path().join("nowhere")).unwrap();
        for refused in [
            &secret,
            &missing,
            &link,
            &directory,
            &nowhere,
            &url("file:///etc/shadow"),
            &url("file:///proc/self/environ"),
        ] {
            let err = policy.resolve_file(refused).unwrap_err();
            assert!(
                matches!(err, Refusal::NotUnderRoot { .. }),
                "{refused}: {err}"
            );
            assert!(
                err.to_string()
                    .ends_with("is not a readable file under scraping.file_root")
            );
        }
        assert!(OutboundPolicy::new(&[], Some(Path::new("relative/dir"))).is_err());
    }
}
