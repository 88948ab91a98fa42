//! The Prometheus recorder (installed once per process) and the metrics HTTP server, which
//! every process serves: `/metrics`, `/healthz` (the process answers) and `/readyz` (its store
//! and bus answer and its actors run). The upkeep task refreshes `tge_swarm_dependency_up`
//! every few seconds so a Redis or Postgres outage shows in metrics even when nobody calls
//! `/readyz`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ractor::ActorRef;
use serde_json::Value;
use swarm_shared::context::AgentContext;
use swarm_shared::telemetry;
use tokio_util::sync::CancellationToken;

use crate::host::HostMsg;

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct HealthState {
    /// Ports.
    pub ctx: AgentContext,
    /// The process's agent host.
    pub host: ActorRef<HostMsg>,
}

/// Pings the store and the bus: each one's name (`store`, `bus`) and answer.
pub async fn ping_dependencies(
    ctx: &AgentContext,
) -> [(&'static str, swarm_shared::Result<()>); 2] {
    [
        ("store", ctx.store.ping().await),
        (BUS, ctx.bus.ping().await),
    ]
}

/// The bus's name among the dependencies.
pub const BUS: &str = "bus";

/// Probes the store and the bus and records `tge_swarm_dependency_up`. Returns whether both
/// answered and each one's state for a readiness body (`ok` or `unavailable`); failures are
/// logged with their cause, which the body never shows.
pub async fn dependency_checks(ctx: &AgentContext) -> (bool, serde_json::Map<String, Value>) {
    let mut all_up = true;
    let mut checks = serde_json::Map::new();
    for (name, result) in ping_dependencies(ctx).await {
        let up = result.is_ok();
        metrics::gauge!(telemetry::DEPENDENCY_UP, "dependency" => name).set(if up {
            1.0
        } else {
            0.0
        });
        if let Err(err) = result {
            tracing::warn!(dependency = name, error = %err, "dependency unavailable");
        }
        all_up &= up;
        checks.insert(name.into(), if up { "ok" } else { "unavailable" }.into());
    }
    (all_up, checks)
}

async fn readyz(State(health): State<HealthState>) -> impl IntoResponse {
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
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "unavailable" },
        "checks": checks,
    });
    (status, axum::Json(body))
}

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the process-wide recorder on the first call (later callers wait for it) and
/// returns its handle.
pub fn recorder() -> anyhow::Result<PrometheusHandle> {
    let installed = HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                telemetry::SECONDS_BUCKETS,
            )
            .map_err(|err| err.to_string())?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder)
            .map_err(|err| format!("installing the metrics recorder: {err}"))?;
        telemetry::describe();
        Ok(handle)
    });
    installed.clone().map_err(|err| anyhow::anyhow!(err))
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
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}
