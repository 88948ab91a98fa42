//! What the supervisor gathers each round, off its mailbox: queue depths, registry
//! instances, the answers of stale actors' processes, the dependencies, desired replicas.

use std::collections::{BTreeSet, HashMap};

use swarm_shared::channels::QUEUES;
use swarm_shared::commands::desired_replicas;
use swarm_shared::context::{AgentContext, service_name};
use swarm_shared::domain::AgentKind;

use crate::health::{BUS, ping_dependencies};

use super::*;

/// The URL of a node's `/healthz`: see [`swarm_shared::context::metrics_endpoint`].
pub(super) fn healthz_url(node: &str, metrics_addr: &str) -> Option<String> {
    let endpoint = swarm_shared::context::metrics_endpoint(node, metrics_addr)?;
    Some(format!("http://{endpoint}/healthz"))
}

/// Gathers one look's facts; never fails (what could not be learned is left out).
pub(super) async fn gather(
    ctx: AgentContext,
    http: reqwest::Client,
    stale: HashMap<String, Option<String>>,
) -> Checks {
    let mut checks = Checks::default();
    let mut queue_error = None;
    for queue in QUEUES {
        match ctx.queue.depth(queue).await {
            Ok(depth) => {
                checks.depths.insert(queue, depth);
            }
            Err(err) => queue_error = Some(err.to_string()),
        }
    }
    let mut passing = BTreeSet::new();
    let mut registry_ok = true;
    for kind in AgentKind::ALL {
        match ctx.registry.healthy(&service_name(kind)).await {
            Ok(instances) => passing.extend(instances.into_iter().map(|i| i.id)),
            Err(err) => {
                tracing::debug!(error = %err, "registry check failed; heartbeats alone decide");
                registry_ok = false;
                break;
            }
        }
    }
    checks.passing = registry_ok.then_some(passing);
    for (node, addr) in stale {
        let answered = match addr.as_deref().and_then(|addr| healthz_url(&node, addr)) {
            Some(url) => http
                .get(&url)
                .send()
                .await
                .is_ok_and(|response| response.status().is_success()),
            None => false,
        };
        checks.answered.insert(node, answered);
    }
    for (name, answer) in ping_dependencies(&ctx).await {
        let mut error = answer.err().map(|err| err.to_string());
        if name == BUS {
            // The work queues live on the same server.
            error = error.or(queue_error.clone());
        }
        checks.dependencies.push((name, error));
    }
    if let Ok(desired) = ctx.store.list_desired().await {
        checks.replicas = desired_replicas(&desired);
    }
    checks
}
