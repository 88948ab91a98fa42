//! `api`: `GET /api/v1/events` with filters under concurrent load from a Rust load generator
//! (`CONNECTIONS` keep-alive connections, each sending its next request as soon as the last
//! answer is read) against the swarm's API, after the pipeline has filled the store with
//! events. The requests rotate over realistic filter sets (a company, a ticker, a lowest
//! score, free text, a first page of 50).
//!
//! The swarm's API serves repeated pages from its cache (`server.events_cache_ttl`, on by
//! default), so the headline is the cached rate; the same router with the cache off is
//! measured over the same store in the same run (`uncached`), which is what a request costs
//! the store.
//!
//! Baseline: a trivial axum endpoint (a fixed small JSON body) served in the same process by
//! the same runtime and hit by the same load generator, so both share the machine equally.
//! The report gives each path's response size beside the baseline's: a page of events is
//! copied by server and load generator alike, which the baseline's few bytes are not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use crate::pipeline::{drained, file_source, write_files};
use crate::{Options, bench_config, generate, quantile_ms, round};

/// Concurrent keep-alive connections of the load generator.
const CONNECTIONS: usize = 16;

/// Documents sent through the pipeline first, so the events table is not trivial.
const SEED_DOCS: usize = 20_000;

/// The filter sets the load rotates over.
const QUERIES: [&str; 6] = [
    "/api/v1/events?page_size=50",
    "/api/v1/events?company=Fhenix&page_size=20",
    "/api/v1/events?token=FHE",
    "/api/v1/events?min_score=0.8&page_size=50",
    "/api/v1/events?q=airdrop&page_size=20",
    "/api/v1/events?company=Succinct&min_score=0.5",
];

/// What `seconds` of closed-loop load on some paths measured.
struct Load {
    /// Answered requests per second.
    rate: f64,
    /// Every answer's latency, sorted.
    latencies: Vec<Duration>,
    /// Each path's latencies, sorted, in the order of the paths.
    per_path: Vec<Vec<Duration>>,
    /// Requests that failed or did not answer 2xx.
    failures: u64,
    /// Each path's response body, in bytes (from the warm-up request), in the order of the
    /// paths.
    body_bytes: Vec<usize>,
}

/// `seconds` of closed-loop load on `paths`, rotated per connection.
async fn load(base: &str, paths: &[String], seconds: u64) -> Load {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    // Warm the connections and the server's caches.
    let mut body_bytes = Vec::with_capacity(paths.len());
    for path in paths {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        body_bytes.push(response.bytes().await.unwrap().len());
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let paths = Arc::new(paths.to_vec());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for connection in 0..CONNECTIONS {
        let client = client.clone();
        let paths = paths.clone();
        let base = base.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<(usize, Duration)> = Vec::with_capacity(16_384);
            let mut failures = 0u64;
            let mut index = connection;
            while Instant::now() < deadline {
                let which = index % paths.len();
                let url = format!("{base}{}", paths[which]);
                index += 1;
                let sent = Instant::now();
                match client.get(url).send().await {
                    Ok(response) if response.status().is_success() => {
                        if response.bytes().await.is_err() {
                            failures += 1;
                            continue;
                        }
                        latencies.push((which, sent.elapsed()));
                    }
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut all = Vec::new();
    let mut per_path = vec![Vec::new(); paths.len()];
    let mut failures = 0;
    for task in tasks {
        let (latencies, failed) = task.await.unwrap();
        for (which, latency) in latencies {
            all.push(latency);
            per_path[which].push(latency);
        }
        failures += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    for latencies in &mut per_path {
        latencies.sort_unstable();
    }
    Load {
        rate: all.len() as f64 / elapsed,
        latencies: all,
        per_path,
        failures,
        body_bytes,
    }
}

/// Every event in the store, counted page by page.
async fn count_events(store: &dyn swarm_shared::ports::Store) -> usize {
    let mut query = swarm_shared::domain::EventQuery {
        page_size: 200,
        ..Default::default()
    };
    let mut count = 0;
    loop {
        let page = store.list_events(&query).await.unwrap();
        count += page.events.len();
        match page.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => return count,
        }
    }
}

pub fn figure(options: &Options) -> Value {
    let runtime = crate::runtime();
    let dir = tempfile::tempdir().unwrap();
    let feeds = dir.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let paths = write_files(&feeds, &generate(SEED_DOCS), "api");
    let config = bench_config(&dir.path().join("data"));
    runtime.block_on(async {
        let swarm = swarm_queen::Swarm::start(config, Some(swarm_tests::ADMIN_KEY.into()))
            .await
            .unwrap();
        let ctx = swarm.context().clone();
        for (index, path) in paths.iter().enumerate() {
            ctx.store
                .create_source(&file_source(&format!("api-{index}"), path, true))
                .await
                .unwrap();
        }
        // Sources added behind the API's back are picked up at the queen's next tick.
        drained(
            ctx.store.as_ref(),
            ctx.queue.as_ref(),
            Duration::from_secs(300),
        )
        .await;
        let events = count_events(ctx.store.as_ref()).await;
        assert!(events > 0, "the pipeline recorded no events to query");

        let plain = Router::new().route(
            "/plain",
            get(|| async { axum::Json(json!({"status": "ok", "events": []})) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain_addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, plain).await });
        // The same API with its page cache off (`server.events_cache_ttl = 0s`), over the same
        // store: what every request costs the store.
        let mut uncached_config = (*ctx.config).clone();
        uncached_config.server.events_cache_ttl = Duration::ZERO;
        let mut uncached_ctx = ctx.clone();
        uncached_ctx.config = Arc::new(uncached_config);
        let uncached_router =
            swarm_queen::api::router(swarm_queen::api::AppState::new(uncached_ctx));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uncached_addr = listener.local_addr().unwrap();
        let uncached_server =
            tokio::spawn(async move { axum::serve(listener, uncached_router).await });

        let api = format!("http://{}", swarm.api_addr().unwrap());
        let queries: Vec<String> = QUERIES.iter().map(|path| (*path).to_owned()).collect();
        let measured = load(&api, &queries, options.seconds).await;
        let uncached = load(
            &format!("http://{uncached_addr}"),
            &queries,
            options.seconds,
        )
        .await;
        uncached_server.abort();
        let base = load(
            &format!("http://{plain_addr}"),
            &["/plain".to_owned()],
            options.seconds,
        )
        .await;
        server.abort();
        swarm.shutdown().await;
        assert_eq!(
            measured.failures + base.failures + uncached.failures,
            0,
            "requests failed under load"
        );
        let (rate, latencies, base_rate, base_latencies) =
            (measured.rate, measured.latencies, base.rate, base.latencies);
        let p50 = quantile_ms(&latencies, 0.5);
        let p99 = quantile_ms(&latencies, 0.99);
        // Which filter set costs what: the figure is their mix.
        let per_query: Vec<Value> = queries
            .iter()
            .zip(&measured.per_path)
            .zip(&measured.body_bytes)
            .map(|((path, latencies), bytes)| {
                json!({
                    "path": path,
                    "body_bytes": bytes,
                    "requests": latencies.len(),
                    "p50_ms": round(quantile_ms(latencies, 0.5)),
                    "p99_ms": round(quantile_ms(latencies, 0.99)),
                })
            })
            .collect();
        json!({
            "name": "api",
            "value": round(rate),
            "unit": "req/s",
            "connections": CONNECTIONS,
            "seconds": options.seconds,
            "requests": latencies.len(),
            "events_in_store": events,
            "p50_ms": round(p50),
            "p99_ms": round(p99),
            "per_query": per_query,
            "cache": "on (server.events_cache_ttl = 1s, the default); the store's events do not change during the load, so nearly every request is a hit",
            "uncached": {
                "value": round(uncached.rate),
                "unit": "req/s",
                "p50_ms": round(quantile_ms(&uncached.latencies, 0.5)),
                "p99_ms": round(quantile_ms(&uncached.latencies, 0.99)),
                "note": "the same router with server.events_cache_ttl = 0s, same store, same run",
            },
            "baseline": {
                "name": "trivial axum endpoint, same process",
                "value": round(base_rate),
                "unit": "req/s",
                "p50_ms": round(quantile_ms(&base_latencies, 0.5)),
                "p99_ms": round(quantile_ms(&base_latencies, 0.99)),
                "body_bytes": base.body_bytes.first().copied().unwrap_or_default(),
            },
            "ratio_to_baseline": round(rate / base_rate),
            "target": "≥ 0.5 of baseline req/s, p99 < 10 ms",
            "met": rate >= 0.5 * base_rate && p99 < 10.0,
        })
    })
}
