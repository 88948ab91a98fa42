//! `bench`: the benchmark harness behind `scripts/bench.sh`. Each figure is measured beside a
//! baseline taken in the same run on the same machine, and written to
//! `target/bench/report.json` with a table on stdout.
//!
//! Figures (one module each where they need more than a function):
//! * `classification`: the keyword scorer over a generated corpus (documents assembled from the
//!   shipped labelled corpus, 0.3 to 6 KB each), one thread, so the rate is per core. Baseline:
//!   one Aho-Corasick pass of the scorer's own lexicon over the same bytes, the floor of any
//!   scorer that reads every byte once for its phrases. Measured twice: with every stage each
//!   document needs (the sentence encoder included), and with the third stage refusing every
//!   document, as the keyword agent does once its per-second budget is spent.
//! * `pipeline_embedded` ([`pipeline`]), `pipeline_distributed` ([`distributed`]), `api`
//!   ([`api`]), `memory` ([`memory`]), `alerts` ([`alerts`]), `footprint` ([`footprint`]),
//!   `retention` ([`retention`]) and `events` ([`events`]): see their modules.
//! * `soak` ([`soak`]): an hour, so only when `--only` names it.
//! * `supervision`: an in-process swarm; a document is enqueued for the keyword agent, which
//!   is armed to panic while it holds the document. Measured: enqueue to acknowledgement by
//!   the replacement (host notices the exit, respawns the actor, the new actor rebuilds its
//!   scorer from the store, recovers the pending item and processes it), p50/p99 over
//!   `--faults` faults. The restart backoff is set to zero, so the figure is the mechanism's
//!   own cost; the shipped policy adds its 1 s (±20 %) first backoff on top by design.
//!   Baseline: the same enqueue-to-acknowledgement latency with no fault.

// A benchmark binary: a panic is the right answer to a broken set-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use aho_corasick::{AhoCorasickBuilder, AhoCorasickKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use swarm_agents::keyword::corpus::{CORPUS_YEAR, HELDOUT, TRAIN, read_labelled};
use swarm_agents::keyword::lexicon::PHRASES;
use swarm_agents::keyword::model::Model;
use swarm_agents::keyword::scorer::{Input, Scorer};
use swarm_shared::channels::QUEUE_CLASSIFY;
use swarm_shared::config::Config;
use swarm_shared::domain::Document;
use swarm_shared::ports::WorkQueue;

const BOILERPLATE: &str = "Sign up for our newsletter to get the day's top stories. This article is for information only and is not financial advice. Follow us on X and Telegram for breaking news.";

/// The allocator `tge-swarm` ships with ([`swarm_queen::Allocator`]), so the in-process
/// figures run the swarm as the binary does.
#[global_allocator]
static ALLOCATOR: swarm_queen::Allocator = swarm_queen::Allocator;

mod alerts;
mod api;
mod cpu;
mod distributed;
mod events;
mod exchange;
mod footprint;
mod memory;
mod pipeline;
mod process;
mod retention;
mod soak;

/// Figures in report order; `--only` picks some.
const FIGURES: [&str; 11] = [
    "classification",
    "pipeline_embedded",
    "pipeline_distributed",
    "api",
    "memory",
    "supervision",
    "alerts",
    "exchange_lag",
    "footprint",
    "retention",
    "events",
];
/// The soak: an hour, so only when `--only` names it.
const SOAK: &str = "soak";

/// Command-line options.
struct Options {
    docs: usize,
    pipeline_docs: usize,
    probes: usize,
    faults: usize,
    footprint_docs: usize,
    retention_docs: usize,
    events_docs: usize,
    soak_minutes: usize,
    soak_sources: usize,
    soak_rate: f64,
    /// Hold the scalable kinds at one actor in the soak (default: the shipped autoscaler).
    soak_pin: bool,
    seconds: u64,
    only: Vec<String>,
    out: std::path::PathBuf,
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> T {
    let value = value.unwrap_or_default();
    value.parse().unwrap_or_else(|_| {
        eprintln!("bench: {flag} needs a number, got `{value}`");
        std::process::exit(2)
    })
}

const USAGE: &str = "usage: bench [--docs N (classification, default 50000)] \
[--pipeline-docs N (pipelines, default 30000)] [--probes N (latency probes, default 200)] \
[--faults N (default 100)] [--footprint-docs N (default 200000)] [--retention-docs N (default 100000)] \
[--events-docs N (default 1000000)] [--soak-minutes N (default 60)] [--soak-sources N (default 500)] \
[--soak-rate DOCS_PER_S (default 200)] [--soak-pin (hold the scalable kinds at one actor)] \
[--seconds N (API and memory load, default 5)] [--only FIGURE,FIGURE] \
[--out FILE (default target/bench/report.json)]";

fn parse_args() -> Options {
    let mut options = Options {
        docs: 50_000,
        pipeline_docs: 30_000,
        probes: 200,
        faults: 100,
        footprint_docs: 200_000,
        retention_docs: 100_000,
        events_docs: 1_000_000,
        soak_minutes: 60,
        soak_sources: 500,
        soak_rate: 200.0,
        soak_pin: false,
        seconds: 5,
        only: FIGURES.iter().map(|name| (*name).to_owned()).collect(),
        out: "target/bench/report.json".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--docs" => options.docs = number(&arg, args.next()),
            "--pipeline-docs" => options.pipeline_docs = number(&arg, args.next()),
            "--probes" => options.probes = number(&arg, args.next()),
            "--faults" => options.faults = number(&arg, args.next()),
            "--footprint-docs" => options.footprint_docs = number(&arg, args.next()),
            "--retention-docs" => options.retention_docs = number(&arg, args.next()),
            "--events-docs" => options.events_docs = number(&arg, args.next()),
            "--soak-minutes" => options.soak_minutes = number(&arg, args.next()),
            "--soak-sources" => options.soak_sources = number(&arg, args.next()),
            "--soak-rate" => options.soak_rate = number(&arg, args.next()),
            "--soak-pin" => options.soak_pin = true,
            "--seconds" => options.seconds = number(&arg, args.next()),
            "--only" => {
                let list = args.next().unwrap_or_default();
                options.only = list.split(',').map(|name| name.trim().to_owned()).collect();
                for name in &options.only {
                    if !FIGURES.contains(&name.as_str()) && name != SOAK {
                        eprintln!(
                            "bench: unknown figure `{name}` (one of {}, {SOAK})",
                            FIGURES.join(", ")
                        );
                        std::process::exit(2);
                    }
                }
            }
            "--out" => options.out = args.next().unwrap_or_default().into(),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => {
                eprintln!("bench: unknown argument `{other}` (try --help)");
                std::process::exit(2);
            }
        }
    }
    if options.probes == 0 || options.faults == 0 || options.seconds == 0 {
        eprintln!("bench: --probes, --faults and --seconds must be at least 1");
        std::process::exit(2);
    }
    if options.soak_minutes == 0
        || options.soak_sources == 0
        || !options.soak_rate.is_finite()
        || options.soak_rate <= 0.0
    {
        eprintln!("bench: --soak-minutes, --soak-sources and --soak-rate must be above 0");
        std::process::exit(2);
    }
    options
}

/// The shipped embedded configuration with the bench's data dir, ephemeral ports and no
/// sources: what `tge-swarm run` starts with, minus the internet.
fn bench_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::embedded_default().unwrap();
    config.sources.clear();
    config.node.name = format!("bench-{}", std::process::id());
    config.server.api_addr = "127.0.0.1:0".parse().unwrap();
    config.server.metrics_addr = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = data_dir.to_owned();
    // The bench's feed servers listen on loopback, and its files live in temporary dirs.
    config.scraping.allow_hosts = vec!["127.0.0.1".into()];
    config.scraping.file_root = Some(std::env::temp_dir());
    // The bench loads the API from one address as fast as it answers: it measures the
    // server, not the rate limiter.
    config.server.rate_limit_per_address = 0;
    config.server.rate_limit_per_key = 0;
    config
}

/// Documents assembled from the labelled corpus: 1 to 12 items, sometimes with boilerplate.
/// The same seed gives the same sequence.
struct Generator {
    items: Vec<swarm_agents::keyword::corpus::LabelledItem>,
    rng: StdRng,
}

impl Generator {
    fn new() -> Generator {
        Generator {
            items: labelled_items(),
            rng: StdRng::seed_from_u64(0x7467_6573_7761_726d),
        }
    }

    /// The next document: title and text.
    fn next_document(&mut self) -> (String, String) {
        let parts = self.rng.random_range(1..=12);
        let first = &self.items[self.rng.random_range(0..self.items.len())];
        let title = first.title.clone().unwrap_or_default();
        let mut text = first.text.clone();
        for _ in 1..parts {
            text.push_str("\n\n");
            text.push_str(&self.items[self.rng.random_range(0..self.items.len())].text);
        }
        if self.rng.random_bool(0.5) {
            text.push_str("\n\n");
            text.push_str(BOILERPLATE);
        }
        (title, text)
    }
}

/// The own labelled corpus, both splits: the bench's texts.
fn labelled_items() -> Vec<swarm_agents::keyword::corpus::LabelledItem> {
    let mut items = read_labelled(TRAIN.as_bytes(), "own-train.jsonl").unwrap();
    items.extend(read_labelled(HELDOUT.as_bytes(), "own-heldout.jsonl").unwrap());
    items
}

/// `count` documents from a fresh [`Generator`].
fn generate(count: usize) -> Vec<(String, String)> {
    let mut generator = Generator::new();
    (0..count).map(|_| generator.next_document()).collect()
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split(':').nth(1))
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    json!({"cpu": model, "cores": cores, "os": std::env::consts::OS})
}

/// Scores every document on this thread (after a warm-up); the seconds taken, the number of
/// announcements and the number of documents the third stage (the sentence encoder) read.
/// Without `third_stage` the third stage refuses every document, as when its budget is spent.
fn score_all(documents: &[(String, String)], third_stage: bool) -> (f64, usize, usize) {
    let config = Config::embedded_default().unwrap();
    let scorer = Scorer::new(&config.watchlist(), Model::shipped().unwrap(), None).unwrap();
    let year = CORPUS_YEAR;
    // Warm caches and the allocator.
    for (title, text) in documents.iter().take(1000) {
        std::hint::black_box(scorer.score(Input {
            title,
            text,
            tier: 2,
            year,
            url: None,
        }));
    }
    let started = Instant::now();
    let mut announcements = 0usize;
    let mut read = 0usize;
    for (title, text) in documents {
        let detection = scorer.score_within(
            Input {
                title,
                text,
                tier: 2,
                year,
                url: None,
            },
            &mut || {
                read += usize::from(third_stage);
                third_stage
            },
        );
        announcements += usize::from(detection.is_tge);
    }
    (started.elapsed().as_secs_f64(), announcements, read)
}

fn classification(options: &Options) -> Value {
    let documents = generate(options.docs);
    let bytes: usize = documents.iter().map(|(t, x)| t.len() + x.len()).sum();
    let (elapsed, announcements, read) = score_all(&documents, true);
    let (second_elapsed, _, _) = score_all(&documents, false);

    // Baseline: one pass of the same lexicon over the same bytes.
    let patterns: Vec<&str> = PHRASES
        .iter()
        .flat_map(|(_, phrases)| phrases.iter().copied())
        .collect();
    let automaton = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .kind(Some(AhoCorasickKind::DFA))
        .build(&patterns)
        .unwrap();
    let baseline_started = Instant::now();
    let mut matches = 0usize;
    for (title, text) in &documents {
        matches += automaton.find_overlapping_iter(title.as_str()).count();
        matches += automaton.find_overlapping_iter(text.as_str()).count();
    }
    let baseline_elapsed = baseline_started.elapsed().as_secs_f64();
    std::hint::black_box(matches);

    let megabytes = bytes as f64 / 1e6;
    let rate = megabytes / elapsed;
    let baseline_rate = megabytes / baseline_elapsed;
    json!({
        "name": "classification",
        "value": round(rate),
        "unit": "MB/s per core",
        "documents": documents.len(),
        "megabytes": round(megabytes),
        "documents_per_second": round(documents.len() as f64 / elapsed),
        "announcements": announcements,
        "third_stage_documents": read,
        "third_stage_ms_per_document": round((elapsed - second_elapsed).max(0.0) * 1000.0 / read.max(1) as f64),
        "over_budget": {"name": "the third stage refusing every document (its budget spent)", "value": round(megabytes / second_elapsed), "unit": "MB/s per core", "documents_per_second": round(documents.len() as f64 / second_elapsed)},
        "baseline": {"name": "aho-corasick pass of the lexicon", "value": round(baseline_rate), "unit": "MB/s per core"},
        "ratio_to_baseline": round(rate / baseline_rate),
        "target": 50.0,
        "met": rate >= 50.0,
    })
}

/// A document of the bench's news wire (source 1, `wire`, tier 2, fetched now) with its
/// verdict, as data quality receives it.
fn wire_document(
    url: String,
    title: String,
    text: String,
    detection: swarm_shared::domain::Detection,
) -> swarm_shared::domain::ClassifiedDocument {
    swarm_shared::domain::ClassifiedDocument {
        document: Document {
            source_kind: None,
            facts: Default::default(),
            id: swarm_shared::domain::document_id(&url, &title, &text),
            source_id: 1,
            source_name: "wire".into(),
            source_tier: 2,
            url,
            title,
            text,
            published_at: None,
            fetched_at: chrono::Utc::now(),
        },
        detection,
    }
}

/// SplitMix64 of `x`: the bench's deterministic spread of made-up values.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `q`-quantile of sorted samples, in milliseconds (NaN, written as null, for none).
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Enqueues one document for the keyword agent and waits until it is acknowledged; returns
/// the latency. Polls the queue every millisecond (the timer's resolution).
async fn one_round_trip(queue: &dyn WorkQueue, index: usize, tag: &str) -> Duration {
    let document = Document {
        source_kind: None,
        facts: Default::default(),
        id: format!("bench-{tag}-{index}"),
        source_id: 1,
        source_name: "bench".into(),
        source_tier: 2,
        url: format!("https://bench.example/{tag}/{index}"),
        title: format!("Market wrap {index}"),
        text: "Bitcoin traded sideways while volumes fell across exchanges.".into(),
        published_at: None,
        fetched_at: chrono::Utc::now(),
    };
    let payload = serde_json::to_vec(&document).unwrap();
    let started = Instant::now();
    queue.enqueue(QUEUE_CLASSIFY, vec![payload]).await.unwrap();
    loop {
        let depth = queue.depth(QUEUE_CLASSIFY).await.unwrap();
        if depth.ready == 0 && depth.pending == 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a document was not processed within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn supervision(options: &Options) -> Value {
    let faults = options.faults;
    let runtime = runtime();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = swarm_tests::test_config(dir.path());
        config.supervision.fault_injection = true;
        // The mechanism's own cost: no backoff, and a budget that never runs out.
        config.supervision.policy.backoff_base = Duration::ZERO;
        config.supervision.policy.backoff_jitter = 0.0;
        config.supervision.policy.max_restarts = 1_000_000;
        // Heartbeats at the shipped pace: the bench measures restarts, not probes.
        config.supervision.heartbeat_interval = Duration::from_secs(10);
        config.supervision.interval = Duration::from_secs(5);
        let swarm = swarm_queen::Swarm::start(config, Some(swarm_tests::ADMIN_KEY.into()))
            .await
            .unwrap();
        let queue = swarm.context().queue.clone();
        // Warm up: the first documents also warm the store and the quality agent.
        for index in 0..20 {
            one_round_trip(queue.as_ref(), index, "warm").await;
        }
        let mut baseline = Vec::with_capacity(faults);
        for index in 0..faults {
            baseline.push(one_round_trip(queue.as_ref(), index, "plain").await);
        }
        let mut faulted = Vec::with_capacity(faults);
        for index in 0..faults {
            swarm
                .faults()
                .arm("keyword-0", swarm_shared::faults::Fault::Panic, 1)
                .unwrap();
            faulted.push(one_round_trip(queue.as_ref(), index, "fault").await);
        }
        swarm.shutdown().await;
        baseline.sort_unstable();
        faulted.sort_unstable();
        let p50 = quantile_ms(&faulted, 0.5);
        let p99 = quantile_ms(&faulted, 0.99);
        let base_p50 = quantile_ms(&baseline, 0.5);
        let base_p99 = quantile_ms(&baseline, 0.99);
        json!({
            "name": "supervision",
            "value": round(p99),
            "unit": "ms p99",
            "p50_ms": round(p50),
            "p99_ms": round(p99),
            "max_ms": round(faulted.last().unwrap().as_secs_f64() * 1000.0),
            "faults": faults,
            "baseline": {"name": "same round trip, no fault", "value": round(base_p99), "unit": "ms p99", "p50_ms": round(base_p50)},
            "ratio_to_baseline": round(p99 / base_p99.max(1e-3)),
            "target": 100.0,
            "met": p99 < 100.0,
        })
    })
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The runtime every figure runs on: two workers, as many as the machine's cores.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn main() {
    let options = parse_args();
    // The harness' own HTTP clients need the TLS provider the swarm installs at its start.
    swarm_agents::scraping::fetch::install_crypto_provider();
    // The swarms' own warnings (a failing store, a dropped message) explain a bad figure.
    let filter = tracing_subscriber::EnvFilter::try_from_env("TGE_SWARM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    // The supervision figure injects a hundred panics on purpose: keep their reports quiet.
    let report_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let injected = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|message| message.starts_with("injected fault"));
        if !injected {
            report_panic(info);
        }
    }));
    let mut figures = Vec::new();
    for name in FIGURES {
        if !options.only.iter().any(|wanted| wanted == name) {
            continue;
        }
        eprintln!("bench: measuring {name}");
        let started = Instant::now();
        let figure = match name {
            "classification" => classification(&options),
            "pipeline_embedded" => pipeline::embedded(&options),
            "pipeline_distributed" => distributed::figure(&options),
            "api" => api::figure(&options),
            "memory" => memory::figure(&options),
            "supervision" => supervision(&options),
            "alerts" => alerts::figure(&options),
            "exchange_lag" => exchange::figure(&options),
            "footprint" => footprint::figure(&options),
            "retention" => retention::figure(&options),
            "events" => events::figure(&options),
            other => unreachable!("figure {other} is listed in FIGURES"),
        };
        eprintln!(
            "bench: {name} took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        figures.push(figure);
    }
    if options.only.iter().any(|wanted| wanted == SOAK) {
        eprintln!("bench: measuring {SOAK} ({} minutes)", options.soak_minutes);
        figures.push(soak::figure(&options));
    }
    let report = json!({
        "taken_at": chrono::Utc::now().to_rfc3339(),
        "machine": machine(),
        "figures": figures,
    });
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&options.out, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!(
        "{:<16} {:>12} {:<16} {:>12} {:>8} {:>8}  target",
        "figure", "value", "unit", "baseline", "ratio", "docs/s"
    );
    for figure in report["figures"].as_array().unwrap() {
        // `Value`'s Display ignores widths: format the numbers as strings first.
        println!(
            "{:<16} {:>12} {:<16} {:>12} {:>8} {:>8}  {} ({})",
            figure["name"].as_str().unwrap(),
            figure["value"].to_string(),
            figure["unit"].as_str().unwrap(),
            figure["baseline"]["value"].to_string(),
            figure["ratio_to_baseline"].to_string(),
            figure
                .get("documents_per_second")
                .map_or("-".to_owned(), Value::to_string),
            figure["target"],
            if figure["met"] == true {
                "met"
            } else {
                "missed"
            },
        );
    }
    println!("report: {}", options.out.display());
}
