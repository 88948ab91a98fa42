//! `footprint`: resident memory of the real `tge-swarm run` (release build, shipped embedded
//! configuration without internet sources), idle and while `--footprint-docs` documents pass
//! through it.
//!
//! * Idle: the highest RSS over 5 s, 5 s after `/healthz` first answers.
//! * Under load: the documents, in JSON Lines files of 500, registered through the API at
//!   once. RSS is sampled every 250 ms from the first registration until every document is
//!   classified and recorded (the process' own counters). "Flat" means the RSS at the end is
//!   within 25 % of the RSS when the first tenth of the documents had been recorded: memory
//!   does not grow with the documents processed.
//!
//! Baseline: a process that holds nothing, `sleep` (its RSS), to show the floor of a process
//! on this machine.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::pipeline::{DOCS_PER_FILE, register, write_file};
use crate::process::{Process, free_port, metric_sum, wait_http, write_config};
use crate::{Generator, Options, bench_config, round};

const MB: f64 = 1024.0 * 1024.0;

/// Waits for the registration task, if it is still held, and fails the figure if it failed.
async fn check_registered(task: Option<tokio::task::JoinHandle<()>>) {
    if let Some(task) = task {
        task.await.expect("every footprint source registered");
    }
}

/// Documents recorded by the data quality stage: stored or dropped as duplicates (both
/// measured in `stage="quality"`), or rejected as invalid.
fn recorded(metrics: &str) -> f64 {
    metric_sum(
        metrics,
        "tge_swarm_stage_duration_seconds_count",
        "stage=\"quality\"",
    ) + metric_sum(
        metrics,
        "tge_swarm_documents_dropped_total",
        "reason=\"invalid\"",
    )
}

pub fn figure(options: &Options) -> Value {
    let runtime = crate::runtime();
    let dir = tempfile::tempdir().unwrap();
    let feeds = dir.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let mut config = bench_config(&dir.path().join("data"));
    let api_port = free_port();
    let metrics_port = free_port();
    config.server.api_addr = format!("127.0.0.1:{api_port}").parse().unwrap();
    config.server.metrics_addr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let config_path = write_config(dir.path(), &config);

    // The files first, so writing them does not compete with the swarm.
    let mut generator = Generator::new();
    let mut paths = Vec::new();
    let mut remaining = options.footprint_docs;
    while remaining > 0 {
        let count = remaining.min(DOCS_PER_FILE);
        let documents: Vec<_> = (0..count).map(|_| generator.next_document()).collect();
        let path = feeds.join(format!("footprint-{:05}.jsonl", paths.len()));
        write_file(&path, &documents, &format!("footprint/{}", paths.len()));
        paths.push(path);
        remaining -= count;
    }

    let sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let floor = Process {
        child: sleeper,
        name: "sleep".into(),
    }
    .rss();

    let mut swarm = Process::run_swarm(dir.path(), &config_path);
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let api = format!("http://127.0.0.1:{api_port}");
        let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
        wait_http(&http, &format!("{api}/healthz"), Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut idle: u64 = 0;
        for _ in 0..20 {
            idle = idle.max(swarm.rss());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }

        let started = Instant::now();
        // Registered while RSS is sampled: with many files, registering takes a while as it
        // shares the store's writer with the documents already flowing, and the samples
        // must start with the first document.
        // `None` once registration has finished and its outcome was checked.
        let mut registering = Some({
            let (http, api) = (http.clone(), api.clone());
            tokio::spawn(async move { register(&http, &api, &paths, "footprint").await })
        });
        let total = options.footprint_docs as f64;
        let mut peak = 0u64;
        let mut at_tenth: Option<u64> = None;
        let mut samples = Vec::new();
        loop {
            swarm.check_alive(dir.path());
            let rss = swarm.rss();
            peak = peak.max(rss);
            let text = http
                .get(&metrics_url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let done = recorded(&text);
            samples.push((
                round(started.elapsed().as_secs_f64()),
                done,
                round(rss as f64 / MB),
            ));
            if at_tenth.is_none() && done >= total / 10.0 {
                at_tenth = Some(rss);
            }
            if done >= total {
                break;
            }
            // A failed registration stops the figure now, not after the 30-minute bound.
            if registering.as_ref().is_some_and(|task| task.is_finished()) {
                check_registered(registering.take()).await;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1800),
                "{done} of {total} documents recorded after 30 minutes"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let end = swarm.rss();
        check_registered(registering.take()).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after = swarm.rss();
        let at_tenth = at_tenth.unwrap_or(end);
        let flat = end as f64 <= at_tenth as f64 * 1.25;
        // Every fortieth sample is enough to draw the curve.
        let curve: Vec<_> = samples
            .iter()
            .step_by(samples.len().div_ceil(40).max(1))
            .collect();
        json!({
            "name": "footprint",
            "value": round(idle as f64 / MB),
            "unit": "MB RSS idle",
            "documents": options.footprint_docs,
            "seconds": round(elapsed),
            "documents_per_second": round(total / elapsed),
            "rss_mb": {
                "idle": round(idle as f64 / MB),
                "at_first_tenth": round(at_tenth as f64 / MB),
                "peak": round(peak as f64 / MB),
                "at_end": round(end as f64 / MB),
                "idle_after": round(after as f64 / MB),
            },
            "curve": curve,
            "baseline": {"name": "RSS of `sleep`", "value": round(floor as f64 / MB), "unit": "MB"},
            "ratio_to_baseline": round(idle as f64 / floor as f64),
            "target": "< 64 MB idle, end within 25 % of the first tenth",
            "met": (idle as f64) < 64.0 * MB && flat,
        })
    })
}
