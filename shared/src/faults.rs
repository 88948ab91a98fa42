//! Fault injection for tests and drills, off unless `supervision.fault_injection` is set
//! (`TGE_SWARM_FAULT_INJECTION=true`). `POST /api/v1/faults` announces a fault on
//! `queen-commands`; every process with injection on arms it in its [`FaultHooks`] for the
//! target (an agent id or a kind), and the next matching actor strikes at its next unit of work
//! (a batch for queue workers, a heartbeat or message for the others): it panics, fails, hangs,
//! exits or slows down for real, and the supervisors must cope.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{ActorCell, ActorProcessingErr};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::AgentKind;
use crate::error::{Error, Result};

/// How long a `slow` fault holds up one unit of work: above the default 5 s latency trigger.
pub const SLOW_FAULT_DELAY: Duration = Duration::from_secs(6);

/// Largest `count` one request may arm.
pub const MAX_FAULT_COUNT: u32 = 100;

/// What an armed actor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Panic (while holding work, for queue workers).
    Panic,
    /// Return an error from the message handler.
    Error,
    /// Block forever: heartbeats stop, work stays pending.
    Hang,
    /// Stop normally, as if done.
    Exit,
    /// Take `SLOW_FAULT_DELAY` longer over one unit of work.
    Slow,
}

impl Fault {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Panic => "panic",
            Fault::Error => "error",
            Fault::Hang => "hang",
            Fault::Exit => "exit",
            Fault::Slow => "slow",
        }
    }
}

/// Shared table of armed faults, keyed by target (agent id or kind name).
#[derive(Debug, Clone, Default)]
pub struct FaultHooks {
    enabled: Arc<AtomicBool>,
    armed: Arc<Mutex<HashMap<String, Vec<Fault>>>>,
}

impl FaultHooks {
    /// A table; `enabled` false makes [`FaultHooks::arm`] refuse and [`FaultHooks::take`] a
    /// single atomic load.
    pub fn new(enabled: bool) -> FaultHooks {
        FaultHooks {
            enabled: Arc::new(AtomicBool::new(enabled)),
            armed: Arc::default(),
        }
    }

    /// Whether injection is on in this process.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Arms `count` faults for `target` (an agent id such as `keyword-0`, or a kind such as
    /// `keyword`: then any actor of the kind in this process may take them).
    pub fn arm(&self, target: &str, fault: Fault, count: u32) -> Result<()> {
        if !self.enabled() {
            return Err(Error::Invalid(
                "fault injection is off; start the process with TGE_SWARM_FAULT_INJECTION=true"
                    .into(),
            ));
        }
        let mut armed = self
            .armed
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let slot = armed.entry(target.to_owned()).or_default();
        slot.extend(std::iter::repeat_n(fault, count as usize));
        Ok(())
    }

    /// Consumes one fault armed for `agent_id` or its kind, if any.
    pub fn take(&self, agent_id: &str, kind: AgentKind) -> Option<Fault> {
        if !self.enabled() {
            return None;
        }
        let mut armed = self
            .armed
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for target in [agent_id, kind.as_str()] {
            if let Some(faults) = armed.get_mut(target)
                && !faults.is_empty()
            {
                return Some(faults.remove(0));
            }
        }
        None
    }

    /// Takes one armed fault for the actor and carries it out: panics, returns an error, never
    /// returns (hang), asks `myself` to stop (exit) or sleeps (slow). `Ok` means go on.
    pub async fn strike(
        &self,
        agent_id: &str,
        kind: AgentKind,
        myself: &ActorCell,
    ) -> std::result::Result<(), ActorProcessingErr> {
        let Some(fault) = self.take(agent_id, kind) else {
            return Ok(());
        };
        tracing::warn!(agent = %agent_id, fault = fault.as_str(), "injected fault strikes");
        match fault {
            Fault::Panic => panic!("injected fault: {agent_id} panics"),
            Fault::Error => Err(format!("injected fault: {agent_id} fails").into()),
            Fault::Hang => {
                std::future::pending::<()>().await;
                Ok(())
            }
            Fault::Exit => {
                myself.stop(Some("injected fault: exit".into()));
                Ok(())
            }
            Fault::Slow => {
                tokio::time::sleep(SLOW_FAULT_DELAY).await;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_refused_when_off_and_taken_by_id_then_kind() {
        let off = FaultHooks::new(false);
        let err = off.arm("keyword-0", Fault::Panic, 1).unwrap_err();
        assert!(
            err.to_string().contains("TGE_SWARM_FAULT_INJECTION"),
            "{err}"
        );
        assert_eq!(off.take("keyword-0", AgentKind::Keyword), None);

        let on = FaultHooks::new(true);
        on.arm("keyword", Fault::Slow, 1).unwrap();
        on.arm("keyword-1", Fault::Hang, 2).unwrap();
        assert_eq!(on.take("keyword-1", AgentKind::Keyword), Some(Fault::Hang));
        assert_eq!(on.take("keyword-1", AgentKind::Keyword), Some(Fault::Hang));
        assert_eq!(on.take("keyword-0", AgentKind::Keyword), Some(Fault::Slow));
        assert_eq!(on.take("keyword-1", AgentKind::Keyword), None);
        assert_eq!(on.take("scraping-0", AgentKind::Scraping), None);
    }
}
