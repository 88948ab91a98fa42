//! API keys as a feature, and the limits: rate, size, CORS, and their declarations.

use reqwest::Method;
use serde_json::{Value, json};
use swarm_tests::{ADMIN_KEY, TestSwarm};

use super::*;

/// API keys as a feature: an admin creates a scoped key with an expiry, it works and records
/// its use, rotation hands out a new secret and stops the old one, revocation stops the new
/// one, and the last working admin key cannot be revoked. Lists never show a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_listed_rotated_and_revoked() {
    let swarm = TestSwarm::start(|_| {}).await;
    let (status, content_type, body) = send(
        &swarm,
        Method::POST,
        "/api/v1/keys",
        Some(ADMIN_KEY),
        Some(json!({"name": "alerts bot", "scopes": ["write"]})),
    )
    .await;
    assert_problem(status, &content_type, &body, 422, "name");
    let (status, content_type, body) = send(
        &swarm,
        Method::POST,
        "/api/v1/keys",
        Some(ADMIN_KEY),
        Some(json!({"name": "bot", "scopes": ["root"]})),
    )
    .await;
    assert_problem(status, &content_type, &body, 422, "unknown scope `root`");
    let (status, content_type, body) = send(
        &swarm,
        Method::POST,
        "/api/v1/keys",
        Some(ADMIN_KEY),
        Some(json!({"name": "bot", "scopes": ["write"], "expires_in": "1s"})),
    )
    .await;
    assert_problem(status, &content_type, &body, 422, "expires_in");

    let (status, _, issued) = send(
        &swarm,
        Method::POST,
        "/api/v1/keys",
        Some(ADMIN_KEY),
        Some(json!({"name": "bot", "scopes": ["write", "read"], "expires_in": "90days"})),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let secret = issued["secret"].as_str().unwrap().to_owned();
    let id = issued["key"]["id"].as_i64().unwrap();
    assert_eq!(issued["key"]["scopes"], json!(["read", "write"]));
    assert!(issued["key"]["expires_at"].is_string());

    // The write key may add a source but not create keys.
    let source = json!({"name": "keyed", "kind": "rss", "url": "https://news.example/feed", "interval": "1h"});
    let (status, _, _) = send(
        &swarm,
        Method::POST,
        "/api/v1/sources",
        Some(&secret),
        Some(source),
    )
    .await;
    assert_eq!(status, 201);
    let (status, content_type, body) =
        send(&swarm, Method::GET, "/api/v1/keys", Some(&secret), None).await;
    assert_problem(status, &content_type, &body, 403, "admin scope");

    let (status, _, listed) =
        send(&swarm, Method::GET, "/api/v1/keys", Some(ADMIN_KEY), None).await;
    assert_eq!(status, 200);
    let text = listed.to_string();
    assert!(!text.contains(&secret) && !text.contains("hash"), "{text}");
    let bot = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["id"] == id)
        .unwrap();
    assert!(bot["last_used_at"].is_string(), "use is recorded: {bot}");

    // Rotation: a new secret; the old one is refused with a reason.
    let rotate = format!("/api/v1/keys/{id}/rotate");
    let (status, _, rotated) = send(&swarm, Method::POST, &rotate, Some(ADMIN_KEY), None).await;
    assert_eq!(status, 201, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated["key"]["name"], "bot");
    assert_eq!(rotated["key"]["expires_at"], issued["key"]["expires_at"]);
    let source = json!({"name": "keyed-2", "kind": "rss", "url": "https://news.example/feed2", "interval": "1h"});
    let (status, content_type, body) = send(
        &swarm,
        Method::POST,
        "/api/v1/sources",
        Some(&secret),
        Some(source.clone()),
    )
    .await;
    assert_problem(status, &content_type, &body, 401, "was revoked");
    let (status, _, _) = send(
        &swarm,
        Method::POST,
        "/api/v1/sources",
        Some(&new_secret),
        Some(source),
    )
    .await;
    assert_eq!(status, 201);
    let (status, content_type, body) =
        send(&swarm, Method::POST, &rotate, Some(ADMIN_KEY), None).await;
    assert_problem(status, &content_type, &body, 409, "revoked");

    // Revocation.
    let new_id = rotated["key"]["id"].as_i64().unwrap();
    let (status, _, revoked) = send(
        &swarm,
        Method::DELETE,
        &format!("/api/v1/keys/{new_id}"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_string());
    let (status, content_type, body) =
        send(&swarm, Method::GET, "/api/v1/keys", Some(&new_secret), None).await;
    assert_problem(status, &content_type, &body, 401, "was revoked");
    let (status, content_type, body) = send(
        &swarm,
        Method::DELETE,
        "/api/v1/keys/999999",
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_problem(status, &content_type, &body, 404, "999999");

    // The bootstrap admin key is the only admin key: it cannot be revoked.
    let admin_id = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["name"] == "bootstrap-admin" && key["revoked_at"].is_null())
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, content_type, body) = send(
        &swarm,
        Method::DELETE,
        &format!("/api/v1/keys/{admin_id}"),
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_problem(status, &content_type, &body, 409, "last working admin key");
    swarm.stop().await;
}

/// Limits on callers: per-address and per-key rate limits answer 429 with `Retry-After` as
/// problem documents, long targets 414 and large headers 431 likewise, CORS answers only
/// configured origins, and the OpenAPI document declares those answers on every operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_size_limits_cors_and_their_declarations() {
    let swarm = TestSwarm::start(|config| {
        config.server.rate_limit_per_address = 1;
        config.server.rate_limit_burst = 5;
    })
    .await;
    let mut limited = None;
    for _ in 0..20 {
        let response = swarm
            .http
            .get(swarm.url("/api/v1/sources"))
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 429 {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("20 requests at once from one address are limited");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("too many requests")
    );
    swarm.stop().await;

    // Per key: one key's budget is spent from one address, another key still passes.
    let swarm = TestSwarm::start(|config| {
        config.server.rate_limit_per_key = 1;
        config.server.rate_limit_burst = 3;
    })
    .await;
    let other = "another-admin-key-0123456789";
    swarm
        .swarm
        .context()
        .store
        .insert_api_key(
            "other",
            &swarm_queen::keys::hash_key(other),
            &["admin".to_owned()],
        )
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let (status, _, _) = send(&swarm, Method::GET, "/api/v1/keys", Some(ADMIN_KEY), None).await;
        statuses.push(status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let (status, _, _) = send(&swarm, Method::GET, "/api/v1/keys", Some(other), None).await;
    assert_eq!(status, 200, "another key has its own budget");

    // 414 and 431, as problem documents.
    let long = format!("/api/v1/events?q={}", "a".repeat(9000));
    let (status, content_type, body) = send(&swarm, Method::GET, &long, None, None).await;
    assert_problem(status, &content_type, &body, 414, "at most 8192");
    let response = swarm
        .http
        .get(swarm.url("/api/v1/events"))
        .header("x-padding", "p".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 431);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    // CORS is off unless configured.
    let preflight = swarm
        .http
        .request(Method::OPTIONS, swarm.url("/api/v1/events"))
        .header("origin", "https://desk.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // Every operation declares the answers every operation can give.
    let (status, _, document) = send(&swarm, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let responses = operation["responses"].as_object().unwrap();
            for status in ["401", "414", "429", "431", "500", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
            }
            for (status, response) in responses {
                // Problems are served as application/problem+json, and declared so.
                let Some(content) = response["content"].as_object() else {
                    continue;
                };
                for (media, body) in content {
                    let problem = body["schema"]["$ref"]
                        .as_str()
                        .is_some_and(|reference| reference.ends_with("/Problem"));
                    if problem {
                        assert_eq!(
                            media, "application/problem+json",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }
    assert!(operations > 30, "{operations}");
    swarm.stop().await;

    let swarm = TestSwarm::start(|config| {
        config.server.cors_origins = vec!["https://desk.example".into()];
    })
    .await;
    let preflight = swarm
        .http
        .request(Method::OPTIONS, swarm.url("/api/v1/sources"))
        .header("origin", "https://desk.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-api-key, content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://desk.example"
    );
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("x-api-key"), "{allowed}");
    let foreign = swarm
        .http
        .get(swarm.url("/api/v1/events"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    swarm.stop().await;
}
