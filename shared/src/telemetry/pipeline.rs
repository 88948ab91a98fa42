//! The pipeline's metrics: sources and scraping, detection, data quality, queues and the bus.

use crate::domain::{FetchStatus, SourceKind};
use crate::ports::QueueDepth;

use super::{Metric, MetricKind, counter, gauge, seconds};

// ---- Sources and scraping ----

/// Labels: `source_kind`.
pub const DOCUMENTS_FETCHED: Metric = counter(
    "tge_swarm_documents_fetched_total",
    "Documents parsed from sources",
);

/// `count` documents parsed from a source of `kind`.
pub fn documents_fetched(kind: SourceKind, count: u64) {
    metrics::counter!(DOCUMENTS_FETCHED.name, "source_kind" => kind.as_str()).increment(count);
}

/// Labels: `source` (the operator's name for it), `outcome` (`ok`, `not_modified`, `error`,
/// `circuit_open`).
pub const SOURCE_FETCHES: Metric = counter(
    "tge_swarm_source_fetches_total",
    "Source fetches by outcome",
);

/// One fetch of the source named `source`.
pub fn source_fetched(source: &str, outcome: FetchStatus) {
    metrics::counter!(SOURCE_FETCHES.name, "source" => source.to_owned(), "outcome" => outcome.as_str())
        .increment(1);
}

/// Labels: `stage`.
pub const STAGE_DURATION: Metric = seconds(
    MetricKind::Histogram,
    "tge_swarm_stage_duration_seconds",
    "Pipeline stage latency",
);

/// A pipeline stage, as [`stage_took`] labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// One source fetch.
    Fetch,
    /// Parsing one fetched body.
    Parse,
    /// Scoring one document.
    Classify,
    /// Recording one document (its share of a batch).
    Quality,
    /// From fetch to recorded, per document.
    Pipeline,
}

impl Stage {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Parse => "parse",
            Stage::Classify => "classify",
            Stage::Quality => "quality",
            Stage::Pipeline => "pipeline",
        }
    }
}

/// A stage took `seconds`.
pub fn stage_took(stage: Stage, seconds: f64) {
    metrics::histogram!(STAGE_DURATION.name, "stage" => stage.as_str()).record(seconds);
}

/// Labels: none.
pub const SCRAPE_TASKS: Metric = counter(
    "tge_swarm_scrape_tasks_total",
    "Scrape tasks scheduled by the queen",
);

/// The queen enqueued `count` scrape tasks.
pub fn scrape_tasks_scheduled(count: u64) {
    metrics::counter!(SCRAPE_TASKS.name).increment(count);
}

// ---- Detection ----

/// Labels: `verdict` (`tge`, `not_tge`).
pub const DOCUMENTS_CLASSIFIED: Metric = counter(
    "tge_swarm_documents_classified_total",
    "Documents scored by keyword agents",
);

/// Labels: none.
pub const DETECTION_SCORE: Metric = Metric {
    name: "tge_swarm_detection_score",
    kind: MetricKind::Histogram,
    unit: None,
    help: "Detection scores: probability that a document announces a TGE",
};

/// The `verdict` label of a document that is an announcement or not.
pub(super) fn verdict_label(is_tge: bool) -> &'static str {
    if is_tge { "tge" } else { "not_tge" }
}

/// A document scored `score`, an announcement or not.
pub fn document_classified(score: f64, is_tge: bool) {
    metrics::histogram!(DETECTION_SCORE.name).record(score);
    metrics::counter!(DOCUMENTS_CLASSIFIED.name, "verdict" => verdict_label(is_tge)).increment(1);
}

/// Labels: `outcome` (`read`, `over_budget`).
pub const SENTENCE_STAGE: Metric = counter(
    "tge_swarm_detection_sentence_stage_total",
    "Documents near the threshold the sentence encoder read, or left to the second stage over its budget",
);

/// A document near the threshold was read by the sentence encoder, or left to the second
/// stage because its budget was spent.
pub fn sentence_stage(read: bool) {
    metrics::counter!(SENTENCE_STAGE.name, "outcome" => sentence_label(read)).increment(1);
}

/// The `outcome` label of a document the sentence encoder read or left over budget.
pub(super) fn sentence_label(read: bool) -> &'static str {
    if read { "read" } else { "over_budget" }
}

// ---- Data quality ----

/// Labels: `reason` (`duplicate`, `invalid`).
pub const DOCUMENTS_DROPPED: Metric = counter(
    "tge_swarm_documents_dropped_total",
    "Documents dropped by data quality",
);

/// Why data quality dropped a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Seen before (same id, URL or near-duplicate text).
    Duplicate,
    /// Failed validation.
    Invalid,
}

impl DropReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Duplicate => "duplicate",
            DropReason::Invalid => "invalid",
        }
    }
}

/// Data quality dropped a document.
pub fn document_dropped(reason: DropReason) {
    metrics::counter!(DOCUMENTS_DROPPED.name, "reason" => reason.as_str()).increment(1);
}

/// Labels: none.
pub const EVENTS_CREATED: Metric = counter("tge_swarm_events_created_total", "TGE events created");

/// A TGE event was created.
pub fn event_created() {
    metrics::counter!(EVENTS_CREATED.name).increment(1);
}

/// Labels: `source_kind` (the kind of the source of the event's first report).
pub const DETECTION_LAG: Metric = seconds(
    MetricKind::Histogram,
    "tge_swarm_detection_lag_seconds",
    "Seconds from a source publishing an event's first report to the swarm storing the event",
);

/// An event was stored `seconds` after its first report was published by a source of `kind`
/// (unknown for reports that carry no kind). A publish time in the future (a source's clock
/// ahead of ours) counts as no lag.
pub fn detection_lag(kind: Option<SourceKind>, seconds: f64) {
    let kind = kind.map_or("unknown", SourceKind::as_str);
    metrics::histogram!(DETECTION_LAG.name, "source_kind" => kind).record(seconds.max(0.0));
}

/// Labels: none.
pub const EVENTS_MERGED: Metric = counter(
    "tge_swarm_events_merged_total",
    "Documents merged into existing TGE events",
);

/// A document was merged into an existing event.
pub fn event_merged() {
    metrics::counter!(EVENTS_MERGED.name).increment(1);
}

/// Labels: `table` (`documents`, `fingerprints`).
pub const RETENTION_DELETED: Metric = counter(
    "tge_swarm_retention_deleted_total",
    "Rows deleted by retention, by table",
);

/// The tables retention deletes from.
pub const RETENTION_TABLES: [&str; 2] = ["documents", "fingerprints"];

/// Retention deleted `rows` of `table` (one of [`RETENTION_TABLES`]).
pub fn retention_deleted(table: &'static str, rows: u64) {
    metrics::counter!(RETENTION_DELETED.name, "table" => table).increment(rows);
}

// ---- Queues and the bus ----

/// Labels: `queue`, `state` (`ready`, `pending`).
pub const QUEUE_DEPTH: Metric = gauge("tge_swarm_queue_depth", "Work queue depth by state");

/// The depth of `queue` now.
pub fn queue_depth(queue: &'static str, depth: &QueueDepth) {
    metrics::gauge!(QUEUE_DEPTH.name, "queue" => queue, "state" => "ready").set(depth.ready as f64);
    metrics::gauge!(QUEUE_DEPTH.name, "queue" => queue, "state" => "pending")
        .set(depth.pending as f64);
}

/// Labels: `queue`.
pub const QUEUE_REDELIVERED: Metric = counter(
    "tge_swarm_queue_redelivered_total",
    "Work items redelivered",
);

/// `count` work items of `queue` were redelivered after a consumer died or stalled.
pub fn queue_redelivered(queue: &'static str, count: u64) {
    metrics::counter!(QUEUE_REDELIVERED.name, "queue" => queue).increment(count);
}

/// Labels: `queue`, `reason` (`handler panicked`, `undecodable`, `delivered too many times`).
pub const DEAD_LETTERS: Metric = counter(
    "tge_swarm_dead_letters_total",
    "Work items moved to the dead-letter queue",
);

/// A work item of `queue` was set aside.
pub fn dead_lettered(queue: &str, reason: &str) {
    metrics::counter!(DEAD_LETTERS.name, "queue" => queue.to_owned(), "reason" => reason.to_owned())
        .increment(1);
}

/// Labels: `channel`.
pub const BUS_DROPPED: Metric = counter(
    "tge_swarm_bus_dropped_total",
    "Bus messages missed by slow subscribers",
);

/// A slow subscriber of `channel` missed `count` messages.
pub fn bus_dropped(channel: &str, count: u64) {
    metrics::counter!(BUS_DROPPED.name, "channel" => channel.to_owned()).increment(count);
}
