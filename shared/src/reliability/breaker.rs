//! Per-host circuit breaker as a pure state machine over call outcomes and wall-clock time.
//! Wall-clock (not monotonic) time is used because the API reliability agent broadcasts the
//! `until` instant to scraping agents in other processes.
//!
//! Closed → (threshold failures in a row, or a 429) → Open until `until` → HalfOpen (one trial)
//! → Closed on success, or Open again for twice as long (capped) on failure.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::ReliabilityConfig;
use crate::messages::{BreakerState, CallOutcome};

/// One host's breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    state: BreakerState,
    failures: u32,
    until: Option<DateTime<Utc>>,
    opened_times: u32,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            state: BreakerState::Closed,
            failures: 0,
            until: None,
            opened_times: 0,
        }
    }
}

/// A state change to broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// New state.
    pub state: BreakerState,
    /// When an open breaker allows a trial.
    pub until: Option<DateTime<Utc>>,
}

impl Breaker {
    /// The state at `now`: an open breaker whose period has passed is half-open.
    pub fn state_at(&self, now: DateTime<Utc>) -> BreakerState {
        match (self.state, self.until) {
            (BreakerState::Open, Some(until)) if now >= until => BreakerState::HalfOpen,
            (state, _) => state,
        }
    }

    /// When the open period ends.
    pub fn until(&self) -> Option<DateTime<Utc>> {
        self.until
    }

    /// Applies one call outcome; returns the transition if the state changed.
    pub fn record(
        &mut self,
        outcome: CallOutcome,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
        config: &ReliabilityConfig,
    ) -> Option<Transition> {
        let before = self.state_at(now);
        match (before, outcome) {
            (BreakerState::Open, _) => None,
            (_, CallOutcome::Success) => {
                self.failures = 0;
                self.opened_times = 0;
                self.until = None;
                self.state = BreakerState::Closed;
                (before != BreakerState::Closed).then_some(Transition {
                    state: BreakerState::Closed,
                    until: None,
                })
            }
            (BreakerState::Closed, CallOutcome::Failure) => {
                self.failures += 1;
                if self.failures < config.failure_threshold {
                    return None;
                }
                Some(self.open(now, None, config))
            }
            (BreakerState::Closed, CallOutcome::RateLimited) => {
                Some(self.open(now, retry_after, config))
            }
            (BreakerState::HalfOpen, CallOutcome::Failure | CallOutcome::RateLimited) => {
                Some(self.open(now, retry_after, config))
            }
        }
    }

    fn open(
        &mut self,
        now: DateTime<Utc>,
        retry_after: Option<Duration>,
        config: &ReliabilityConfig,
    ) -> Transition {
        let doubling = 2u32.saturating_pow(self.opened_times.min(16));
        let backoff = config
            .open_for
            .saturating_mul(doubling)
            .min(config.max_open_for);
        let period = match retry_after {
            Some(wait) => wait.min(config.max_open_for),
            None => backoff,
        };
        let until = crate::time::after(now, period);
        self.state = BreakerState::Open;
        self.until = Some(until);
        self.failures = 0;
        self.opened_times += 1;
        Transition {
            state: BreakerState::Open,
            until: Some(until),
        }
    }
}

/// Whether a call may go out given a broadcast breaker view.
pub fn allows(state: BreakerState, until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    match state {
        BreakerState::Closed | BreakerState::HalfOpen => true,
        BreakerState::Open => until.is_some_and(|until| now >= until),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ReliabilityConfig {
        ReliabilityConfig {
            failure_threshold: 3,
            open_for: Duration::from_secs(10),
            max_open_for: Duration::from_secs(25),
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn transitions_table() {
        use BreakerState::*;
        use CallOutcome::*;
        // (time, outcome, retry_after, expected state after, expect a transition)
        let steps: &[(i64, CallOutcome, Option<u64>, BreakerState, bool)] = &[
            (0, Failure, None, Closed, false),
            (1, Failure, None, Closed, false),
            (2, Success, None, Closed, false), // success resets the count
            (3, Failure, None, Closed, false),
            (4, Failure, None, Closed, false),
            (5, Failure, None, Open, true), // third in a row opens for 10 s
            (6, Failure, None, Open, false), // late outcomes while open are ignored
            (15, Failure, None, Open, true), // half-open trial fails: open 20 s (doubled)
            (16, Failure, None, Open, false),
            (34, Success, None, Open, false), // still open until 35: ignored
            (35, Success, None, Closed, true), // trial succeeds
            (40, RateLimited, Some(7), Open, true), // 429 opens for Retry-After
            (47, Success, None, Closed, true),
        ];
        let mut breaker = Breaker::default();
        for (index, (time, outcome, retry_after, expected, transition)) in steps.iter().enumerate()
        {
            let now = at(*time);
            let change = breaker.record(
                *outcome,
                retry_after.map(Duration::from_secs),
                now,
                &config(),
            );
            assert_eq!(change.is_some(), *transition, "step {index}");
            assert_eq!(breaker.state_at(now), *expected, "step {index}");
        }
    }

    #[test]
    fn open_period_is_capped() {
        let mut breaker = Breaker::default();
        let config = config();
        let mut now = at(0);
        for _ in 0..config.failure_threshold {
            breaker.record(CallOutcome::Failure, None, now, &config);
        }
        for _ in 0..5 {
            let until = breaker.until().unwrap();
            assert!(until - now <= chrono::Duration::seconds(25));
            now = until;
            breaker.record(CallOutcome::Failure, None, now, &config);
        }
        assert!(!allows(BreakerState::Open, breaker.until(), now));
        assert!(allows(
            BreakerState::Open,
            breaker.until(),
            breaker.until().unwrap()
        ));
    }
}
