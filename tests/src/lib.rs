//! Support for the end-to-end tests: a local HTTP server publishing feeds and pages (with
//! conditional GET, and slow, huge and malformed routes), a fast-timing test configuration,
//! a swarm started on ephemeral ports, a local SMTP relay with STARTTLS ([`smtp`]), and small
//! API helpers.

// Test support: a panic is how a helper reports a failed expectation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod smtp;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use swarm_shared::config::Config;

/// Writes documents (title, text) as JSON Lines, the format `file` sources read; the
/// document at `index` gets the URL `{url_prefix}/{index}`.
pub fn write_jsonl(path: &std::path::Path, documents: &[(String, String)], url_prefix: &str) {
    let mut body = String::with_capacity(documents.len() * 1300);
    for (index, (title, text)) in documents.iter().enumerate() {
        let line = serde_json::json!({
            "title": title,
            "text": text,
            "url": format!("{url_prefix}/{index}"),
        });
        body.push_str(&line.to_string());
        body.push('\n');
    }
    std::fs::write(path, body).unwrap();
}

/// The admin key test swarms are started with.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// A page the server publishes.
#[derive(Debug, Clone)]
pub struct Page {
    /// Body.
    pub body: String,
    /// Content-Type.
    pub content_type: &'static str,
}

#[derive(Debug, Default)]
struct ServerState {
    pages: Mutex<HashMap<String, Page>>,
    hits: Mutex<HashMap<String, u32>>,
    not_modified: Mutex<HashMap<String, u32>>,
    held_now: AtomicU32,
    held_peak: AtomicU32,
}

/// A local HTTP server for sources.
#[derive(Debug, Clone)]
pub struct FeedServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
}

fn etag_of(body: &str) -> String {
    format!("\"{}\"", swarm_shared::domain::fingerprint(body))
}

async fn serve_page(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    // A page may be published for one query (`api/list?type=a`) or for its path alone.
    let name = match query {
        Some(query)
            if state
                .pages
                .lock()
                .unwrap()
                .contains_key(&format!("{name}?{query}")) =>
        {
            format!("{name}?{query}")
        }
        _ => name,
    };
    *state.hits.lock().unwrap().entry(name.clone()).or_insert(0) += 1;
    match name.as_str() {
        "slow.xml" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            return (StatusCode::OK, "<rss></rss>").into_response();
        }
        "huge.xml" => {
            let body = format!(
                "<rss version=\"2.0\"><channel>{}</channel></rss>",
                "<item><title>x</title></item>".repeat(10_000)
            );
            return ([(header::CONTENT_TYPE, "application/rss+xml")], body).into_response();
        }
        "error.xml" => return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        held if held.starts_with("held-") => {
            // Held for 1 s; the peak number held at once is recorded.
            let now = state.held_now.fetch_add(1, Ordering::SeqCst) + 1;
            state.held_peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
            state.held_now.fetch_sub(1, Ordering::SeqCst);
            return ([(header::CONTENT_TYPE, "application/rss+xml")], rss(&[])).into_response();
        }
        _ => {}
    }
    let page = state.pages.lock().unwrap().get(&name).cloned();
    let Some(page) = page else {
        return (StatusCode::NOT_FOUND, "no such page").into_response();
    };
    if name.starts_with("plain-") {
        // Served without validators, like many real feeds.
        return ([(header::CONTENT_TYPE, page.content_type)], page.body).into_response();
    }
    let etag = etag_of(&page.body);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == etag);
    if matches {
        *state.not_modified.lock().unwrap().entry(name).or_insert(0) += 1;
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, page.content_type),
            (header::ETAG, etag.as_str()),
        ],
        page.body,
    )
        .into_response()
}

impl FeedServer {
    /// Starts a server on an ephemeral loopback port.
    pub async fn start() -> FeedServer {
        let state = Arc::new(ServerState::default());
        let router = Router::new()
            .route("/{*name}", get(serve_page))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FeedServer { addr, state }
    }

    /// Publishes (or replaces) a page.
    pub fn publish(&self, name: &str, body: String, content_type: &'static str) {
        self.state
            .pages
            .lock()
            .unwrap()
            .insert(name.to_owned(), Page { body, content_type });
    }

    /// The server's base URL (`http://127.0.0.1:port`), for sources that add their own paths.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// URL of a page.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// Requests served for a page.
    pub fn hits(&self, name: &str) -> u32 {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Most `held-*` requests served at once.
    pub fn held_peak(&self) -> u32 {
        self.state.held_peak.load(Ordering::SeqCst)
    }

    /// 304 answers for a page.
    pub fn not_modified(&self, name: &str) -> u32 {
        self.state
            .not_modified
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0)
    }
}

/// An RSS item.
#[derive(Debug, Clone)]
pub struct Item {
    /// Title.
    pub title: String,
    /// Link.
    pub link: String,
    /// Description.
    pub description: String,
}

impl Item {
    /// An item.
    pub fn new(title: &str, link: &str, description: &str) -> Item {
        Item {
            title: title.into(),
            link: link.into(),
            description: description.into(),
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An RSS 2.0 document.
pub fn rss(items: &[Item]) -> String {
    let mut body =
        String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>test</title>");
    for item in items {
        body.push_str(&format!(
            "<item><title>{}</title><link>{}</link><description>{}</description><pubDate>Mon, 02 Mar 2026 10:00:00 GMT</pubDate></item>",
            escape(&item.title),
            escape(&item.link),
            escape(&item.description)
        ));
    }
    body.push_str("</channel></rss>");
    body
}

/// An Atom document.
pub fn atom(items: &[Item]) -> String {
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title><id>urn:t</id><updated>2026-03-01T00:00:00Z</updated>",
    );
    for (index, item) in items.iter().enumerate() {
        body.push_str(&format!(
            "<entry><title>{}</title><id>urn:{index}</id><link href=\"{}\"/><updated>2026-03-01T00:00:00Z</updated><summary>{}</summary></entry>",
            escape(&item.title),
            escape(&item.link),
            escape(&item.description)
        ));
    }
    body.push_str("</feed>");
    body
}

static NODE: AtomicU32 = AtomicU32::new(0);

/// A configuration with fast timings, ephemeral ports, the default watchlist and no sources.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::embedded_default().unwrap();
    config.sources.clear();
    config.node.name = format!(
        "test-{}-{}",
        std::process::id(),
        NODE.fetch_add(1, Ordering::Relaxed)
    );
    config.server.api_addr = "127.0.0.1:0".parse().unwrap();
    config.server.metrics_addr = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = data_dir.to_owned();
    config.scheduler.tick = Duration::from_millis(50);
    config.supervision.heartbeat_interval = Duration::from_millis(100);
    config.supervision.policy.backoff_base = Duration::from_millis(20);
    config.supervision.interval = Duration::from_millis(200);
    config.supervision.fault_injection = true;
    config.queues.poll_wait = Duration::from_millis(20);
    config.queues.visibility_timeout = Duration::from_secs(5);
    config.memory.sync_interval = Duration::from_millis(300);
    config.performance.interval = Duration::from_millis(300);
    config.scraping.timeout = Duration::from_secs(1);
    config.scraping.connect_timeout = Duration::from_millis(500);
    config.scraping.retries = 1;
    config.scraping.retry_min_delay = Duration::from_millis(20);
    config.scraping.retry_max_delay = Duration::from_millis(50);
    config.scraping.max_body_bytes = 64 * 1024;
    config.scraping.parse_timeout = Duration::from_secs(1);
    // The harness polls the API far faster than a client would; the test of the rate limits
    // sets them itself.
    config.server.rate_limit_per_address = 0;
    config.server.rate_limit_per_key = 0;
    // The tests' feed servers listen on loopback, and their files live in temporary dirs.
    config.scraping.allow_hosts = vec!["127.0.0.1".into()];
    config.scraping.file_root = Some(std::env::temp_dir());
    config.reliability.failure_threshold = 3;
    config.reliability.open_for = Duration::from_secs(30);
    config
}

/// A started swarm with its data dir and an HTTP client.
pub struct TestSwarm {
    /// The swarm.
    pub swarm: swarm_queen::Swarm,
    /// Keeps the data dir alive.
    pub dir: tempfile::TempDir,
    /// Client.
    pub http: reqwest::Client,
}

impl TestSwarm {
    /// Starts a swarm with `configure` applied to the test config.
    pub async fn start(configure: impl FnOnce(&mut Config)) -> TestSwarm {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        configure(&mut config);
        config.validate().unwrap();
        let swarm = swarm_queen::Swarm::start(config, Some(ADMIN_KEY.into()))
            .await
            .unwrap();
        TestSwarm {
            swarm,
            dir,
            http: reqwest::Client::new(),
        }
    }

    /// URL of an API path (`/api/v1/events`).
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.swarm
                .api_addr()
                .expect("an all-in-one swarm serves the API")
        )
    }

    /// GET a JSON document.
    pub async fn get(&self, path: &str) -> (StatusCode, serde_json::Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    /// Adds a source with the admin key; returns its id.
    pub async fn add_source(&self, body: serde_json::Value) -> i64 {
        let response = self
            .http
            .post(self.url("/api/v1/sources"))
            .header("X-API-Key", ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "adding source {body}");
        let created: serde_json::Value = response.json().await.unwrap();
        created["id"].as_i64().unwrap()
    }

    /// POSTs `body` to an API path with the admin key; the status and the JSON answer.
    pub async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("X-API-Key", ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or_default())
    }

    /// Recorded supervisor actions of a component, oldest first.
    pub async fn actions_of(&self, component: &str) -> Vec<serde_json::Value> {
        let (status, body) = self
            .get(&format!(
                "/api/v1/supervisor/actions?component={component}&limit=500"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        let mut actions = body["actions"].as_array().cloned().unwrap_or_default();
        actions.reverse();
        actions
    }

    /// All events (follows pagination).
    pub async fn events(&self) -> Vec<serde_json::Value> {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let path = match &token {
                Some(token) => format!("/api/v1/events?page_size=200&page_token={token}"),
                None => "/api/v1/events?page_size=200".to_owned(),
            };
            let (status, body) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            events.extend(body["events"].as_array().unwrap().iter().cloned());
            match body["next_page_token"].as_str() {
                Some(next) => token = Some(next.to_owned()),
                None => return events,
            }
        }
    }

    /// The agents list.
    pub async fn agents(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.get("/api/v1/agents").await;
        if status != StatusCode::OK {
            return Vec::new();
        }
        body["agents"].as_array().cloned().unwrap_or_default()
    }

    /// The process's Prometheus exposition, as `GET /metrics` serves it.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("http://{}/metrics", self.swarm.metrics_addr()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A source as served by the API.
    pub async fn source(&self, id: i64) -> serde_json::Value {
        self.get(&format!("/api/v1/sources/{id}")).await.1
    }

    /// Stops the swarm.
    pub async fn stop(self) {
        self.swarm.shutdown().await;
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `condition` until it holds; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    loop {
        if condition().await {
            let waited = started.elapsed();
            if waited > Duration::from_secs(3) {
                // Visible with --nocapture: where a slow run spent its time.
                eprintln!("slow wait: {waited:?} for: {what}");
            }
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether every one of the seven kinds is listed and every listed actor is healthy.
pub fn all_healthy(agents: &[serde_json::Value]) -> bool {
    let kinds: std::collections::HashSet<&str> =
        agents.iter().filter_map(|a| a["kind"].as_str()).collect();
    kinds.len() == 7 && agents.iter().all(|a| a["status"] == "healthy")
}

/// The test Redis (`TGE_SWARM_TEST_REDIS_URL`, provided by `scripts/test.sh`) with database
/// `db` selected. Tests that need it fail when it is missing: they never skip.
pub fn redis_url_db(db: u8) -> String {
    let base = std::env::var("TGE_SWARM_TEST_REDIS_URL").expect(
        "TGE_SWARM_TEST_REDIS_URL is not set: run scripts/test.sh, which provides a Redis server",
    );
    let mut url = url::Url::parse(&base).expect("TGE_SWARM_TEST_REDIS_URL is a URL");
    url.set_path(&format!("/{db}"));
    url.to_string()
}

/// Creates an empty database on the test Postgres (`TGE_SWARM_TEST_DATABASE_URL`) and returns
/// its URL.
pub async fn fresh_postgres_database(prefix: &str) -> String {
    use sqlx::Connection;
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let admin_url = std::env::var("TGE_SWARM_TEST_DATABASE_URL").expect(
        "TGE_SWARM_TEST_DATABASE_URL is not set: run scripts/test.sh, which provides a Postgres server",
    );
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}_{}_{n}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    for statement in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    admin.close().await.unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}
