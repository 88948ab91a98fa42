//! What supervisors observe and decide with: exits, observations, symptoms, actions, breakers, history.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

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
    pub(super) fn new(action: Action, reason: impl Into<String>) -> Decision {
        Decision {
            action,
            delay: Duration::ZERO,
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub(super) fn none(reason: impl Into<String>) -> Decision {
        Decision::new(Action::None, reason)
    }
}
