//! The Prometheus recorder (installed once per process) and the metrics HTTP server.

use std::sync::OnceLock;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use swarm_shared::telemetry;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder on first call and returns its handle.
pub fn recorder() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), telemetry::SECONDS_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    // A second caller racing us loses the install and uses the winner's handle.
    if metrics::set_global_recorder(recorder).is_ok() {
        telemetry::describe();
        let _ = HANDLE.set(handle);
        // Drain histograms and expire idle series periodically so memory stays bounded.
        let upkeep = HANDLE.get().cloned();
        tokio::spawn(async move {
            let Some(upkeep) = upkeep else { return };
            let mut interval = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                interval.tick().await;
                upkeep.run_upkeep();
            }
        });
    }
    HANDLE
        .get()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("metrics recorder was installed by someone else"))
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
                        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        handle.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
}
