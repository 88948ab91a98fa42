//! The X API v2 connector against a local server answering in X's documented shapes (written
//! for these tests): the bearer token, recent search with `since_id` and `next_token` pages,
//! an account's timeline after a username lookup, rate-limit headers and 429, a rejected
//! token, an unknown account, and a missing token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::{Value, json};
use swarm_agents::scraping::exchange::{Failure, Read};
use swarm_agents::scraping::fetch::{FetchError, Fetcher};
use swarm_agents::scraping::parse::Limits;
use swarm_agents::scraping::x;
use swarm_shared::config::ScrapingConfig;
use swarm_shared::domain::{ScrapeTask, Source, SourceKind, X_TOKEN_ENV};

const TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAtest%2Fbearer";

#[derive(Default)]
struct Api {
    /// Every request's path and query, in order.
    requests: Mutex<Vec<String>>,
    /// Answer 429 with a spent window.
    limited: Mutex<bool>,
    /// Say the window's last request was spent, on success.
    last_in_window: Mutex<bool>,
}

/// Posts 1..=n of @VeloraHQ (id 7), newest first, ids 1866000000000000000 + i.
fn post(i: u64) -> Value {
    json!({"id": (1_866_000_000_000_000_000_u64 + i).to_string(), "author_id": "7",
           "created_at": format!("2026-12-04T09:{:02}:00.000Z", i % 60),
           "edit_history_tweet_ids": [(1_866_000_000_000_000_000_u64 + i).to_string()],
           "text": format!("Update {i}. Velora (VLR) claim portal news.")})
}

fn page(ids: &[u64], next: Option<&str>) -> Value {
    let data: Vec<Value> = ids.iter().map(|i| post(*i)).collect();
    let mut meta = json!({"result_count": ids.len()});
    if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
        meta["newest_id"] = json!((1_866_000_000_000_000_000_u64 + first).to_string());
        meta["oldest_id"] = json!((1_866_000_000_000_000_000_u64 + last).to_string());
    }
    if let Some(next) = next {
        meta["next_token"] = json!(next);
    }
    if ids.is_empty() {
        return json!({"meta": meta});
    }
    json!({"data": data, "includes": {"users": [{"id": "7", "name": "Velora", "username": "VeloraHQ"}]}, "meta": meta})
}

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn unauthorised() -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}))).into_response()
}

fn answer(api: &Api, body: Value) -> Response {
    let reset = (Utc::now().timestamp() + 90).to_string();
    if *api.limited.lock().unwrap() {
        return (StatusCode::TOO_MANY_REQUESTS,
                [("x-rate-limit-limit", "60".to_owned()), ("x-rate-limit-remaining", "0".to_owned()), ("x-rate-limit-reset", reset)],
                axum::Json(json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}))).into_response();
    }
    let remaining = if *api.last_in_window.lock().unwrap() {
        "0"
    } else {
        "59"
    };
    (
        [
            ("x-rate-limit-limit", "60".to_owned()),
            ("x-rate-limit-remaining", remaining.to_owned()),
            ("x-rate-limit-reset", reset),
        ],
        axum::Json(body),
    )
        .into_response()
}

async fn search(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    uri: axum::http::Uri,
) -> Response {
    api.requests.lock().unwrap().push(uri.to_string());
    if !authorised(&headers) {
        return unauthorised();
    }
    if query.get("query").is_none_or(|q| q.is_empty()) {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"title": "Invalid Request", "detail": "One or more parameters to your request was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"}))).into_response();
    }
    let body = match (
        query.get("since_id").map(String::as_str),
        query.get("next_token").map(String::as_str),
    ) {
        // The first read: the newest page, with more behind it.
        (None, _) => page(&[30, 29], Some("older-1")),
        // After post 25: 26..=30 are new, in two pages.
        (Some("1866000000000000025"), None) => page(&[30, 29, 28], Some("p2")),
        (Some("1866000000000000025"), Some("p2")) => page(&[27, 26], None),
        (Some(_), _) => page(&[], None),
    };
    answer(&api, body)
}

async fn user(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    api.requests.lock().unwrap().push(uri.to_string());
    if !authorised(&headers) {
        return unauthorised();
    }
    if name == "VeloraHQ" {
        return answer(
            &api,
            json!({"data": {"id": "7", "name": "Velora", "username": "VeloraHQ"}}),
        );
    }
    answer(
        &api,
        json!({"errors": [{"value": name, "detail": format!("Could not find user with username: [{name}]."),
        "title": "Not Found Error", "resource_type": "user", "parameter": "username", "resource_id": name,
        "type": "https://api.twitter.com/2/problems/resource-not-found"}]}),
    )
}

async fn timeline(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    api.requests.lock().unwrap().push(uri.to_string());
    if !authorised(&headers) || id != "7" {
        return unauthorised();
    }
    let mut body = page(&[12, 11], None);
    // A timeline's posts carry no expansions: the handle comes from the source.
    body.as_object_mut().unwrap().remove("includes");
    answer(&api, body)
}

async fn server() -> (SocketAddr, Arc<Api>) {
    let api = Arc::new(Api::default());
    let router = Router::new()
        .route("/2/tweets/search/recent", get(search))
        .route("/2/users/by/username/{name}", get(user))
        .route("/2/users/{id}/tweets", get(timeline))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, api)
}

fn task(
    addr: SocketAddr,
    query: Option<&str>,
    account: Option<&str>,
    marker: Option<String>,
) -> ScrapeTask {
    ScrapeTask {
        source: Source {
            provenance: None,
            id: 1,
            name: "x".into(),
            kind: SourceKind::X,
            url: format!("http://{addr}"),
            interval: Duration::from_secs(60),
            selectors: None,
            exchange: None,
            feed: None,
            json: None,
            channel: None,
            query: query.map(str::to_owned),
            account: account.map(str::to_owned),
            tier: 1,
            enabled: true,
            created_at: Utc::now(),
            last_fetch_at: None,
            last_status: None,
            last_error: None,
            consecutive_failures: 0,
            last_item_count: 0,
            effective_interval: None,
            content_hash: marker.clone(),
            etag: None,
            last_modified: None,
            down_since: None,
            down_reason: None,
        },
        scheduled_at: Utc::now(),
        etag: None,
        last_modified: None,
        content_hash: marker,
    }
}

async fn read_with(token: Option<&str>, task: &ScrapeTask) -> Result<Read, Failure> {
    let fetcher = Fetcher::new(&ScrapingConfig {
        x_bearer_token: token.map(swarm_shared::config::Secret::new),
        retries: 0,
        timeout: Duration::from_secs(5),
        allow_hosts: vec!["127.0.0.1".into()],
        ..ScrapingConfig::default()
    })
    .unwrap();
    x::read(&fetcher, task, &Limits::default()).await
}

async fn read(task: &ScrapeTask) -> Result<Read, Failure> {
    read_with(Some(TOKEN), task).await
}

fn notices(result: Result<Read, Failure>) -> (Vec<String>, String, Option<Duration>) {
    match result {
        Ok(Read::Notices {
            items,
            content_hash,
            hold,
        }) => (
            items.into_iter().map(|i| i.link.unwrap()).collect(),
            content_hash,
            hold,
        ),
        other => panic!("expected posts, got {other:?}"),
    }
}

fn parse_error(result: Result<Read, Failure>) -> String {
    match result {
        Err(Failure::Parse(reason)) => reason,
        other => panic!("expected a source error, got {other:?}"),
    }
}

#[tokio::test]
async fn x_search_and_timelines_with_since_id_pages_and_rate_limits() {
    let (addr, api) = server().await;
    let search = Some("(TGE OR airdrop) lang:en -is:retweet");
    let reason = parse_error(read_with(None, &task(addr, search, None, None)).await);
    assert_eq!(
        reason,
        format!("x sources need an app-only bearer token in {X_TOKEN_ENV}")
    );
    assert!(
        api.requests.lock().unwrap().is_empty(),
        "nothing is sent without a token"
    );
    let reason = parse_error(read_with(Some("wrong"), &task(addr, search, None, None)).await);
    assert_eq!(
        reason,
        format!("X rejected the bearer token (HTTP 401): check {X_TOKEN_ENV}")
    );
    api.requests.lock().unwrap().clear();

    // First read: one page, however many lie behind it.
    let (links, marker, hold) = notices(read(&task(addr, search, None, None)).await);
    assert_eq!(
        links,
        vec![
            "https://x.com/VeloraHQ/status/1866000000000000030",
            "https://x.com/VeloraHQ/status/1866000000000000029"
        ]
    );
    assert_eq!(marker, "x1 since=1866000000000000030");
    assert_eq!(hold, None);
    let asked = std::mem::take(&mut *api.requests.lock().unwrap());
    assert_eq!(asked.len(), 1);
    assert!(
        asked[0].contains("max_results=100") && !asked[0].contains("since_id"),
        "{asked:?}"
    );

    // After post 25: everything newer, page by page.
    let (links, marker, _) = notices(
        read(&task(
            addr,
            search,
            None,
            Some("x1 since=1866000000000000025".into()),
        ))
        .await,
    );
    assert_eq!(links.len(), 5, "{links:?}");
    assert_eq!(marker, "x1 since=1866000000000000030");
    let asked = std::mem::take(&mut *api.requests.lock().unwrap());
    assert!(
        asked[1].contains("next_token=p2") && asked[1].contains("since_id=1866000000000000025"),
        "{asked:?}"
    );
    // Nothing new: an empty read that keeps the marker.
    let (links, marker, _) = notices(read(&task(addr, search, None, Some(marker))).await);
    assert!(links.is_empty());
    assert_eq!(marker, "x1 since=1866000000000000030");

    // An account: its id looked up once, then kept in the marker.
    let (links, marker, _) = notices(read(&task(addr, None, Some("@VeloraHQ"), None)).await);
    assert_eq!(
        links[0],
        "https://x.com/VeloraHQ/status/1866000000000000012"
    );
    assert_eq!(marker, "x1 since=1866000000000000012 uid=7");
    api.requests.lock().unwrap().clear();
    let _ = notices(read(&task(addr, None, Some("VeloraHQ"), Some(marker))).await);
    let asked = std::mem::take(&mut *api.requests.lock().unwrap());
    assert_eq!(asked.len(), 1, "no second lookup: {asked:?}");
    assert!(
        asked[0].starts_with("/2/users/7/tweets?")
            && asked[0].contains("since_id=1866000000000000012"),
        "{asked:?}"
    );
    let reason = parse_error(read(&task(addr, None, Some("nobody_here"), None)).await);
    assert_eq!(
        reason,
        "X has no account @nobody_here: Could not find user with username: [nobody_here]."
    );

    // The window's last request: the source is held until it resets.
    *api.last_in_window.lock().unwrap() = true;
    let (_, _, hold) = notices(read(&task(addr, search, None, None)).await);
    assert!(
        hold.is_some_and(|wait| wait > Duration::from_secs(60) && wait <= Duration::from_secs(90)),
        "{hold:?}"
    );
    // Over the limit: a 429 that waits for the reset (the breaker honours it swarm-wide).
    *api.limited.lock().unwrap() = true;
    match read(&task(addr, search, None, None)).await {
        Err(Failure::Fetch(err @ FetchError::Status { status: 429, .. })) => {
            assert!(err.is_rate_limited());
            assert!(
                err.retry_after()
                    .is_some_and(|wait| wait > Duration::from_secs(60)),
                "{err:?}"
            );
        }
        other => panic!("429: {other:?}"),
    }
}
