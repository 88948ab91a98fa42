//! `pipeline_distributed`: the pipeline as separate processes of the release `tge-swarm` (queen,
//! memory coordinator and one process per specialist kind) over Redis Streams and Postgres,
//! fed like the embedded figure: `--pipeline-docs` documents in JSON Lines files registered
//! through the queen's API, from the first registration until every source has a recorded
//! fetch and every stream is empty (read from Redis by the harness). Latency: one
//! announcement at a time, from its scrape task's XADD to its listing by the queen's
//! `GET /api/v1/events`.
//!
//! More data quality actors: the throughput alone again with 2 and 4 actors in the data quality
//! process (`quality.replicas`) and then 1, each on a fresh database, then 2 actors on one
//! partition (`by_quality_actors`); and data quality alone (`quality_drain`): the quality
//! queue filled with every document while the data quality process is paused, then its drain
//! timed with 1, 2 and 4 actors on the default partitions and 2 and 4 on one partition.
//!
//! Baselines, same servers, same run: redis-benchmark's XADD (50 clients; 7.0 has no `-t xadd`,
//! so the command is given whole) and a raw sqlx
//! loop inserting single rows of the documents' size into Postgres over one connection.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use swarm_queen::swarm::Ports;

use crate::memory::{REDIS_BENCHMARK_CLIENTS, redis_benchmark};
use swarm_shared::channels::{QUEUE_CLASSIFY, QUEUE_QUALITY, QUEUE_SCRAPE};

use crate::pipeline::{drained, probe, register, with_quality_actors, write_files};
use crate::process::{Process, free_port, wait_http, write_config};
use crate::{Options, bench_config, generate, quantile_ms, round};

/// Redis database the figure uses (flushed first).
const REDIS_DB: u8 = 13;
/// Rows of the raw insert baseline.
const INSERT_ROWS: usize = 5_000;

/// Rows per second of single-row inserts of `documents` over one connection.
async fn raw_inserts(database: &str, documents: &[(String, String)]) -> f64 {
    let mut connection = sqlx::PgConnection::connect(database).await.unwrap();
    sqlx::query("CREATE TABLE bench_raw (id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, stored_at BIGINT NOT NULL)")
        .execute(&mut connection)
        .await
        .unwrap();
    let started = Instant::now();
    for (index, (title, text)) in documents.iter().take(INSERT_ROWS).enumerate() {
        sqlx::query("INSERT INTO bench_raw (id, title, text, stored_at) VALUES ($1, $2, $3, $4)")
            .bind(format!("raw-{index}"))
            .bind(title)
            .bind(text)
            .bind(index as i64)
            .execute(&mut connection)
            .await
            .unwrap();
    }
    let rate = INSERT_ROWS.min(documents.len()) as f64 / started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_raw")
        .execute(&mut connection)
        .await
        .unwrap();
    rate
}

pub fn figure(options: &Options) -> Value {
    let runtime = crate::runtime();
    let documents = generate(options.pipeline_docs);
    let dir = tempfile::tempdir().unwrap();
    let feeds = dir.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let paths = write_files(&feeds, &documents, "dist");
    // redis-benchmark 7.0 has no `-t xadd`: the same command, given whole.
    let xadd = redis_benchmark(
        &["XADD", "bench:xadd", "*", "payload", "value"],
        200_000,
        REDIS_DB,
    );
    let redis = swarm_tests::redis_url_db(REDIS_DB);
    crate::process::flush_redis(&redis);
    let figure = runtime.block_on(async {
        let database = swarm_tests::fresh_postgres_database("bench").await;
        let inserts = raw_inserts(&database, &documents).await;

        let http = reqwest::Client::new();
        let partitions = swarm_shared::config::QualityConfig::default().partitions;
        let mut stack = Stack::start(dir.path(), &database, &redis, (1, partitions), false).await;
        let api = stack.api.clone();
        let cpu_before = crate::cpu::snapshot(&stack.processes);
        let started = Instant::now();
        register(&http, &api, &paths, "dist").await;
        let (store, queue) = (stack.ports.store.clone(), stack.ports.queue.clone());
        drained(store.as_ref(), queue.as_ref(), Duration::from_secs(900)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = crate::cpu::profile(
            &cpu_before,
            &crate::cpu::snapshot(&stack.processes),
            documents.len(),
            elapsed,
        );
        stack.check_alive();
        let stored = store.count_documents().await.unwrap();

        let latencies = probe(
            store.as_ref(),
            queue.as_ref(),
            &http,
            &api,
            &feeds,
            options.probes,
            "Vendrixa",
        )
        .await;
        stack.stop().await;
        let rate = documents.len() as f64 / elapsed;
        let p50 = quantile_ms(&latencies, 0.5);
        let p99 = quantile_ms(&latencies, 0.99);
        json!({
            "name": "pipeline_distributed",
            "value": round(rate),
            "unit": "docs/s",
            "processes": 7,
            "documents": documents.len(),
            "stored": stored,
            "seconds": round(elapsed),
            "documents_per_second": round(rate),
            "latency": {"probes": latencies.len(), "p50_ms": round(p50), "p99_ms": round(p99), "from": "scrape task XADD", "to": "listed by GET /api/v1/events"},
            "p99_ms": round(p99),
            "baseline": {"name": "raw sqlx single-row inserts, one connection", "value": round(inserts), "unit": "rows/s"},
            "baseline_xadd": {"name": format!("redis-benchmark XADD ({REDIS_BENCHMARK_CLIENTS} clients)"), "value": round(xadd), "unit": "ops/s"},
            "ratio_to_baseline": round(rate / inserts),
            "cpu": cpu,
            "target": "≥ 10000 docs/s, p99 < 250 ms",
            "met": rate >= 10_000.0 && p99 < 250.0,
        })
    });
    let mut figure = with_quality_actors(figure, |actors, partitions| {
        runtime.block_on(throughput(
            &paths,
            documents.len(),
            &redis,
            actors,
            partitions,
        ))
    });
    let default_partitions = swarm_shared::config::QualityConfig::default().partitions;
    let mut drains = Vec::new();
    for (actors, partitions) in [
        (1, default_partitions),
        (2, default_partitions),
        (4, default_partitions),
        (2, 1),
        (4, 1),
        (1, default_partitions),
    ] {
        eprintln!("bench: data quality alone, {actors} actors, {partitions} partitions");
        let (recorded, rate) = runtime.block_on(quality_drain(&paths, &redis, actors, partitions));
        drains.push(json!({
            "quality_actors": actors,
            "partitions": partitions,
            "documents": recorded,
            "documents_per_second": round(rate),
        }));
    }
    figure["quality_drain"] = Value::Array(drains);
    figure
}

/// Data quality alone: the stack starts with its data quality process paused (SIGSTOP), the
/// files are scraped and classified until the quality queue holds every document, then the
/// process resumes and the quality queue's drain is timed. Only data quality, Postgres and
/// Redis work then, so the figure shows what more actors and partitions add to recording
/// without the other stages taking the two cores. Returns the documents drained and their rate.
async fn quality_drain(paths: &[PathBuf], redis: &str, actors: u32, partitions: u32) -> (u64, f64) {
    let dir = tempfile::tempdir().unwrap();
    crate::process::flush_redis(redis);
    let database = swarm_tests::fresh_postgres_database("bench").await;
    let mut stack = Stack::start(dir.path(), &database, redis, (actors, partitions), true).await;
    let quality = stack
        .processes
        .iter()
        .find(|process| process.name == "data-quality")
        .map(|process| process.child.id())
        .expect("the data quality process runs");
    signal(quality, "-STOP");
    let http = reqwest::Client::new();
    register(&http, &stack.api, paths, "drain").await;
    let (store, queue) = (stack.ports.store.clone(), stack.ports.queue.clone());
    // Filled: every source fetched and nothing left to scrape or classify.
    let deadline = Instant::now() + Duration::from_secs(600);
    let waiting = loop {
        let sources = store.list_sources().await.unwrap();
        let fetched = sources.iter().all(|source| source.last_fetch_at.is_some());
        let mut upstream = 0;
        for name in [QUEUE_SCRAPE, QUEUE_CLASSIFY] {
            let depth = queue.depth(name).await.unwrap();
            upstream += depth.ready + depth.pending;
        }
        if fetched && upstream == 0 {
            break queue.depth(QUEUE_QUALITY).await.unwrap().ready;
        }
        assert!(Instant::now() < deadline, "the quality queue never filled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let started = Instant::now();
    signal(quality, "-CONT");
    drained(store.as_ref(), queue.as_ref(), Duration::from_secs(900)).await;
    let elapsed = started.elapsed().as_secs_f64();
    stack.check_alive();
    stack.stop().await;
    (waiting, waiting as f64 / elapsed)
}

/// Sends `kill <signal>` to a process.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// The seven processes of the distributed swarm on one Redis database and one Postgres
/// database, with `actors` data quality actors in the data quality process, and the
/// harness' own connection to the same streams and store.
struct Stack {
    dir: PathBuf,
    processes: Vec<Process>,
    ports: Ports,
    api: String,
}

impl Stack {
    /// With `fill_first`, the scrapers never hold back (`queues.max_backlog` past any run) and
    /// the supervisor waits long for heartbeats, so the data quality process can be paused
    /// while the quality queue fills ([`quality_drain`]).
    async fn start(
        dir: &Path,
        database: &str,
        redis: &str,
        (actors, partitions): (u32, u32),
        fill_first: bool,
    ) -> Stack {
        let api_port = free_port();
        let mut config = bench_config(&dir.join("data"));
        config.connections.redis_url = Some(redis.to_owned());
        config.connections.database_url = Some(database.to_owned());
        crate::pipeline::pin_quality_actors(&mut config, actors, partitions);
        if fill_first {
            config.queues.max_backlog = 10_000_000;
            config.supervision.missed_heartbeats = 100;
        }
        let config_path = write_config(dir, &config);
        let env = |node: &str| {
            vec![
                ("TGE_SWARM_CONFIG", config_path.display().to_string()),
                ("TGE_SWARM_ADMIN_KEY", swarm_tests::ADMIN_KEY.to_owned()),
                ("TGE_SWARM_NODE_NAME", node.to_owned()),
                ("TGE_SWARM_METRICS_ADDR", "127.0.0.1:0".to_owned()),
                ("TGE_SWARM_API_ADDR", format!("127.0.0.1:{api_port}")),
            ]
        };
        let http = reqwest::Client::new();
        let api = format!("http://127.0.0.1:{api_port}");
        let mut processes = vec![Process::start(dir, "queen", &["queen"], &env("queen"))];
        wait_http(&http, &format!("{api}/healthz"), Duration::from_secs(60)).await;
        processes.push(Process::start(
            dir,
            "memory",
            &["memory-coordinator"],
            &env("memory"),
        ));
        for kind in [
            "api-reliability",
            "performance",
            "data-quality",
            "keyword",
            "scraping",
        ] {
            processes.push(Process::start(dir, kind, &["agent", kind], &env(kind)));
        }
        wait_http(&http, &format!("{api}/readyz"), Duration::from_secs(60)).await;
        let ports = swarm_queen::swarm::connect_ports(&config).await.unwrap();
        Stack {
            dir: dir.to_owned(),
            processes,
            ports,
            api,
        }
    }

    /// Panics with a log's tail if a process has exited.
    fn check_alive(&mut self) {
        for process in &mut self.processes {
            process.check_alive(&self.dir);
        }
    }

    async fn stop(self) {
        drop(self.processes);
        self.ports.store.close().await;
    }
}

/// Documents a second through a fresh distributed swarm (new Postgres database, flushed
/// Redis database) with `actors` data quality actors on `partitions` partitions: the
/// throughput part of [`figure`].
async fn throughput(
    paths: &[PathBuf],
    documents: usize,
    redis: &str,
    actors: u32,
    partitions: u32,
) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    crate::process::flush_redis(redis);
    let database = swarm_tests::fresh_postgres_database("bench").await;
    let mut stack = Stack::start(dir.path(), &database, redis, (actors, partitions), false).await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    register(&http, &stack.api, paths, "dist").await;
    drained(
        stack.ports.store.as_ref(),
        stack.ports.queue.as_ref(),
        Duration::from_secs(900),
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    stack.check_alive();
    stack.stop().await;
    documents as f64 / elapsed
}
