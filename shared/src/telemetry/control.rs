//! The control plane's metrics: actors and supervision, dependencies and discovery, outbound
//! breakers, memory and performance, the API.

use crate::domain::{ActionOutcome, AgentKind, AgentStatus};
use crate::messages::BreakerState;
use crate::supervision::{Action, Breaker};

use super::{Metric, MetricKind, counter, gauge, seconds};

// ---- Actors and supervision ----

/// Labels: `kind`.
pub const ACTOR_RESTARTS: Metric = counter(
    "tge_swarm_actor_restarts_total",
    "Actor restarts by host supervisors",
);

/// A host restarted an actor of `kind`.
pub fn actor_restarted(kind: AgentKind) {
    metrics::counter!(ACTOR_RESTARTS.name, "kind" => kind.as_str()).increment(1);
}

/// Labels: `kind`.
pub const ACTOR_GIVEUPS: Metric = counter(
    "tge_swarm_actor_restart_budget_exhausted_total",
    "Actors whose restart budget was spent",
);

/// An actor of `kind` spent its restart budget.
pub fn actor_gave_up(kind: AgentKind) {
    metrics::counter!(ACTOR_GIVEUPS.name, "kind" => kind.as_str()).increment(1);
}

/// Labels: `agent` (kind), `action`, `outcome`.
pub const SUPERVISOR_ACTIONS: Metric = counter(
    "tge_swarm_supervisor_actions_total",
    "Supervisor decisions carried out",
);

/// A supervisor decision about an agent of `kind` was carried out.
pub fn supervisor_acted(kind: AgentKind, action: Action, outcome: ActionOutcome) {
    metrics::counter!(
        SUPERVISOR_ACTIONS.name,
        "agent" => kind.as_str(),
        "action" => action.as_str(),
        "outcome" => outcome.as_str()
    )
    .increment(1);
}

/// Labels: `agent` (kind), `component`.
pub const SUPERVISOR_BREAKER_STATE: Metric = gauge(
    "tge_swarm_supervisor_breaker_state",
    "Supervisor breaker per component: 0 closed, 1 half-open, 2 open",
);

/// The supervisor's breaker of `component` (of `kind`) is now `breaker`.
pub fn supervisor_breaker(kind: AgentKind, component: &str, breaker: Breaker) {
    metrics::gauge!(
        SUPERVISOR_BREAKER_STATE.name,
        "agent" => kind.as_str(),
        "component" => component.to_owned()
    )
    .set(breaker.gauge());
}

/// Labels: `agent` (kind), `delivered`.
pub const SUPERVISOR_ALERTS: Metric = counter(
    "tge_swarm_supervisor_alerts_total",
    "Alerts raised by supervisors",
);

/// How a supervisor's alert went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertDelivery {
    /// The webhook took it.
    Webhook,
    /// The webhook failed.
    Failed,
    /// No webhook is set: logged only.
    None,
}

impl AlertDelivery {
    /// Every value, for [`initialise_counters`].
    pub const ALL: [AlertDelivery; 3] = [
        AlertDelivery::Webhook,
        AlertDelivery::Failed,
        AlertDelivery::None,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertDelivery::Webhook => "webhook",
            AlertDelivery::Failed => "failed",
            AlertDelivery::None => "none",
        }
    }
}

/// A supervisor raised an alert about an agent of `kind`.
pub fn supervisor_alerted(kind: AgentKind, delivered: AlertDelivery) {
    metrics::counter!(SUPERVISOR_ALERTS.name, "agent" => kind.as_str(), "delivered" => delivered.as_str())
        .increment(1);
}

/// Labels: `kind`.
pub const DESIRED_REPLICAS: Metric = gauge(
    "tge_swarm_desired_replicas",
    "Desired instances per process of a scalable kind",
);

/// The desired replicas per process of `kind`.
pub fn desired_replicas(kind: AgentKind, replicas: u32) {
    metrics::gauge!(DESIRED_REPLICAS.name, "kind" => kind.as_str()).set(f64::from(replicas));
}

/// Labels: `kind`.
pub const HEARTBEAT_AGE: Metric = seconds(
    MetricKind::Gauge,
    "tge_swarm_heartbeat_age_seconds",
    "Oldest heartbeat age per kind",
);

/// The oldest heartbeat of `kind`, as the queen sees it.
pub fn heartbeat_age(kind: AgentKind, seconds: f64) {
    metrics::gauge!(HEARTBEAT_AGE.name, "kind" => kind.as_str()).set(seconds);
}

/// Labels: `kind`, `status`.
pub const AGENTS: Metric = gauge("tge_swarm_agents", "Actors by kind and status");

/// How many actors of `kind` are in `status`.
pub fn agents(kind: AgentKind, status: AgentStatus, count: usize) {
    metrics::gauge!(AGENTS.name, "kind" => kind.as_str(), "status" => status.as_str())
        .set(count as f64);
}

/// Labels: `action`.
pub const COMMANDS_APPLIED: Metric = counter(
    "tge_swarm_commands_applied_total",
    "Queen commands (desired-state changes) applied by this process's host",
);

/// This process's host applied a command (`action` is its label: restart, scale, ...).
pub fn command_applied(action: &'static str) {
    metrics::counter!(COMMANDS_APPLIED.name, "action" => action).increment(1);
}

// ---- Dependencies and discovery ----

/// Labels: `dependency` (`store`, `bus`).
pub const DEPENDENCY_UP: Metric = gauge(
    "tge_swarm_dependency_up",
    "Whether a dependency (store, bus) answered its last probe",
);

/// Whether `dependency` answered its last probe.
pub fn dependency_up(dependency: &'static str, up: bool) {
    metrics::gauge!(DEPENDENCY_UP.name, "dependency" => dependency).set(if up { 1.0 } else { 0.0 });
}

/// Labels: `service`.
pub const REGISTRY_INSTANCES: Metric = gauge(
    "tge_swarm_registry_instances",
    "Passing instances per service in the registry, as the queen last discovered them",
);

/// How many passing instances `service` has in the registry.
pub fn registry_instances(service: &str, count: usize) {
    metrics::gauge!(REGISTRY_INSTANCES.name, "service" => service.to_owned()).set(count as f64);
}

// ---- Outbound calls (API reliability) ----

/// Labels: none.
pub const BREAKERS_OPEN: Metric = gauge(
    "tge_swarm_breakers_open",
    "Hosts with an open circuit breaker",
);

/// How many hosts have an open breaker.
pub fn breakers_open(count: usize) {
    metrics::gauge!(BREAKERS_OPEN.name).set(count as f64);
}

/// Labels: `state` (`closed`, `open`, `half_open`).
pub const BREAKER_TRANSITIONS: Metric = counter(
    "tge_swarm_breaker_transitions_total",
    "Circuit breaker transitions",
);

pub(super) fn breaker_label(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
}

/// A host's breaker moved to `state`.
pub fn breaker_transition(state: BreakerState) {
    metrics::counter!(BREAKER_TRANSITIONS.name, "state" => breaker_label(state)).increment(1);
}

// ---- Memory and performance ----

/// Labels: none.
pub const MEMORY_ENTRIES: Metric = gauge("tge_swarm_memory_entries", "Shared memory entries held");

/// Shared memory holds `count` entries.
pub fn memory_entries(count: usize) {
    metrics::gauge!(MEMORY_ENTRIES.name).set(count as f64);
}

/// Labels: none.
pub const SYNTHESIS_SNAPSHOTS: Metric = counter(
    "tge_swarm_synthesis_snapshots_total",
    "Synthesis snapshots persisted",
);

/// A synthesis snapshot was persisted.
pub fn synthesis_snapshot_saved() {
    metrics::counter!(SYNTHESIS_SNAPSHOTS.name).increment(1);
}

/// Labels: `kind` (the bottleneck, or `none`), `action`.
pub const RECOMMENDATIONS: Metric = counter(
    "tge_swarm_recommendations_total",
    "Performance recommendations",
);

/// The performance agent recommended `action` for the bottleneck `kind` (none: no bottleneck).
pub fn recommendation(kind: Option<AgentKind>, action: &'static str) {
    let kind = kind.map_or("none", AgentKind::as_str);
    metrics::counter!(RECOMMENDATIONS.name, "kind" => kind, "action" => action).increment(1);
}

// ---- The API ----

/// Labels: `route` (matched path template), `method`, `status`.
pub const API_REQUESTS: Metric = counter("tge_swarm_api_requests_total", "API requests");

/// Labels: `route`, `method`.
pub const API_REQUEST_DURATION: Metric = seconds(
    MetricKind::Histogram,
    "tge_swarm_api_request_duration_seconds",
    "API request latency",
);

/// The API answered a request to `route` (its path template) with `status` in `seconds`.
pub fn api_request(route: String, method: String, status: u16, seconds: f64) {
    metrics::counter!(
        API_REQUESTS.name,
        "route" => route.clone(),
        "method" => method.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(API_REQUEST_DURATION.name, "route" => route, "method" => method)
        .record(seconds);
}

/// Labels: `result` (`hit`, `miss`, `stale`).
pub const API_CACHE_LOOKUPS: Metric = counter(
    "tge_swarm_api_cache_lookups_total",
    "Lookups in the GET /events page cache, by result (hit, miss, stale)",
);

/// What a lookup in the `GET /events` page cache found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    /// A current page.
    Hit,
    /// Nothing.
    Miss,
    /// A page an event or its age made out of date.
    Stale,
}

/// A lookup in the `GET /events` page cache.
pub fn api_cache_lookup(result: CacheLookup) {
    let result = match result {
        CacheLookup::Hit => "hit",
        CacheLookup::Miss => "miss",
        CacheLookup::Stale => "stale",
    };
    metrics::counter!(API_CACHE_LOOKUPS.name, "result" => result).increment(1);
}

/// Alert delivery attempts, by channel and outcome.
pub const ALERT_ATTEMPTS: Metric = counter(
    "tge_swarm_alert_attempts_total",
    "Attempts to deliver an alert to a subscription, by channel (webhook, slack, discord, telegram) and outcome (delivered, retry, dead)",
);

/// Time from an event being stored to its alert's receiver accepting it.
pub const ALERT_LATENCY: Metric = seconds(
    MetricKind::Histogram,
    "tge_swarm_alert_latency_seconds",
    "Seconds from an event being stored to a subscription's receiver accepting its alert",
);

/// An attempt to deliver an alert through `channel` ended with `outcome`.
pub fn alert_attempted(channel: &'static str, outcome: &crate::domain::AttemptOutcome) {
    let outcome = match outcome {
        crate::domain::AttemptOutcome::Delivered { .. } => "delivered",
        crate::domain::AttemptOutcome::Retry { .. } => "retry",
        crate::domain::AttemptOutcome::Dead { .. } => "dead",
    };
    metrics::counter!(ALERT_ATTEMPTS.name, "channel" => channel, "outcome" => outcome).increment(1);
}

/// An alert was accepted `latency` after its event was stored.
pub fn alert_latency(latency: std::time::Duration) {
    metrics::histogram!(ALERT_LATENCY.name).record(latency.as_secs_f64());
}
