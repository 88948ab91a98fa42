//! The Prometheus recorder (installed once per process) and the metrics HTTP server, which
//! every process serves: `/metrics`, `/healthz` (the process answers), `/readyz` (its store
//! and bus answer and its actors run) and `/sd/targets` (every passing instance in the service
//! registry, in the format of Prometheus' HTTP service discovery). The upkeep task refreshes `tge_swarm_dependency_up`
//! every few seconds so a Redis or Postgres outage shows in metrics even when nobody calls
//! `/readyz`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ractor::ActorRef;

use swarm_shared::context::AgentContext;
use swarm_shared::telemetry;
use tokio_util::sync::CancellationToken;

use crate::health::{Health, dependency_checks};
use crate::host::HostMsg;

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct HealthState {
    /// Ports.
    pub ctx: AgentContext,
    /// The process's agent host.
    pub host: ActorRef<HostMsg>,
}

async fn readyz(State(health): State<HealthState>) -> Health {
    let (mut ready, mut checks) = dependency_checks(&health.ctx).await;
    match health
        .host
        .call(HostMsg::Children, Some(Duration::from_secs(2)))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(children)) => {
            let down: Vec<String> = children
                .iter()
                .filter(|child| !child.running && !child.drained)
                .map(|child| child.id.clone())
                .collect();
            if !down.is_empty() {
                ready = false;
            }
            checks.insert(
                "actors".into(),
                serde_json::json!({ "total": children.len(), "not_running": down }),
            );
        }
        _ => {
            ready = false;
            checks.insert("actors".into(), "host not answering".into());
        }
    }
    Health::readiness(ready, checks)
}

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the process-wide recorder on the first call (later callers wait for it) and
/// returns its handle.
pub fn recorder() -> Result<PrometheusHandle, crate::error::StartError> {
    let installed = HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                telemetry::SECONDS_BUCKETS,
            )
            .map_err(|err| err.to_string())?
            .set_buckets_for_metric(
                Matcher::Full(telemetry::DETECTION_LAG.name.into()),
                telemetry::LAG_BUCKETS,
            )
            .map_err(|err| err.to_string())?
            .set_buckets_for_metric(
                Matcher::Full(telemetry::DETECTION_SCORE.name.into()),
                telemetry::SCORE_BUCKETS,
            )
            .map_err(|err| err.to_string())?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder)
            .map_err(|err| format!("installing the metrics recorder: {err}"))?;
        telemetry::describe();
        telemetry::initialise_counters();
        Ok(handle)
    });
    installed.clone().map_err(crate::error::StartError::Install)
}

/// Every 5 s until `cancel` fires: drains histogram samples so the recorder's memory stays
/// bounded, and re-probes the dependencies so an outage shows in `tge_swarm_dependency_up`
/// even when nobody calls `/readyz`.
pub fn spawn_upkeep(
    handle: PrometheusHandle,
    ctx: AgentContext,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = interval.tick() => {
                    handle.run_upkeep();
                    dependency_checks(&ctx).await;
                }
            }
        }
    })
}

/// `GET /metrics` (Prometheus text format), `GET /healthz` and `GET /readyz`.
pub fn router(handle: PrometheusHandle, health: HealthState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        handle.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { Health::live() }))
        .route("/readyz", get(readyz))
        .route("/sd/targets", get(sd_targets))
        .with_state(health)
}

/// One target group of Prometheus' HTTP service discovery.
#[derive(Debug, PartialEq, serde::Serialize)]
pub struct TargetGroup {
    /// `host:port` of one metrics server.
    pub targets: Vec<String>,
    /// `node`, `instance` (the node name) and `kind`: the kind of the process's actors, or
    /// `all` when one process hosts several kinds (`tge-swarm run`).
    pub labels: BTreeMap<String, String>,
}

/// Groups the registry's passing instances by metrics endpoint: every actor of a process
/// registers the same endpoint, and Prometheus must scrape it once. Instances without a node
/// or a parseable metrics address are left out (they cannot be scraped).
pub fn target_groups(instances: &[swarm_shared::ports::ServiceInstance]) -> Vec<TargetGroup> {
    let mut endpoints: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for instance in instances {
        let Some(node) = instance.meta.get("node") else {
            continue;
        };
        let Some(addr) = instance.meta.get("metrics_addr") else {
            continue;
        };
        let Some(endpoint) = swarm_shared::context::metrics_endpoint(node, addr) else {
            continue;
        };
        let kind = instance.meta.get("kind").cloned().unwrap_or_default();
        let entry = endpoints
            .entry(endpoint)
            .or_insert_with(|| (node.clone(), BTreeSet::new()));
        entry.1.insert(kind);
    }
    let mut groups = Vec::with_capacity(endpoints.len());
    for (endpoint, (node, kinds)) in endpoints {
        let kind = match kinds.len() {
            1 => kinds.into_iter().next().unwrap_or_default(),
            _ => "all".to_owned(),
        };
        let mut labels = BTreeMap::new();
        labels.insert("instance".to_owned(), node.clone());
        labels.insert("node".to_owned(), node);
        labels.insert("kind".to_owned(), kind);
        groups.push(TargetGroup {
            targets: vec![endpoint],
            labels,
        });
    }
    groups
}

/// `GET /sd/targets`: the swarm's metrics endpoints from the service registry (Consul in a
/// distributed swarm), for Prometheus' `http_sd_configs`. A registry failure answers 503, on
/// which Prometheus keeps the targets it last had.
async fn sd_targets(State(health): State<HealthState>) -> axum::response::Response {
    let mut instances = Vec::new();
    for service in crate::queen::service_names() {
        match health.ctx.registry.healthy(&service).await {
            Ok(found) => instances.extend(found),
            Err(err) => {
                tracing::warn!(%service, error = %err, "registry unavailable for service discovery");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the service registry is unavailable",
                )
                    .into_response();
            }
        }
    }
    axum::Json(target_groups(&instances)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_shared::domain::Meta;
    use swarm_shared::ports::ServiceInstance;

    fn instance(id: &str, kind: &str, node: &str, addr: &str) -> ServiceInstance {
        let mut meta = Meta::new();
        meta.insert("kind".into(), kind.into());
        meta.insert("node".into(), node.into());
        meta.insert("metrics_addr".into(), addr.into());
        ServiceInstance {
            id: id.into(),
            service: format!("tge-swarm-agent-{kind}"),
            tags: vec!["tge-swarm".into()],
            meta,
        }
    }

    #[test]
    fn target_groups_collapse_actors_of_one_process_and_name_wildcards_by_node() {
        let instances = [
            instance("k1/keyword-0", "keyword", "k1", "0.0.0.0:8011"),
            instance("k1/keyword-1", "keyword", "k1", "0.0.0.0:8011"),
            instance("local/scraping-0", "scraping", "local", "127.0.0.1:9000"),
            instance("local/keyword-0", "keyword", "local", "127.0.0.1:9000"),
            instance("bad/x", "keyword", "bad", "not an address"),
        ];
        let groups = target_groups(&instances);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].targets, vec!["127.0.0.1:9000".to_owned()]);
        assert_eq!(groups[0].labels["kind"], "all");
        assert_eq!(groups[0].labels["instance"], "local");
        assert_eq!(groups[1].targets, vec!["k1:8011".to_owned()]);
        assert_eq!(groups[1].labels["kind"], "keyword");
        assert_eq!(groups[1].labels["node"], "k1");
    }
}
