//! `tge-swarm run` (the embedded mode: in-memory queues, a SQLite store) `kill -9`ed at
//! random points of its pipeline, over and over, while it reads RSS feeds from a local server:
//! every announcement still ends up in `GET /api/v1/events` exactly once.
//!
//! Half the kills strike within 50 ms of a feed request reaching the server, while the fetched
//! body is being parsed, enqueued and recorded: the window in which a stored content hash
//! used to stand for documents the crash lost, so the refetch after the restart was
//! "not modified" and a whole feed never became events. The other half strike at a random
//! moment of the first two seconds after a start. The seed is printed
//! (`TGE_SWARM_TEST_SEED` replays it).
//!
//! A webhook subscription is told of every event through the kills: kills strike between an
//! event being stored and its alert being sent, and during sends. In the end every event has
//! reached the receiver under its idempotency key, no key names another event, and repeats
//! (an alert whose send a kill interrupted is sent again after its lease) carry the same key,
//! so the receiver drops them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::distributed::{
    api_add_source, api_events, api_get, corpus, eventually, free_port, path_str, seed_rng,
    serve_counted_feeds, serve_on_thread, verify_events, wait_for_kill_moment,
};

/// Alerts a webhook receiver got: idempotency key and the event id in the body, in order.
type Alerts = Arc<Mutex<Vec<(String, i64)>>>;

/// A webhook receiver on its own thread, recording every alert and answering 204.
fn serve_alerts(alerts: Alerts) -> std::net::SocketAddr {
    serve_on_thread(move || {
        axum::Router::new().route(
            "/alerts",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let alerts = alerts.clone();
                    async move {
                        let key = headers
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let event = serde_json::from_slice::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|body| body["event"]["id"].as_i64())
                            .unwrap_or(-1);
                        alerts.lock().unwrap().push((key, event));
                        axum::http::StatusCode::NO_CONTENT
                    }
                },
            ),
        )
    })
}

/// Subscribes the receiver at `receiver` to every event; returns the subscription's id.
fn subscribe(api: &str, receiver: std::net::SocketAddr) -> i64 {
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{api}/api/v1/subscriptions"))
        .header("x-api-key", ADMIN_KEY)
        .json(&serde_json::json!({
            "name": "crash-desk",
            "channel": {"type": "webhook", "url": format!("http://{receiver}/alerts"), "secret": "a-secret-for-the-crash-test"},
        }))
        .timeout(Duration::from_secs(10))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let body: serde_json::Value = response.json().unwrap();
    body["id"].as_i64().unwrap()
}

pub(crate) const ADMIN_KEY: &str = "embedded-crash-test-admin-key";
/// Kills of the whole process.
const KILLS: usize = 50;

const CONFIG: &str = r#"
[scheduler]
tick = "100ms"

[scraping]
allow_hosts = ["127.0.0.1"]
timeout = "2s"
connect_timeout = "1s"
retries = 1
retry_min_delay = "100ms"
retry_max_delay = "500ms"
# Small feeds: within the 5 s visibility timeout with the fetch's 4.5 s.
parse_timeout = "400ms"

[supervision]
heartbeat_interval = "500ms"

[queues]
visibility_timeout = "5s"
poll_wait = "50ms"

[delivery]
poll_interval = "100ms"
timeout = "1s"
retry_min_delay = "200ms"
retry_max_delay = "1s"
"#;

/// One `tge-swarm run` process at a time over one data directory.
pub(crate) struct Embedded {
    dir: std::path::PathBuf,
    pub(crate) api: String,
    child: Option<Child>,
    starts: usize,
}

impl Embedded {
    /// `tge-swarm run` with `config` as its config file, its admin key [`ADMIN_KEY`].
    pub(crate) fn start(dir: &Path, config: &str) -> Embedded {
        std::fs::write(dir.join("swarm.toml"), config).unwrap();
        let mut embedded = Embedded {
            dir: dir.to_owned(),
            api: format!("127.0.0.1:{}", free_port()),
            child: None,
            starts: 0,
        };
        embedded.spawn();
        embedded
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.join(format!("run-{}.log", self.starts))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tge-swarm"))
            .arg("run")
            .env_remove("TGE_SWARM_REDIS_URL")
            .env_remove("TGE_SWARM_DATABASE_URL")
            .env_remove("TGE_SWARM_CONSUL_URL")
            .env("TGE_SWARM_CONFIG", path_str(&self.dir.join("swarm.toml")))
            .env("TGE_SWARM_DATA_DIR", path_str(&self.dir.join("data")))
            .env("TGE_SWARM_API_ADDR", &self.api)
            .env("TGE_SWARM_METRICS_ADDR", "127.0.0.1:0")
            .env("TGE_SWARM_ADMIN_KEY", ADMIN_KEY)
            .env("TGE_SWARM_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// `kill -9`, then a new process over the same data directory.
    fn kill_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        self.spawn();
    }

    /// SIGTERM; waits at most `limit` for the process to exit and returns how long it took.
    pub(crate) fn terminate(&mut self, limit: Duration) -> Duration {
        let mut child = self.child.take().expect("a running process");
        let sent = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "exit after SIGTERM: {status}\n{}",
                    self.log_tail()
                );
                return sent.elapsed();
            }
            if sent.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("still running {limit:?} after SIGTERM\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn wait_healthy(&self) {
        eventually(Duration::from_secs(60), "the API answers /healthz", || {
            matches!(api_get(&self.api, "/healthz"), Some((200, _)))
        });
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("run-{}.log", self.starts)))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn embedded_swarm_killed_at_random_loses_and_duplicates_nothing() {
    swarm_shared::install_crypto_provider();
    let mut rng = seed_rng();
    let dir = tempfile::tempdir().unwrap();
    let (feeds, projects) = corpus(&mut rng);
    let feed_count = feeds.len();
    let hits = Arc::new(AtomicUsize::new(0));
    let feed_addr = serve_counted_feeds(feeds, hits.clone());
    let alerts: Alerts = Arc::default();
    let receiver = serve_alerts(alerts.clone());
    let mut swarm = Embedded::start(dir.path(), CONFIG);
    swarm.wait_healthy();
    let subscription = subscribe(&swarm.api, receiver);

    let mut next_feed = 0;
    let mut near_fetch = 0;
    for kill in 0..KILLS {
        swarm.wait_healthy();
        // Feeds join one by one, so fetches of new bodies go on through the kills.
        if next_feed < feed_count {
            api_add_source(&swarm.api, ADMIN_KEY, feed_addr, next_feed);
            next_feed += 1;
        }
        near_fetch += usize::from(wait_for_kill_moment(kill, &hits, &mut rng, 2000));
        swarm.kill_and_restart();
    }
    eprintln!("{KILLS} kills, {near_fetch} within 50 ms of a fetch");
    assert!(
        near_fetch >= KILLS / 2 - 2,
        "too few kills near a fetch: {near_fetch}"
    );

    swarm.wait_healthy();
    while next_feed < feed_count {
        api_add_source(&swarm.api, ADMIN_KEY, feed_addr, next_feed);
        next_feed += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let count = api_events(&swarm.api).map_or(0, |events| events.len());
        if count >= projects.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {count} of {} events after the kills\n{}",
            projects.len(),
            swarm.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Redeliveries still in flight would show up as duplicates now.
    std::thread::sleep(Duration::from_secs(3));
    let events = api_events(&swarm.api).expect("events are served");
    verify_events(&events, &projects);

    // Every event's alert arrived, under its key; a repeat only ever repeats a key.
    let expected: BTreeMap<String, i64> = events
        .iter()
        .map(|event| {
            let id = event["id"].as_i64().unwrap();
            (format!("tge-swarm-{subscription}-{id}-1"), id)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let keys: BTreeSet<String> = alerts
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        if expected.keys().all(|key| keys.contains(key)) {
            break;
        }
        let missing: Vec<&String> = expected.keys().filter(|key| !keys.contains(*key)).collect();
        assert!(
            Instant::now() < deadline,
            "alerts never arrived: {missing:?}\n{}",
            swarm.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(2));
    let received = alerts.lock().unwrap().clone();
    for (key, event) in &received {
        assert_eq!(
            expected.get(key),
            Some(event),
            "an alert with key {key} for event {event} that GET /events does not have so"
        );
    }
    let repeats = received.len() - expected.len();
    eprintln!(
        "{} alerts for {} events through {KILLS} kills; {repeats} repeated a key (dropped by the receiver)",
        received.len(),
        expected.len()
    );
}
