//! The Prometheus recorder (installed once per process) and the metrics HTTP server, which
//! every process serves: `/metrics`, `/healthz` (the process answers) and `/readyz` (its store
//! and bus answer and its actors run). A probe refreshes `tge_swarm_dependency_up` every few
//! seconds so a Redis or Postgres outage shows in metrics even when nobody calls `/readyz`.

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

use crate::host::HostMsg;

/// What `/readyz` looks at.
#[derive(Clone)]
pub struct HealthState {
    /// Ports.
    pub ctx: AgentContext,
    /// The process's agent host.
    pub host: ActorRef<HostMsg>,
}

/// Probes the store and the bus, records `tge_swarm_dependency_up`, and returns each one's
/// state (`ok` or the error).
pub async fn probe_dependencies(ctx: &AgentContext) -> Vec<(&'static str, Result<(), String>)> {
    let store = ctx.store.ping().await.map_err(|err| err.to_string());
    let bus = ctx.bus.ping().await.map_err(|err| err.to_string());
    let results = vec![("store", store), ("bus", bus)];
    for (name, result) in &results {
        let up = if result.is_ok() { 1.0 } else { 0.0 };
        metrics::gauge!(telemetry::DEPENDENCY_UP, "dependency" => *name).set(up);
    }
    results
}

/// Re-probes the dependencies every 5 s until `cancel` fires.
pub fn spawn_dependency_probe(
    health: HealthState,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = interval.tick() => {
                    for (name, result) in probe_dependencies(&health.ctx).await {
                        if let Err(err) = result {
                            tracing::warn!(dependency = name, error = %err, "dependency down");
                        }
                    }
                }
            }
        }
    })
}

async fn readyz(State(health): State<HealthState>) -> impl IntoResponse {
    let mut ready = true;
    let mut checks = serde_json::Map::new();
    for (name, result) in probe_dependencies(&health.ctx).await {
        match result {
            Ok(()) => {
                checks.insert(name.into(), "ok".into());
            }
            Err(_) => {
                ready = false;
                checks.insert(name.into(), "unavailable".into());
            }
        }
    }
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

/// Drains histogram samples every few seconds so the recorder's memory stays bounded, until
/// `cancel` fires.
pub fn spawn_upkeep(
    handle: PrometheusHandle,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = interval.tick() => handle.run_upkeep(),
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
