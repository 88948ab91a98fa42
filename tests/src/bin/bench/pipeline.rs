//! `pipeline_embedded`: the whole pipeline of `tge-swarm run` in this process (embedded bus and
//! queues, SQLite store), fed by local JSON Lines files registered as sources through the API.
//!
//! * Throughput: `--pipeline-docs` generated documents in files of 500 (the scraper's
//!   `max_items`), registered at once; from the first registration until every source has a
//!   recorded fetch and the scrape, classify and quality queues are empty. Every document is
//!   fetched, scored and recorded (stored, or dropped as a duplicate) in that time.
//! * Latency: one announcement at a time on an idle swarm, each from a source of its own (so
//!   it is never a same-source duplicate), from the enqueue of its scrape task to the moment
//!   `GET /api/v1/events?company=<its unique name>` lists it.
//!
//! * More data quality actors: the throughput alone again with 2 and 4 actors and then 1
//!   (`by_quality_actors`), each on a fresh store.
//!
//! Baseline: the same documents through the keyword scorer alone on one thread (the
//! classification figure's work), the stage every document must pass; the ratio says how
//! much of the scorer's rate survives the queues, the store and the other agents.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use swarm_shared::channels::{QUEUE_SCRAPE, QUEUES};
use swarm_shared::config::Config;
use swarm_shared::domain::{ScrapeTask, SourceInput, SourceKind};
use swarm_shared::ports::{Store, WorkQueue};

use crate::{Options, bench_config, generate, quantile_ms, round, score_all};

/// Documents per source file: the scraper takes at most `scraping.max_items` per fetch.
pub const DOCS_PER_FILE: usize = 500;

/// Writes one JSON Lines file of `documents` to `path`; document `i` gets the URL
/// `https://bench.example/<tag>/<i>`, unique per tag, so its id is unique too.
pub fn write_file(path: &Path, documents: &[(String, String)], tag: &str) {
    swarm_tests::write_jsonl(path, documents, &format!("https://bench.example/{tag}"));
}

/// Writes `documents` as JSON Lines files of [`DOCS_PER_FILE`] under `dir`; returns their
/// paths.
pub fn write_files(
    dir: &Path,
    documents: &[(String, String)],
    tag: &str,
) -> Vec<std::path::PathBuf> {
    let mut paths = Vec::new();
    for (file_index, chunk) in documents.chunks(DOCS_PER_FILE).enumerate() {
        let path = dir.join(format!("{tag}-{file_index:05}.jsonl"));
        write_file(&path, chunk, &format!("{tag}/{file_index}"));
        paths.push(path);
    }
    paths
}

/// A file source for `path`.
pub fn file_source(name: &str, path: &Path, enabled: bool) -> SourceInput {
    SourceInput {
        provenance: None,
        name: name.to_owned(),
        kind: SourceKind::File,
        url: url::Url::from_file_path(path).unwrap().to_string(),
        interval: Duration::from_secs(3600),
        selectors: None,
        exchange: None,
        feed: None,
        json: None,
        channel: None,
        query: None,
        account: None,
        tier: 2,
        enabled,
    }
}

/// Waits until every source has a recorded fetch and every work queue is empty.
pub async fn drained(store: &dyn Store, queue: &dyn WorkQueue, limit: Duration) {
    let started = Instant::now();
    loop {
        let sources = store.list_sources().await.unwrap();
        let unfetched = sources
            .iter()
            .filter(|source| source.last_fetch_at.is_none())
            .count();
        let mut depths = Vec::new();
        for name in QUEUES {
            depths.push((name, queue.depth(name).await.unwrap()));
        }
        let empty = depths
            .iter()
            .all(|(_, depth)| depth.ready == 0 && depth.pending == 0);
        if unfetched == 0 && empty {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "the pipeline did not drain within {limit:?}: {unfetched} sources not fetched, queues {depths:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The announcement a latency probe publishes: `name` is unique and fixed-width, so
/// `company=<name>` (an indexed lookup by project) finds exactly this one.
pub fn probe_document(name: &str) -> (String, String) {
    (
        format!("{name} announces its token generation event"),
        format!(
            "{name} today announced its token generation event. The {name} token launches on \
             March 5 and the airdrop claim opens for early users the same day, with trading on \
             major exchanges from launch."
        ),
    )
}

/// Registers a file source for each of `paths` through the API (`<prefix>-<index>`); the
/// queen schedules them at once.
pub async fn register(http: &reqwest::Client, api: &str, paths: &[PathBuf], prefix: &str) {
    for (index, path) in paths.iter().enumerate() {
        let body =
            serde_json::to_value(file_source(&format!("{prefix}-{index}"), path, true)).unwrap();
        let response = http
            .post(format!("{api}/api/v1/sources"))
            .header("X-API-Key", swarm_tests::ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            201,
            "registering bench source {prefix}-{index}"
        );
    }
}

/// Latency probes: `probes` announcements, one at a time, each from a source of its own
/// (created disabled, so only the probe's task fetches it) named `<name><index>`. Each is
/// timed from the enqueue of its scrape task to its listing by
/// `GET /api/v1/events?company=<name><index>`. Sorted.
pub async fn probe(
    store: &dyn Store,
    queue: &dyn WorkQueue,
    http: &reqwest::Client,
    api: &str,
    feeds: &Path,
    probes: usize,
    name: &str,
) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(probes);
    for index in 0..probes {
        let project = format!("{name}{index:05}");
        let path = feeds.join(format!("probe-{project}.jsonl"));
        let (title, text) = probe_document(&project);
        let line = json!({"title": title, "text": text, "url": format!("https://bench.example/probe/{project}")});
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let source = store
            .create_source(&file_source(&format!("probe-{project}"), &path, false))
            .await
            .unwrap();
        let task = ScrapeTask {
            source,
            scheduled_at: chrono::Utc::now(),
            etag: None,
            last_modified: None,
            content_hash: None,
        };
        let payload = serde_json::to_vec(&task).unwrap();
        let url = format!("{api}/api/v1/events?company={project}&page_size=1");
        let started = Instant::now();
        queue.enqueue(QUEUE_SCRAPE, vec![payload]).await.unwrap();
        loop {
            let page: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
            if page["events"]
                .as_array()
                .is_some_and(|events| !events.is_empty())
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "announcement {project} did not appear in the API within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort_unstable();
    latencies
}

pub fn embedded(options: &Options) -> Value {
    let documents = generate(options.pipeline_docs);
    let bytes: usize = documents.iter().map(|(t, x)| t.len() + x.len()).sum();
    // The scorer alone as the pipeline runs it past the third stage's budget.
    let (baseline_elapsed, _, _) = score_all(&documents, false);
    let baseline_rate = documents.len() as f64 / baseline_elapsed;

    let dir = tempfile::tempdir().unwrap();
    let feeds = dir.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let paths = write_files(&feeds, &documents, "bulk");
    let config = bench_config(&dir.path().join("data"));
    check_probe(&config);
    let figure = crate::runtime().block_on(async {
        let (swarm, elapsed) = run_through(config, &paths).await;
        let api = format!("http://{}", swarm.api_addr().unwrap());
        let http = reqwest::Client::new();
        let ctx = swarm.context().clone();
        let stored = ctx.store.count_documents().await.unwrap();

        // Latency: one announcement at a time, each from its own (unscheduled) source.
        let latencies = probe(
            ctx.store.as_ref(),
            ctx.queue.as_ref(),
            &http,
            &api,
            &feeds,
            options.probes,
            "Quarnexa",
        )
        .await;
        swarm.shutdown().await;
        let rate = documents.len() as f64 / elapsed;
        let p50 = quantile_ms(&latencies, 0.5);
        let p99 = quantile_ms(&latencies, 0.99);
        json!({
            "name": "pipeline_embedded",
            "value": round(rate),
            "unit": "docs/s",
            "documents": documents.len(),
            "megabytes": round(bytes as f64 / 1e6),
            "stored": stored,
            "seconds": round(elapsed),
            "documents_per_second": round(rate),
            "latency": {"probes": latencies.len(), "p50_ms": round(p50), "p99_ms": round(p99), "from": "scrape task enqueued", "to": "listed by GET /api/v1/events"},
            "baseline": {"name": "keyword scorer alone, one thread", "value": round(baseline_rate), "unit": "docs/s"},
            "ratio_to_baseline": round(rate / baseline_rate),
            "target": "≥ 20000 docs/s, p99 < 50 ms",
            "met": rate >= 20_000.0 && p99 < 50.0,
        })
    });
    with_quality_actors(figure, |actors, partitions| {
        throughput(&paths, documents.len(), actors, partitions)
    })
}

/// Adds `by_quality_actors` to a pipeline figure measured with one data quality actor: the
/// throughput alone with 2 and 4 (`quality.replicas`), then with 1 again, each on a fresh
/// store, so the drift of a shared machine over the runs shows beside the difference; all with
/// the default `quality.partitions`, and last 2 actors on one partition (the queue as it was
/// before partitioning), the comparison for what partitions add.
pub fn with_quality_actors(mut figure: Value, mut measure: impl FnMut(u32, u32) -> f64) -> Value {
    let partitions = swarm_shared::config::QualityConfig::default().partitions;
    let mut runs = vec![json!({
        "quality_actors": 1,
        "partitions": partitions,
        "documents_per_second": figure["value"],
    })];
    for (actors, partitions) in [(2, partitions), (4, partitions), (1, partitions), (2, 1)] {
        eprintln!(
            "bench: {} with {actors} data quality actors, {partitions} partitions",
            figure["name"]
        );
        let rate = measure(actors, partitions);
        runs.push(json!({
            "quality_actors": actors,
            "partitions": partitions,
            "documents_per_second": round(rate),
        }));
    }
    figure["by_quality_actors"] = Value::Array(runs);
    figure
}

/// Throughput: starts an embedded swarm, registers every file through its API (the queen
/// schedules them at once) and waits until every source is fetched and every queue empty;
/// the swarm and the seconds that took.
async fn run_through(config: Config, paths: &[PathBuf]) -> (swarm_queen::Swarm, f64) {
    let swarm = swarm_queen::Swarm::start(config, Some(swarm_tests::ADMIN_KEY.into()))
        .await
        .unwrap();
    let api = format!("http://{}", swarm.api_addr().unwrap());
    let http = reqwest::Client::new();
    let ctx = swarm.context().clone();
    let started = Instant::now();
    register(&http, &api, paths, "bulk").await;
    drained(
        ctx.store.as_ref(),
        ctx.queue.as_ref(),
        Duration::from_secs(600),
    )
    .await;
    (swarm, started.elapsed().as_secs_f64())
}

/// `actors` data quality actors, held there (the supervisor scales a kind between its
/// `min_replicas` and `max_replicas` on a backlog, so both are set to `actors`), on
/// `partitions` quality queue partitions.
pub fn pin_quality_actors(config: &mut Config, actors: u32, partitions: u32) {
    config.quality.replicas = actors;
    config.quality.partitions = partitions;
    pin_kind(config, "data-quality", actors);
}

/// Holds the supervisor's replicas of `kind` at `actors` (its `min_replicas` and
/// `max_replicas`); the kind's starting count is the caller's to set.
pub fn pin_kind(config: &mut Config, kind: &str, actors: u32) {
    let mut pinned = toml::Table::new();
    pinned.insert("min_replicas".into(), toml::Value::Integer(actors.into()));
    pinned.insert("max_replicas".into(), toml::Value::Integer(actors.into()));
    config.supervision.kinds.insert(kind.into(), pinned);
}

/// Documents a second through a fresh embedded swarm with `actors` data quality actors on
/// `partitions` partitions: the throughput part of [`embedded`] alone.
fn throughput(paths: &[PathBuf], documents: usize, actors: u32, partitions: u32) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut config = bench_config(&dir.path().join("data"));
    pin_quality_actors(&mut config, actors, partitions);
    crate::runtime().block_on(async {
        let (swarm, elapsed) = run_through(config, paths).await;
        swarm.shutdown().await;
        documents as f64 / elapsed
    })
}

/// Fails loudly when the probe text would not be an announcement: the latency figure would
/// wait for events that never come.
pub fn check_probe(config: &Config) {
    let scorer = swarm_agents::keyword::scorer::Scorer::new(
        &config.watchlist(),
        swarm_agents::keyword::model::Model::shipped().unwrap(),
        None,
    )
    .unwrap();
    let (title, text) = probe_document("Quarnexa00000");
    let detection = scorer.score(swarm_agents::keyword::scorer::Input {
        title: &title,
        text: &text,
        tier: 2,
        year: swarm_agents::keyword::current_year(),
        url: None,
    });
    assert!(
        detection.is_tge,
        "the latency probe is not scored an announcement: {detection:?}"
    );
}
