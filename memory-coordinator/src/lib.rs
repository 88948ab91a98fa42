//! The memory coordinator of tge-swarm: holds shared memory (namespaced, versioned keys with
//! TTL), applies the findings agents publish (`MemoryWrite` on `agent-communication`),
//! broadcasts every change on `swarm:channels:memory-sync`, and every sync interval
//! synthesises what the swarm knows into a snapshot persisted to the store.

pub mod actor;
pub mod memory;
pub mod synthesis;

pub use actor::{MemoryArgs, MemoryCoordinatorActor, MemoryMsg};
