//! The fetcher against a real local HTTP server: gzip, conditional GET, size caps with and
//! without Content-Length, retries for transient failures only, Retry-After, timeouts,
//! connection errors, local files, and the outbound guard (internal addresses in every
//! spelling, redirects to them, files outside the root).

// Tests: a panic is how a helper reports a failed expectation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use swarm_agents::scraping::fetch::{FetchError, Fetched, Fetcher, Validators};
use swarm_shared::config::ScrapingConfig;

mod exchanges;
mod x;

const BODY: &str = "<rss version=\"2.0\"><channel><title>t</title></channel></rss>";
const CAP: u64 = 4096;

#[derive(Default)]
struct Counters {
    flaky: AtomicU32,
    missing: AtomicU32,
    limited: AtomicU32,
}

async fn gzip() -> Response {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(BODY.as_bytes()).unwrap();
    let compressed = encoder.finish().unwrap();
    (
        [
            (header::CONTENT_ENCODING, "gzip"),
            (header::CONTENT_TYPE, "application/rss+xml"),
        ],
        compressed,
    )
        .into_response()
}

async fn etag(headers: HeaderMap) -> Response {
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v == "\"v1\"")
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    ([(header::ETAG, "\"v1\"")], BODY).into_response()
}

async fn modified(headers: HeaderMap) -> Response {
    let stamp = "Mon, 02 Mar 2026 10:00:00 GMT";
    if headers
        .get(header::IF_MODIFIED_SINCE)
        .is_some_and(|v| v == stamp)
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    ([(header::LAST_MODIFIED, stamp)], BODY).into_response()
}

async fn big_length() -> Response {
    "x".repeat(CAP as usize * 2).into_response()
}

async fn big_chunked() -> Response {
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(bytes_chunk()));
    Body::from_stream(futures::stream::iter(chunks)).into_response()
}

fn bytes_chunk() -> Vec<u8> {
    vec![b'y'; 1024]
}

async fn flaky(State(counters): State<Arc<Counters>>) -> Response {
    if counters.flaky.fetch_add(1, Ordering::SeqCst) < 2 {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    BODY.into_response()
}

async fn missing(State(counters): State<Arc<Counters>>) -> Response {
    counters.missing.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_FOUND.into_response()
}

async fn limited(State(counters): State<Arc<Counters>>) -> Response {
    counters.limited.fetch_add(1, Ordering::SeqCst);
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")]).into_response()
}

async fn slow() -> Response {
    tokio::time::sleep(Duration::from_secs(5)).await;
    BODY.into_response()
}

async fn server() -> (SocketAddr, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let router = Router::new()
        .route("/gzip", get(gzip))
        .route("/etag", get(etag))
        .route("/modified", get(modified))
        .route("/big-length", get(big_length))
        .route("/big-chunked", get(big_chunked))
        .route("/flaky", get(flaky))
        .route("/missing", get(missing))
        .route("/limited", get(limited))
        .route("/slow", get(slow))
        .route("/redirect", get(redirect))
        .with_state(counters.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, counters)
}

/// Redirects to the `to` query parameter.
async fn redirect(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let to = query.get("to").cloned().unwrap_or_default();
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// A server on another loopback address, standing for an internal service; counts its hits.
async fn internal_server() -> (SocketAddr, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let counted = hits.clone();
    let router = Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { "internal secrets" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .expect("binding 127.0.0.2 (Linux answers on all of 127.0.0.0/8)");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, hits)
}

fn guarded(allow_hosts: &[&str], file_root: Option<&std::path::Path>) -> Fetcher {
    let config = ScrapingConfig {
        retries: 0,
        timeout: Duration::from_secs(2),
        allow_hosts: allow_hosts.iter().map(|host| (*host).to_owned()).collect(),
        file_root: file_root.map(std::path::Path::to_owned),
        ..ScrapingConfig::default()
    };
    Fetcher::new(&config).unwrap()
}

#[tokio::test]
async fn the_outbound_guard_refuses_internal_destinations() {
    let (internal, hits) = internal_server().await;
    let (public, _) = server().await;
    let none = Validators::default();
    let port = internal.port();
    let closed = guarded(&[], None);
    // Every spelling of the internal server's address: refused before any request.
    for url in [
        format!("http://{internal}/"),
        format!("http://127.0.0.2:{port}/"),
        format!("http://2130706434:{port}/"),
        format!("http://0x7f.0.0.2:{port}/"),
        format!("http://0177.0.0.2:{port}/"),
        format!("http://127.2:{port}/"),
        format!("http://[::ffff:127.0.0.2]:{port}/"),
        format!("http://[::ffff:7f00:2]:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00::1]/".to_owned(),
    ] {
        let err = closed.fetch(&url, &none).await.unwrap_err();
        assert!(
            matches!(err, FetchError::Refused { .. })
                && !err.is_transient()
                && !err.counts_against_host(),
            "{url}: {err}"
        );
        assert!(
            err.to_string().contains("scraping.allow_hosts"),
            "{url}: {err}"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    // An allowed feed server that redirects inward: every hop is checked.
    let allowed_public = guarded(&["127.0.0.1"], None);
    for to in [
        format!("http://127.0.0.2:{port}/"),
        format!("http://2130706434:{port}/"),
        format!("http://[::ffff:127.0.0.2]:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        let url = format!("http://{public}/redirect?to={}", urlencode(&to));
        let err = allowed_public.fetch(&url, &none).await.unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{to}: {err}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    // A redirect to a file is never followed (reqwest follows http(s) only).
    let url = format!(
        "http://{public}/redirect?to={}",
        urlencode("file:///etc/passwd")
    );
    let err = allowed_public.fetch(&url, &none).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Status { status: 302, .. }),
        "{err}"
    );

    // The same redirect with the internal host listed is followed: the test can fail.
    let allowed_both = guarded(&["127.0.0.1", "127.0.0.0/8"], None);
    let url = format!(
        "http://{public}/redirect?to={}",
        urlencode(&format!("http://127.0.0.2:{port}/"))
    );
    assert_eq!(
        body_of(allowed_both.fetch(&url, &none).await.unwrap()),
        "internal secrets"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // A listed host name is resolved and every address it has is allowed.
    let by_name = guarded(&["localhost"], None);
    let Ok(fetched) = by_name
        .fetch(&format!("http://localhost:{}/gzip", public.port()), &none)
        .await
    else {
        panic!("localhost, listed, is fetched")
    };
    assert_eq!(body_of(fetched), BODY);
}

#[tokio::test]
async fn files_are_read_only_under_the_root_and_errors_reveal_nothing() {
    let none = Validators::default();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("feeds");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("feed.xml"), BODY).unwrap();
    std::fs::write(dir.path().join("secret.txt"), "s3cret").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("escape.xml")).unwrap();
    let off = guarded(&[], None);
    let err = off
        .fetch(
            &format!("file://{}", root.join("feed.xml").display()),
            &none,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("file sources are off"), "{err}");
    let rooted = guarded(&[], Some(&root));
    assert_eq!(
        body_of(
            rooted
                .fetch(
                    &format!("file://{}", root.join("feed.xml").display()),
                    &none
                )
                .await
                .unwrap()
        ),
        BODY
    );
    // Existing or not, outside or through a link: the same words, nothing read.
    for path in [
        "/etc/shadow".to_owned(),
        "/proc/self/environ".to_owned(),
        "/no/such/file".to_owned(),
        dir.path().join("secret.txt").display().to_string(),
        root.join("escape.xml").display().to_string(),
        root.join("missing.xml").display().to_string(),
        format!("{}/../secret.txt", root.display()),
    ] {
        let err = rooted
            .fetch(&format!("file://{path}"), &none)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, FetchError::Refused { .. })
                && text.ends_with("is not a readable file under scraping.file_root"),
            "{path}: {text}"
        );
        assert!(
            !text.contains("No such file") && !text.contains("ermission"),
            "{text}"
        );
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn fetcher() -> Fetcher {
    let config = ScrapingConfig {
        allow_hosts: vec!["127.0.0.1".into()],
        file_root: Some(std::env::temp_dir()),
        timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        max_body_bytes: CAP,
        retries: 2,
        retry_min_delay: Duration::from_millis(10),
        retry_max_delay: Duration::from_millis(20),
        ..ScrapingConfig::default()
    };
    Fetcher::new(&config).unwrap()
}

fn body_of(fetched: Fetched) -> String {
    match fetched {
        Fetched::Body { bytes, .. } => String::from_utf8(bytes).unwrap(),
        Fetched::NotModified => panic!("expected a body, got 304"),
    }
}

#[tokio::test]
async fn fetcher_against_a_local_server() {
    let (addr, counters) = server().await;
    let url = |path: &str| format!("http://{addr}{path}");
    let fetcher = fetcher();
    let none = Validators::default();

    // gzip is decoded transparently
    assert_eq!(
        body_of(fetcher.fetch(&url("/gzip"), &none).await.unwrap()),
        BODY
    );

    // conditional GET: validators come back, and sending them yields 304
    let Fetched::Body { etag, .. } = fetcher.fetch(&url("/etag"), &none).await.unwrap() else {
        panic!()
    };
    assert_eq!(etag.as_deref(), Some("\"v1\""));
    let again = Validators {
        etag,
        last_modified: None,
    };
    assert_eq!(
        fetcher.fetch(&url("/etag"), &again).await.unwrap(),
        Fetched::NotModified
    );
    let Fetched::Body { last_modified, .. } =
        fetcher.fetch(&url("/modified"), &none).await.unwrap()
    else {
        panic!()
    };
    let again = Validators {
        etag: None,
        last_modified,
    };
    assert_eq!(
        fetcher.fetch(&url("/modified"), &again).await.unwrap(),
        Fetched::NotModified
    );

    // size caps, with and without Content-Length
    for path in ["/big-length", "/big-chunked"] {
        let err = fetcher.fetch(&url(path), &none).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: CAP, .. }),
            "{path}: {err}"
        );
        assert!(err.to_string().contains("larger than the 4096-byte limit"));
    }

    // 503 twice, then 200: retried and succeeds on the third attempt
    assert_eq!(
        body_of(fetcher.fetch(&url("/flaky"), &none).await.unwrap()),
        BODY
    );
    assert_eq!(counters.flaky.load(Ordering::SeqCst), 3);

    // 404 is not retried
    let err = fetcher.fetch(&url("/missing"), &none).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 404, .. }));
    assert!(!err.is_transient());
    assert_eq!(counters.missing.load(Ordering::SeqCst), 1);

    // 429 is reported with its Retry-After, for the breaker, not retried here
    let err = fetcher.fetch(&url("/limited"), &none).await.unwrap_err();
    assert!(err.is_rate_limited());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(counters.limited.load(Ordering::SeqCst), 1);

    // timeouts and refused connections are clear, transient errors
    let err = fetcher.fetch(&url("/slow"), &none).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no complete response from 127.0.0.1")
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let err = fetcher
        .fetch(&format!("http://{closed_addr}/feed"), &none)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err}");
    assert!(err.is_transient() && err.counts_against_host());

    // invalid URLs
    assert!(matches!(
        fetcher.fetch("not a url", &none).await.unwrap_err(),
        FetchError::InvalidUrl { .. }
    ));
    assert!(matches!(
        fetcher.fetch("ftp://x.example/f", &none).await.unwrap_err(),
        FetchError::Refused { .. }
    ));
}

#[tokio::test]
async fn local_files_with_the_same_cap() {
    let fetcher = fetcher();
    let none = Validators::default();
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("feed.xml");
    std::fs::write(&small, BODY).unwrap();
    let fetched = fetcher
        .fetch(&format!("file://{}", small.display()), &none)
        .await
        .unwrap();
    assert_eq!(body_of(fetched), BODY);
    let big = dir.path().join("big.xml");
    std::fs::write(&big, vec![b'z'; CAP as usize + 1]).unwrap();
    let err = fetcher
        .fetch(&format!("file://{}", big.display()), &none)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    let err = fetcher
        .fetch(
            &format!("file://{}/absent.xml", dir.path().display()),
            &none,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("absent.xml"), "{err}");
}
