//! Local receivers of alerts for the alert tests: one HTTP server answering like a generic
//! webhook, Slack, Discord and Telegram (and on purpose like a busy, a rate-limited and a
//! gone receiver), recording every request, and the webhook signature check the README
//! gives subscribers.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::json;

pub const SECRET: &str = "a-webhook-secret-for-tests";

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

#[derive(Default)]
pub struct Receivers {
    got: Mutex<Vec<Received>>,
}

impl Receivers {
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

/// Answers like each service: 200 (Slack answers `ok`, Telegram `{"ok": true}`), except
/// `/flaky` (500, then 200) and `/limited` (429 with Retry-After: 1, then 200).
async fn receive(
    State(state): State<Arc<Receivers>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let seen = {
        let mut got = state.got.lock().unwrap();
        got.push(Received {
            path: path.clone(),
            headers,
            body,
            at: Instant::now(),
        });
        got.iter().filter(|r| r.path == path).count()
    };
    match (path.as_str(), seen) {
        ("flaky", 1) => (StatusCode::INTERNAL_SERVER_ERROR, "busy").into_response(),
        ("limited", 1) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response(),
        ("gone", _) => (StatusCode::NOT_FOUND, "no such hook").into_response(),
        (path, _) if path.ends_with("sendMessage") => {
            axum::Json(json!({"ok": true, "result": {"message_id": 1}})).into_response()
        }
        ("slack", _) => "ok".into_response(),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

pub async fn start_receivers() -> (String, Arc<Receivers>) {
    let state = Arc::new(Receivers::default());
    let router = Router::new()
        .route("/{*path}", post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (format!("http://{addr}"), state)
}

/// Verifies a webhook request as the README tells subscribers to.
pub fn signature_verifies(received: &Received) -> bool {
    let header = received.headers["x-tge-swarm-signature"].to_str().unwrap();
    let mut timestamp = None;
    let mut mac = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => timestamp = Some(value.to_owned()),
            Some(("v1", value)) => mac = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(timestamp), Some(mac)) = (timestamp, mac) else {
        return false;
    };
    let fresh = (chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap()).abs() <= 300;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&received.body);
    let Ok(mac) = hex::decode(mac) else {
        return false;
    };
    fresh && ring::hmac::verify(&key, &signed, &mac).is_ok()
}
