//! The supervision policy engine, pure: given what a component's supervisor remembers about it
//! ([`History`]), one [`Observation`] and the time, [`decide`] says what to do ([`Decision`])
//! and returns the updated history. No clock, no randomness, no I/O: the caller passes `now` and
//! a jitter sample, so every rule is tested with paused time. Two callers: the agent host (local
//! actors: exits and panics) and the queen's health supervisor (remote processes: heartbeats,
//! health probes, registry checks, progress); [`decide_scale`] does the same for replica counts.
//!
//! The rules (defaults from DESIGN.md, every knob in [`Policy`], configurable per kind):
//! * a failure (error, panic, hang, or a permanent child's normal exit) is answered by RESTART
//!   after a backoff of 1 s, 2 s, 4 s (±20 % jitter), at most `max_restarts` in a sliding
//!   `restart_window`;
//! * when that budget is spent the component's breaker opens and the supervisor alerts; after
//!   `cooldown` one half-open attempt climbs the ladder RECREATE → FAILOVER → ALERT_ONLY; two
//!   healthy probes close the breaker, a failure re-opens it one rung higher;
//! * probe results are damped: `unhealthy_after` failures in a row make a component unhealthy,
//!   `healthy_after` successes healthy again;
//! * no progress for `stuck_after` while work is pending is a hang;
//! * counters reset after `reset_after` healthy;
//! * each action other than RESTART (governed by its budget) is suppressed within `cooldown`
//!   of the same action on the same component.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

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

const fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}

fn default_restart_type() -> RestartType {
    RestartType::Permanent
}
fn default_max_restarts() -> u32 {
    3
}
fn default_jitter() -> f64 {
    0.2
}
fn default_unhealthy_after() -> u32 {
    3
}
fn default_healthy_after() -> u32 {
    2
}
fn default_min_replicas() -> u32 {
    1
}
fn default_max_replicas() -> u32 {
    8
}
fn default_cpu_percent() -> f64 {
    80.0
}
fn default_memory_percent() -> f64 {
    90.0
}
fn default_error_rate() -> f64 {
    0.05
}
fn default_backlog() -> u64 {
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

/// How an actor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It stopped on its own, without an error.
    Normal,
    /// Its handler returned an error.
    Error,
    /// It panicked.
    Panic,
}

/// One thing a supervisor saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The actor ended.
    Exited(Exit),
    /// The actor stopped answering (missed heartbeats while its process answers).
    Hung,
    /// A health probe: heartbeat, HTTP health, registry check. Damped.
    Probe {
        /// Whether it passed.
        healthy: bool,
    },
    /// Progress counters: items processed so far and items waiting for it.
    Progress {
        /// Items processed since start.
        processed: u64,
        /// Items waiting (pending for it, or ready in its queue).
        pending: u64,
    },
    /// The process hosting the component does not answer at all: its work must move.
    Unreachable,
    /// The timer a previous decision asked for (`retry_after`) went off.
    CooldownElapsed,
    /// An operator asked for an action by hand (API); clears the breaker.
    Manual(Action),
}

/// What a supervisor had seen when it acted, in the words stored with the action (the
/// `observation` of a supervisor action, shown to operators and sent with alerts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symptom {
    /// The actor stopped on its own.
    Exit,
    /// The actor's handler returned an error.
    Failure,
    /// The actor panicked.
    Panic,
    /// An open breaker's cooldown ended: the ladder's next rung.
    CooldownElapsed,
    /// The process hosting the actor does not answer at all.
    Unreachable,
    /// Work waits and the actor's processed count does not move.
    NoProgress,
    /// Heartbeats stopped while the process answers.
    MissedHeartbeats,
    /// The service registry's health check fails.
    FailedRegistryCheck,
    /// The store or the bus does not answer.
    UnreachableDependency,
    /// Queues grow faster than the workers drain them (autoscaling up).
    Load,
    /// Queues stay short (autoscaling down).
    Calm,
    /// An operator asked for the action.
    Operator,
}

impl Symptom {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Symptom::Exit => "exit",
            Symptom::Failure => "failure",
            Symptom::Panic => "panic",
            Symptom::CooldownElapsed => "cooldown elapsed",
            Symptom::Unreachable => "unreachable",
            Symptom::NoProgress => "no progress",
            Symptom::MissedHeartbeats => "missed heartbeats",
            Symptom::FailedRegistryCheck => "failed registry check",
            Symptom::UnreachableDependency => "unreachable dependency",
            Symptom::Load => "load",
            Symptom::Calm => "calm",
            Symptom::Operator => "operator",
        }
    }
}

impl From<Exit> for Symptom {
    fn from(exit: Exit) -> Symptom {
        match exit {
            Exit::Normal => Symptom::Exit,
            Exit::Error => Symptom::Failure,
            Exit::Panic => Symptom::Panic,
        }
    }
}

impl std::fmt::Display for Symptom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing (healthy, damped, suppressed by a cooldown, or a transient child's normal exit).
    None,
    /// Respawn the actor from its spec, same identity, pending work kept.
    Restart,
    /// A fresh instance: new restart budget, state rebuilt from the store, re-registered.
    Recreate,
    /// One more instance of the kind.
    ScaleUp,
    /// One instance fewer.
    ScaleDown,
    /// Move the instance's pending work to healthy peers; the instance stays down.
    Failover,
    /// Alert (webhook and metric) and do nothing else.
    AlertOnly,
}

impl Action {
    /// The wire name (`restart`, `scale_up`, ...), as in `supervisor_actions.action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Restart => "restart",
            Action::Recreate => "recreate",
            Action::ScaleUp => "scale_up",
            Action::ScaleDown => "scale_down",
            Action::Failover => "failover",
            Action::AlertOnly => "alert_only",
        }
    }

    /// Parses the wire name of a recorded action (not `none`).
    pub fn parse(text: &str) -> Option<Action> {
        Action::RECORDED
            .into_iter()
            .find(|action| action.as_str() == text)
    }

    /// Every action that is recorded (all but `None`).
    pub const RECORDED: [Action; 6] = [
        Action::Restart,
        Action::Recreate,
        Action::ScaleUp,
        Action::ScaleDown,
        Action::Failover,
        Action::AlertOnly,
    ];
}

/// A component's breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Breaker {
    /// Normal: failures are restarted within the budget.
    #[default]
    Closed,
    /// Budget spent at `since`: nothing but alerts until the cooldown is over.
    Open {
        /// When it opened.
        since: Instant,
    },
    /// One attempt (the ladder's current rung) is being tried.
    HalfOpen,
}

/// How a breaker moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerChange {
    /// The restart budget was spent (or a half-open attempt failed).
    Opened,
    /// The cooldown ended and one attempt is under way.
    HalfOpened,
    /// Healthy probes closed it.
    Closed,
}

impl Breaker {
    /// How the breaker moved from `self` to `next`, if it did (a re-opening counts).
    pub fn change_to(self, next: Breaker) -> Option<BreakerChange> {
        match (self, next) {
            (Breaker::Open { since: a }, Breaker::Open { since: b }) if a == b => None,
            (_, Breaker::Open { .. }) => Some(BreakerChange::Opened),
            (Breaker::HalfOpen, Breaker::HalfOpen) | (Breaker::Closed, Breaker::Closed) => None,
            (_, Breaker::HalfOpen) => Some(BreakerChange::HalfOpened),
            (_, Breaker::Closed) => Some(BreakerChange::Closed),
        }
    }

    /// The gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            Breaker::Closed => 0.0,
            Breaker::HalfOpen => 1.0,
            Breaker::Open { .. } => 2.0,
        }
    }
}

/// What the supervisor remembers about one component.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// Restart times within the window.
    pub restarts: VecDeque<Instant>,
    /// Breaker state.
    pub breaker: Breaker,
    /// Rung of the escalation ladder for the next half-open attempt: 1 recreate, 2 failover,
    /// 3 and above alert only (0 while the breaker has never opened).
    pub rung: u8,
    /// When each action was last taken, for cooldowns.
    pub last_action: BTreeMap<Action, Instant>,
    /// Damped health: true once `unhealthy_after` probes failed in a row.
    pub unhealthy: bool,
    /// Failed probes in a row.
    pub failed_probes: u32,
    /// Good probes in a row.
    pub good_probes: u32,
    /// Healthy since (set by a good probe, cleared by a failure).
    pub healthy_since: Option<Instant>,
    /// Last processed count and when it last moved.
    pub progress: Option<(u64, Instant)>,
}

/// The answer of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Wait this long before doing it (restart backoff).
    pub delay: Duration,
    /// Why, in words (stored and shown to operators).
    pub reason: String,
    /// Observe `CooldownElapsed` after this long (the breaker's half-open attempt).
    pub retry_after: Option<Duration>,
}

impl Decision {
    fn new(action: Action, reason: impl Into<String>) -> Decision {
        Decision {
            action,
            delay: Duration::ZERO,
            reason: reason.into(),
            retry_after: None,
        }
    }

    fn none(reason: impl Into<String>) -> Decision {
        Decision::new(Action::None, reason)
    }
}

/// The action of a half-open attempt on `rung`.
fn rung_action(rung: u8) -> Action {
    match rung {
        0 | 1 => Action::Recreate,
        2 => Action::Failover,
        _ => Action::AlertOnly,
    }
}

fn in_cooldown(history: &History, action: Action, now: Instant, policy: &Policy) -> bool {
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
fn failure(
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

#[cfg(test)]
mod tests;
