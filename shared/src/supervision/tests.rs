//! Table-driven tests of the policy engine, on paused time.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

/// Feeds observations at the given offsets (seconds from `start`) and returns each decision.
fn run(
    policy: &Policy,
    history: &mut History,
    start: Instant,
    steps: &[(u64, Observation)],
) -> Vec<Decision> {
    let mut out = Vec::new();
    for (at, observation) in steps {
        let now = start + Duration::from_secs(*at);
        let (decision, next) = decide(history, observation, now, policy, 0.5);
        *history = next;
        out.push(decision);
    }
    out
}

fn actions(decisions: &[Decision]) -> Vec<Action> {
    decisions.iter().map(|d| d.action).collect()
}

#[tokio::test(start_paused = true)]
async fn permanent_and_transient_children_by_exit() {
    use Observation::{Exited, Hung};
    let cases = [
        (
            RestartType::Permanent,
            Exited(Exit::Normal),
            Action::Restart,
        ),
        (RestartType::Permanent, Exited(Exit::Error), Action::Restart),
        (RestartType::Permanent, Exited(Exit::Panic), Action::Restart),
        (RestartType::Permanent, Hung, Action::Restart),
        (RestartType::Transient, Exited(Exit::Normal), Action::None),
        (RestartType::Transient, Exited(Exit::Error), Action::Restart),
        (RestartType::Transient, Exited(Exit::Panic), Action::Restart),
        (RestartType::Transient, Hung, Action::Restart),
    ];
    for (restart, observation, expected) in cases {
        let policy = Policy {
            restart,
            ..Policy::default()
        };
        let (decision, _) = decide(
            &History::default(),
            &observation,
            Instant::now(),
            &policy,
            0.5,
        );
        assert_eq!(
            decision.action, expected,
            "{restart:?} × {observation:?}: {}",
            decision.reason
        );
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_with_jitter_bounds() {
    let policy = Policy::default();
    // (restarts already in the window, jitter sample, expected delay in ms)
    let cases = [
        (0, 0.5, 1000),
        (1, 0.5, 2000),
        (2, 0.5, 4000),
        (0, 0.0, 800),
        (0, 1.0, 1200),
        (2, 0.0, 3200),
        (2, 1.0, 4800),
    ];
    for (recent, sample, expected_ms) in cases {
        assert_eq!(
            policy.backoff(recent, sample),
            Duration::from_millis(expected_ms),
            "{recent} restarts, sample {sample}"
        );
    }
    // The same through `decide`: three panics in a row get 1 s, 2 s, 4 s.
    let mut history = History::default();
    let panic = Observation::Exited(Exit::Panic);
    let decisions = run(
        &policy,
        &mut history,
        Instant::now(),
        &[(0, panic.clone()), (2, panic.clone()), (5, panic)],
    );
    let delays: Vec<u64> = decisions.iter().map(|d| d.delay.as_secs()).collect();
    assert_eq!(delays, [1, 2, 4]);
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_opens_the_breaker_and_spread_failures_do_not() {
    let policy = Policy::default();
    let panic = || Observation::Exited(Exit::Panic);
    // (failure times, expected actions)
    let cases: Vec<(Vec<u64>, Vec<Action>)> = vec![
        // Three restarts within 300 s spend the budget: the next failure opens the breaker.
        (
            vec![0, 10, 20, 30],
            vec![
                Action::Restart,
                Action::Restart,
                Action::Restart,
                Action::AlertOnly,
            ],
        ),
        // The same four failures spread over more than 300 s: never more than two restarts in
        // any window, the breaker stays closed.
        (vec![0, 160, 320, 480], vec![Action::Restart; 4]),
        // Three failures just inside, the fourth once the first has left the window.
        (vec![0, 100, 200, 301], vec![Action::Restart; 4]),
    ];
    for (times, expected) in cases {
        let mut history = History::default();
        let steps: Vec<(u64, Observation)> = times.iter().map(|t| (*t, panic())).collect();
        let decisions = run(&policy, &mut history, Instant::now(), &steps);
        assert_eq!(actions(&decisions), expected, "failures at {times:?}");
        let opened = expected.last() == Some(&Action::AlertOnly);
        assert_eq!(
            matches!(history.breaker, Breaker::Open { .. }),
            opened,
            "{times:?}"
        );
        if opened {
            let last = decisions.last().unwrap();
            assert_eq!(last.retry_after, Some(policy.cooldown));
            assert!(last.reason.contains("breaker open"), "{}", last.reason);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_escalation_ladder_and_half_open_outcomes() {
    let policy = Policy::default();
    let panic = || Observation::Exited(Exit::Panic);
    let elapsed = || Observation::CooldownElapsed;
    let good = || Observation::Probe { healthy: true };
    let start = Instant::now();

    // Half-open success closes: budget spent, cooldown, RECREATE, two good probes.
    let mut history = History::default();
    let decisions = run(
        &policy,
        &mut history,
        start,
        &[
            (0, panic()),
            (1, panic()),
            (2, panic()),
            (3, panic()),
            (100, elapsed()), // too early: told when to look again
            (303, elapsed()),
            (304, good()),
            (305, good()),
        ],
    );
    assert_eq!(
        actions(&decisions),
        [
            Action::Restart,
            Action::Restart,
            Action::Restart,
            Action::AlertOnly,
            Action::None,
            Action::Recreate,
            Action::None,
            Action::None,
        ]
    );
    assert_eq!(decisions[4].retry_after, Some(Duration::from_secs(203)));
    assert_eq!(history.breaker, Breaker::Closed);
    assert!(decisions[7].reason.contains("breaker closed"));

    // Half-open failure re-opens, one rung higher each time: RECREATE, FAILOVER, ALERT_ONLY.
    let mut history = History::default();
    let decisions = run(
        &policy,
        &mut history,
        start,
        &[
            (0, panic()),
            (1, panic()),
            (2, panic()),
            (3, panic()),
            (303, elapsed()),
            (304, panic()), // the recreated instance fails
            (604, elapsed()),
            (605, panic()), // failing over did not help either
            (905, elapsed()),
            (906, panic()),    // open: already alerted
            (1000, elapsed()), // a look within the cooldown: quiet
            (1205, elapsed()), // a cooldown later: reminded
        ],
    );
    assert_eq!(
        actions(&decisions),
        [
            Action::Restart,
            Action::Restart,
            Action::Restart,
            Action::AlertOnly,
            Action::Recreate,
            Action::AlertOnly,
            Action::Failover,
            Action::AlertOnly,
            Action::AlertOnly,
            Action::None,
            Action::None,
            Action::AlertOnly,
        ]
    );
    assert!(matches!(history.breaker, Breaker::Open { .. }));
    assert!(
        decisions[5].reason.contains("re-opened"),
        "{}",
        decisions[5].reason
    );

    // An operator's hand closes the breaker and starts the ladder over.
    let decisions = run(
        &policy,
        &mut history,
        start,
        &[
            (1207, Observation::Manual(Action::Restart)),
            (1208, panic()),
        ],
    );
    assert_eq!(actions(&decisions), [Action::Restart, Action::Restart]);
    assert_eq!(history.breaker, Breaker::Closed);
}

#[tokio::test(start_paused = true)]
async fn cooldown_suppresses_a_repeated_action() {
    let policy = Policy::default();
    let mut history = History::default();
    let decisions = run(
        &policy,
        &mut history,
        Instant::now(),
        &[
            // Damped: three probes in a row before acting.
            (0, Observation::Unreachable),
            (5, Observation::Unreachable),
            (10, Observation::Unreachable),
            (15, Observation::Unreachable),
            (309, Observation::Unreachable),
            (310, Observation::Unreachable),
        ],
    );
    assert_eq!(
        actions(&decisions),
        [
            Action::None,
            Action::None,
            Action::Failover,
            Action::None,
            Action::None,
            Action::Failover
        ]
    );
    assert!(decisions[1].reason.contains("unreachable for 2"));
    assert!(decisions[3].reason.contains("cooldown"));
}

#[tokio::test(start_paused = true)]
async fn counters_reset_after_ten_minutes_healthy() {
    let policy = Policy::default();
    let panic = || Observation::Exited(Exit::Panic);
    let good = || Observation::Probe { healthy: true };
    let start = Instant::now();
    let mut history = History::default();
    // The ladder climbs to rung 2 (a failed recreate), then the failover succeeds.
    run(
        &policy,
        &mut history,
        start,
        &[
            (0, panic()),
            (1, panic()),
            (2, panic()),
            (3, panic()),
            (303, Observation::CooldownElapsed),
            (304, panic()),
            (604, Observation::CooldownElapsed),
            (605, good()),
            (606, good()),
        ],
    );
    assert_eq!(history.breaker, Breaker::Closed);
    assert_eq!(history.rung, 2);
    // Healthy for less than ten minutes: the rung stays.
    let (_, early) = decide(
        &history,
        &good(),
        start + Duration::from_secs(606 + 599),
        &policy,
        0.5,
    );
    assert_eq!(early.rung, 2);
    // Ten minutes healthy: everything is forgotten.
    let (_, reset) = decide(
        &history,
        &good(),
        start + Duration::from_secs(606 + 600),
        &policy,
        0.5,
    );
    assert_eq!(reset.rung, 0);
    assert!(reset.restarts.is_empty());
}

#[tokio::test(start_paused = true)]
async fn probes_are_damped_both_ways() {
    let policy = Policy::default();
    let probe = |healthy| Observation::Probe { healthy };
    let mut history = History::default();
    let decisions = run(
        &policy,
        &mut history,
        Instant::now(),
        &[
            (0, probe(false)),
            (10, probe(false)),
            (20, probe(true)), // a good probe breaks the run
            (30, probe(false)),
            (40, probe(false)),
            (50, probe(false)), // third in a row: unhealthy, act
            (60, probe(false)), // still unhealthy: no second action
            (70, probe(true)),
        ],
    );
    assert_eq!(
        actions(&decisions),
        [
            Action::None,
            Action::None,
            Action::None,
            Action::None,
            Action::None,
            Action::Restart,
            Action::None,
            Action::None,
        ]
    );
    assert!(history.unhealthy, "one good probe is not enough");
    let (_, next) = decide(
        &history,
        &probe(true),
        Instant::now() + Duration::from_secs(80),
        &policy,
        0.5,
    );
    assert!(!next.unhealthy, "two good probes are");
}

#[tokio::test(start_paused = true)]
async fn no_progress_with_pending_work_is_a_hang() {
    let policy = Policy::default();
    let progress = |processed, pending| Observation::Progress { processed, pending };
    let cases: Vec<(Vec<(u64, Observation)>, Action)> = vec![
        // Stuck at 5 with 3 waiting for 60 s.
        (
            vec![
                (0, progress(5, 3)),
                (30, progress(5, 3)),
                (60, progress(5, 3)),
            ],
            Action::Restart,
        ),
        // Moving: fine.
        (
            vec![
                (0, progress(5, 3)),
                (30, progress(6, 3)),
                (61, progress(6, 3)),
            ],
            Action::None,
        ),
        // Idle with nothing waiting: fine.
        (
            vec![(0, progress(5, 0)), (61, progress(5, 0))],
            Action::None,
        ),
    ];
    for (steps, expected) in cases {
        let mut history = History::default();
        let decisions = run(&policy, &mut history, Instant::now(), &steps);
        assert_eq!(decisions.last().unwrap().action, expected, "{steps:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn scaling_up_on_sustained_load_and_down_when_calm() {
    let policy = Policy {
        backlog: 100,
        backlog_for: Duration::from_secs(60),
        cooldown: Duration::from_secs(300),
        scale_down_after: Duration::from_secs(300),
        ..Policy::default()
    };
    let start = Instant::now();
    let at = |s: u64| start + Duration::from_secs(s);
    let sample = |replicas, backlog| LoadSample {
        replicas,
        backlog,
        ..LoadSample::default()
    };
    let mut history = ScaleHistory::default();
    let mut step = |s: u64, load: LoadSample| {
        let (decision, next) = decide_scale(&history, &load, at(s), &policy);
        history = next;
        decision
    };
    // A growing backlog must hold for 60 s.
    assert_eq!(step(0, sample(1, 150)).action, Action::None);
    assert_eq!(step(30, sample(1, 400)).action, Action::None);
    let up = step(60, sample(1, 900));
    assert_eq!(up.action, Action::ScaleUp, "{}", up.reason);
    assert_eq!(scale_target(&up, 1), Some(2));
    // Still backlogged, but within the cooldown.
    assert_eq!(step(90, sample(2, 1000)).action, Action::None);
    assert_eq!(step(150, sample(2, 1100)).action, Action::None);
    // A shrinking backlog is not a trigger.
    assert_eq!(step(200, sample(2, 500)).action, Action::None);
    // Empty from 400 s: scale down only after 300 s calm.
    assert_eq!(step(400, sample(2, 0)).action, Action::None);
    assert_eq!(step(699, sample(2, 0)).action, Action::None);
    let down = step(700, sample(2, 0));
    assert_eq!(down.action, Action::ScaleDown, "{}", down.reason);
    // Never below min_replicas.
    assert_eq!(step(1100, sample(1, 0)).action, Action::None);

    // Each other trigger, sustained for its own duration.
    let triggers: Vec<(LoadSample, Duration)> = vec![
        (
            LoadSample {
                replicas: 1,
                cpu_percent: Some(85.0),
                ..LoadSample::default()
            },
            policy.cpu_for,
        ),
        (
            LoadSample {
                replicas: 1,
                memory_percent: Some(95.0),
                ..LoadSample::default()
            },
            policy.memory_for,
        ),
        (
            LoadSample {
                replicas: 1,
                latency: Some(Duration::from_secs(6)),
                ..LoadSample::default()
            },
            policy.latency_for,
        ),
        (
            LoadSample {
                replicas: 1,
                error_rate: Some(0.1),
                ..LoadSample::default()
            },
            policy.error_rate_for,
        ),
        (
            LoadSample {
                replicas: 1,
                recommended_up: true,
                ..LoadSample::default()
            },
            policy.backlog_for,
        ),
    ];
    for (load, sustain) in triggers {
        let history = ScaleHistory::default();
        let (first, history) = decide_scale(&history, &load, start, &policy);
        assert_eq!(first.action, Action::None, "{load:?} at once");
        let (early, history) = decide_scale(
            &history,
            &load,
            start + sustain - Duration::from_secs(1),
            &policy,
        );
        assert_eq!(early.action, Action::None, "{load:?} just before");
        let (fired, _) = decide_scale(&history, &load, start + sustain, &policy);
        assert_eq!(fired.action, Action::ScaleUp, "{load:?} sustained");
    }
    // At max_replicas nothing more.
    let full = LoadSample {
        replicas: policy.max_replicas,
        recommended_up: true,
        ..LoadSample::default()
    };
    let (_, history) = decide_scale(&ScaleHistory::default(), &full, start, &policy);
    let (decision, _) = decide_scale(&history, &full, start + policy.backlog_for, &policy);
    assert_eq!(decision.action, Action::None);
    assert!(decision.reason.contains("max_replicas"));
}

#[tokio::test(start_paused = true)]
async fn breaker_changes_are_named_by_the_states_they_join() {
    let since = Instant::now();
    let later = since + Duration::from_secs(5);
    let open = Breaker::Open { since };
    let cases = [
        (Breaker::Closed, Breaker::Closed, None),
        (Breaker::Closed, open, Some(BreakerChange::Opened)),
        (open, open, None),
        (
            open,
            Breaker::Open { since: later },
            Some(BreakerChange::Opened),
        ),
        (open, Breaker::HalfOpen, Some(BreakerChange::HalfOpened)),
        (Breaker::HalfOpen, Breaker::HalfOpen, None),
        (
            Breaker::HalfOpen,
            Breaker::Closed,
            Some(BreakerChange::Closed),
        ),
        (Breaker::HalfOpen, open, Some(BreakerChange::Opened)),
        (open, Breaker::Closed, Some(BreakerChange::Closed)),
    ];
    for (from, to, change) in cases {
        assert_eq!(from.change_to(to), change, "{from:?} -> {to:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_ladder_names_each_breaker_change() {
    let policy = Policy::default();
    let mut history = History::default();
    let start = Instant::now();
    let panic = || Observation::Exited(Exit::Panic);
    let steps = [
        (0, panic()),
        (1, panic()),
        (2, panic()),
        (3, panic()),
        (303, Observation::CooldownElapsed),
        (304, Observation::Probe { healthy: true }),
        (305, Observation::Probe { healthy: true }),
    ];
    let mut changes = Vec::new();
    for (at, observation) in steps {
        let now = start + Duration::from_secs(at);
        let (_, next) = decide(&history, &observation, now, &policy, 0.5);
        changes.push(history.breaker.change_to(next.breaker));
        history = next;
    }
    assert_eq!(
        changes,
        [
            None,
            None,
            None,
            Some(BreakerChange::Opened),
            Some(BreakerChange::HalfOpened),
            None,
            Some(BreakerChange::Closed),
        ]
    );
}

#[test]
fn symptoms_keep_their_stored_words() {
    let stored = [
        (Symptom::Exit, "exit"),
        (Symptom::Failure, "failure"),
        (Symptom::Panic, "panic"),
        (Symptom::CooldownElapsed, "cooldown elapsed"),
        (Symptom::Unreachable, "unreachable"),
        (Symptom::NoProgress, "no progress"),
        (Symptom::MissedHeartbeats, "missed heartbeats"),
        (Symptom::FailedRegistryCheck, "failed registry check"),
        (Symptom::UnreachableDependency, "unreachable dependency"),
        (Symptom::Load, "load"),
        (Symptom::Calm, "calm"),
        (Symptom::Operator, "operator"),
    ];
    for (symptom, word) in stored {
        assert_eq!(symptom.as_str(), word);
        assert_eq!(symptom.to_string(), word);
    }
    assert_eq!(Symptom::from(Exit::Normal), Symptom::Exit);
    assert_eq!(Symptom::from(Exit::Error), Symptom::Failure);
    assert_eq!(Symptom::from(Exit::Panic), Symptom::Panic);
}
