//! The API's operational side: the events page cache, dead letters, wrong methods and
//! headers, and the scope of commands.

use std::time::Duration;

use serde_json::json;
use swarm_tests::{ADMIN_KEY, TestSwarm, eventually};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_pages_are_cached_until_an_event_is_announced() {
    let swarm = TestSwarm::start(|config| {
        config.server.events_cache_ttl = Duration::from_secs(60);
    })
    .await;
    let ctx = swarm.swarm.context().clone();
    let (status, body) = swarm.get("/api/v1/events").await;
    assert_eq!(status, 200);
    assert_eq!(body["events"].as_array().unwrap().len(), 0);

    // Recorded behind the cache's back (no announcement): the cached page is still served.
    let item = classified(0);
    let outcome = ctx
        .store
        .record_classified(&item, "project0", None, Duration::from_secs(3600))
        .await
        .unwrap();
    let swarm_shared::domain::RecordOutcome::EventCreated(event_id) = outcome else {
        panic!("expected a new event, got {outcome:?}")
    };
    let (_, body) = swarm.get("/api/v1/events").await;
    assert_eq!(
        body["events"].as_array().unwrap().len(),
        0,
        "the page is served from the cache"
    );
    // Another query is its own page.
    let (_, body) = swarm.get("/api/v1/events?page_size=10").await;
    assert_eq!(body["events"].as_array().unwrap().len(), 1);

    // The data quality agent's announcement, through the bus: the cached page is dropped.
    swarm_shared::ports::publish(
        ctx.bus.as_ref(),
        &swarm_shared::messages::AgentMessage::EventRecorded {
            event_id,
            created: true,
            project: Some("project0".into()),
            documents: 1,
        },
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(5),
        "the announced event is listed",
        || async {
            let (_, body) = swarm.get("/api/v1/events").await;
            body["events"]
                .as_array()
                .is_some_and(|events| events.len() == 1)
        },
    )
    .await;
    let metrics = swarm.metrics().await;
    assert!(
        metrics.contains("tge_swarm_api_cache_lookups_total{result=\"hit\"}"),
        "hits are counted"
    );
    swarm.stop().await;
}

/// An item no agent can handle is set aside in the dead-letter queue, and operators see it,
/// with why, in `GET /api/v1/dead-letters` (admin key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_with_their_reasons() {
    let swarm = TestSwarm::start(|_| {}).await;
    let queue = swarm.swarm.context().queue.clone();
    queue
        .enqueue(
            swarm_shared::channels::QUEUE_CLASSIFY,
            vec![b"{\"not\": \"a document\"}".to_vec()],
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(20), "a dead letter", || async {
        let (status, _, body) = send(
            &swarm,
            reqwest::Method::GET,
            "/api/v1/dead-letters",
            Some(ADMIN_KEY),
            None,
        )
        .await;
        status == 200 && body["total"] == 1
    })
    .await;
    let (_, _, body) = send(
        &swarm,
        reqwest::Method::GET,
        "/api/v1/dead-letters?limit=10",
        Some(ADMIN_KEY),
        None,
    )
    .await;
    let letter = &body["dead_letters"][0];
    assert_eq!(
        letter["queue"],
        swarm_shared::channels::QUEUE_CLASSIFY,
        "{body}"
    );
    assert_eq!(letter["reason"], "undecodable");
    assert!(
        letter["payload"]
            .as_str()
            .is_some_and(|p| p.contains("a document"))
    );
    let (status, content_type, body) = send(
        &swarm,
        reqwest::Method::GET,
        "/api/v1/dead-letters",
        None,
        None,
    )
    .await;
    assert_problem(status, &content_type, &body, 401, "X-API-Key");
    let (status, content_type, body) = send(
        &swarm,
        reqwest::Method::GET,
        "/api/v1/dead-letters?limit=0",
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_problem(status, &content_type, &body, 400, "limit");
    swarm.stop().await;
}

/// Hygiene of every answer: a wrong method is a problem+json 405, responses carry the
/// security headers, and issuing commands takes an admin key (a write key is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_headers_and_command_scope() {
    let swarm = TestSwarm::start(|_| {}).await;
    let (status, content_type, body) = send(
        &swarm,
        reqwest::Method::DELETE,
        "/api/v1/events",
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_problem(
        status,
        &content_type,
        &body,
        405,
        "does not take that method",
    );
    let (status, content_type, body) =
        send(&swarm, reqwest::Method::POST, "/healthz", None, None).await;
    assert_problem(
        status,
        &content_type,
        &body,
        405,
        "does not take that method",
    );

    let response = swarm
        .http
        .get(swarm.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );

    let writer = "a-write-scoped-key-0123456789";
    swarm
        .swarm
        .context()
        .store
        .insert_api_key(
            "writer",
            &swarm_queen::keys::hash_key(writer),
            &["write".to_owned()],
        )
        .await
        .unwrap();
    let command = json!({"action": "scale", "kind": "keyword", "replicas": 2});
    let (status, content_type, body) = send(
        &swarm,
        reqwest::Method::POST,
        "/api/v1/commands",
        Some(writer),
        Some(command.clone()),
    )
    .await;
    assert_problem(status, &content_type, &body, 403, "admin scope");
    let (status, _, _) = send(
        &swarm,
        reqwest::Method::POST,
        "/api/v1/commands",
        Some(ADMIN_KEY),
        Some(command),
    )
    .await;
    assert_eq!(status, 202);
    swarm.stop().await;
}
