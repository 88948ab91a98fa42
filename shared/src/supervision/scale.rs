//! Scaling decisions from load samples.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::*;

/// One load sample of a scalable kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadSample {
    /// Instances per process now.
    pub replicas: u32,
    /// Highest process CPU use among its instances, percent.
    pub cpu_percent: Option<f64>,
    /// Highest process memory use among its instances, percent of the limit.
    pub memory_percent: Option<f64>,
    /// Mean time per item.
    pub latency: Option<Duration>,
    /// Failed items over processed items since the last sample.
    pub error_rate: Option<f64>,
    /// Items ready in its queue.
    pub backlog: u64,
    /// Items taken and not yet acknowledged.
    pub pending: u64,
    /// The performance agent names this kind as the bottleneck and recommends scaling up.
    pub recommended_up: bool,
}

/// A scale-up trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trigger {
    /// CPU above the threshold.
    Cpu,
    /// Memory above the threshold.
    Memory,
    /// Latency above the threshold.
    Latency,
    /// Error rate above the threshold.
    ErrorRate,
    /// Backlog above the threshold and not shrinking (or the performance agent says so).
    Backlog,
}

/// What the scaler remembers about one kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScaleHistory {
    /// Since when each trigger's condition has held.
    pub since: BTreeMap<Trigger, Instant>,
    /// Since when everything has been calm.
    pub calm_since: Option<Instant>,
    /// Backlog at the previous sample.
    pub last_backlog: Option<u64>,
    /// When it last scaled up and down, for cooldowns.
    pub last_up: Option<Instant>,
    /// When it last scaled down.
    pub last_down: Option<Instant>,
}

/// Decides whether a kind scales up or down. Returns the decision (with the target in the
/// reason) and the new history.
pub fn decide_scale(
    history: &ScaleHistory,
    sample: &LoadSample,
    now: Instant,
    policy: &Policy,
) -> (Decision, ScaleHistory) {
    let mut next = history.clone();
    let growing = next.last_backlog.is_none_or(|last| sample.backlog >= last);
    next.last_backlog = Some(sample.backlog);
    let conditions = [
        (
            Trigger::Cpu,
            sample.cpu_percent.is_some_and(|v| v > policy.cpu_percent),
            policy.cpu_for,
            format!("CPU above {}%", policy.cpu_percent),
        ),
        (
            Trigger::Memory,
            sample
                .memory_percent
                .is_some_and(|v| v > policy.memory_percent),
            policy.memory_for,
            format!("memory above {}%", policy.memory_percent),
        ),
        (
            Trigger::Latency,
            sample.latency.is_some_and(|v| v > policy.latency),
            policy.latency_for,
            format!("latency above {}s", policy.latency.as_secs_f64()),
        ),
        (
            Trigger::ErrorRate,
            sample.error_rate.is_some_and(|v| v > policy.error_rate),
            policy.error_rate_for,
            format!("error rate above {}%", policy.error_rate * 100.0),
        ),
        (
            Trigger::Backlog,
            sample.recommended_up || (sample.backlog >= policy.backlog && growing),
            policy.backlog_for,
            format!("backlog of {} or more not shrinking", policy.backlog),
        ),
    ];
    let mut fired = Vec::new();
    let mut any = false;
    for (trigger, holds, sustain, what) in conditions {
        if !holds {
            next.since.remove(&trigger);
            continue;
        }
        any = true;
        let since = *next.since.entry(trigger).or_insert(now);
        if now.saturating_duration_since(since) >= sustain {
            fired.push(format!("{what} for {}s", sustain.as_secs_f64()));
        }
    }
    let cooling = |last: Option<Instant>| {
        last.is_some_and(|at| now.saturating_duration_since(at) < policy.cooldown)
    };
    if !fired.is_empty() {
        next.calm_since = None;
        if sample.replicas >= policy.max_replicas {
            return (
                Decision::none(format!("{}; already at max_replicas", fired.join(", "))),
                next,
            );
        }
        if cooling(next.last_up) {
            return (
                Decision::none(format!("{}; scale-up cooldown", fired.join(", "))),
                next,
            );
        }
        next.last_up = Some(now);
        next.since.clear();
        let to = sample.replicas + 1;
        return (
            Decision::new(
                Action::ScaleUp,
                format!("{}: {} -> {to} replicas", fired.join(", "), sample.replicas),
            ),
            next,
        );
    }
    let calm = !any && sample.backlog == 0 && sample.pending == 0;
    if !calm {
        next.calm_since = None;
        return (Decision::none("not calm"), next);
    }
    let calm_since = *next.calm_since.get_or_insert(now);
    if sample.replicas <= policy.min_replicas
        || now.saturating_duration_since(calm_since) < policy.scale_down_after
        || cooling(next.last_down)
    {
        return (Decision::none("calm"), next);
    }
    next.last_down = Some(now);
    next.calm_since = Some(now);
    let to = sample.replicas - 1;
    (
        Decision::new(
            Action::ScaleDown,
            format!(
                "calm and empty for {}s: {} -> {to} replicas",
                policy.scale_down_after.as_secs_f64(),
                sample.replicas
            ),
        ),
        next,
    )
}

/// The replica count a scale decision asks for.
pub fn scale_target(decision: &Decision, replicas: u32) -> Option<u32> {
    match decision.action {
        Action::ScaleUp => Some(replicas + 1),
        Action::ScaleDown => Some(replicas.saturating_sub(1).max(1)),
        _ => None,
    }
}
