//! The distributed swarm as separate OS processes of the real binary: one queen, one memory
//! coordinator and one process per specialist kind, over a private Redis (with AOF, so it can
//! be restarted without losing queued work) and a private Postgres, reading RSS feeds from a
//! local HTTP server. The private servers let the tests restart them; `scripts/test.sh`
//! provides the binaries (`TGE_SWARM_TEST_PG_BIN`, and `TGE_SWARM_TEST_PG_USER` when running
//! as root, since Postgres refuses to run as root).
//!
//! What is checked: every announcement ends up in `GET /api/v1/events` exactly once (one
//! event per project, one source document each) and nothing else does, while agents are
//! `kill -9`ed (restarted under the same node name, and once for good with a peer left to
//! claim its work), and while Redis and Postgres restart; and that the queen's health
//! supervisor fails a dead agent's pending work over to its peer long before the visibility
//! timeout would.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::Value;

mod feeds;
mod scenarios;
mod servers;

pub(crate) use feeds::*;
pub(crate) use servers::*;

const ADMIN_KEY: &str = "distributed-test-admin-key";
/// Feeds and items per feed: 520 items, of which `POSITIVES` announce a TGE.
const FEEDS: usize = 26;
const ITEMS_PER_FEED: usize = 20;
const POSITIVES: usize = 100;

pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `condition` every 100 ms until it holds or `timeout` passes; panics with `what`.
pub(crate) fn eventually(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_quiet(command: &mut Command) -> std::process::Output {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("running {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

const CONFIG: &str = r#"
[scheduler]
tick = "200ms"

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
missed_heartbeats = 3

[detection]
batch = 1

[quality]
batch = 1

[queues]
visibility_timeout = "5s"
poll_wait = "200ms"

[memory]
sync_interval = "2s"
"#;

/// The role of one process and how to start it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Role {
    Queen,
    Memory,
    Agent(&'static str),
    /// A second process of a kind, on a node of its own.
    Peer(&'static str),
}

impl Role {
    fn args(self) -> Vec<&'static str> {
        match self {
            Role::Queen => vec!["queen"],
            Role::Memory => vec!["memory-coordinator"],
            Role::Agent(kind) | Role::Peer(kind) => vec!["agent", kind],
        }
    }

    fn node(self) -> String {
        match self {
            Role::Queen => "queen-node".into(),
            Role::Memory => "memory-node".into(),
            Role::Agent(kind) => format!("{kind}-node"),
            Role::Peer(kind) => format!("{kind}-peer-node"),
        }
    }
}

/// `GET` of an API path on `api` (`host:port`): the status and the JSON body (null when not
/// JSON), or none when the server does not answer.
pub(crate) fn api_get(api: &str, path: &str) -> Option<(u16, Value)> {
    let response = reqwest::blocking::Client::new()
        .get(format!("http://{api}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .ok()?;
    let status = response.status().as_u16();
    let body = response.json().ok().unwrap_or(Value::Null);
    Some((status, body))
}

/// Adds `/feed/<index>.xml` of the feed server as the RSS source `feed-<index>` (a second
/// add of the same feed is fine).
pub(crate) fn api_add_source(api: &str, key: &str, feeds: SocketAddr, index: usize) {
    let body = serde_json::json!({
        "name": format!("feed-{index}"),
        "kind": "rss",
        "url": format!("http://{feeds}/feed/{index}.xml"),
        "interval": "1s",
    });
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{api}/api/v1/sources"))
        .header("x-api-key", key)
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .unwrap();
    assert!(
        response.status().is_success() || response.status().as_u16() == 409,
        "adding feed {index}: {}",
        response.status()
    );
}

/// Every event the API on `api` lists, following the cursor.
pub(crate) fn api_events(api: &str) -> Option<Vec<Value>> {
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(token) => format!("/api/v1/events?page_size=200&page_token={token}"),
            None => "/api/v1/events?page_size=200".to_owned(),
        };
        let (status, body) = api_get(api, &path)?;
        if status != 200 {
            return None;
        }
        events.extend(body["events"].as_array()?.iter().cloned());
        match body["next_page_token"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => return Some(events),
        }
    }
}

/// Waits for the moment of kill number `kill`: for an even one, within 50 ms after the next
/// request reaches the feed server (true when one came within 10 s); for an odd one, a random
/// moment of the next `spread_ms`.
pub(crate) fn wait_for_kill_moment(
    kill: usize,
    hits: &AtomicUsize,
    rng: &mut impl Rng,
    spread_ms: u64,
) -> bool {
    if kill % 2 == 1 {
        std::thread::sleep(Duration::from_millis(rng.random_range(0..spread_ms)));
        return false;
    }
    let before = hits.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while hits.load(Ordering::SeqCst) == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let near = hits.load(Ordering::SeqCst) > before;
    std::thread::sleep(Duration::from_millis(rng.random_range(0..50)));
    near
}

/// The processes of one swarm.
struct Processes {
    dir: PathBuf,
    env: Vec<(String, String)>,
    api: SocketAddr,
    children: BTreeMap<Role, Child>,
    starts: HashMap<Role, u32>,
}

impl Processes {
    fn start(dir: &Path, redis: &str, database: &str, config_text: &str) -> Processes {
        let config = dir.join("swarm.toml");
        std::fs::write(&config, config_text).unwrap();
        let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let env = vec![
            ("TGE_SWARM_CONFIG".to_owned(), path_str(&config).to_owned()),
            ("TGE_SWARM_REDIS_URL".to_owned(), redis.to_owned()),
            ("TGE_SWARM_DATABASE_URL".to_owned(), database.to_owned()),
            ("TGE_SWARM_ADMIN_KEY".to_owned(), ADMIN_KEY.to_owned()),
            (
                "TGE_SWARM_METRICS_ADDR".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            ("TGE_SWARM_LOG".to_owned(), "info".to_owned()),
            // The tests slow an agent down to catch it holding work.
            ("TGE_SWARM_FAULT_INJECTION".to_owned(), "true".to_owned()),
        ];
        let mut processes = Processes {
            dir: dir.to_owned(),
            env,
            api,
            children: BTreeMap::new(),
            starts: HashMap::new(),
        };
        processes.spawn(Role::Queen);
        eventually(Duration::from_secs(30), "the queen's API", || {
            processes.get("/healthz").is_some()
        });
        processes.spawn(Role::Memory);
        for kind in [
            "api-reliability",
            "performance",
            "data-quality",
            "keyword",
            "scraping",
        ] {
            processes.spawn(Role::Agent(kind));
        }
        eventually(
            Duration::from_secs(60),
            "every kind healthy (queen /readyz)",
            || processes.ready(),
        );
        processes
    }

    fn spawn(&mut self, role: Role) {
        let starts = self.starts.entry(role).or_insert(0);
        *starts += 1;
        let log_path = self.dir.join(format!("{}-{}.log", role.node(), starts));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tge-swarm"));
        command
            .args(role.args())
            .env_remove("TGE_SWARM_CONSUL_URL")
            .env("TGE_SWARM_NODE_NAME", role.node())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        if role == Role::Queen {
            command.env("TGE_SWARM_API_ADDR", self.api.to_string());
        }
        let child = command.spawn().unwrap();
        self.children.insert(role, child);
    }

    /// Freezes the agent `role` (`SIGSTOP`) at random moments until its actor `agent` is
    /// caught holding work taken from `queue` and not yet acknowledged, then `kill -9`s it and starts a new process with
    /// the same node name. Returns false if it never held work within `patience`.
    fn kill_while_holding_work(
        &mut self,
        (role, queue, agent): (Role, &str, &str),
        redis: &PrivateRedis,
        rng: &mut impl Rng,
        patience: Duration,
        restart: bool,
    ) -> bool {
        let consumer = format!("{}/{agent}", role.node());
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(rng.random_range(5..60)));
            let Some(pid) = self.children.get(&role).map(Child::id) else {
                return false;
            };
            signal(pid, "-STOP");
            let pending = redis.pending(queue, &consumer);
            if pending.trim().is_empty() {
                signal(pid, "-CONT");
                continue;
            }
            if restart {
                self.kill_and_restart(role);
            } else {
                self.kill(role);
            }
            return true;
        }
        false
    }

    /// `kill -9`, for good.
    fn kill(&mut self, role: Role) {
        if let Some(mut child) = self.children.remove(&role) {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// `kill -9`, then a new process with the same node name (it takes back its pending work).
    fn kill_and_restart(&mut self, role: Role) {
        if let Some(mut child) = self.children.remove(&role) {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        self.spawn(role);
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    fn get(&self, path: &str) -> Option<(u16, Value)> {
        api_get(&self.api.to_string(), path)
    }

    fn ready(&self) -> bool {
        matches!(self.get("/readyz"), Some((200, _)))
    }

    fn add_source(&self, feeds: SocketAddr, index: usize) {
        api_add_source(&self.api.to_string(), ADMIN_KEY, feeds, index);
    }

    /// Injects a fault through the queen's API (`target` as in `GET /api/v1/agents`).
    fn inject(&self, target: &str, fault: &str, count: u32) {
        let response = reqwest::blocking::Client::new()
            .post(self.url("/api/v1/faults"))
            .header("x-api-key", ADMIN_KEY)
            .json(&serde_json::json!({"target": target, "fault": fault, "count": count}))
            .timeout(Duration::from_secs(10))
            .send()
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            202,
            "injecting {fault} into {target}"
        );
    }

    /// Every event, following the cursor.
    fn events(&self) -> Option<Vec<Value>> {
        api_events(&self.api.to_string())
    }

    fn metrics_text(&self) -> String {
        // The queen's metrics port is ephemeral here; its address is in its log line.
        let log = std::fs::read_to_string(self.dir.join(format!(
            "{}-{}.log",
            Role::Queen.node(),
            self.starts[&Role::Queen]
        )))
        .unwrap_or_default();
        let Some(addr) = log
            .lines()
            .find_map(|line| line.split("metrics on http://").nth(1))
            .and_then(|rest| rest.split('/').next())
        else {
            return String::new();
        };
        reqwest::blocking::get(format!("http://{addr}/metrics"))
            .and_then(|response| response.text())
            .unwrap_or_default()
    }

    /// Lines containing `needle` across every process log.
    fn count_in_logs(&self, needle: &str) -> usize {
        let mut count = 0;
        for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            count += text.lines().filter(|line| line.contains(needle)).count();
        }
        count
    }

    fn logs_tail(&self) -> String {
        let mut out = String::new();
        let mut paths: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            out.push_str(&format!("== {}\n{}\n", path.display(), tail.join("\n")));
        }
        out
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Kills while holding work per agent kind. Each waits for the restarted process to take its
/// work back, and a fast keyword agent holds work only for moments, so two per kind keeps the
/// test within the feeds it has.
const HELD_KILLS_PER_KIND: u32 = 2;

/// What a worker logs when it takes back its pending entries after a restart.
const RECOVERED: &str = "recovered pending work after restart";

/// Checks the events are exactly the announcements, once each, with one source each.
fn verify_exactly_once(processes: &Processes, projects: &[String]) {
    let events = processes.events().expect("events are served");
    verify_events(&events, projects);
}

/// Checks `events` are exactly the announcements of `projects`, once each, with one source
/// each.
pub(crate) fn verify_events(events: &[Value], projects: &[String]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for event in events {
        let project = event["project"].as_str().unwrap_or("<none>").to_owned();
        // `source_count` counts every source merged in, also those a page does not list.
        let sources = event["source_count"].as_u64().unwrap_or(0);
        assert_eq!(sources, 1, "event {project} has {sources} sources: {event}");
        *seen.entry(project).or_default() += 1;
    }
    let extra: Vec<&String> = seen.keys().filter(|p| !projects.contains(p)).collect();
    assert!(
        extra.is_empty(),
        "events that are not announcements: {extra:?}"
    );
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "announcements recorded more than once: {twice:?}"
    );
    let missing: Vec<&String> = projects.iter().filter(|p| !seen.contains_key(*p)).collect();
    assert!(missing.is_empty(), "announcements lost: {missing:?}");
    assert_eq!(events.len(), projects.len());
}

fn wait_for_all_events(processes: &Processes, projects: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let count = processes.events().map_or(0, |events| events.len());
        if count >= projects.len() {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "only {count} of {} events after {timeout:?}\n{}",
                projects.len(),
                processes.logs_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Redeliveries still in flight would show up as duplicates now.
    std::thread::sleep(Duration::from_secs(3));
    verify_exactly_once(processes, projects);
}

/// Stops a dependency (`bus` or `store`), checks that the queen's `/readyz` and metrics
/// report it down, restarts it after 2 s and waits until the swarm is ready again.
fn ride_out_outage(
    processes: &Processes,
    dependency: &str,
    stop: impl FnOnce(),
    launch: impl FnOnce(),
) {
    stop();
    eventually(
        Duration::from_secs(30),
        &format!("/readyz to report the {dependency} down"),
        || matches!(processes.get("/readyz"), Some((503, body)) if body["checks"][dependency] == "unavailable"),
    );
    let metrics = processes.metrics_text();
    let down = format!("tge_swarm_dependency_up{{dependency=\"{dependency}\"}} 0");
    assert!(metrics.contains(&down), "{dependency} down in metrics");
    std::thread::sleep(Duration::from_secs(2));
    launch();
    eventually(
        Duration::from_secs(60),
        &format!("/readyz after the {dependency} is back"),
        || processes.ready(),
    );
}

pub(crate) fn seed_rng() -> rand::rngs::StdRng {
    let seed: u64 = std::env::var("TGE_SWARM_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("test seed: {seed} (set TGE_SWARM_TEST_SEED to replay)");
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// A swarm of processes over private servers, reading the generated feeds. Fields drop in
/// order: the processes before the servers, the directory last.
struct World {
    processes: Processes,
    redis: PrivateRedis,
    postgres: PrivatePostgres,
    feed_addr: SocketAddr,
    /// Requests the feed server has received.
    hits: Arc<AtomicUsize>,
    projects: Vec<String>,
    _dir: tempfile::TempDir,
}

impl World {
    fn start(rng: &mut rand::rngs::StdRng) -> World {
        World::start_with(rng, CONFIG)
    }

    fn start_with(rng: &mut rand::rngs::StdRng, config: &str) -> World {
        swarm_shared::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let redis = PrivateRedis::start(dir.path());
        let postgres = PrivatePostgres::start(dir.path());
        let (feeds, projects) = corpus(rng);
        let hits = Arc::new(AtomicUsize::new(0));
        let feed_addr = serve_counted_feeds(feeds, hits.clone());
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let processes = Processes::start(&logs, &redis.url(), &postgres.url(), config);
        World {
            processes,
            redis,
            postgres,
            feed_addr,
            hits,
            projects,
            _dir: dir,
        }
    }
}
