//! The queen side of tge-swarm: the queen actor (scheduler, agent status), the agent host
//! supervisor, the REST API, metrics, and the wiring that starts a whole swarm in one process.

pub mod api;
pub mod classify;
pub mod host;
pub mod metrics;
pub mod queen;
pub mod record;
pub mod schedule;
pub mod supervisor;
pub mod swarm;
pub mod traces;

pub use swarm::Swarm;
