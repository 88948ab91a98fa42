//! The policy: every knob of supervision and scaling, with its defaults and checks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether a child is restarted after a normal exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartType {
    /// Always restarted, whatever the exit (every agent of the swarm, by default).
    Permanent,
    /// Restarted only after an abnormal exit (error, panic, hang).
    Transient,
}

/// Every knob of the policy, for one agent kind (`[supervision.policy]`, overridden per kind
/// under `[supervision.kinds.<kind>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Permanent or transient child.
    #[serde(default = "default_restart_type")]
    pub restart: RestartType,
    /// Restarts allowed within `restart_window`.
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    /// Sliding window of the restart budget.
    #[serde(default = "secs::<300>", with = "humantime_serde")]
    pub restart_window: Duration,
    /// First restart delay; doubles for each restart in the window.
    #[serde(default = "secs::<1>", with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Jitter of restart delays as a fraction (0.2 = ±20 %).
    #[serde(default = "default_jitter")]
    pub backoff_jitter: f64,
    /// Cooldown per (component, action); also how long an open breaker waits before its
    /// half-open attempt.
    #[serde(default = "secs::<300>", with = "humantime_serde")]
    pub cooldown: Duration,
    /// Failure counters and the escalation ladder reset after this long healthy.
    #[serde(default = "secs::<600>", with = "humantime_serde")]
    pub reset_after: Duration,
    /// Failed probes in a row before a component counts as unhealthy.
    #[serde(default = "default_unhealthy_after")]
    pub unhealthy_after: u32,
    /// Good probes in a row before it counts as healthy again (and a half-open breaker closes).
    #[serde(default = "default_healthy_after")]
    pub healthy_after: u32,
    /// No progress for this long while work is pending is a hang.
    #[serde(default = "secs::<60>", with = "humantime_serde")]
    pub stuck_after: Duration,
    /// Fewest instances per process of a scalable kind.
    #[serde(default = "default_min_replicas")]
    pub min_replicas: u32,
    /// Most instances per process of a scalable kind.
    #[serde(default = "default_max_replicas")]
    pub max_replicas: u32,
    /// Scale up when CPU stays above this percentage ...
    #[serde(default = "default_cpu_percent")]
    pub cpu_percent: f64,
    /// ... for this long.
    #[serde(default = "secs::<600>", with = "humantime_serde")]
    pub cpu_for: Duration,
    /// Scale up when memory stays above this percentage of the limit ...
    #[serde(default = "default_memory_percent")]
    pub memory_percent: f64,
    /// ... for this long.
    #[serde(default = "secs::<300>", with = "humantime_serde")]
    pub memory_for: Duration,
    /// Scale up when the mean time per item stays above this ...
    #[serde(default = "secs::<5>", with = "humantime_serde")]
    pub latency: Duration,
    /// ... for this long.
    #[serde(default = "secs::<120>", with = "humantime_serde")]
    pub latency_for: Duration,
    /// Scale up when the share of failed items stays above this ...
    #[serde(default = "default_error_rate")]
    pub error_rate: f64,
    /// ... for this long.
    #[serde(default = "secs::<300>", with = "humantime_serde")]
    pub error_rate_for: Duration,
    /// Scale up when the ready backlog is at least this and not shrinking ...
    #[serde(default = "default_backlog")]
    pub backlog: u64,
    /// ... for this long (or the performance agent recommends it as long).
    #[serde(default = "secs::<60>", with = "humantime_serde")]
    pub backlog_for: Duration,
    /// Scale down after every signal has been calm and the queue empty for this long.
    #[serde(default = "secs::<300>", with = "humantime_serde")]
    pub scale_down_after: Duration,
}

pub(super) const fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}

pub(super) fn default_restart_type() -> RestartType {
    RestartType::Permanent
}
pub(super) fn default_max_restarts() -> u32 {
    3
}
pub(super) fn default_jitter() -> f64 {
    0.2
}
pub(super) fn default_unhealthy_after() -> u32 {
    3
}
pub(super) fn default_healthy_after() -> u32 {
    2
}
pub(super) fn default_min_replicas() -> u32 {
    1
}
pub(super) fn default_max_replicas() -> u32 {
    8
}
pub(super) fn default_cpu_percent() -> f64 {
    80.0
}
pub(super) fn default_memory_percent() -> f64 {
    90.0
}
pub(super) fn default_error_rate() -> f64 {
    0.05
}
pub(super) fn default_backlog() -> u64 {
    500
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            restart: default_restart_type(),
            max_restarts: default_max_restarts(),
            restart_window: secs::<300>(),
            backoff_base: secs::<1>(),
            backoff_jitter: default_jitter(),
            cooldown: secs::<300>(),
            reset_after: secs::<600>(),
            unhealthy_after: default_unhealthy_after(),
            healthy_after: default_healthy_after(),
            stuck_after: secs::<60>(),
            min_replicas: default_min_replicas(),
            max_replicas: default_max_replicas(),
            cpu_percent: default_cpu_percent(),
            cpu_for: secs::<600>(),
            memory_percent: default_memory_percent(),
            memory_for: secs::<300>(),
            latency: secs::<5>(),
            latency_for: secs::<120>(),
            error_rate: default_error_rate(),
            error_rate_for: secs::<300>(),
            backlog: default_backlog(),
            backlog_for: secs::<60>(),
            scale_down_after: secs::<300>(),
        }
    }
}

impl Policy {
    /// Checks the knobs; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        if self.max_restarts == 0 {
            return Err("max_restarts: must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.backoff_jitter) {
            return Err("backoff_jitter: must be at least 0 and below 1".into());
        }
        if self.restart_window.is_zero() || self.cooldown.is_zero() {
            return Err("restart_window, cooldown: must be positive".into());
        }
        if self.unhealthy_after == 0 || self.healthy_after == 0 {
            return Err("unhealthy_after, healthy_after: must be at least 1".into());
        }
        if self.min_replicas == 0 || self.min_replicas > self.max_replicas {
            return Err("min_replicas: must be at least 1 and at most max_replicas".into());
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err("error_rate: must be between 0 and 1".into());
        }
        // Upper bounds, so no arithmetic on a knob can overflow (a restart delay of a thousand
        // years is a typo, not a policy).
        let month = Duration::from_secs(30 * 24 * 3600);
        let durations = [
            ("restart_window", self.restart_window),
            ("backoff_base", self.backoff_base),
            ("cooldown", self.cooldown),
            ("reset_after", self.reset_after),
            ("stuck_after", self.stuck_after),
            ("cpu_for", self.cpu_for),
            ("memory_for", self.memory_for),
            ("latency", self.latency),
            ("latency_for", self.latency_for),
            ("error_rate_for", self.error_rate_for),
            ("backlog_for", self.backlog_for),
            ("scale_down_after", self.scale_down_after),
        ];
        for (field, value) in durations {
            if value > month {
                return Err(format!("{field}: must be at most 30days"));
            }
        }
        let counts = [
            ("max_restarts", u64::from(self.max_restarts), 1000),
            ("unhealthy_after", u64::from(self.unhealthy_after), 1000),
            ("healthy_after", u64::from(self.healthy_after), 1000),
            ("max_replicas", u64::from(self.max_replicas), 64),
            ("backlog", self.backlog, 100_000_000),
        ];
        for (field, value, max) in counts {
            if value > max {
                return Err(format!("{field}: must be at most {max}"));
            }
        }
        for (field, value) in [
            ("cpu_percent", self.cpu_percent),
            ("memory_percent", self.memory_percent),
        ] {
            if !(0.0..=100.0).contains(&value) {
                return Err(format!("{field}: must be between 0 and 100"));
            }
        }
        Ok(())
    }

    /// The restart delay after `recent` restarts in the window, for a jitter sample in [0, 1).
    pub fn backoff(&self, recent: u32, jitter_sample: f64) -> Duration {
        let base = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(recent.min(16)));
        let spread = self.backoff_jitter * (2.0 * jitter_sample.clamp(0.0, 1.0) - 1.0);
        base.mul_f64((1.0 + spread).max(0.0))
    }
}
