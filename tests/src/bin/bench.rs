//! `bench`: the benchmark harness behind `scripts/bench.sh`. Each figure is measured beside a
//! baseline taken in the same run on the same machine, and written to
//! `target/bench/report.json` with a table on stdout.
//!
//! Figures so far:
//! * `classification`: the keyword scorer over a generated corpus (documents assembled from the
//!   shipped labelled corpus, 0.3 to 6 KB each), one thread, so the rate is per core. Baseline:
//!   one Aho-Corasick pass of the scorer's own lexicon over the same bytes, the floor of any
//!   scorer that reads every byte once for its phrases.

// A benchmark binary: a panic is the right answer to a broken set-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use aho_corasick::{AhoCorasickBuilder, AhoCorasickKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use swarm_agents::keyword::corpus::{CORPUS_YEAR, HELDOUT, TRAIN, read_labelled};
use swarm_agents::keyword::lexicon::PHRASES;
use swarm_agents::keyword::model::Model;
use swarm_agents::keyword::scorer::{Input, Scorer};
use swarm_shared::config::Config;

const BOILERPLATE: &str = "Sign up for our newsletter to get the day's top stories. This article is for information only and is not financial advice. Follow us on X and Telegram for breaking news.";

struct Options {
    docs: usize,
    out: std::path::PathBuf,
}

fn parse_args() -> Options {
    let mut options = Options {
        docs: 50_000,
        out: "target/bench/report.json".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--docs" => {
                let value = args.next().unwrap_or_default();
                options.docs = value.parse().unwrap_or_else(|_| {
                    eprintln!("bench: --docs needs a number, got `{value}`");
                    std::process::exit(2)
                });
            }
            "--out" => options.out = args.next().unwrap_or_default().into(),
            "-h" | "--help" => {
                println!(
                    "usage: bench [--docs N (default 50000)] [--out FILE (default target/bench/report.json)]"
                );
                std::process::exit(0);
            }
            other => {
                eprintln!("bench: unknown argument `{other}` (try --help)");
                std::process::exit(2);
            }
        }
    }
    options
}

/// Documents assembled from the labelled corpus: 1 to 12 items, sometimes with boilerplate.
fn generate(count: usize) -> Vec<(String, String)> {
    let mut items = read_labelled(TRAIN.as_bytes(), "train.jsonl").unwrap();
    items.extend(read_labelled(HELDOUT.as_bytes(), "heldout.jsonl").unwrap());
    let mut rng = StdRng::seed_from_u64(0x7467_6573_7761_726d);
    let mut documents = Vec::with_capacity(count);
    for _ in 0..count {
        let parts = rng.random_range(1..=12);
        let first = &items[rng.random_range(0..items.len())];
        let title = first.title.clone().unwrap_or_default();
        let mut text = first.text.clone();
        for _ in 1..parts {
            text.push_str("\n\n");
            text.push_str(&items[rng.random_range(0..items.len())].text);
        }
        if rng.random_bool(0.5) {
            text.push_str("\n\n");
            text.push_str(BOILERPLATE);
        }
        documents.push((title, text));
    }
    documents
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

fn classification(docs: usize) -> Value {
    let config = Config::embedded_default().unwrap();
    let scorer = Scorer::new(&config.watchlist(), Model::shipped().unwrap(), None).unwrap();
    let documents = generate(docs);
    let bytes: usize = documents.iter().map(|(t, x)| t.len() + x.len()).sum();
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
    for (title, text) in &documents {
        let detection = scorer.score(Input {
            title,
            text,
            tier: 2,
            year,
            url: None,
        });
        announcements += usize::from(detection.is_tge);
    }
    let elapsed = started.elapsed().as_secs_f64();

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
        "baseline": {"name": "aho-corasick pass of the lexicon", "value": round(baseline_rate), "unit": "MB/s per core"},
        "ratio_to_baseline": round(rate / baseline_rate),
        "target": 50.0,
        "met": rate >= 50.0,
    })
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn main() {
    let options = parse_args();
    let figures = vec![classification(options.docs)];
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
        println!(
            "{:<16} {:>12} {:<16} {:>12} {:>8} {:>8}  {} ({})",
            figure["name"].as_str().unwrap(),
            figure["value"],
            figure["unit"].as_str().unwrap(),
            figure["baseline"]["value"],
            figure["ratio_to_baseline"],
            figure["documents_per_second"],
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
