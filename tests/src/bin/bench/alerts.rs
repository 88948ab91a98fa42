//! `alerts`: alert latency, from an event being stored to a subscriber's webhook receiving its
//! signed alert. An in-process swarm with the shipped delivery settings (the deliverer polls
//! every `delivery.poll_interval`, 250 ms) and one webhook subscription served by a local receiver; `--probes` events
//! are stored one at a time, each when the previous alert has arrived, at a random point of
//! the poll cycle. Baseline: the same webhook request sent straight from a client, the floor
//! of any delivery (one loopback POST with the alert's body).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use rand::Rng as _;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::{Options, quantile_ms, round, runtime};

#[derive(Default)]
struct Receiver {
    arrivals: Mutex<Vec<Instant>>,
    arrived: Notify,
}

async fn receive(State(receiver): State<Arc<Receiver>>) -> StatusCode {
    receiver.arrivals.lock().unwrap().push(Instant::now());
    receiver.arrived.notify_one();
    StatusCode::NO_CONTENT
}

/// The `alerts` figure.
pub(crate) fn figure(options: &Options) -> Value {
    let probes = options.probes;
    runtime().block_on(async {
        let receiver = Arc::new(Receiver::default());
        let router = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

        let dir = tempfile::tempdir().unwrap();
        let mut config = swarm_tests::test_config(dir.path());
        config.delivery = swarm_shared::config::DeliveryConfig::default();
        let poll = config.delivery.poll_interval;
        let swarm = swarm_queen::Swarm::start(config, Some(swarm_tests::ADMIN_KEY.into()))
            .await
            .unwrap();
        let api = format!("http://{}", swarm.api_addr().unwrap());
        let http = reqwest::Client::new();
        let created = http
            .post(format!("{api}/api/v1/subscriptions"))
            .header("X-API-Key", swarm_tests::ADMIN_KEY)
            .json(&json!({"name": "bench", "channel": {"type": "webhook", "url": hook, "secret": "a-bench-secret-of-some-length"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 201);

        let store = swarm.context().store.clone();
        let mut rng = rand::rng();
        let mut latencies = Vec::with_capacity(probes);
        for index in 0..probes {
            // A random phase of the deliverer's poll cycle.
            let pause = rng.random_range(Duration::ZERO..poll);
            tokio::time::sleep(pause).await;
            let item = probe_document(index);
            let before = receiver.arrivals.lock().unwrap().len();
            store
                .record_classified(&item, &format!("bench-{index}"), None, Duration::from_secs(3600))
                .await
                .unwrap();
            let stored = Instant::now();
            loop {
                let arrived = receiver.arrivals.lock().unwrap().get(before).copied();
                if let Some(at) = arrived {
                    latencies.push(at - stored);
                    break;
                }
                tokio::time::timeout(Duration::from_secs(30), receiver.arrived.notified())
                    .await
                    .expect("an alert within 30 s");
            }
        }
        let delivered = receiver.arrivals.lock().unwrap().len();
        swarm.shutdown().await;

        // Baseline: the same request straight from a client.
        let body = json!({"type": "tge.event.created", "event": {"id": 1, "project": "Bench"}}).to_string();
        let mut direct = Vec::with_capacity(probes);
        for _ in 0..probes {
            let started = Instant::now();
            let answer = http
                .post(&hook)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), 204);
            direct.push(started.elapsed());
        }
        latencies.sort_unstable();
        direct.sort_unstable();
        let p50 = quantile_ms(&latencies, 0.5);
        let p99 = quantile_ms(&latencies, 0.99);
        json!({
            "name": "alerts",
            "value": round(p99),
            "unit": "ms p99",
            "p50_ms": round(p50),
            "p99_ms": round(p99),
            "max_ms": round(latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)),
            "probes": probes,
            "alerts_received": delivered,
            "poll_interval_ms": poll.as_millis() as u64,
            "baseline": {"name": "the webhook POST sent directly", "value": round(quantile_ms(&direct, 0.99)), "unit": "ms p99", "p50_ms": round(quantile_ms(&direct, 0.5))},
            "ratio_to_baseline": round(p99 / quantile_ms(&direct, 0.99).max(1e-3)),
            "target": 2000.0,
            "met": p99 < 2000.0 && delivered == probes,
        })
    })
}

/// A TGE announcement of its own project, so each makes a new event.
fn probe_document(index: usize) -> swarm_shared::domain::ClassifiedDocument {
    use swarm_shared::domain::{ClassifiedDocument, Detection, Document, Evidence, document_id};
    let url = format!("https://bench.example/alerts/{index}");
    let title = format!("Benchproject{index} sets its TGE");
    let text = format!("Benchproject{index} announces its token generation event next week.");
    ClassifiedDocument {
        document: Document {
            source_kind: None,
            facts: Default::default(),
            id: document_id(&url, &title, &text),
            source_id: 1,
            source_name: "bench".into(),
            source_tier: 1,
            url,
            title: title.clone(),
            text,
            published_at: None,
            fetched_at: chrono::Utc::now(),
        },
        detection: Detection {
            join_only: false,
            score: 0.95,
            is_tge: true,
            project: Some(format!("Benchproject{index}")),
            token: Some(format!("BP{index}")),
            event_date: None,
            evidence: vec![Evidence {
                feature: "phrase:strong:tge".into(),
                snippet: title,
                weight: 2.6,
            }],
        },
    }
}
