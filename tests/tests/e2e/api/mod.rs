//! The REST API: auth, validation, CRUD, problem+json errors, pagination, OpenAPI, health.

use std::time::Duration;

use serde_json::{Value, json};
use swarm_shared::domain::{ClassifiedDocument, Detection, Document, document_id};
use swarm_tests::{ADMIN_KEY, TestSwarm, all_healthy, eventually};

mod alerts;
mod announcement;
mod exports;
mod keys;
mod operations;
mod receivers;
mod source_health;
mod stream;
mod workflow;

fn source_body(name: &str) -> Value {
    json!({"name": name, "kind": "rss", "url": "https://feeds.example/rss", "interval": "30s"})
}

async fn send(
    swarm: &TestSwarm,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut request = swarm.http.request(method, swarm.url(path));
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, content_type, value)
}

fn assert_problem(status: u16, content_type: &str, body: &Value, expected: u16, needle: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["status"], expected);
    let detail = body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains(needle),
        "detail {detail:?} lacks {needle:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_and_companies_crud_with_auth_and_validation() {
    use reqwest::Method;
    let swarm = TestSwarm::start(|_| {}).await;

    let (status, content_type, body) = send(
        &swarm,
        Method::POST,
        "/api/v1/sources",
        None,
        Some(source_body("a")),
    )
    .await;
    assert_problem(status, &content_type, &body, 401, "missing X-API-Key");
    let (status, content_type, body) = send(
        &swarm,
        Method::POST,
        "/api/v1/sources",
        Some("wrong-key"),
        Some(source_body("a")),
    )
    .await;
    assert_problem(status, &content_type, &body, 401, "unknown API key");

    let (status, _, created) = send(
        &swarm,
        Method::POST,
        "/api/v1/sources",
        Some(ADMIN_KEY),
        Some(source_body("a")),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "a");
    assert_eq!(created["interval"], "30s");
    assert_eq!(created["kind"], "rss");
    let id = created["id"].as_i64().unwrap();

    let cases: Vec<(Value, u16, &str)> = vec![
        (source_body("a"), 409, "already exists"),
        (
            json!({"name": "b", "kind": "rss", "url": "https://x.example", "interval": "soon"}),
            422,
            "interval",
        ),
        (
            json!({"name": "b", "kind": "rss", "url": "https://x.example", "interval": "30s", "colour": "red"}),
            422,
            "colour",
        ),
        (
            json!({"name": "b", "kind": "html", "url": "https://x.example", "interval": "30s"}),
            422,
            "selectors",
        ),
        (
            json!({"name": "b", "kind": "html", "url": "https://x.example", "interval": "30s",
                   "selectors": {"item": "article", "link": "a[["}}),
            422,
            "invalid CSS selector `a[[` in selectors.link",
        ),
        (
            json!({"name": "b", "kind": "rss", "url": "ftp://x.example", "interval": "30s"}),
            422,
            "url",
        ),
        (
            json!({"name": "b", "kind": "file", "url": "https://x.example", "interval": "30s"}),
            422,
            "file://",
        ),
        (
            json!({"name": "b", "kind": "gopher", "url": "https://x.example", "interval": "30s"}),
            422,
            "kind",
        ),
        (
            json!({"name": "b", "kind": "rss", "url": "https://x.example", "interval": "1ms"}),
            422,
            "interval",
        ),
        // The outbound guard: internal addresses (127.0.0.1 alone is allowed in the tests'
        // config), localhost, and files outside scraping.file_root, in 422s naming the url.
        (
            json!({"name": "b", "kind": "rss", "url": "http://2130706434/feed", "interval": "1m"}),
            422,
            "url: 127.0.0.2 is a loopback address, not a public one; list it in scraping.allow_hosts",
        ),
        (
            json!({"name": "b", "kind": "rss", "url": "http://[::ffff:169.254.169.254]/", "interval": "1m"}),
            422,
            "link-local address",
        ),
        (
            json!({"name": "b", "kind": "rss", "url": "http://localhost:8080/", "interval": "1m"}),
            422,
            "url: localhost is a loopback address",
        ),
        (
            json!({"name": "b", "kind": "rss", "url": "http://10.0.0.7/", "interval": "1m"}),
            422,
            "private address",
        ),
        (
            json!({"name": "b", "kind": "file", "url": "file:///proc/self/environ", "interval": "1m"}),
            422,
            "url: /proc/self/environ is not a readable file under scraping.file_root",
        ),
    ];
    for (body, expected, needle) in cases {
        let (status, content_type, problem) = send(
            &swarm,
            Method::POST,
            "/api/v1/sources",
            Some(ADMIN_KEY),
            Some(body.clone()),
        )
        .await;
        assert_problem(status, &content_type, &problem, expected, needle);
    }
    let malformed = swarm
        .http
        .post(swarm.url("/api/v1/sources"))
        .header("X-API-Key", ADMIN_KEY)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);

    let mut replacement = source_body("a-renamed");
    replacement["interval"] = json!("2m");
    let (status, _, updated) = send(
        &swarm,
        Method::PUT,
        &format!("/api/v1/sources/{id}"),
        Some(ADMIN_KEY),
        Some(replacement.clone()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["interval"], "2m");
    let (status, _, _) = send(
        &swarm,
        Method::PUT,
        &format!("/api/v1/sources/{id}"),
        None,
        Some(replacement),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, listed) = send(&swarm, Method::GET, "/api/v1/sources", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["sources"].as_array().unwrap().len(), 1);
    let (status, _, _) = send(
        &swarm,
        Method::DELETE,
        &format!("/api/v1/sources/{id}"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, content_type, body) = send(
        &swarm,
        Method::GET,
        &format!("/api/v1/sources/{id}"),
        None,
        None,
    )
    .await;
    assert_problem(status, &content_type, &body, 404, "not found");
    let (status, content_type, body) =
        send(&swarm, Method::GET, "/api/v1/sources/abc", None, None).await;
    assert_problem(status, &content_type, &body, 400, "");

    // Companies: the default watchlist is seeded.
    let (_, _, companies) = send(&swarm, Method::GET, "/api/v1/companies", None, None).await;
    assert_eq!(companies["companies"].as_array().unwrap().len(), 15);
    let company = json!({"name": "Nebula Chain", "aliases": ["Nebula"], "tickers": ["NEB"], "priority": "HIGH"});
    let (status, _, created) = send(
        &swarm,
        Method::POST,
        "/api/v1/companies",
        Some(ADMIN_KEY),
        Some(company.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "pre_token");
    let (status, _, _) = send(
        &swarm,
        Method::POST,
        "/api/v1/companies",
        Some(ADMIN_KEY),
        Some(company),
    )
    .await;
    assert_eq!(status, 409);
    let bad = json!({"name": "Bad", "tickers": ["NOT A TICKER"]});
    let (status, content_type, body) = send(
        &swarm,
        Method::POST,
        "/api/v1/companies",
        Some(ADMIN_KEY),
        Some(bad),
    )
    .await;
    assert_problem(status, &content_type, &body, 422, "tickers[0]");
    let company_id = created["id"].as_i64().unwrap();
    let (status, _, updated) = send(
        &swarm,
        Method::PUT,
        &format!("/api/v1/companies/{company_id}"),
        Some(ADMIN_KEY),
        Some(json!({"name": "Nebula Chain", "tickers": ["NEB", "NEB2"], "priority": "LOW"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["tickers"], json!(["NEB", "NEB2"]));
    let (status, _, _) = send(
        &swarm,
        Method::DELETE,
        &format!("/api/v1/companies/{company_id}"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, 204);
    swarm.stop().await;
}

pub(crate) fn classified(index: usize) -> ClassifiedDocument {
    let url = format!("https://api-test.example/{index}");
    let title = format!("Project{index} announces TGE");
    let text = "token generation event next week".to_owned();
    ClassifiedDocument {
        document: Document {
            source_kind: None,
            facts: Default::default(),
            id: document_id(&url, &title, &text),
            source_id: 1,
            source_name: "seed".into(),
            source_tier: 1,
            url,
            title,
            text,
            published_at: None,
            fetched_at: chrono::Utc::now(),
        },
        detection: Detection {
            join_only: false,
            score: 0.9,
            is_tge: true,
            project: Some(format!("Project{index}")),
            token: Some(format!("P{index}")),
            event_date: None,
            evidence: vec![],
        },
    }
}

/// An announcement of `project` (`$token`) titled `title`, as the keyword agents classify one.
pub(crate) fn announcement(
    index: usize,
    title: &str,
    project: &str,
    token: &str,
) -> ClassifiedDocument {
    let mut item = classified(index);
    item.document.title = title.to_owned();
    item.detection.project = Some(project.to_owned());
    item.detection.token = Some(token.to_owned());
    item
}

/// Records `item` as the data quality agents do, merging by its project (lower case).
pub(crate) async fn record(
    swarm: &swarm_tests::TestSwarm,
    item: &ClassifiedDocument,
) -> swarm_shared::domain::RecordOutcome {
    let key = item
        .detection
        .project
        .as_deref()
        .unwrap_or_default()
        .to_lowercase();
    swarm
        .swarm
        .context()
        .store
        .record_classified(item, &key, None, std::time::Duration::from_secs(3600))
        .await
        .unwrap()
}

/// Records `item`, which must create an event; the event's id.
pub(crate) async fn create_event(swarm: &swarm_tests::TestSwarm, item: &ClassifiedDocument) -> i64 {
    match record(swarm, item).await {
        swarm_shared::domain::RecordOutcome::EventCreated(id) => id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_pagination_filters_openapi_and_health() {
    let swarm = TestSwarm::start(|_| {}).await;
    let store = swarm.swarm.context().store.clone();
    for index in 0..5 {
        let item = classified(index);
        store
            .record_classified(
                &item,
                &format!("project{index}"),
                None,
                Duration::from_secs(3600),
            )
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/events?page_size=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, body) = swarm.get(&path).await;
        assert_eq!(status, 200);
        pages += 1;
        seen.extend(
            body["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match body["next_page_token"].as_str() {
            Some(token) => path = format!("/api/v1/events?page_size=2&page_token={token}"),
            None => {
                assert!(body["next_page_token"].is_null());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5);

    for (path, needle) in [
        ("/api/v1/events?page_size=0", "page_size"),
        ("/api/v1/events?page_size=201", "page_size"),
        ("/api/v1/events?sources_per_event=201", "sources_per_event"),
        ("/api/v1/events?sources_per_event=-1", "sources_per_event"),
        ("/api/v1/events?min_score=2", "min_score"),
        ("/api/v1/events?since=yesterday", "since"),
        ("/api/v1/events?page_token=zzz", "page_token"),
        ("/api/v1/events?q=%25%20%24", "no word"),
        (
            "/api/v1/events?q=a%20b%20c%20d%20e%20f%20g%20h%20i",
            "at most 8",
        ),
        ("/api/v1/events?colour=red", "colour"),
    ] {
        let response = swarm.http.get(swarm.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path}");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains(needle),
            "{path}: {problem}"
        );
    }
    let (_, filtered) = swarm.get("/api/v1/events?token=p3&since=2020-01-01").await;
    assert_eq!(filtered["events"].as_array().unwrap().len(), 1);
    let (status, bare) = swarm.get("/api/v1/events?sources_per_event=0").await;
    assert_eq!(status, 200);
    for event in bare["events"].as_array().unwrap() {
        assert_eq!(event["sources"], json!([]), "{event}");
        assert!(event["source_count"].as_u64().unwrap() >= 1, "{event}");
    }
    let (status, _) = swarm.get("/api/v1/events/999999").await;
    assert_eq!(status, 404);

    let (status, openapi) = swarm.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let paths = openapi["paths"].as_object().unwrap();
    for path in [
        "/api/v1/events",
        "/api/v1/events/{id}",
        "/api/v1/events/{id}/feedback",
        "/api/v1/classify",
        "/api/v1/sources",
        "/api/v1/sources/{id}",
        "/api/v1/companies",
        "/api/v1/companies/{id}",
        "/api/v1/agents",
        "/api/v1/memory/{namespace}",
        "/api/v1/synthesis/latest",
        "/api/v1/dead-letters",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(path), "openapi lacks {path}");
    }
    assert!(openapi["components"]["securitySchemes"]["api_key"].is_object());
    let list_params: Vec<&str> = openapi["paths"]["/api/v1/events"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        list_params.contains(&"sources_per_event"),
        "{list_params:?}"
    );
    assert!(
        openapi["components"]["schemas"]["TgeEvent"]["properties"]["source_count"].is_object(),
        "TgeEvent lacks source_count"
    );

    let (status, _) = swarm.get("/healthz").await;
    assert_eq!(status, 200);
    eventually(
        Duration::from_secs(20),
        "readyz ready with eight healthy actors",
        || async {
            // The queen, the health supervisor, the memory coordinator and five specialists.
            let (status, body) = swarm.get("/readyz").await;
            status == 200 && body["checks"]["agents"]["total"] == 8
        },
    )
    .await;
    let (status, body) = swarm.get("/api/v1/no-such-route").await;
    assert_eq!(status, 404);
    assert_eq!(body["status"], 404);
    let agents = swarm.agents().await;
    assert!(all_healthy(&agents));
    for agent in &agents {
        for field in ["id", "kind", "status", "restarts", "last_heartbeat"] {
            assert!(agent.get(field).is_some(), "agent lacks {field}");
        }
    }
    assert!(
        agents
            .iter()
            .any(|a| a["id"] == "health-supervisor" && a["kind"] == "queen")
    );
    swarm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_can_require_a_key_and_a_first_start_generates_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = swarm_tests::test_config(dir.path());
    config.server.require_key_for_reads = true;
    let swarm = swarm_queen::Swarm::start(config.clone(), None)
        .await
        .unwrap();
    let key = swarm
        .generated_admin_key()
        .expect("a key is generated at first start")
        .to_owned();
    assert!(key.starts_with("tgs_"));
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/v1/events", swarm.api_addr().unwrap());
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        401
    );
    assert_eq!(
        client
            .get(&url)
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    swarm.shutdown().await;

    // Second start on the same store: no new key, the first still works.
    config.node.name = format!("{}-again", config.node.name);
    let again = swarm_queen::Swarm::start(config.clone(), None)
        .await
        .unwrap();
    assert!(again.generated_admin_key().is_none());
    let url = format!("http://{}/api/v1/sources", again.api_addr().unwrap());
    let response = client
        .post(&url)
        .header("X-API-Key", &key)
        .json(
            &json!({"name": "x", "kind": "rss", "url": "https://x.example/rss", "interval": "1m"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    again.shutdown().await;

    // A start with a key in the environment replaces the bootstrap key: the generated one is
    // revoked.
    config.node.name = format!("{}-rotated", config.node.name);
    let rotated_key = "a-rotated-admin-key-0123456789";
    let rotated = swarm_queen::Swarm::start(config, Some(rotated_key.into()))
        .await
        .unwrap();
    let url = format!("http://{}/api/v1/sources", rotated.api_addr().unwrap());
    for (key, expected) in [(key.as_str(), 401), (rotated_key, 200)] {
        let response = client
            .get(&url)
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "key {key}");
    }
    rotated.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queen_learns_every_actor_without_waiting_a_heartbeat_interval() {
    // With a 60 s heartbeat, only the queen's start-up report request can make it see every
    // actor within seconds.
    let swarm = TestSwarm::start(|config| {
        config.supervision.heartbeat_interval = Duration::from_secs(60);
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "every actor known and healthy",
        || async { all_healthy(&swarm.agents().await) },
    )
    .await;
    let (status, body) = swarm.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["agents"]["missing_kinds"], json!([]));
    swarm.stop().await;
}
