//! Source health for analysts: when a source's failures or silence become an incident that
//! subscribers are told of (once), and when the incident ends (once more). Pure: the
//! deliverer assesses every source against its stored state and the store records each
//! change with its outbox row in one transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{FetchStatus, Source};

/// When a source is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Failed fetches in a row that make an incident (0: never).
    pub down_after_failures: u32,
    /// Expected periods (the source's effective interval) without a completed fetch that make
    /// an incident (0: never).
    pub silent_after_intervals: u32,
    /// Added to the silence allowed, for a scheduler's jitter and a slow fetch.
    pub grace: Duration,
}

/// A change of a source's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthChange {
    /// An incident starts, for this reason.
    Down(String),
    /// The open incident ends.
    Recovered,
}

impl HealthPolicy {
    /// What `source`'s state means at `now`, given whether it has an open incident; the
    /// watch started at `watching_since` (a process that just started has not seen the
    /// sources fetched yet, so their silence counts from then). None: nothing changes.
    /// Disabled sources are left alone: one disabled while down stays down until it is
    /// enabled again and fetches.
    pub fn assess(
        &self,
        source: &Source,
        now: DateTime<Utc>,
        watching_since: DateTime<Utc>,
    ) -> Option<HealthChange> {
        if !source.enabled {
            return None;
        }
        let failing =
            self.down_after_failures > 0 && source.consecutive_failures >= self.down_after_failures;
        let period = source.effective_interval.unwrap_or(source.interval);
        let allowed = period
            .saturating_mul(self.silent_after_intervals)
            .saturating_add(self.grace);
        let heard = source
            .last_fetch_at
            .map_or(watching_since, |at| at.max(watching_since));
        let silent_for = (now - heard).to_std().unwrap_or_default();
        let silent = self.silent_after_intervals > 0 && silent_for > allowed;
        match source.down_since {
            None if failing => Some(HealthChange::Down(format!(
                "failed {} times in a row{}",
                source.consecutive_failures,
                source
                    .last_error
                    .as_deref()
                    .map(|error| format!(": {error}"))
                    .unwrap_or_default()
            ))),
            None if silent => Some(HealthChange::Down(format!(
                "no fetch completed for {} (expected every {})",
                humantime::format_duration(round_secs(silent_for)),
                humantime::format_duration(period)
            ))),
            None => None,
            Some(since) => {
                let fetched_ok_since = source.last_fetch_at.is_some_and(|at| at > since)
                    && matches!(
                        source.last_status,
                        Some(FetchStatus::Ok) | Some(FetchStatus::NotModified)
                    );
                (fetched_ok_since && !failing).then_some(HealthChange::Recovered)
            }
        }
    }
}

fn round_secs(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SourceKind;

    fn source() -> Source {
        let at = DateTime::from_timestamp(1_000_000, 0).unwrap();
        Source {
            provenance: None,
            id: 1,
            name: "feed".into(),
            kind: SourceKind::Rss,
            url: "https://feed.example/rss".into(),
            interval: Duration::from_secs(60),
            selectors: None,
            exchange: None,
            feed: None,
            json: None,
            channel: None,
            query: None,
            account: None,
            tier: 1,
            enabled: true,
            created_at: at,
            last_fetch_at: Some(at),
            last_status: Some(FetchStatus::Ok),
            last_error: None,
            consecutive_failures: 0,
            last_item_count: 3,
            effective_interval: None,
            etag: None,
            last_modified: None,
            content_hash: None,
            down_since: None,
            down_reason: None,
        }
    }

    const POLICY: HealthPolicy = HealthPolicy {
        down_after_failures: 5,
        silent_after_intervals: 3,
        grace: Duration::from_secs(60),
    };

    #[test]
    fn failures_and_silence_open_an_incident_and_a_good_fetch_ends_it() {
        let healthy = source();
        let start = healthy.last_fetch_at.unwrap();
        let at = |secs: i64| start + chrono::Duration::seconds(secs);
        assert_eq!(POLICY.assess(&healthy, at(30), start), None);

        let mut failing = source();
        failing.consecutive_failures = 5;
        failing.last_status = Some(FetchStatus::Error);
        failing.last_error = Some("HTTP 503".into());
        assert_eq!(
            POLICY.assess(&failing, at(30), start),
            Some(HealthChange::Down(
                "failed 5 times in a row: HTTP 503".into()
            ))
        );
        failing.consecutive_failures = 4;
        assert_eq!(POLICY.assess(&failing, at(30), start), None, "4 < 5");

        // Silent: no fetch for 3 periods and the grace (240 s here).
        assert_eq!(POLICY.assess(&healthy, at(240), start), None);
        assert_eq!(
            POLICY.assess(&healthy, at(241), start),
            Some(HealthChange::Down(
                "no fetch completed for 4m 1s (expected every 1m)".into()
            ))
        );
        // A process that just started counts silence from its start.
        assert_eq!(POLICY.assess(&healthy, at(241), at(200)), None);

        // An open incident ends with a good fetch after it began, not before.
        let mut down = failing.clone();
        down.down_since = Some(at(10));
        assert_eq!(POLICY.assess(&down, at(30), start), None);
        down.consecutive_failures = 0;
        down.last_status = Some(FetchStatus::Ok);
        down.last_fetch_at = Some(at(20));
        assert_eq!(
            POLICY.assess(&down, at(30), start),
            Some(HealthChange::Recovered)
        );
        down.last_fetch_at = Some(at(5));
        assert_eq!(POLICY.assess(&down, at(30), start), None);

        // Disabled sources and a policy of zeros say nothing.
        let mut disabled = failing.clone();
        disabled.enabled = false;
        assert_eq!(POLICY.assess(&disabled, at(30), start), None);
        let off = HealthPolicy {
            down_after_failures: 0,
            silent_after_intervals: 0,
            grace: Duration::ZERO,
        };
        assert_eq!(off.assess(&failing, at(100_000), start), None);
    }
}
