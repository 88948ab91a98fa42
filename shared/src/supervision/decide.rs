//! The decision on one observation: restart, the ladder, breakers, cooldowns.

use tokio::time::Instant;

use super::*;

/// The action of a half-open attempt on `rung`.
pub(super) fn rung_action(rung: u8) -> Action {
    match rung {
        0 | 1 => Action::Recreate,
        2 => Action::Failover,
        _ => Action::AlertOnly,
    }
}

pub(super) fn in_cooldown(
    history: &History,
    action: Action,
    now: Instant,
    policy: &Policy,
) -> bool {
    history
        .last_action
        .get(&action)
        .is_some_and(|at| now.saturating_duration_since(*at) < policy.cooldown)
}

/// Decides about one observation of a component. Returns the decision and the component's
/// new history (the caller stores it). `jitter_sample` is uniform in [0, 1).
pub fn decide(
    history: &History,
    observation: &Observation,
    now: Instant,
    policy: &Policy,
    jitter_sample: f64,
) -> (Decision, History) {
    let mut next = history.clone();
    while let Some(oldest) = next.restarts.front() {
        if now.saturating_duration_since(*oldest) < policy.restart_window {
            break;
        }
        next.restarts.pop_front();
    }
    if next
        .healthy_since
        .is_some_and(|since| now.saturating_duration_since(since) >= policy.reset_after)
        && next.breaker == Breaker::Closed
    {
        next.restarts.clear();
        next.rung = 0;
    }
    let decision = match observation {
        Observation::Exited(Exit::Normal) if policy.restart == RestartType::Transient => {
            Decision::none("transient child exited normally; not restarted")
        }
        Observation::Exited(exit) => {
            let what = match exit {
                Exit::Normal => "stopped on its own (permanent child)",
                Exit::Error => "failed with an error",
                Exit::Panic => "panicked",
            };
            failure(&mut next, what, now, policy, jitter_sample)
        }
        Observation::Hung => failure(&mut next, "hung", now, policy, jitter_sample),
        Observation::Probe { healthy: true } => {
            next.failed_probes = 0;
            next.good_probes = next.good_probes.saturating_add(1);
            if next.good_probes >= policy.healthy_after {
                next.healthy_since.get_or_insert(now);
                if next.unhealthy {
                    next.unhealthy = false;
                }
                if next.breaker == Breaker::HalfOpen {
                    next.breaker = Breaker::Closed;
                    next.restarts.clear();
                    return (
                        Decision::none(format!(
                            "breaker closed after {} healthy probes",
                            policy.healthy_after
                        )),
                        next,
                    );
                }
            }
            Decision::none("healthy")
        }
        Observation::Probe { healthy: false } => {
            next.good_probes = 0;
            next.healthy_since = None;
            next.failed_probes = next.failed_probes.saturating_add(1);
            if next.unhealthy || next.failed_probes < policy.unhealthy_after {
                Decision::none(format!(
                    "{} failed probe(s) in a row; unhealthy after {}",
                    next.failed_probes, policy.unhealthy_after
                ))
            } else {
                next.unhealthy = true;
                let reason = format!("{} failed probes in a row", next.failed_probes);
                failure(&mut next, &reason, now, policy, jitter_sample)
            }
        }
        Observation::Progress { processed, pending } => match next.progress {
            Some((seen, since)) if seen == *processed && *pending > 0 => {
                if now.saturating_duration_since(since) >= policy.stuck_after {
                    next.progress = Some((*processed, now));
                    let reason = format!(
                        "no progress for {}s with {pending} item(s) waiting",
                        policy.stuck_after.as_secs_f64()
                    );
                    failure(&mut next, &reason, now, policy, jitter_sample)
                } else {
                    Decision::none("waiting for progress")
                }
            }
            _ => {
                next.progress = Some((*processed, now));
                Decision::none("progressing")
            }
        },
        Observation::Unreachable => {
            next.healthy_since = None;
            next.good_probes = 0;
            next.failed_probes = next.failed_probes.saturating_add(1);
            if next.failed_probes < policy.unhealthy_after {
                // Damped like any probe: a process restarting under the same name gets the
                // time to come back and take its own work.
                Decision::none(format!(
                    "unreachable for {} probe(s); failover after {}",
                    next.failed_probes, policy.unhealthy_after
                ))
            } else if in_cooldown(&next, Action::Failover, now, policy) {
                Decision::none("unreachable; failover already done within the cooldown")
            } else {
                Decision::new(
                    Action::Failover,
                    "its process does not answer: pending work moves to healthy peers",
                )
            }
        }
        Observation::CooldownElapsed => match next.breaker {
            Breaker::Open { since } if now.saturating_duration_since(since) >= policy.cooldown => {
                let action = rung_action(next.rung);
                if action == Action::AlertOnly {
                    // The top of the ladder: the breaker stays open until counters reset or an
                    // operator acts; a supervisor that keeps looking re-alerts once per
                    // cooldown, not at every look.
                    next.breaker = Breaker::Open { since: now };
                    Decision::new(
                        Action::AlertOnly,
                        "recreate and failover did not help; needs an operator",
                    )
                } else {
                    next.breaker = Breaker::HalfOpen;
                    Decision::new(
                        action,
                        format!("breaker half-open after the cooldown: {}", action.as_str()),
                    )
                }
            }
            Breaker::Open { since } => Decision {
                retry_after: Some(
                    policy
                        .cooldown
                        .saturating_sub(now.saturating_duration_since(since)),
                ),
                ..Decision::none("breaker open; cooldown not over")
            },
            _ => Decision::none("breaker not open"),
        },
        Observation::Manual(action) => {
            next.breaker = Breaker::Closed;
            next.restarts.clear();
            next.rung = 0;
            next.unhealthy = false;
            next.failed_probes = 0;
            Decision::new(*action, "requested by an operator")
        }
    };
    if decision.action != Action::None {
        next.last_action.insert(decision.action, now);
    }
    (decision, next)
}

/// A failure: restart within the budget, else open (or re-open) the breaker and alert.
pub(super) fn failure(
    next: &mut History,
    what: &str,
    now: Instant,
    policy: &Policy,
    jitter_sample: f64,
) -> Decision {
    next.healthy_since = None;
    next.good_probes = 0;
    match next.breaker {
        Breaker::Closed => {
            let recent = next.restarts.len() as u32;
            if recent < policy.max_restarts {
                next.restarts.push_back(now);
                Decision {
                    delay: policy.backoff(recent, jitter_sample),
                    ..Decision::new(
                        Action::Restart,
                        format!(
                            "{what}; restart {} of {} in {}s",
                            recent + 1,
                            policy.max_restarts,
                            policy.restart_window.as_secs()
                        ),
                    )
                }
            } else {
                next.breaker = Breaker::Open { since: now };
                next.rung = next.rung.max(1);
                Decision {
                    retry_after: Some(policy.cooldown),
                    ..Decision::new(
                        Action::AlertOnly,
                        format!(
                            "{what}; {} restarts in {}s spent the budget: breaker open, {} after {}s",
                            policy.max_restarts,
                            policy.restart_window.as_secs(),
                            rung_action(next.rung).as_str(),
                            policy.cooldown.as_secs_f64()
                        ),
                    )
                }
            }
        }
        Breaker::HalfOpen => {
            let failed = rung_action(next.rung);
            next.breaker = Breaker::Open { since: now };
            next.rung = next.rung.saturating_add(1);
            Decision {
                retry_after: Some(policy.cooldown),
                ..Decision::new(
                    Action::AlertOnly,
                    format!(
                        "{what} after the half-open {}: breaker re-opened, {} next",
                        failed.as_str(),
                        rung_action(next.rung).as_str()
                    ),
                )
            }
        }
        Breaker::Open { .. } => Decision::none(format!("{what}; breaker open, already alerted")),
    }
}
