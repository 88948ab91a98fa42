//! The scheduling decision, pure: is a source due, and is its previous task done? A source
//! whose last task has not been recorded yet is not scheduled again (back-pressure: a stalled
//! or crashed scraping agent must not pile up duplicate tasks), unless that task is so old it
//! must have been lost.

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
}

/// Whether to enqueue a task for the source now. `stale_after` is how long an unrecorded task
/// is waited for before it is presumed lost.
pub fn should_schedule(
    clock: SourceClock,
    now: DateTime<Utc>,
    stale_after: chrono::Duration,
) -> bool {
    let due = clock.next_due.is_none_or(|at| now >= at);
    if !due {
        return false;
    }
    let Some(enqueued_at) = clock.enqueued_at else {
        return true;
    };
    let recorded = clock
        .last_fetch_at
        .is_some_and(|fetched| fetched >= enqueued_at);
    recorded || now - enqueued_at >= stale_after
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn table() {
        let stale = chrono::Duration::seconds(300);
        let clock =
            |next_due: Option<i64>, enqueued: Option<i64>, fetched: Option<i64>| SourceClock {
                next_due: next_due.map(at),
                enqueued_at: enqueued.map(at),
                last_fetch_at: fetched.map(at),
            };
        let cases = [
            ("never scheduled", clock(None, None, None), 0, true),
            ("not due yet", clock(Some(60), Some(0), Some(1)), 30, false),
            (
                "due, last task recorded",
                clock(Some(60), Some(0), Some(1)),
                60,
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
