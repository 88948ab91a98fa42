//! Scaling: each scalable kind's load sample from the gathered checks, and the replica
//! decisions carried out through desired state.

use std::time::Duration;

use swarm_shared::channels::queue_of;
use swarm_shared::commands::Command;
use swarm_shared::domain::{ActionOutcome, AgentKind};
use swarm_shared::supervision::{Action, LoadSample, Symptom, decide_scale, scale_target};
use swarm_shared::telemetry;
use tokio::time::Instant;

use super::*;

/// One load sample of a scalable kind from the latest heartbeats and queue depths.
pub(super) fn load_sample(
    state: &mut SupervisorState,
    kind: AgentKind,
    replicas: u32,
    checks: &Checks,
    now: Instant,
) -> LoadSample {
    // The latest analysis's advice, while it is the latest (each analysis replaces it). Advice
    // the next analysis did not follow up within half an interval lapses, so a performance
    // agent that stopped cannot keep a trigger held, or a kind held.
    let fresh_for = state.ctx.config.performance.interval * 3 / 2;
    let (held_back, recommended_up) = advised(
        state.advice.as_ref(),
        kind,
        checks.held_back(kind, &state.ctx),
        now,
        fresh_for,
    );
    let mut sample = LoadSample {
        replicas,
        recommended_up,
        ..LoadSample::default()
    };
    if let Some(depth) = queue_of(kind).and_then(|queue| checks.depths.get(queue)) {
        if !held_back {
            sample.backlog = depth.ready;
        }
        sample.pending = depth.pending;
    }
    let (mut latency_sum, mut latency_n) = (0.0, 0u32);
    let (mut processed, mut errors) = (0u64, 0u64);
    for watched in state.watched.values_mut() {
        if watched.kind != kind || watched.host_handling || is_late(&state.ctx, watched, now) {
            continue;
        }
        let stats = &watched.stats;
        sample.cpu_percent = max_of(sample.cpu_percent, stats.cpu_percent);
        sample.memory_percent = max_of(sample.memory_percent, stats.memory_percent);
        if stats.throughput_per_s > 0.0 {
            latency_sum += stats.mean_latency_ms;
            latency_n += 1;
        }
        processed += stats.processed.saturating_sub(watched.counted.0);
        errors += stats.errors.saturating_sub(watched.counted.1);
        watched.counted = (stats.processed, stats.errors);
    }
    if latency_n > 0 {
        sample.latency = Some(Duration::from_secs_f64(
            latency_sum / f64::from(latency_n) / 1000.0,
        ));
    }
    if processed > 0 {
        sample.error_rate = Some(errors as f64 / processed as f64);
    }
    sample
}

/// What the supervisor keeps of the performance agent's latest analysis.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Advice {
    /// The kind to scale up, if the analysis names one.
    pub scale_up: Option<AgentKind>,
    /// Kinds whose last added instances added no capacity: none is added on their backlog.
    pub no_gain: Vec<AgentKind>,
    /// When it came.
    pub at: Instant,
}

/// What the supervisor keeps of a recommendation. Each analysis replaces the last, so a kind it
/// no longer names is no longer recommended (a recommendation made once, on a burst, never
/// holds the backlog trigger beyond its analysis) and a kind it no longer lists is no longer
/// held.
pub(super) fn advice(
    bottleneck: Option<AgentKind>,
    action: &str,
    no_gain: Vec<AgentKind>,
    now: Instant,
) -> Advice {
    Advice {
        scale_up: bottleneck.filter(|_| action == Action::ScaleUp.as_str()),
        no_gain,
        at: now,
    }
}

/// Whether a kind is held back, and whether it is named to scale up. Held back by full
/// downstream queues (`queues_full`), more instances would wait as well; so would more of a
/// kind whose last added instances added no capacity (fresh advice lists it in `no_gain`). A
/// kind held back is never named. Advice older than `fresh_for` says nothing.
pub(super) fn advised(
    advice: Option<&Advice>,
    kind: AgentKind,
    queues_full: bool,
    now: Instant,
    fresh_for: Duration,
) -> (bool, bool) {
    let advice = advice.filter(|advice| now.saturating_duration_since(advice.at) <= fresh_for);
    let held_back = queues_full || advice.is_some_and(|advice| advice.no_gain.contains(&kind));
    let named = advice.is_some_and(|advice| advice.scale_up == Some(kind));
    (held_back, !held_back && named)
}

pub(super) fn max_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Weighs scaling for every scalable kind and sets the desired replicas.
pub(super) async fn scale(state: &mut SupervisorState, checks: &Checks) {
    let now = Instant::now();
    for kind in [
        AgentKind::Scraping,
        AgentKind::Keyword,
        AgentKind::DataQuality,
    ] {
        let running = state.watched.values().any(|w| w.kind == kind);
        if !running {
            // No process runs the kind (or none has reported yet): nothing to scale.
            continue;
        }
        let replicas = checks
            .replicas
            .get(&kind)
            .copied()
            .unwrap_or_else(|| state.ctx.config.replicas(kind));
        telemetry::desired_replicas(kind, replicas);
        let policy = state.policies[&kind].clone();
        let sample = load_sample(state, kind, replicas, checks, now);
        let history = state.scaling.entry(kind).or_default();
        let (decision, next) = decide_scale(history, &sample, now, &policy);
        *history = next;
        let Some(target) = scale_target(&decision, replicas) else {
            continue;
        };
        let target = target.clamp(policy.min_replicas, policy.max_replicas);
        let result = command(
            &state.ctx,
            &Command::Scale {
                kind,
                replicas: target,
            },
        )
        .await;
        let (outcome, reason) = match result {
            Ok(()) => (ActionOutcome::Succeeded, decision.reason),
            Err(err) => (ActionOutcome::Failed, format!("{}; {err}", decision.reason)),
        };
        let symptom = if decision.action == Action::ScaleUp {
            Symptom::Load
        } else {
            Symptom::Calm
        };
        state.recorder.record(
            kind.as_str(),
            kind,
            symptom,
            decision.action,
            outcome,
            &reason,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_recommendation_replaces_the_last() {
        let now = Instant::now();
        let kept = |bottleneck, action| advice(bottleneck, action, Vec::new(), now).scale_up;
        assert_eq!(
            kept(Some(AgentKind::Keyword), "scale_up"),
            Some(AgentKind::Keyword)
        );
        assert_eq!(
            kept(Some(AgentKind::DataQuality), "scale_up"),
            Some(AgentKind::DataQuality)
        );
        // An analysis that finds no bottleneck, or only a kind to shrink, withdraws it.
        assert_eq!(kept(None, "none"), None);
        assert_eq!(kept(None, "scale_down"), None);
    }

    #[test]
    fn a_kind_without_gain_is_held_while_the_advice_is_fresh() {
        let at = Instant::now();
        let fresh_for = Duration::from_secs(45);
        let held = advice(
            Some(AgentKind::Keyword),
            "scale_up",
            vec![AgentKind::DataQuality],
            at,
        );
        let read = |kind, queues_full, after| {
            advised(Some(&held), kind, queues_full, at + after, fresh_for)
        };
        // (held back, named to scale up)
        assert_eq!(
            read(AgentKind::DataQuality, false, Duration::ZERO),
            (true, false)
        );
        assert_eq!(
            read(AgentKind::Keyword, false, Duration::from_secs(45)),
            (false, true)
        );
        assert_eq!(
            read(AgentKind::Scraping, false, Duration::ZERO),
            (false, false)
        );
        // Full downstream queues hold a kind whatever the advice, and it is not named.
        assert_eq!(
            read(AgentKind::Keyword, true, Duration::ZERO),
            (true, false)
        );
        assert_eq!(
            read(AgentKind::Scraping, true, Duration::ZERO),
            (true, false)
        );
        // A performance agent that stopped holds nothing and names nothing.
        let late = Duration::from_secs(46);
        assert_eq!(read(AgentKind::DataQuality, false, late), (false, false));
        assert_eq!(read(AgentKind::Keyword, false, late), (false, false));
        let none = advised(None, AgentKind::DataQuality, false, at, fresh_for);
        assert_eq!(none, (false, false));
    }
}
