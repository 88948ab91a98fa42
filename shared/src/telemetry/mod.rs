//! Telemetry, in one place: every metric's name, kind, help and labels, and one small typed
//! function per thing that happens, which is the only way the code records it (as vector does
//! with its internal events). Names are `tge_swarm_` prefixed, in base units, counters end in
//! `_total`; labels are bounded (kinds, outcomes, stages, queue names, operator-defined source
//! names), never URLs or ids, and the functions' argument types keep them so.

//!
//! Files: the `Metric` type, the list of every metric and their registration here; the
//! pipeline's metrics (sources, detection, data quality, queues) in `pipeline.rs`; the control
//! plane's (actors, supervision, dependencies, breakers, memory, the API) in `control.rs`.

use metrics::Unit;

use crate::domain::AgentKind;
use crate::messages::BreakerState;

mod control;
mod pipeline;

pub use control::*;
pub use pipeline::*;

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Set to a value.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

/// A metric's name, kind, unit and help, registered with the recorder by [`describe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// Exposition name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Unit, when it has one.
    pub unit: Option<Unit>,
    /// Help text.
    pub help: &'static str,
}

pub(super) const fn counter(name: &'static str, help: &'static str) -> Metric {
    Metric {
        name,
        kind: MetricKind::Counter,
        unit: None,
        help,
    }
}

pub(super) const fn gauge(name: &'static str, help: &'static str) -> Metric {
    Metric {
        name,
        kind: MetricKind::Gauge,
        unit: None,
        help,
    }
}

pub(super) const fn seconds(kind: MetricKind, name: &'static str, help: &'static str) -> Metric {
    Metric {
        name,
        kind,
        unit: Some(Unit::Seconds),
        help,
    }
}

/// Every metric, for [`describe`] and the checks that dashboards and alerts name only these.
pub const ALL: &[Metric] = &[
    DOCUMENTS_FETCHED,
    SOURCE_FETCHES,
    STAGE_DURATION,
    SCRAPE_TASKS,
    DOCUMENTS_CLASSIFIED,
    DETECTION_SCORE,
    SENTENCE_STAGE,
    DOCUMENTS_DROPPED,
    EVENTS_CREATED,
    DETECTION_LAG,
    EVENTS_MERGED,
    RETENTION_DELETED,
    QUEUE_DEPTH,
    QUEUE_REDELIVERED,
    DEAD_LETTERS,
    BUS_DROPPED,
    ACTOR_RESTARTS,
    ACTOR_GIVEUPS,
    SUPERVISOR_ACTIONS,
    SUPERVISOR_BREAKER_STATE,
    SUPERVISOR_ALERTS,
    DESIRED_REPLICAS,
    HEARTBEAT_AGE,
    AGENTS,
    COMMANDS_APPLIED,
    DEPENDENCY_UP,
    REGISTRY_INSTANCES,
    BREAKERS_OPEN,
    BREAKER_TRANSITIONS,
    MEMORY_ENTRIES,
    SYNTHESIS_SNAPSHOTS,
    RECOMMENDATIONS,
    API_REQUESTS,
    API_REQUEST_DURATION,
    API_CACHE_LOOKUPS,
    ALERT_ATTEMPTS,
    ALERT_LATENCY,
];

/// Buckets of every `_seconds` histogram: 100 µs to 60 s (recording a document, its share of
/// a batch, and a cached API answer take well under a millisecond).
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Buckets of the detection lag histogram: 250 ms to a day (news is often minutes or hours
/// behind; an exchange's API seconds).
pub const LAG_BUCKETS: &[f64] = &[
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 21600.0,
    86400.0,
];

/// Buckets of the detection score histogram: tenths of the 0..1 probability.
pub const SCORE_BUCKETS: &[f64] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// Registers the help and unit of every metric with the installed recorder.
pub fn describe() {
    for metric in ALL {
        match (metric.kind, metric.unit) {
            (MetricKind::Counter, Some(unit)) => {
                metrics::describe_counter!(metric.name, unit, metric.help)
            }
            (MetricKind::Counter, None) => metrics::describe_counter!(metric.name, metric.help),
            (MetricKind::Gauge, Some(unit)) => {
                metrics::describe_gauge!(metric.name, unit, metric.help)
            }
            (MetricKind::Gauge, None) => metrics::describe_gauge!(metric.name, metric.help),
            (MetricKind::Histogram, Some(unit)) => {
                metrics::describe_histogram!(metric.name, unit, metric.help)
            }
            (MetricKind::Histogram, None) => {
                metrics::describe_histogram!(metric.name, metric.help)
            }
        }
    }
}

/// Registers the counters whose label values are known in advance at zero, so that a
/// dashboard's `rate()` and `increase()` read 0 rather than nothing before the first event
/// (a restart, a duplicate, a breaker opening) and an alert's first increase is seen.
/// Counters labelled by operator data (sources) or by free text appear at their first event.
pub fn initialise_counters() {
    for kind in AgentKind::ALL {
        metrics::counter!(ACTOR_RESTARTS.name, "kind" => kind.as_str()).increment(0);
        metrics::counter!(ACTOR_GIVEUPS.name, "kind" => kind.as_str()).increment(0);
        for delivered in AlertDelivery::ALL {
            metrics::counter!(SUPERVISOR_ALERTS.name, "agent" => kind.as_str(), "delivered" => delivered.as_str())
                .increment(0);
        }
    }
    for queue in crate::channels::QUEUES {
        metrics::counter!(QUEUE_REDELIVERED.name, "queue" => queue).increment(0);
    }
    for flag in [true, false] {
        metrics::counter!(DOCUMENTS_CLASSIFIED.name, "verdict" => pipeline::verdict_label(flag))
            .increment(0);
        metrics::counter!(SENTENCE_STAGE.name, "outcome" => pipeline::sentence_label(flag))
            .increment(0);
    }
    for reason in [DropReason::Duplicate, DropReason::Invalid] {
        metrics::counter!(DOCUMENTS_DROPPED.name, "reason" => reason.as_str()).increment(0);
    }
    for state in [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ] {
        metrics::counter!(BREAKER_TRANSITIONS.name, "state" => breaker_label(state)).increment(0);
    }
    metrics::counter!(EVENTS_CREATED.name).increment(0);
    metrics::counter!(EVENTS_MERGED.name).increment(0);
    metrics::counter!(SCRAPE_TASKS.name).increment(0);
    metrics::counter!(SYNTHESIS_SNAPSHOTS.name).increment(0);
    for table in pipeline::RETENTION_TABLES {
        metrics::counter!(RETENTION_DELETED.name, "table" => table).increment(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions_and_are_unique() {
        let mut names = std::collections::HashSet::new();
        for metric in ALL {
            assert!(names.insert(metric.name), "{} twice", metric.name);
            assert!(metric.name.starts_with("tge_swarm_"), "{}", metric.name);
            assert_eq!(
                metric.kind == MetricKind::Counter,
                metric.name.ends_with("_total"),
                "{}: counters, and only they, end in _total",
                metric.name
            );
            assert_eq!(
                metric.unit == Some(Unit::Seconds),
                metric.name.ends_with("_seconds"),
                "{}: the unit is in the name",
                metric.name
            );
            assert!(!metric.help.is_empty(), "{}", metric.name);
        }
    }
}
