//! `retention`: how fast retention deletes, and what it costs writers, on the SQLite file
//! store and on Postgres.
//!
//! Each store is filled first with [`KEPT_SHARE`] of `--retention-docs` announcements, ten
//! copies of each project merged into one event (events keep their documents for ever, so
//! these are the old rows a pass must pass over and never delete), then with
//! `--retention-docs` non-announcements with fingerprints, in batches of 500. Then a writer records batches of 64 new documents for `--seconds` alone
//! (the baseline: its batch latencies), then again while one retention pass (the shipped
//! batch of 500 rows per statement) deletes every document and fingerprint of the fill (the
//! cutoff is the fill's end, so the writer's own rows stay). Figures: rows deleted per
//! second, the writer's p50 and p99 batch latency alone and during the pass, and the rows left
//! (the kept announcements and the writer's own).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use swarm_queen::retention::Retention;
use swarm_shared::config::RetentionConfig;
use swarm_shared::domain::{ClassifiedDocument, Detection};
use swarm_shared::ports::{Store, ToRecord};
use tokio_util::sync::CancellationToken;

use crate::{Options, mix, quantile_ms, round, wire_document};

const FILL_BATCH: usize = 500;
const WRITE_BATCH: usize = 64;
/// Old documents events keep, as a share of the documents a pass deletes: the soak's hour
/// ends with one kept document for about 160 deleted ones; a store of months of feeds, where
/// announcements pile up and only the retention window of other news stays, holds far more.
const KEPT_SHARE: usize = 5;
/// Copies of one announcement (from as many wires) that merge into one event.
const COPIES_PER_EVENT: usize = 10;

/// A verdict of `score`: an announcement of `project` when it names one.
fn detection(score: f64, project: Option<String>) -> Detection {
    Detection {
        join_only: false,
        score,
        is_tge: project.is_some(),
        project,
        token: None,
        event_date: None,
        evidence: vec![],
    }
}

/// The `index`th announcement of the fill: a project's launch as one of its
/// [`COPIES_PER_EVENT`] wires reported it.
fn announcement(index: usize) -> (ClassifiedDocument, String, u64) {
    let project = format!("Keptwell{}", index / COPIES_PER_EVENT);
    let url = format!("https://wire.example/kept/{index}");
    let title = format!("{project} opens its token claim");
    let text = format!("{title}: the {project} token generation event is set for Monday.");
    let item = wire_document(url, title, text, detection(0.97, Some(project.clone())));
    // A merge key per project; fingerprints spread as the others' (offset past them).
    let key = format!("project:{}", project.to_lowercase());
    (item, key, mix((1 << 40) + index as u64))
}

fn document(run: &str, index: usize) -> (ClassifiedDocument, String, u64) {
    let url = format!("https://wire.example/{run}/{index}");
    let title = format!("Market wrap {run} {index}");
    let text = format!("{title}: prices moved; volumes were thin across the majors today.");
    let item = wire_document(url, title, text, detection(0.02, None));
    // Spread fingerprints, so no two share a band by accident.
    (item, format!("title:{run}:{index}"), mix(index as u64))
}

async fn record(store: &dyn Store, run: &str, from: usize, count: usize) {
    let made: Vec<(ClassifiedDocument, String, u64)> = (from..from + count)
        .map(|index| document(run, index))
        .collect();
    record_made(store, &made).await;
}

async fn record_made(store: &dyn Store, made: &[(ClassifiedDocument, String, u64)]) {
    let batch: Vec<ToRecord<'_>> = made
        .iter()
        .map(|(item, key, simhash)| ToRecord {
            item,
            merge_key: key,
            simhash: Some(*simhash),
        })
        .collect();
    store
        .record_classified_batch(&batch, Duration::from_secs(30 * 24 * 3600))
        .await
        .expect("the bench store records");
}

/// Writes batches until `stop`, returning each batch's latency, sorted.
async fn write_until(store: Arc<dyn Store>, run: String, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        record(store.as_ref(), &run, next, WRITE_BATCH).await;
        latencies.push(started.elapsed());
        next += WRITE_BATCH;
    }
    latencies.sort();
    latencies
}

async fn measure(store: Arc<dyn Store>, name: &str, options: &Options) -> Value {
    let docs = options.retention_docs;
    let kept = docs / KEPT_SHARE;
    let filling = Instant::now();
    for from in (0..kept).step_by(FILL_BATCH) {
        let made: Vec<(ClassifiedDocument, String, u64)> = (from..kept.min(from + FILL_BATCH))
            .map(announcement)
            .collect();
        record_made(store.as_ref(), &made).await;
    }
    for from in (0..docs).step_by(FILL_BATCH) {
        record(store.as_ref(), "fill", from, FILL_BATCH.min(docs - from)).await;
    }
    let fill_seconds = filling.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = Utc::now();
    let seconds = Duration::from_secs(options.seconds);
    // The writer alone.
    let stop = Arc::new(AtomicBool::new(false));
    let alone = tokio::spawn(write_until(store.clone(), "alone".into(), stop.clone()));
    tokio::time::sleep(seconds).await;
    stop.store(true, Ordering::Relaxed);
    let alone = alone.await.unwrap();
    // The writer during one pass.
    // One retention for both tables, so one cutoff is the fill's end for both.
    let config = RetentionConfig {
        fingerprints: RetentionConfig::default().documents,
        max_per_pass: usize::MAX / 2,
        ..RetentionConfig::default()
    };
    let retention = Retention::new(store.clone(), config.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let during = tokio::spawn(write_until(store.clone(), "during".into(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    // `pass` deletes what is older than `now - keep`: place `now` so the cutoff is the fill's end.
    let keep = chrono::Duration::from_std(config.documents).unwrap();
    let pruned = retention
        .pass(cutoff + keep, &CancellationToken::new())
        .await
        .expect("the pass runs");
    let pass_seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let during = during.await.unwrap();
    let left = store.count_documents().await.unwrap();
    let deleted = pruned.documents + pruned.fingerprints;
    json!({
        "store": name,
        "filled_documents": docs,
        "kept_documents": kept,
        "fill_seconds": round(fill_seconds),
        "deleted_documents": pruned.documents,
        "deleted_fingerprints": pruned.fingerprints,
        "pass_seconds": round(pass_seconds),
        "rows_per_second": round(deleted as f64 / pass_seconds.max(1e-9)),
        "documents_left": left,
        "writer_alone": {"batches": alone.len(), "p50_ms": round(quantile_ms(&alone, 0.5)), "p99_ms": round(quantile_ms(&alone, 0.99))},
        "writer_during_pass": {"batches": during.len(), "p50_ms": round(quantile_ms(&during, 0.5)), "p99_ms": round(quantile_ms(&during, 0.99))},
    })
}

pub fn figure(options: &Options) -> Value {
    let runtime = crate::runtime();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite: Arc<dyn Store> = Arc::new(
            swarm_shared::ports::sqlite::SqliteStore::open(&dir.path().join("bench.db"))
                .await
                .unwrap(),
        );
        let on_sqlite = measure(sqlite, "sqlite", options).await;
        let database = swarm_tests::fresh_postgres_database("bench").await;
        let postgres: Arc<dyn Store> = Arc::new(
            swarm_shared::ports::postgres::PgStore::connect(&database)
                .await
                .unwrap(),
        );
        let on_postgres = measure(postgres, "postgres", options).await;
        let p99 = |figure: &Value, key: &str| figure[key]["p99_ms"].as_f64().unwrap_or(f64::NAN);
        // The worse store's ratio of the writer's p99 during a pass to its p99 alone.
        let (during, alone) = [&on_sqlite, &on_postgres]
            .iter()
            .map(|figure| {
                (
                    p99(figure, "writer_during_pass"),
                    p99(figure, "writer_alone"),
                )
            })
            .max_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)))
            .unwrap_or((f64::NAN, f64::NAN));
        json!({
            "name": "retention",
            "value": on_sqlite["rows_per_second"],
            "unit": "rows/s (SQLite)",
            "stores": [on_sqlite, on_postgres],
            "baseline": {
                "name": "the same writer without a retention pass, same store, same run",
                "value": round(alone),
                "unit": "p99 ms of a 64-document batch (the store with the larger ratio)",
            },
            "writer_p99_during_pass_ms": round(during),
            "ratio_to_baseline": round(during / alone.max(1e-3)),
            "target": "the writer's p99 during a pass within 2x of its p99 alone",
            "met": during <= 2.0 * alone,
        })
    })
}
