//! The Prometheus recorder (installed once per process) and the metrics HTTP server.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use swarm_shared::telemetry;
use tokio_util::sync::CancellationToken;

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

/// `GET /metrics` (Prometheus text format) and `GET /healthz`.
pub fn router(handle: PrometheusHandle) -> Router {
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
}
