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

//!
//! Files: the policy (`policy.rs`), the signals and decisions (`signals.rs`), the decision on
//! an observation (`decide.rs`) and on load (`scale.rs`).

mod decide;
mod policy;
mod scale;
mod signals;

pub use decide::decide;
pub use policy::*;
pub use scale::{LoadSample, ScaleHistory, Trigger, decide_scale, scale_target};
pub use signals::*;

#[cfg(test)]
mod tests;
