//! Queen commands end to end: stored as desired state, announced, applied by the host; and
//! service discovery through the registry.

use std::time::Duration;

use serde_json::{Value, json};
use swarm_tests::{ADMIN_KEY, TestSwarm, eventually};

async fn command(swarm: &TestSwarm, body: Value, key: Option<&str>) -> (u16, Value) {
    let mut request = swarm.http.post(swarm.url("/api/v1/commands")).json(&body);
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn agent<'a>(agents: &'a [Value], id: &str) -> Option<&'a Value> {
    agents.iter().find(|agent| agent["id"] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_restart_drain_and_resume_through_the_api() {
    let swarm = TestSwarm::start(|_| {}).await;
    let node = swarm.swarm.context().config.node.name.clone();

    // Only admins command; bad commands name their field.
    let (status, _) = command(
        &swarm,
        json!({"action": "scale", "kind": "keyword", "replicas": 2}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = command(
        &swarm,
        json!({"action": "scale", "kind": "queen", "replicas": 2}),
        Some(ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("kind"), "{body}");
    let (status, body) = command(
        &swarm,
        json!({"action": "scale", "kind": "keyword", "replicas": 0}),
        Some(ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("replicas"),
        "{body}"
    );
    let (status, _) = command(&swarm, json!({"action": "explode"}), Some(ADMIN_KEY)).await;
    assert!(
        status == 400 || status == 422,
        "unknown action rejected, got {status}"
    );

    // Scale up: a second keyword actor starts and heartbeats.
    let (status, body) = command(
        &swarm,
        json!({"action": "scale", "kind": "keyword", "replicas": 2}),
        Some(ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["key"], "replicas/keyword");
    assert_eq!(body["generation"], 1);
    eventually(Duration::from_secs(10), "keyword-1 healthy", || async {
        let agents = swarm.agents().await;
        agent(&agents, "keyword-1").is_some_and(|a| a["status"] == "healthy")
    })
    .await;

    // Restart one actor: it comes back with its restart count raised.
    let (status, _) = command(
        &swarm,
        json!({"action": "restart", "node": node, "agent": "keyword-0"}),
        Some(ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 202);
    eventually(
        Duration::from_secs(10),
        "keyword-0 restarted and healthy",
        || async {
            let agents = swarm.agents().await;
            agent(&agents, "keyword-0")
                .is_some_and(|a| a["restarts"].as_u64() >= Some(1) && a["status"] == "healthy")
        },
    )
    .await;

    // Drain: the workers stop and the swarm is not ready; resume brings them back.
    let (status, _) = command(
        &swarm,
        json!({"action": "drain", "node": node}),
        Some(ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 202);
    eventually(
        Duration::from_secs(10),
        "workers stopped by the drain",
        || async {
            let agents = swarm.agents().await;
            ["scraping-0", "keyword-0", "keyword-1", "data-quality-0"]
                .iter()
                .all(|id| agent(&agents, id).is_some_and(|a| a["status"] == "stopped"))
        },
    )
    .await;
    let (status, _) = swarm.get("/readyz").await;
    assert_eq!(status.as_u16(), 503, "a drained swarm is not ready");
    let (status, _) = command(
        &swarm,
        json!({"action": "drain", "node": node, "drained": false}),
        Some(ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 202);
    eventually(
        Duration::from_secs(10),
        "workers back after resume",
        || async {
            let agents = swarm.agents().await;
            ["scraping-0", "keyword-0", "keyword-1", "data-quality-0"]
                .iter()
                .all(|id| agent(&agents, id).is_some_and(|a| a["status"] == "healthy"))
        },
    )
    .await;

    // Scale down: keyword-1 stops and is gone from the host.
    let (status, body) = command(
        &swarm,
        json!({"action": "scale", "kind": "keyword", "replicas": 1}),
        Some(ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(body["generation"], 2);
    eventually(Duration::from_secs(10), "keyword-1 stopped", || async {
        let agents = swarm.agents().await;
        agent(&agents, "keyword-1").is_some_and(|a| a["status"] == "stopped")
    })
    .await;

    let (status, desired) = swarm.get("/api/v1/commands").await;
    assert_eq!(status.as_u16(), 200);
    let keys: Vec<&str> = desired
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["key"].as_str())
        .collect();
    assert!(keys.contains(&"replicas/keyword"), "{keys:?}");
    assert!(keys.contains(&format!("drain/{node}").as_str()), "{keys:?}");
    swarm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_discovered_through_the_registry() {
    let swarm = TestSwarm::start(|_| {}).await;
    let node = swarm.swarm.context().config.node.name.clone();
    eventually(
        Duration::from_secs(10),
        "every service has a passing instance",
        || async {
            let (status, body) = swarm.get("/api/v1/instances").await;
            status.as_u16() == 200
                && body.as_array().is_some_and(|services| {
                    services.len() == 7
                        && services
                            .iter()
                            .all(|s| !s["instances"].as_array().unwrap().is_empty())
                })
        },
    )
    .await;
    let (_, body) = swarm.get("/api/v1/instances").await;
    let keyword = body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "tge-swarm-agent-keyword")
        .unwrap();
    assert_eq!(keyword["instances"][0], format!("{node}/keyword-0"));
    let metrics_addr = swarm.swarm.metrics_addr().to_string();
    assert_eq!(keyword["metrics_addrs"][0], metrics_addr.as_str());
    swarm.stop().await;
}
