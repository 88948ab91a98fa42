//! `memory`: operations per second of the memory coordinator.
//!
//! * In process (embedded bus, SQLite store): `MEMORY_OPS` writes cast straight into the
//!   coordinator's mailbox (what the bus forwarder does with each `MemoryWrite`), over
//!   `KEYS` keys, then one request that waits for the mailbox to drain; then as many reads
//!   (`List` of a one-key namespace, request and reply).
//! * Written through, in process (`memory.flush_interval = 0s`): `WRITE_THROUGH_OPS` writes,
//!   each persisted, mirrored and announced before the next; what write-behind saves.
//! * Through Redis (the Redis bus, the same SQLite store): the same writes published as
//!   `MemoryWrite` on `swarm:channels:agent-communication` by `PUBLISHERS` concurrent
//!   publishers (50, the baseline's client count: the target compares the two at the same
//!   concurrency), from the first publish to the last key announced on `memory-sync` (which
//!   a flush does after persisting and mirroring); a write the subscriber dropped is counted
//!   as lost. The store is then read back. Measured again with `FEW_PUBLISHERS` (8) and
//!   reported beside it: there the round trip, not the work, bounds the rate.
//!
//! Every write is applied for real: versioned, then persisted to the store, mirrored to its
//! `swarm:memory:*` key and announced on `memory-sync` by the coordinator's write-behind
//! flushes (`memory.flush_interval`, default config). The clock stops only after a final
//! `Flush` request has persisted what was still queued, and the store is then read back: the
//! rate counts writes applied *and* persisted.
//!
//! Baseline: `redis-benchmark -t set` against the same Redis (50 clients, no pipelining).

use std::time::{Duration, Instant};

use futures::StreamExt;
use ractor::ActorRef;
use serde_json::{Value, json};
use swarm_shared::channels::Channel;
use swarm_shared::messages::{AgentMessage, MemoryChanges};
use swarm_shared::ports::publish;

use crate::{Options, bench_config, round};
use memory_coordinator::MemoryMsg;

/// Writes per measurement.
const MEMORY_OPS: usize = 50_000;
/// Distinct keys the writes cycle over (a realistic working set; each write is a new version).
const KEYS: usize = 1_000;
/// Writes measured written through (`memory.flush_interval = 0s`), a same-run comparison.
const WRITE_THROUGH_OPS: usize = 10_000;
/// Clients of every redis-benchmark baseline (`-c`, also its default).
pub const REDIS_BENCHMARK_CLIENTS: usize = 50;
/// Concurrent publishers through Redis: as many as the baseline's clients, so that both rates
/// are taken at the same concurrency.
const PUBLISHERS: usize = REDIS_BENCHMARK_CLIENTS;
/// A second, lower concurrency reported beside it: with few writers in flight the rate is
/// bound by the round trip, not by Redis or the coordinator.
const FEW_PUBLISHERS: usize = 8;

fn write(namespace: &str, key: usize, index: usize) -> AgentMessage {
    AgentMessage::MemoryWrite {
        namespace: namespace.to_owned(),
        key: format!("key-{key}"),
        value: json!({"index": index, "host": "api.bench.example", "state": "closed"}),
        ttl_s: Some(3600),
        written_by: "bench".to_owned(),
    }
}

fn coordinator(swarm: &swarm_queen::Swarm) -> ActorRef<MemoryMsg> {
    let name = swarm_queen::names::memory_name(&swarm.context().config.node.name);
    let cell = ractor::registry::where_is(name).expect("the memory coordinator is running");
    ActorRef::from(cell)
}

async fn list(actor: &ActorRef<MemoryMsg>, namespace: &str) -> usize {
    let namespace = namespace.to_owned();
    ractor::call_t!(actor, MemoryMsg::List, 60_000, namespace)
        .unwrap()
        .len()
}

/// Counts the distinct keys of `namespace` announced on `memory-sync` (a flush announces its
/// keys after persisting and mirroring them) until `expected` have been, or none has come for 2 s;
/// the keys announced and when the last of them was.
async fn announced(
    subscription: &mut swarm_shared::ports::Subscription,
    namespace: &str,
    expected: usize,
) -> (usize, Instant) {
    let mut keys = std::collections::HashSet::new();
    let mut last = Instant::now();
    while keys.len() < expected {
        let next = tokio::time::timeout(Duration::from_secs(2), subscription.next()).await;
        let Ok(Some(payload)) = next else {
            break;
        };
        let message: MemoryChanges = serde_json::from_slice(&payload).unwrap();
        for change in message.changes {
            if change.namespace == namespace && keys.insert(change.key) {
                last = Instant::now();
            }
        }
    }
    (keys.len(), last)
}

/// The versions the store holds for `namespace`.
async fn persisted_versions(swarm: &swarm_queen::Swarm, namespace: &str) -> Vec<u64> {
    let stored = swarm
        .context()
        .store
        .load_memory(chrono::Utc::now())
        .await
        .unwrap();
    stored
        .into_iter()
        .filter(|entry| entry.namespace == namespace)
        .map(|entry| entry.version)
        .collect()
}

/// The `requests per second` redis-benchmark prints for `test` (`-t set`, or a whole command
/// such as `XADD key * field value`) run `requests` times by [`REDIS_BENCHMARK_CLIENTS`]
/// clients on database `db`.
pub fn redis_benchmark(test: &[&str], requests: usize, db: u8) -> f64 {
    let url =
        url::Url::parse(&std::env::var("TGE_SWARM_TEST_REDIS_URL").expect(
            "TGE_SWARM_TEST_REDIS_URL is not set: run scripts/bench.sh, which provides Redis",
        ))
        .unwrap();
    let output = std::process::Command::new("redis-benchmark")
        .args(["-h", url.host_str().unwrap_or("127.0.0.1")])
        .args(["-p", &url.port().unwrap_or(6379).to_string()])
        .args(["-c", &REDIS_BENCHMARK_CLIENTS.to_string()])
        .args([
            "--dbnum",
            &db.to_string(),
            "-n",
            &requests.to_string(),
            "-q",
        ])
        .args(test)
        .output()
        .expect("redis-benchmark runs (package redis-tools)");
    let text = String::from_utf8_lossy(&output.stdout);
    // `-q` prints progress lines separated by carriage returns; the last is the summary:
    // "SET: 71942.45 requests per second, p50=0.351 msec".
    let summary = text
        .split(['\r', '\n'])
        .rfind(|line| line.contains("requests per second"))
        .unwrap_or_else(|| panic!("redis-benchmark {test:?} printed no rate: {text}"));
    summary
        .split("requests per second")
        .next()
        .and_then(|head| head.split_whitespace().last())
        .and_then(|rate| rate.parse().ok())
        .unwrap_or_else(|| panic!("unreadable redis-benchmark summary: {summary}"))
}

/// Writes through Redis: a swarm on the Redis bus (and a SQLite store), `publishers`
/// concurrent publishers of `MEMORY_OPS` `MemoryWrite`s on distinct keys, timed from the
/// first publish to the last key announced on `memory-sync`. Every write that arrived must
/// be persisted.
async fn through_redis(publishers: usize) -> ThroughRedis {
    let dir = tempfile::tempdir().unwrap();
    let mut config = bench_config(dir.path());
    let redis = swarm_tests::redis_url_db(14);
    crate::process::flush_redis(&redis);
    config.connections.redis_url = Some(redis);
    // A flush announces up to `memory.flush_keys` (10,000) keys at once: the harness's own
    // memory-sync subscriber, which counts them, gets room for several flushes so that it
    // does not drop any while it shares the two cores.
    config.queues.bus_buffer = 1 << 17;
    let swarm = swarm_queen::Swarm::start(config, None).await.unwrap();
    let bus = swarm.context().bus.clone();
    let mut memory_sync = bus.subscribe(Channel::MemorySync).await.unwrap();
    // Distinct keys here, so every write that arrives is counted.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for publisher in 0..publishers {
        let bus = bus.clone();
        tasks.push(tokio::spawn(async move {
            let mut index = publisher;
            while index < MEMORY_OPS {
                publish(bus.as_ref(), &write("redis", index, index))
                    .await
                    .unwrap();
                index += publishers;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (arrived, finished) = announced(&mut memory_sync, "redis", MEMORY_OPS).await;
    let elapsed = finished - started;
    let rate = arrived as f64 / elapsed.as_secs_f64();
    let persisted = persisted_versions(&swarm, "redis").await.len();
    assert_eq!(persisted, arrived, "every write that arrived is persisted");
    swarm.shutdown().await;
    ThroughRedis {
        publishers,
        rate,
        arrived,
    }
}

/// What [`through_redis`] measured.
struct ThroughRedis {
    publishers: usize,
    /// Writes per second.
    rate: f64,
    /// Writes announced (of `MEMORY_OPS` published).
    arrived: usize,
}

impl ThroughRedis {
    /// The report's entry, with the ratio to `baseline` (writes/s).
    fn report(&self, baseline: f64) -> Value {
        json!({
            "value": round(self.rate),
            "unit": "writes/s",
            "publishers": self.publishers,
            "published": MEMORY_OPS,
            "announced": self.arrived,
            "lost": MEMORY_OPS - self.arrived,
            "ratio_to_baseline": round(self.rate / baseline),
        })
    }
}

pub fn figure(_options: &Options) -> Value {
    let runtime = crate::runtime();
    let baseline = redis_benchmark(&["-t", "set"], 200_000, 14);
    runtime.block_on(async {
        // In process.
        let dir = tempfile::tempdir().unwrap();
        let swarm = swarm_queen::Swarm::start(bench_config(dir.path()), None)
            .await
            .unwrap();
        let actor = coordinator(&swarm);
        let started = Instant::now();
        for index in 0..MEMORY_OPS {
            actor
                .cast(MemoryMsg::Agent(write("bench", index % KEYS, index)))
                .unwrap();
        }
        let flushed = ractor::call_t!(actor, MemoryMsg::Flush, 60_000).unwrap();
        let writes = MEMORY_OPS as f64 / started.elapsed().as_secs_f64();
        assert!(flushed > 0, "the last flush persisted what was queued");
        let held = list(&actor, "bench").await;
        assert_eq!(held, KEYS, "every key written in process");
        let versions = persisted_versions(&swarm, "bench").await;
        assert_eq!(versions.len(), KEYS, "every key persisted");
        assert!(
            versions.iter().all(|version| *version == (MEMORY_OPS / KEYS) as u64),
            "every key persisted at its last version"
        );
        actor
            .cast(MemoryMsg::Agent(write("one", 0, 0)))
            .unwrap();
        list(&actor, "one").await;
        let started = Instant::now();
        for _ in 0..MEMORY_OPS {
            list(&actor, "one").await;
        }
        let reads = MEMORY_OPS as f64 / started.elapsed().as_secs_f64();
        swarm.shutdown().await;

        // In process, written through (`memory.flush_interval = 0s`): every change persisted,
        // mirrored and announced before the next message, as before write-behind.
        let dir = tempfile::tempdir().unwrap();
        let mut config = bench_config(dir.path());
        config.memory.flush_interval = Duration::ZERO;
        let swarm = swarm_queen::Swarm::start(config, None).await.unwrap();
        let actor = coordinator(&swarm);
        let started = Instant::now();
        for index in 0..WRITE_THROUGH_OPS {
            actor
                .cast(MemoryMsg::Agent(write("through", index % KEYS, index)))
                .unwrap();
        }
        let held = list(&actor, "through").await;
        let write_through = WRITE_THROUGH_OPS as f64 / started.elapsed().as_secs_f64();
        assert_eq!(held, KEYS, "every key written through");
        assert_eq!(
            persisted_versions(&swarm, "through").await.len(),
            KEYS,
            "written through: persisted without a flush"
        );
        swarm.shutdown().await;

        // Through Redis, at the baseline's concurrency and at a lower one.
        let redis = through_redis(PUBLISHERS).await;
        let few = through_redis(FEW_PUBLISHERS).await;

        json!({
            "name": "memory",
            "value": round(writes),
            "unit": "writes/s in process",
            "writes": MEMORY_OPS,
            "reads_per_second": round(reads),
            "write_through": {"value": round(write_through), "unit": "writes/s in process with memory.flush_interval = 0s", "writes": WRITE_THROUGH_OPS},
            "through_redis": redis.report(baseline),
            "through_redis_few_publishers": few.report(baseline),
            "baseline": {"name": format!("redis-benchmark -t set ({REDIS_BENCHMARK_CLIENTS} clients)"), "value": round(baseline), "unit": "ops/s"},
            "ratio_to_baseline": round(redis.rate / baseline),
            "target": format!("≥ 200000 ops/s in process, through Redis ≥ 0.5 of redis-benchmark SET (both at {REDIS_BENCHMARK_CLIENTS} clients)"),
            "met": writes >= 200_000.0 && redis.rate >= 0.5 * baseline,
        })
    })
}
