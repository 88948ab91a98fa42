//! The scheduling decision, pure: is a source due, and is its previous task done? A source
//! whose last task has not been recorded yet is not scheduled again (back-pressure: a stalled
//! or crashed scraping agent must not pile up duplicate tasks), unless that task is so old it
//! must have been lost. Once recorded, a source is due its current interval after that fetch
//! (the interval the fetch itself set, so a server's Retry-After is kept to the second).

use chrono::{DateTime, Utc};

/// What the queen knows about one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceClock {
    /// When the source is next due (none: never scheduled yet).
    pub next_due: Option<DateTime<Utc>>,
    /// When its last task was enqueued (none: no task outstanding).
    pub enqueued_at: Option<DateTime<Utc>>,
    /// When its last fetch was recorded.
    pub last_fetch_at: Option<DateTime<Utc>>,
    /// Its interval now (the one its last fetch set: adapted to its yield, or a server's
    /// Retry-After).
    pub interval: std::time::Duration,
}

/// Whether to enqueue a task for the source now. `stale_after` is how long an unrecorded task
/// is waited for before it is presumed lost.
pub fn should_schedule(
    clock: SourceClock,
    now: DateTime<Utc>,
    stale_after: chrono::Duration,
) -> bool {
    let Some(enqueued_at) = clock.enqueued_at else {
        return clock.next_due.is_none_or(|at| now >= at);
    };
    // The store keeps times to the millisecond: a fetch recorded within the millisecond its
    // task was enqueued in reads back as earlier than the enqueueing, and would be taken for
    // a task still out until it counted as lost (a local exchange answers that fast).
    let enqueued_at = chrono::SubsecRound::trunc_subsecs(enqueued_at, 3);
    match clock.last_fetch_at {
        // The last task was recorded: the interval its fetch set counts from that fetch, so
        // a Retry-After of 120 s means a fetch 120 s after the 429, not an interval later.
        Some(fetched) if fetched >= enqueued_at => {
            now >= swarm_shared::time::after(fetched, clock.interval)
        }
        // Still out: wait for it, unless it must have been lost.
        _ => clock.next_due.is_none_or(|at| now >= at) && now - enqueued_at >= stale_after,
    }
}

/// Whether a source's stored fetch validators (ETag, Last-Modified, content hash) may be sent
/// with its next task, so an unchanged body is skipped.
///
/// A validator stands for "the documents of this body are safe". With a durable work queue
/// they are: the scraping agent stores the validators only after enqueueing the documents.
/// With the embedded queues, which live in memory, documents still waiting in a queue die with
/// the process; a validator stored before this queen started (`validators_from`) may stand
/// for such lost documents, so the first fetch of each source after a start reads and parses
/// the whole body again. Documents that were already recorded are dropped as exact
/// duplicates, and the lost ones are recorded: each announcement still in its source ends up
/// exactly once. The validators are trusted again once a fetch since the start succeeded
/// (a body read in full, or a 304 to validators that were themselves trusted); a failed fetch
/// leaves the validators of an older body in place, so it does not count.
pub fn trusts_validators(
    validators_from: Option<DateTime<Utc>>,
    source: &swarm_shared::domain::Source,
) -> bool {
    let Some(from) = validators_from else {
        return true;
    };
    let succeeded = matches!(
        source.last_status,
        Some(
            swarm_shared::domain::FetchStatus::Ok | swarm_shared::domain::FetchStatus::NotModified
        )
    );
    succeeded && source.last_fetch_at.is_some_and(|fetched| fetched >= from)
}

/// Sources in the order their tasks are enqueued within one round: the most reliable tier
/// first (tier 1 news before tier 4 blogs), then by id, so the scrape queue is served by
/// priority when more sources are due than there are fetch slots.
pub fn by_priority(sources: &[swarm_shared::domain::Source]) -> Vec<&swarm_shared::domain::Source> {
    let mut ordered: Vec<&swarm_shared::domain::Source> = sources.iter().collect();
    ordered.sort_by_key(|source| (source.tier, source.id));
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fetch recorded in the same millisecond as its task's enqueueing (the store keeps
    /// milliseconds) is that task's, not an older one's.
    #[test]
    fn a_fetch_recorded_within_the_enqueueing_millisecond_counts() {
        let enqueued = at(100) + chrono::Duration::microseconds(123_456);
        let recorded = at(100) + chrono::Duration::milliseconds(123);
        let clock = SourceClock {
            next_due: Some(at(101)),
            enqueued_at: Some(enqueued),
            last_fetch_at: Some(recorded),
            interval: std::time::Duration::from_secs(1),
        };
        let stale = chrono::Duration::seconds(15);
        assert!(!should_schedule(
            clock,
            at(100) + chrono::Duration::milliseconds(500),
            stale
        ));
        assert!(
            should_schedule(clock, at(101) + chrono::Duration::milliseconds(200), stale),
            "due an interval after the fetch, not 15 s after the task"
        );
    }

    #[test]
    fn tier_first_then_id() {
        let source = |id: i64, tier: u8| swarm_shared::domain::Source {
            id,
            name: format!("s{id}"),
            tier,
            ..sample_source()
        };
        let sources = [source(1, 4), source(2, 1), source(3, 2), source(4, 1)];
        let order: Vec<i64> = by_priority(&sources).iter().map(|s| s.id).collect();
        assert_eq!(order, [2, 4, 3, 1]);
    }

    #[test]
    fn validators_are_trusted_only_when_the_queue_keeps_what_they_stand_for() {
        use swarm_shared::domain::FetchStatus;
        let source = |fetched: Option<i64>, status: Option<FetchStatus>| {
            let mut source = sample_source();
            source.last_fetch_at = fetched.map(at);
            source.last_status = status;
            source
        };
        let started = Some(at(100));
        let cases = [
            (
                "durable queue",
                None,
                source(Some(10), Some(FetchStatus::Ok)),
                true,
            ),
            (
                "durable queue, never fetched",
                None,
                source(None, None),
                true,
            ),
            (
                "in-memory queue, never fetched",
                started,
                source(None, None),
                false,
            ),
            (
                "in-memory queue, fetched before this start",
                started,
                source(Some(10), Some(FetchStatus::Ok)),
                false,
            ),
            (
                "in-memory queue, read in full since this start",
                started,
                source(Some(100), Some(FetchStatus::Ok)),
                true,
            ),
            (
                "in-memory queue, 304 since this start",
                started,
                source(Some(150), Some(FetchStatus::NotModified)),
                true,
            ),
            (
                "in-memory queue, failed since this start: older validators stay",
                started,
                source(Some(150), Some(FetchStatus::Error)),
                false,
            ),
            (
                "in-memory queue, breaker open since this start",
                started,
                source(Some(150), Some(FetchStatus::CircuitOpen)),
                false,
            ),
        ];
        for (name, from, source, expected) in cases {
            assert_eq!(trusts_validators(from, &source), expected, "{name}");
        }
    }

    fn sample_source() -> swarm_shared::domain::Source {
        swarm_shared::domain::Source {
            provenance: None,
            id: 1,
            name: "s1".into(),
            kind: swarm_shared::domain::SourceKind::Rss,
            url: "https://x.example/feed".into(),
            interval: std::time::Duration::from_secs(60),
            selectors: None,
            exchange: None,
            feed: None,
            json: None,
            channel: None,
            query: None,
            account: None,
            tier: 2,
            enabled: true,
            created_at: at(0),
            last_fetch_at: None,
            last_status: None,
            last_error: None,
            consecutive_failures: 0,
            last_item_count: 0,
            effective_interval: None,
            content_hash: Some("hash".into()),
            etag: Some("\"v1\"".into()),
            last_modified: None,
            down_since: None,
            down_reason: None,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn table() {
        let stale = chrono::Duration::seconds(300);
        let timed = |next_due: Option<i64>,
                     enqueued: Option<i64>,
                     fetched: Option<i64>,
                     interval: u64| SourceClock {
            next_due: next_due.map(at),
            enqueued_at: enqueued.map(at),
            last_fetch_at: fetched.map(at),
            interval: std::time::Duration::from_secs(interval),
        };
        let clock = |next_due: Option<i64>, enqueued: Option<i64>, fetched: Option<i64>| {
            timed(next_due, enqueued, fetched, 60)
        };
        let cases = [
            ("never scheduled", clock(None, None, None), 0, true),
            ("not due yet", clock(Some(60), Some(0), Some(1)), 30, false),
            (
                "due an interval after the recorded fetch",
                clock(Some(60), Some(0), Some(1)),
                61,
                true,
            ),
            (
                "the interval counts from the fetch, not the enqueue",
                clock(Some(60), Some(0), Some(10)),
                60,
                false,
            ),
            (
                "a 429's Retry-After (120 s + 1) is kept to the second",
                timed(Some(60), Some(0), Some(10), 121),
                130,
                false,
            ),
            (
                "a 429's Retry-After (120 s + 1), reached",
                timed(Some(60), Some(0), Some(10), 121),
                131,
                true,
            ),
            (
                "due, last task not recorded",
                clock(Some(60), Some(0), None),
                60,
                false,
            ),
            (
                "due, recorded before the last enqueue",
                clock(Some(60), Some(10), Some(5)),
                60,
                false,
            ),
            (
                "due, last task presumed lost",
                clock(Some(60), Some(0), None),
                300,
                true,
            ),
            (
                "recorded at the same instant it was enqueued",
                clock(Some(60), Some(0), Some(0)),
                60,
                true,
            ),
        ];
        for (name, clock, now, expected) in cases {
            assert_eq!(should_schedule(clock, at(now), stale), expected, "{name}");
        }
    }
}
