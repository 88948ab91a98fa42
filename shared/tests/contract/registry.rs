//! Registry contract: an instance is healthy only while its TTL check passes.

use std::sync::Arc;
use std::time::Duration;

use swarm_shared::domain::Meta;
use swarm_shared::ports::embedded_registry::EmbeddedRegistry;
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
