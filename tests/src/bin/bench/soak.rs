//! `soak` (only with `--only soak`: an hour, so not in the default run nor in CI): the real
//! `tge-swarm run` (release build, the bench's embedded configuration: SQLite, loopback
//! allowed, no API rate limit) reading
//! `--soak-sources` RSS feeds on a local server for `--soak-minutes`, at `--soak-rate` new
//! documents a second in all, with retention on.
//!
//! * The feeds: each source publishes an item every `sources / rate` seconds (phases spread),
//!   and its feed lists its newest [`FEED_ITEMS`], so every poll (every [`POLL`]) re-reads
//!   what it read before, as real feeds do, and data quality drops those as duplicates. An
//!   item is an announcement from the own corpus with probability [`ANNOUNCEMENTS`], its
//!   project renamed to one of [`PROJECTS_PER_MINUTE`] made-up projects of its minute (so
//!   each is copied by many sources and merges into one event), otherwise one to three
//!   other texts joined. Items are made from their (source, index) alone: no memory grows.
//! * Retention: documents and fingerprints kept [`KEPT`] (the merge window too), a pass every
//!   30 s, so the documents no event lists reach their steady number within the first
//!   quarter of an hour. Events keep their documents: those (about 2 a second at the
//!   default rate) are never deleted, and the store grows by them.
//! * Load on the API: ten `GET /api/v1/events` a second over varied filters (the shipped page
//!   cache on), each followed by `GET /healthz`, the baseline.
//! * The scalable kinds (scraping, keyword, data quality) start at one actor each and the
//!   supervisor scales them as shipped; `--soak-pin` holds them at one (see
//!   [`pin_scalable_kinds`]). Each sample records the supervisor's desired replicas of each,
//!   and the report the most desired of each over the samples (`most_actors`).
//! * Each minute: RSS, the store's bytes on disk (database, WAL and shared memory), the p50
//!   and p99 of the API requests of that minute, the p99 of recording a document (its share
//!   of a batch, `stage="quality"`) and of fetch-to-recorded (`stage="pipeline"`), from the
//!   process' histograms (linear within a bucket, as Prometheus' `histogram_quantile`),
//!   documents read and stored a second, events created and merged, duplicates dropped,
//!   rows deleted by retention, queued work; and the machine's load beside them (from
//!   `/proc`): the cores the swarm kept busy, the harness's, those of every other process,
//!   and the shares of the cores' time spent waiting on I/O and stolen by a hypervisor, so an
//!   episode the machine caused can be told apart from the swarm's own.
//! * Flat: the mean of the last quarter's samples within 15 % of the second quarter's, for
//!   RSS, store size, API p99 and recording p99. The second quarter starts after [`KEPT`]
//!   only with `--soak-minutes` of 40 or more.
//!
//! The samples are also written to `soak.json` beside the report, and
//! `scripts/soak_chart.py` draws them to `soak.png` there (matplotlib; `scripts/bench.sh`
//! installs it when the soak is asked for).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use chrono::Utc;
use serde_json::{Value, json};
use swarm_shared::config::Config;

use crate::cpu::{Machine, process_seconds};
use crate::process::{Process, free_port, metric_sum, wait_http, write_config};
use crate::{Options, bench_config, quantile_ms, round};

mod feeds;

use feeds::{Announcement, Feeds, feed, leading_project};

/// Items a feed lists, newest first.
const FEED_ITEMS: usize = 20;
/// Every source's poll interval.
const POLL: Duration = Duration::from_secs(15);
/// Share of items that are announcements: one in a hundred items of a crypto newswire is a
/// copy of a token launch, claim or listing announcement (an assumption, stated in
/// BENCHMARKS.md). Events keep their documents, so these are never deleted.
const ANNOUNCEMENTS: f64 = 0.01;
/// Retention of documents and fingerprints, and the merge window.
const KEPT: Duration = Duration::from_secs(600);
/// New projects announced a minute (each copied by many sources).
const PROJECTS_PER_MINUTE: u64 = 10;
/// `GET /api/v1/events` requests a second.
const API_PER_SECOND: u64 = 10;
const MB: f64 = 1024.0 * 1024.0;

/// The cumulative buckets `(le, count)` of a histogram's samples whose labels contain
/// `labels`, in the order of the text (ascending `le`).
fn buckets(text: &str, metric: &str, labels: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{metric}_bucket{{");
    let mut out = Vec::new();
    for line in text.lines() {
        if !line.starts_with(&prefix) || !line.contains(labels) {
            continue;
        }
        let Some(le) = line
            .split("le=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        let count: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        out.push((le, count));
    }
    out
}

/// The `q`-quantile, in ms, of the observations between two readings of the same histogram,
/// linear within its bucket as Prometheus' `histogram_quantile`; NaN with none.
fn quantile_between(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let deltas: Vec<(f64, f64)> = after
        .iter()
        .enumerate()
        .map(|(i, (le, count))| (*le, count - before.get(i).map_or(0.0, |b| b.1)))
        .collect();
    let Some(total) = deltas.last().map(|b| b.1) else {
        return f64::NAN;
    };
    if total <= 0.0 {
        return f64::NAN;
    }
    let target = q * total;
    let mut lower = 0.0;
    let mut below = 0.0;
    for (le, count) in deltas {
        if count >= target {
            if le.is_infinite() {
                return lower * 1000.0;
            }
            let share = if count > below {
                (target - below) / (count - below)
            } else {
                1.0
            };
            return (lower + (le - lower) * share) * 1000.0;
        }
        lower = le;
        below = count;
    }
    f64::NAN
}

/// Bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            total += if meta.is_dir() {
                bytes_under(&entry.path())
            } else {
                meta.len()
            };
        }
    }
    total
}

/// The API's load: latencies of the events requests and of the baseline since the last take.
#[derive(Default)]
struct Load {
    /// Per filter of [`FILTERS`]: latencies and response bytes.
    by_filter: [(Vec<Duration>, Vec<usize>); FILTERS.len()],
    healthz: Vec<Duration>,
    errors: u64,
}

/// The filter sets the load asks for in turn, by name; `since` is an hour before each request.
const FILTERS: [&str; 6] = [
    "first page",
    "page_size=50",
    "min_score=0.9",
    "q=token",
    "q=airdrop claim",
    "since an hour ago",
];

async fn load_api(http: reqwest::Client, api: String, load: Arc<Mutex<Load>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / API_PER_SECOND));
    // A slow answer delays the next request instead of a burst that catches up.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut turn = 0usize;
    loop {
        tick.tick().await;
        let since = (Utc::now() - chrono::Duration::hours(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let filters = [
            String::new(),
            "?page_size=50".into(),
            "?min_score=0.9".into(),
            "?q=token".into(),
            "?q=airdrop%20claim".into(),
            format!("?since={since}"),
        ];
        let filter = turn % FILTERS.len();
        let path = format!("{api}/api/v1/events{}", filters[filter]);
        turn += 1;
        let started = Instant::now();
        let answer = match http
            .get(&path)
            .header("X-API-Key", swarm_tests::ADMIN_KEY)
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => {
                response.bytes().await.ok().map(|body| body.len())
            }
            Ok(_) | Err(_) => None,
        };
        let took = started.elapsed();
        let started = Instant::now();
        let healthy = match http.get(format!("{api}/healthz")).send().await {
            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
            Err(_) => false,
        };
        let baseline = started.elapsed();
        let mut load = load.lock().unwrap();
        match answer {
            Some(bytes) => {
                load.by_filter[filter].0.push(took);
                load.by_filter[filter].1.push(bytes);
            }
            None => load.errors += 1,
        }
        if healthy {
            load.healthz.push(baseline)
        } else {
            load.errors += 1
        }
    }
}

/// Documents recorded by data quality: stored, or dropped as duplicates.
fn recorded(metrics: &str) -> f64 {
    metric_sum(
        metrics,
        "tge_swarm_stage_duration_seconds_count",
        "stage=\"quality\"",
    )
}

const HISTOGRAM: &str = "tge_swarm_stage_duration_seconds";

/// The mean of `key` over the samples of minutes `[from, to)`.
fn mean(samples: &[Value], key: &str, from: usize, to: usize) -> f64 {
    let values: Vec<f64> = samples[from..to]
        .iter()
        .filter_map(|s| s[key].as_f64())
        .collect();
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// With `--soak-pin`: the kinds the supervisor scales on a backlog, each held at one actor
/// for the hour, so the hour measures the store and not the autoscaler.
///
/// Before the performance agent judged capacity, a burst of polled feeds at minute 8
/// (2,000-2,900 documents queued, gone seconds later) made the supervisor start a second
/// keyword and a second data quality actor, and it stopped them again 15 minutes later.
/// Two data quality actors on SQLite's one writer wait for each other's transactions and
/// split the stream into smaller batches, so the recording share of a document (a batch's
/// time, waits included, over its size) stood at 2.2-2.5 ms while they ran and at 0.3-0.9 ms
/// before and after: a step in the second quarter that the store's growth did not cause
/// (BENCHMARKS.md, the soak of 2026-12-07, 15:08).
fn pin_scalable_kinds(config: &mut Config) {
    for kind in SCALABLE_KINDS {
        crate::pipeline::pin_kind(config, kind, 1);
    }
}

/// The kinds with `tge_swarm_desired_replicas`: the ones the supervisor may scale.
const SCALABLE_KINDS: &[&str] = &["scraping", "keyword", "data-quality"];

pub fn figure(options: &Options) -> Value {
    let minutes = options.soak_minutes;
    let sources = options.soak_sources;
    let runtime = crate::runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = bench_config(&data);
    let api_port = free_port();
    let metrics_port = free_port();
    config.server.api_addr = format!("127.0.0.1:{api_port}").parse().unwrap();
    config.server.metrics_addr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    config.retention.documents = KEPT;
    config.retention.fingerprints = KEPT;
    config.retention.interval = Duration::from_secs(30);
    config.quality.merge_window = KEPT;
    // One actor of each to start with (pinned, the supervisor would not bring a larger
    // starting count inside its bounds).
    config.scraping.replicas = 1;
    config.detection.replicas = 1;
    config.quality.replicas = 1;
    if options.soak_pin {
        pin_scalable_kinds(&mut config);
    }
    // Feeds list their newest FEED_ITEMS: a poll must find fewer new ones than that, or
    // items are never read.
    let per_poll = options.soak_rate / sources as f64 * POLL.as_secs_f64();
    assert!(
        per_poll <= FEED_ITEMS as f64 / 2.0,
        "--soak-rate {} over {sources} sources publishes {per_poll:.1} items a feed per {POLL:?} poll; at most {} fit: use more sources or a lower rate",
        options.soak_rate,
        FEED_ITEMS / 2
    );
    let config_path = write_config(dir.path(), &config);

    let mut positives = Vec::new();
    let mut negatives = Vec::new();
    for item in crate::labelled_items() {
        let title = item.title.unwrap_or_default();
        if !item.is_tge {
            negatives.push((title, item.text));
            continue;
        }
        // Only announcements whose project can be renamed: the others would merge into the
        // same few events all hour.
        if let Some(project) = leading_project(&title, &item.text) {
            positives.push(Announcement {
                title,
                text: item.text,
                project,
            });
        }
    }
    assert!(
        !positives.is_empty() && !negatives.is_empty(),
        "the own corpus has announcements and other texts"
    );

    let mut swarm = Process::run_swarm(dir.path(), &config_path);
    let samples = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let feeds = Arc::new(Feeds::new(
            options.soak_rate / sources as f64,
            positives,
            negatives,
            base.clone(),
        ));
        let router = Router::new().route("/feed/{source}", get(feed)).with_state(feeds);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

        // A hung answer fails the minute's request, not the hour.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let api = format!("http://127.0.0.1:{api_port}");
        let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
        wait_http(&http, &format!("{api}/healthz"), Duration::from_secs(30)).await;
        for source in 0..sources {
            let response = http
                .post(format!("{api}/api/v1/sources"))
                .header("X-API-Key", swarm_tests::ADMIN_KEY)
                .json(&json!({"name": format!("soak-{source}"), "kind": "rss",
                              "url": format!("{base}/feed/{source}"),
                              "interval": format!("{}s", POLL.as_secs())}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 201, "registering soak source {source}");
        }
        let load = Arc::new(Mutex::new(Load::default()));
        let loader = tokio::spawn(load_api(http.clone(), api.clone(), load.clone()));

        let started = Instant::now();
        let mut before = http.get(&metrics_url).send().await.unwrap().text().await.unwrap();
        let swarm_pid = swarm.child.id();
        let mut machine_before = Machine::now();
        let mut cpu_before = (process_seconds(swarm_pid), process_seconds(std::process::id()));
        let mut sampled_at = Instant::now();
        let mut samples = Vec::new();
        for minute in 1..=minutes {
            tokio::time::sleep_until((started + Duration::from_secs(60 * minute as u64)).into()).await;
            swarm.check_alive(dir.path());
            let now = http.get(&metrics_url).send().await.unwrap().text().await.unwrap();
            let taken = std::mem::take(&mut *load.lock().unwrap());
            // The machine's minute: who kept the cores busy, and how much was waited or stolen.
            let wall = sampled_at.elapsed().as_secs_f64();
            sampled_at = Instant::now();
            let machine_now = Machine::now();
            let cpu_now = (process_seconds(swarm_pid), process_seconds(std::process::id()));
            let swarm_cores = (cpu_now.0 - cpu_before.0) / wall;
            let harness_cores = (cpu_now.1 - cpu_before.1) / wall;
            let (busy_cores, iowait, steal) = match (machine_before, machine_now) {
                (Some(earlier), Some(later)) => earlier.since(&later, wall),
                _ => (f64::NAN, f64::NAN, f64::NAN),
            };
            (machine_before, cpu_before) = (machine_now, cpu_now);
            let mut healthz = taken.healthz;
            healthz.sort_unstable();
            // Every filter's answers together, and each apart.
            let mut events: Vec<Duration> = taken
                .by_filter
                .iter()
                .flat_map(|(latencies, _)| latencies.iter().copied())
                .collect();
            events.sort_unstable();
            // Which filter grows, and whether its answer does.
            let mut by_filter = serde_json::Map::new();
            for (name, (mut latencies, bytes)) in FILTERS.iter().zip(taken.by_filter) {
                latencies.sort_unstable();
                let mean_bytes = bytes.iter().sum::<usize>() as f64 / bytes.len().max(1) as f64;
                by_filter.insert(
                    (*name).to_owned(),
                    json!({"p50_ms": round(quantile_ms(&latencies, 0.5)), "p99_ms": round(quantile_ms(&latencies, 0.99)), "mean_bytes": round(mean_bytes)}),
                );
            }
            let delta = |metric: &str, labels: &str| {
                metric_sum(&now, metric, labels) - metric_sum(&before, metric, labels)
            };
            let duplicates = delta("tge_swarm_documents_dropped_total", "reason=\"duplicate\"");
            let invalid = delta("tge_swarm_documents_dropped_total", "reason=\"invalid\"");
            let recorded_now = recorded(&now) - recorded(&before);
            let events_total = metric_sum(&now, "tge_swarm_events_created_total", "");
            let quality = "stage=\"quality\"";
            let pipeline = "stage=\"pipeline\"";
            let actors: serde_json::Map<String, Value> = SCALABLE_KINDS
                .iter()
                .map(|kind| {
                    let desired = metric_sum(&now, "tge_swarm_desired_replicas", &format!("kind=\"{kind}\""));
                    ((*kind).to_owned(), json!(desired))
                })
                .collect();
            let sample = json!({
                "minute": minute,
                "rss_mb": round(swarm.rss() as f64 / MB),
                "store_mb": round(bytes_under(&data) as f64 / MB),
                "api_p50_ms": round(quantile_ms(&events, 0.5)),
                "api_p99_ms": round(quantile_ms(&events, 0.99)),
                "healthz_p99_ms": round(quantile_ms(&healthz, 0.99)),
                "api_errors": taken.errors,
                "api_by_filter": by_filter,
                "write_p99_ms": round(quantile_between(&buckets(&before, HISTOGRAM, quality), &buckets(&now, HISTOGRAM, quality), 0.99)),
                "pipeline_p99_ms": round(quantile_between(&buckets(&before, HISTOGRAM, pipeline), &buckets(&now, HISTOGRAM, pipeline), 0.99)),
                "read_per_second": round((recorded_now + invalid) / 60.0),
                "stored_per_second": round((recorded_now - duplicates) / 60.0),
                "duplicates": duplicates,
                "invalid": invalid,
                "events_total": events_total,
                "documents_kept_by_events": events_total + metric_sum(&now, "tge_swarm_events_merged_total", ""),
                "events_created": delta("tge_swarm_events_created_total", ""),
                "events_merged": delta("tge_swarm_events_merged_total", ""),
                "retention_deleted": delta("tge_swarm_retention_deleted_total", ""),
                "queued": metric_sum(&now, "tge_swarm_queue_depth", "state=\"ready\""),
                "actors": actors,
                "swarm_cores": round(swarm_cores),
                "harness_cores": round(harness_cores),
                "other_cores": round((busy_cores - swarm_cores - harness_cores).max(0.0)),
                "iowait_percent": round(iowait * 100.0),
                "steal_percent": round(steal * 100.0),
            });
            eprintln!("bench: soak {sample}");
            samples.push(sample);
            // Each minute, so a failure late in the hour keeps what was measured.
            save(&samples, options);
            before = now;
        }
        loader.abort();
        samples
    });
    drop(swarm);

    let n = samples.len();
    let (second, last) = ((n / 4, n / 2), (n * 3 / 4, n));
    let mut flat = serde_json::Map::new();
    let mut all_flat = n >= 4;
    for key in ["rss_mb", "store_mb", "api_p99_ms", "write_p99_ms"] {
        let early = mean(&samples, key, second.0, second.1);
        let late = mean(&samples, key, last.0, last.1);
        let ratio = late / early;
        let within = (ratio - 1.0).abs() <= 0.15;
        all_flat &= within;
        flat.insert(key.into(), json!({"second_quarter": round(early), "last_quarter": round(late), "ratio": round(ratio), "within_15_percent": within}));
    }
    let chart = draw(&samples, options);
    let stored_rate = mean(&samples, "stored_per_second", 0, n);
    let api_p99 = mean(&samples, "api_p99_ms", 0, n);
    let healthz_p99 = mean(&samples, "healthz_p99_ms", 0, n);
    let most_actors: serde_json::Map<String, Value> = SCALABLE_KINDS
        .iter()
        .map(|kind| {
            let most = samples
                .iter()
                .filter_map(|sample| sample["actors"][*kind].as_f64())
                .fold(0.0, f64::max);
            ((*kind).to_owned(), json!(most))
        })
        .collect();
    json!({
        "name": "soak",
        "value": round(api_p99),
        "unit": "ms p99 API (mean/min)",
        "minutes": minutes,
        "sources": sources,
        "poll_interval_s": POLL.as_secs(),
        "new_documents_per_second": options.soak_rate,
        "documents_per_second": round(stored_rate),
        "announcement_share": ANNOUNCEMENTS,
        "retention_s": KEPT.as_secs(),
        "scaling": if options.soak_pin { "held at one actor (--soak-pin)" } else { "the shipped autoscaler" },
        "most_actors": most_actors,
        "flat": flat,
        "chart": chart,
        "samples": samples,
        "baseline": {"name": "GET /healthz beside each request", "value": round(healthz_p99), "unit": "ms p99 (mean/min)"},
        "ratio_to_baseline": round(api_p99 / healthz_p99.max(1e-3)),
        "target": "RSS, store size, API p99 and write p99: last quarter within 15 % of the second",
        "met": all_flat,
    })
}

/// Where the samples go: `soak.json` beside the report.
fn samples_path(options: &Options) -> std::path::PathBuf {
    let dir = options
        .out
        .parent()
        .map_or_else(|| Path::new(".").to_owned(), Path::to_owned);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("soak.json")
}

/// Writes the samples so far.
fn save(samples: &[Value], options: &Options) {
    let text = serde_json::to_string_pretty(samples).unwrap();
    std::fs::write(samples_path(options), text).unwrap();
}

/// Draws the samples with `scripts/soak_chart.py` to `soak.png` beside them; the chart's
/// path, or why it was not drawn.
fn draw(samples: &[Value], options: &Options) -> String {
    save(samples, options);
    let data = samples_path(options);
    let png = data.with_extension("png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/soak_chart.py");
    // Debian's interpreter, where its python3-matplotlib lives, before whatever is on PATH.
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let status = std::process::Command::new(python)
        .arg(script)
        .arg(&data)
        .arg(&png)
        .status();
    match status {
        Ok(status) if status.success() => png.display().to_string(),
        Ok(status) => format!(
            "not drawn: scripts/soak_chart.py exited with {status} (samples in {})",
            data.display()
        ),
        Err(err) => format!(
            "not drawn: python3 did not start: {err} (samples in {})",
            data.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_between_two_readings() {
        let before = [(0.001, 10.0), (0.01, 10.0), (f64::INFINITY, 10.0)];
        // 100 more observations: 50 under 1 ms, 50 between 1 and 10 ms.
        let after = [(0.001, 60.0), (0.01, 110.0), (f64::INFINITY, 110.0)];
        assert!((quantile_between(&before, &after, 0.5) - 1.0).abs() < 1e-9);
        assert!((quantile_between(&before, &after, 0.99) - 9.82).abs() < 1e-9);
        assert!(quantile_between(&after, &after, 0.99).is_nan());
        let text = "tge_swarm_stage_duration_seconds_bucket{stage=\"quality\",le=\"0.001\"} 4\n\
                    tge_swarm_stage_duration_seconds_bucket{stage=\"fetch\",le=\"0.001\"} 9\n\
                    tge_swarm_stage_duration_seconds_bucket{stage=\"quality\",le=\"+Inf\"} 5\n";
        let read = buckets(text, HISTOGRAM, "stage=\"quality\"");
        assert_eq!(read, vec![(0.001, 4.0), (f64::INFINITY, 5.0)]);
    }
}
