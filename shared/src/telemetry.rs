//! Metric names, label keys and histogram buckets, in one place. Names are `tge_swarm_`
//! prefixed, in base units, counters end in `_total`; labels are bounded (kinds, outcomes,
//! stages, queue names, operator-defined source names), never URLs or ids.

/// Documents parsed from sources. Labels: `source_kind`.
pub const DOCUMENTS_FETCHED_TOTAL: &str = "tge_swarm_documents_fetched_total";
/// Documents scored. Labels: `verdict` (`tge`, `not_tge`).
pub const DOCUMENTS_CLASSIFIED_TOTAL: &str = "tge_swarm_documents_classified_total";
/// Documents near the threshold that the detection's third stage (the sentence encoder) read
/// or left to the second stage because its per-second budget was spent. Labels: `outcome`
/// (`read`, `over_budget`).
pub const SENTENCE_STAGE_TOTAL: &str = "tge_swarm_detection_sentence_stage_total";
/// Detection scores (probability that a document announces a TGE). Labels: none.
pub const DETECTION_SCORE: &str = "tge_swarm_detection_score";
/// Documents the data-quality stage dropped. Labels: `reason` (`duplicate`, `invalid`).
pub const DOCUMENTS_DROPPED_TOTAL: &str = "tge_swarm_documents_dropped_total";
/// TGE events created.
pub const EVENTS_CREATED_TOTAL: &str = "tge_swarm_events_created_total";
/// Documents merged into an existing event.
pub const EVENTS_MERGED_TOTAL: &str = "tge_swarm_events_merged_total";
/// Source fetches. Labels: `source`, `outcome` (`ok`, `not_modified`, `error`, `circuit_open`).
pub const SOURCE_FETCHES_TOTAL: &str = "tge_swarm_source_fetches_total";
/// Work queue depth. Labels: `queue`, `state` (`ready`, `pending`).
pub const QUEUE_DEPTH: &str = "tge_swarm_queue_depth";
/// Work items redelivered after a consumer died or stalled. Labels: `queue`.
pub const QUEUE_REDELIVERED_TOTAL: &str = "tge_swarm_queue_redelivered_total";
/// Work items moved to the dead-letter queue. Labels: `queue`, `reason`.
pub const DEAD_LETTERS_TOTAL: &str = "tge_swarm_dead_letters_total";
/// Stage latency. Labels: `stage` (`fetch`, `parse`, `classify`, `quality`, `pipeline`).
pub const STAGE_DURATION_SECONDS: &str = "tge_swarm_stage_duration_seconds";
/// Actor restarts by the host supervisor. Labels: `kind`.
pub const ACTOR_RESTARTS_TOTAL: &str = "tge_swarm_actor_restarts_total";
/// Actors whose restart budget is spent. Labels: `kind`.
pub const ACTOR_GIVEUPS_TOTAL: &str = "tge_swarm_actor_restart_budget_exhausted_total";
/// Supervisor decisions carried out. Labels: `agent` (kind), `action`, `outcome`.
pub const SUPERVISOR_ACTIONS_TOTAL: &str = "tge_swarm_supervisor_actions_total";
/// Breaker state per supervised component: 0 closed, 1 half-open, 2 open. Labels: `agent`
/// (kind), `component`.
pub const SUPERVISOR_BREAKER_STATE: &str = "tge_swarm_supervisor_breaker_state";
/// Alerts raised by supervisors (ALERT_ONLY). Labels: `agent` (kind), `delivered`
/// (`webhook`, `failed`, `none` when no webhook is set).
pub const SUPERVISOR_ALERTS_TOTAL: &str = "tge_swarm_supervisor_alerts_total";
/// Desired replicas per process of a scalable kind. Labels: `kind`.
pub const DESIRED_REPLICAS: &str = "tge_swarm_desired_replicas";
/// Age of the oldest heartbeat per kind, as the queen sees it. Labels: `kind`.
pub const HEARTBEAT_AGE_SECONDS: &str = "tge_swarm_heartbeat_age_seconds";
/// Actors by status. Labels: `kind`, `status`.
pub const AGENTS: &str = "tge_swarm_agents";
/// Bus messages a slow subscriber missed. Labels: `channel`.
pub const BUS_DROPPED_TOTAL: &str = "tge_swarm_bus_dropped_total";
/// Whether a dependency answered its last probe (1) or not (0). Labels: `dependency`
/// (`store`, `bus`).
pub const DEPENDENCY_UP: &str = "tge_swarm_dependency_up";
/// Passing instances per service in the registry, as the queen last discovered them.
/// Labels: `service`.
pub const REGISTRY_INSTANCES: &str = "tge_swarm_registry_instances";
/// Commands (desired-state changes) a host applied. Labels: `action`.
pub const COMMANDS_APPLIED_TOTAL: &str = "tge_swarm_commands_applied_total";
/// Hosts whose circuit breaker is open.
pub const BREAKERS_OPEN: &str = "tge_swarm_breakers_open";
/// Breaker transitions. Labels: `state`.
pub const BREAKER_TRANSITIONS_TOTAL: &str = "tge_swarm_breaker_transitions_total";
/// Scrape tasks the queen enqueued.
pub const SCRAPE_TASKS_TOTAL: &str = "tge_swarm_scrape_tasks_total";
/// Memory entries held. Labels: none.
pub const MEMORY_ENTRIES: &str = "tge_swarm_memory_entries";
/// Synthesis snapshots persisted.
pub const SYNTHESIS_SNAPSHOTS_TOTAL: &str = "tge_swarm_synthesis_snapshots_total";
/// API requests. Labels: `route` (matched path template), `method`, `status`.
pub const API_REQUESTS_TOTAL: &str = "tge_swarm_api_requests_total";
/// API latency. Labels: `route`, `method`.
pub const API_REQUEST_DURATION_SECONDS: &str = "tge_swarm_api_request_duration_seconds";
/// Lookups in the `GET /events` page cache. Labels: `result` (`hit`, `miss`, `stale`).
pub const API_CACHE_LOOKUPS_TOTAL: &str = "tge_swarm_api_cache_lookups_total";
/// Bottleneck recommendations. Labels: `kind`, `action`.
pub const RECOMMENDATIONS_TOTAL: &str = "tge_swarm_recommendations_total";

/// Buckets of every `_seconds` histogram: 1 ms to 60 s.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets of the detection score histogram: tenths of the 0..1 probability.
pub const SCORE_BUCKETS: &[f64] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// Registers descriptions of every metric with the installed recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(DOCUMENTS_FETCHED_TOTAL, "Documents parsed from sources");
    describe_counter!(
        SENTENCE_STAGE_TOTAL,
        "Documents near the threshold the sentence encoder read, or left to the second stage over its budget"
    );
    describe_counter!(
        DOCUMENTS_CLASSIFIED_TOTAL,
        "Documents scored by keyword agents"
    );
    describe_histogram!(
        DETECTION_SCORE,
        "Detection scores: probability that a document announces a TGE"
    );
    describe_counter!(DOCUMENTS_DROPPED_TOTAL, "Documents dropped by data quality");
    describe_counter!(EVENTS_CREATED_TOTAL, "TGE events created");
    describe_counter!(
        EVENTS_MERGED_TOTAL,
        "Documents merged into existing TGE events"
    );
    describe_counter!(SOURCE_FETCHES_TOTAL, "Source fetches by outcome");
    describe_gauge!(QUEUE_DEPTH, "Work queue depth by state");
    describe_gauge!(
        DEPENDENCY_UP,
        "Whether a dependency (store, bus) answered its last probe"
    );
    describe_gauge!(
        REGISTRY_INSTANCES,
        "Passing instances per service in the registry, as the queen last discovered them"
    );
    describe_counter!(
        COMMANDS_APPLIED_TOTAL,
        "Queen commands (desired-state changes) applied by this process's host"
    );
    describe_counter!(QUEUE_REDELIVERED_TOTAL, "Work items redelivered");
    describe_counter!(
        DEAD_LETTERS_TOTAL,
        "Work items moved to the dead-letter queue"
    );
    describe_histogram!(
        STAGE_DURATION_SECONDS,
        Unit::Seconds,
        "Pipeline stage latency"
    );
    describe_counter!(ACTOR_RESTARTS_TOTAL, "Actor restarts by host supervisors");
    describe_counter!(ACTOR_GIVEUPS_TOTAL, "Actors whose restart budget was spent");
    describe_counter!(SUPERVISOR_ACTIONS_TOTAL, "Supervisor decisions carried out");
    describe_gauge!(
        SUPERVISOR_BREAKER_STATE,
        "Supervisor breaker per component: 0 closed, 1 half-open, 2 open"
    );
    describe_counter!(SUPERVISOR_ALERTS_TOTAL, "Alerts raised by supervisors");
    describe_gauge!(
        DESIRED_REPLICAS,
        "Desired instances per process of a scalable kind"
    );
    describe_gauge!(
        HEARTBEAT_AGE_SECONDS,
        Unit::Seconds,
        "Oldest heartbeat age per kind"
    );
    describe_gauge!(AGENTS, "Actors by kind and status");
    describe_counter!(BUS_DROPPED_TOTAL, "Bus messages missed by slow subscribers");
    describe_gauge!(BREAKERS_OPEN, "Hosts with an open circuit breaker");
    describe_counter!(BREAKER_TRANSITIONS_TOTAL, "Circuit breaker transitions");
    describe_counter!(SCRAPE_TASKS_TOTAL, "Scrape tasks scheduled by the queen");
    describe_gauge!(MEMORY_ENTRIES, "Shared memory entries held");
    describe_counter!(SYNTHESIS_SNAPSHOTS_TOTAL, "Synthesis snapshots persisted");
    describe_counter!(API_REQUESTS_TOTAL, "API requests");
    describe_counter!(
        API_CACHE_LOOKUPS_TOTAL,
        "Lookups in the GET /events page cache, by result (hit, miss, stale)"
    );
    describe_histogram!(
        API_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "API request latency"
    );
    describe_counter!(RECOMMENDATIONS_TOTAL, "Performance recommendations");
}

/// Registers the counters whose label values are known in advance at zero, so that a
/// dashboard's `rate()` and `increase()` read 0 rather than nothing before the first event
/// (a restart, a duplicate, a breaker opening) and an alert's first increase is seen.
/// Counters labelled by operator data (sources) or by free text appear at their first event.
pub fn initialise_counters() {
    use crate::domain::AgentKind;
    for kind in AgentKind::ALL {
        metrics::counter!(ACTOR_RESTARTS_TOTAL, "kind" => kind.as_str()).increment(0);
        metrics::counter!(ACTOR_GIVEUPS_TOTAL, "kind" => kind.as_str()).increment(0);
        for delivered in ["webhook", "failed", "none"] {
            metrics::counter!(SUPERVISOR_ALERTS_TOTAL, "agent" => kind.as_str(), "delivered" => delivered)
                .increment(0);
        }
    }
    for queue in crate::channels::QUEUES {
        metrics::counter!(QUEUE_REDELIVERED_TOTAL, "queue" => queue).increment(0);
    }
    for verdict in ["tge", "not_tge"] {
        metrics::counter!(DOCUMENTS_CLASSIFIED_TOTAL, "verdict" => verdict).increment(0);
    }
    for outcome in ["read", "over_budget"] {
        metrics::counter!(SENTENCE_STAGE_TOTAL, "outcome" => outcome).increment(0);
    }
    for reason in ["duplicate", "invalid"] {
        metrics::counter!(DOCUMENTS_DROPPED_TOTAL, "reason" => reason).increment(0);
    }
    for state in ["closed", "open", "half_open"] {
        metrics::counter!(BREAKER_TRANSITIONS_TOTAL, "state" => state).increment(0);
    }
    metrics::counter!(EVENTS_CREATED_TOTAL).increment(0);
    metrics::counter!(EVENTS_MERGED_TOTAL).increment(0);
    metrics::counter!(SCRAPE_TASKS_TOTAL).increment(0);
    metrics::counter!(SYNTHESIS_SNAPSHOTS_TOTAL).increment(0);
}
