//! Fault hooks for tests: a test arms a hook for an agent id and that agent panics while it
//! holds un-acknowledged work, the worst moment for a crash. The agents only consult the table
//! when built with their `fault-hooks` feature (enabled by the test crate), so a release build
//! carries the table but never looks at it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Shared table of armed faults, keyed by agent id.
#[derive(Debug, Clone, Default)]
pub struct FaultHooks {
    armed: Arc<Mutex<HashMap<String, u32>>>,
}

impl FaultHooks {
    /// Arms `count` panics for `agent_id`.
    pub fn arm(&self, agent_id: &str, count: u32) {
        let mut armed = self
            .armed
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *armed.entry(agent_id.to_owned()).or_insert(0) += count;
    }

    /// Consumes one armed fault for `agent_id`; true when the caller must fail now.
    pub fn take(&self, agent_id: &str) -> bool {
        let mut armed = self
            .armed
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let Some(remaining) = armed.get_mut(agent_id) else {
            return false;
        };
        if *remaining == 0 {
            return false;
        }
        *remaining -= 1;
        true
    }
}
