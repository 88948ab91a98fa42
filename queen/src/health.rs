//! Liveness and readiness, one vocabulary for both servers that answer them (the metrics
//! server every process runs, and the queen's API): `/healthz` says `ok`; `/readyz` says
//! `ready` or `not_ready` with one entry per check, each `ok` or `unavailable` (or a detail:
//! an object naming what is not running, or what did not answer). Also the process's dependencies, store and bus: pinged for `/readyz`, for
//! `tge_swarm_dependency_up`, and by the health supervisor. A leaf: it imports nothing of the
//! crate.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use swarm_shared::context::AgentContext;
use swarm_shared::telemetry;
use utoipa::ToSchema;

/// A check that passed.
pub const OK: &str = "ok";
/// A check whose dependency did not answer.
pub const UNAVAILABLE: &str = "unavailable";

/// The answer of `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (liveness), `ready` or `not_ready` (readiness).
    pub status: HealthStatus,
    /// Per check: `ok`, `unavailable`, or an object with details.
    #[schema(value_type = Object)]
    pub checks: serde_json::Map<String, Value>,
}

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// The process answers (`/healthz`).
    Ok,
    /// Every check passed (`/readyz`).
    Ready,
    /// A check failed (`/readyz`, with 503).
    NotReady,
}

impl Health {
    /// The liveness answer: the process answers.
    pub fn live() -> Self {
        Self {
            status: HealthStatus::Ok,
            checks: serde_json::Map::new(),
        }
    }

    /// A readiness answer.
    pub fn readiness(ready: bool, checks: serde_json::Map<String, Value>) -> Self {
        Self {
            status: if ready {
                HealthStatus::Ready
            } else {
                HealthStatus::NotReady
            },
            checks,
        }
    }
}

/// 200 when live or ready, 503 when not ready; the body in JSON either way.
impl IntoResponse for Health {
    fn into_response(self) -> Response {
        let code = match self.status {
            HealthStatus::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            HealthStatus::Ok | HealthStatus::Ready => StatusCode::OK,
        };
        (code, Json(self)).into_response()
    }
}

/// How long a dependency may take to answer a ping before it counts as unavailable. A host
/// cut off from the network answers nothing, and a client's own timeouts can be far longer
/// (a pool's acquire, a command's retry): the Docker health check gives `/readyz` 5 s, and
/// within them it must still say which dependency is missing.
pub const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Pings the store and the bus together, each within [`PING_TIMEOUT`]: each one's name
/// (`store`, `bus`) and answer.
pub async fn ping_dependencies(
    ctx: &AgentContext,
) -> [(&'static str, swarm_shared::Result<()>); 2] {
    async fn bounded(
        name: &'static str,
        ping: impl std::future::Future<Output = swarm_shared::Result<()>>,
    ) -> swarm_shared::Result<()> {
        tokio::time::timeout(PING_TIMEOUT, ping)
            .await
            .unwrap_or_else(|_| {
                Err(swarm_shared::Error::unavailable(
                    name,
                    format!("no answer within {PING_TIMEOUT:?}"),
                ))
            })
    }
    let (store, bus) = tokio::join!(
        bounded("store", ctx.store.ping()),
        bounded(BUS, ctx.bus.ping())
    );
    [("store", store), (BUS, bus)]
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
        telemetry::dependency_up(name, up);
        if let Err(err) = result {
            tracing::warn!(dependency = name, error = %err, "dependency unavailable");
        }
        all_up &= up;
        checks.insert(name.into(), if up { OK } else { UNAVAILABLE }.into());
    }
    (all_up, checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(health: Health) -> (StatusCode, Value) {
        let response = health.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn liveness_and_readiness_answer_in_one_vocabulary() {
        let (status, body) = answer(Health::live()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({"status": "ok", "checks": {}}));

        let mut checks = serde_json::Map::new();
        checks.insert("store".into(), OK.into());
        checks.insert("bus".into(), UNAVAILABLE.into());
        let (status, body) = answer(Health::readiness(false, checks.clone())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            serde_json::json!({"status": "not_ready", "checks": {"store": "ok", "bus": "unavailable"}})
        );

        let (status, body) = answer(Health::readiness(true, checks)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ready");
    }
}
