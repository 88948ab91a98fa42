//! The local restart policy of agent hosts, pure: given the recent failure times of a child,
//! decide whether to restart it and after what delay. Defaults (DESIGN.md): at most 3 restarts
//! in a 300 s sliding window, backoff 1 s, 2 s, 4 s with ±20 % jitter; when the budget is spent
//! the child waits out a cooldown (the restart window) before one more attempt.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::SupervisionConfig;

/// What to do about a child that died.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RestartDecision {
    /// Restart after `delay`; `attempt` counts restarts in the window, from 1.
    Restart {
        /// Delay before respawning.
        delay: Duration,
        /// Restart number within the window.
        attempt: u32,
    },
    /// The budget is spent: wait `cooldown` before one more attempt, and alert.
    Cooldown {
        /// How long to wait.
        cooldown: Duration,
    },
}

/// Decides about a child that died at `now`. `history` holds the child's earlier failure
/// times (any order); entries older than the window are ignored. `jitter_sample` is a uniform
/// random number in [0, 1) (injected so the decision is reproducible in tests).
pub fn decide_restart(
    history: &VecDeque<Instant>,
    now: Instant,
    config: &SupervisionConfig,
    jitter_sample: f64,
) -> RestartDecision {
    let mut recent: u32 = 0;
    for failure in history {
        if now.saturating_duration_since(*failure) < config.restart_window {
            recent += 1;
        }
    }
    if recent >= config.max_restarts {
        return RestartDecision::Cooldown {
            cooldown: config.restart_window,
        };
    }
    let doubling = 2u32.saturating_pow(recent.min(16));
    let base = config.backoff_base.saturating_mul(doubling);
    let spread = config.backoff_jitter * (2.0 * jitter_sample.clamp(0.0, 1.0) - 1.0);
    let delay = base.mul_f64((1.0 + spread).max(0.0));
    RestartDecision::Restart {
        delay,
        attempt: recent + 1,
    }
}

/// Drops failure times older than the window.
pub fn prune_history(history: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while let Some(oldest) = history.front() {
        if now.saturating_duration_since(*oldest) < window {
            break;
        }
        history.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn restart_budget_and_backoff() {
        let config = SupervisionConfig::default();
        let start = Instant::now();
        let s = |secs: u64| start + Duration::from_secs(secs);
        // (earlier failures, now, jitter sample, expected)
        let cases: Vec<(Vec<Instant>, Instant, f64, RestartDecision)> = vec![
            (
                vec![],
                s(0),
                0.5,
                RestartDecision::Restart {
                    delay: Duration::from_secs(1),
                    attempt: 1,
                },
            ),
            (
                vec![s(0)],
                s(5),
                0.5,
                RestartDecision::Restart {
                    delay: Duration::from_secs(2),
                    attempt: 2,
                },
            ),
            (
                vec![s(0), s(5)],
                s(9),
                0.5,
                RestartDecision::Restart {
                    delay: Duration::from_secs(4),
                    attempt: 3,
                },
            ),
            (
                vec![s(0), s(5), s(9)],
                s(12),
                0.5,
                RestartDecision::Cooldown {
                    cooldown: Duration::from_secs(300),
                },
            ),
            // failures older than the window do not count
            (
                vec![s(0), s(5), s(9)],
                s(306),
                0.5,
                RestartDecision::Restart {
                    delay: Duration::from_secs(2),
                    attempt: 2,
                },
            ),
            // jitter bounds: -20 % and +20 %
            (
                vec![],
                s(0),
                0.0,
                RestartDecision::Restart {
                    delay: Duration::from_millis(800),
                    attempt: 1,
                },
            ),
            (
                vec![],
                s(0),
                1.0,
                RestartDecision::Restart {
                    delay: Duration::from_millis(1200),
                    attempt: 1,
                },
            ),
        ];
        for (index, (history, now, sample, expected)) in cases.into_iter().enumerate() {
            let history: VecDeque<Instant> = history.into_iter().collect();
            let decision = decide_restart(&history, now, &config, sample);
            assert_eq!(decision, expected, "case {index}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn prune_drops_old_failures() {
        let start = Instant::now();
        let mut history: VecDeque<Instant> = [start, start + Duration::from_secs(200)]
            .into_iter()
            .collect();
        prune_history(
            &mut history,
            start + Duration::from_secs(301),
            Duration::from_secs(300),
        );
        assert_eq!(history.len(), 1);
    }
}
