//! Registry contract: an instance is healthy only while its TTL check passes.

use std::sync::Arc;
use std::time::Duration;

use swarm_shared::domain::Meta;
use swarm_shared::ports::consul::ConsulRegistry;
use swarm_shared::ports::embedded_registry::EmbeddedRegistry;
use swarm_shared::ports::redis::{RedisRegistry, RedisSettings};
use swarm_shared::ports::{Registry, ServiceInstance};

use crate::eventually;

fn instance(id: &str) -> ServiceInstance {
    let mut meta = Meta::new();
    meta.insert("kind".into(), "keyword".into());
    ServiceInstance {
        id: id.into(),
        service: "tge-swarm-agent-keyword".into(),
        tags: vec!["tge-swarm".into()],
        meta,
    }
}

async fn ttl_checks(registry: Arc<dyn Registry>) {
    let ttl = Duration::from_millis(200);
    registry
        .register(&instance("n/keyword-0"), ttl)
        .await
        .unwrap();
    registry
        .register(&instance("n/keyword-1"), ttl)
        .await
        .unwrap();
    assert!(
        registry
            .healthy("tge-swarm-agent-keyword")
            .await
            .unwrap()
            .is_empty(),
        "not healthy before a pass"
    );
    registry.pass("n/keyword-0").await.unwrap();
    let healthy = registry.healthy("tge-swarm-agent-keyword").await.unwrap();
    assert_eq!(healthy.len(), 1);
    assert_eq!(
        healthy[0].meta.get("kind").map(String::as_str),
        Some("keyword")
    );
    assert!(
        registry
            .healthy("tge-swarm-queen")
            .await
            .unwrap()
            .is_empty()
    );
    eventually(Duration::from_secs(3), "ttl expiry", || {
        let registry = registry.clone();
        async move {
            registry
                .healthy("tge-swarm-agent-keyword")
                .await
                .unwrap()
                .is_empty()
        }
    })
    .await;
    registry.pass("n/keyword-1").await.unwrap();
    registry.deregister("n/keyword-1").await.unwrap();
    assert!(
        registry
            .healthy("tge-swarm-agent-keyword")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(registry.pass("n/unknown").await.is_err());
}

#[tokio::test]
async fn embedded_registry_contract() {
    ttl_checks(Arc::new(EmbeddedRegistry::new())).await;
}

/// On Redis (database 13, which no other test uses: the service names are the swarm's own).
#[tokio::test]
async fn redis_registry_contract() {
    let settings = RedisSettings::new(&crate::redis_url_db(13), 64).unwrap();
    let registry = Arc::new(RedisRegistry::connect(&settings).await.unwrap());
    // What an earlier run left (a killed test) must not count.
    let leftover = registry.healthy("tge-swarm-agent-keyword").await.unwrap();
    for instance in leftover {
        registry
            .register(&instance, Duration::from_millis(1))
            .await
            .unwrap();
        registry.deregister(&instance.id).await.unwrap();
    }
    ttl_checks(registry.clone()).await;

    // Another process (another connection) sees what this one registered, with its metadata,
    // and the expiry follows the server's clock, not the caller's.
    let other = RedisRegistry::connect(&settings).await.unwrap();
    let seen = async || other.healthy("tge-swarm-agent-keyword").await.unwrap();
    registry
        .register(&instance("n/keyword-3"), Duration::from_secs(30))
        .await
        .unwrap();
    registry.pass("n/keyword-3").await.unwrap();
    assert_eq!(seen().await, vec![instance("n/keyword-3")]);

    // Redis loses its data (a restart without persistence): the next pass writes it again.
    let client = settings.connect().await.unwrap();
    use fred::prelude::*;
    let _: () = client
        .del(vec![
            "swarm:registry:{tge-swarm-agent-keyword}:instances",
            "swarm:registry:{tge-swarm-agent-keyword}:passing",
        ])
        .await
        .unwrap();
    assert!(seen().await.is_empty());
    registry.pass("n/keyword-3").await.unwrap();
    assert_eq!(seen().await.len(), 1);
    registry.deregister("n/keyword-3").await.unwrap();
    assert!(seen().await.is_empty());
}

#[tokio::test]
async fn consul_registry_contract() {
    let (addr, agent) = crate::consul::start(Some("secret-token")).await;
    let registry = Arc::new(
        ConsulRegistry::new(&format!("http://{addr}"), Some("secret-token".into())).unwrap(),
    );
    ttl_checks(registry.clone()).await;

    // Consul restarts and forgets the registration: the next pass registers it again.
    registry
        .register(&instance("n/keyword-2"), Duration::from_secs(30))
        .await
        .unwrap();
    crate::consul::forget_all(&agent);
    registry.pass("n/keyword-2").await.unwrap();
    assert_eq!(
        registry
            .healthy("tge-swarm-agent-keyword")
            .await
            .unwrap()
            .len(),
        1,
        "re-registered after the agent forgot it"
    );
    let violations = agent.lock().unwrap().violations.clone();
    assert!(
        violations.is_empty(),
        "requests broke Consul's API: {violations:?}"
    );
    let requests = agent.lock().unwrap().requests.clone();
    assert!(requests.iter().any(|r| r == "PUT register"));
    assert!(requests.iter().any(|r| r == "PUT deregister"));
    assert!(requests.iter().any(|r| r == "PUT check pass"));
    assert!(requests.iter().any(|r| r == "GET health service"));
}

#[tokio::test]
async fn consul_registry_reports_an_unreachable_agent() {
    let registry = ConsulRegistry::new("http://127.0.0.1:9", None).unwrap();
    let err = registry
        .register(&instance("n/keyword-0"), Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("consul"), "{err}");
    // Remembered anyway: the pass after Consul comes back registers it.
    assert!(
        registry
            .pass("n/keyword-0")
            .await
            .unwrap_err()
            .is_unavailable()
    );
}
