//! The queen side of tge-swarm: the queen actor (scheduler, agent status), the agent host
//! supervisor, the REST API, metrics, and the wiring that starts a whole swarm in one process.

/// The allocator `tge-swarm` ships with, named once so the bench runs the swarm on the same
/// one: jemalloc, not glibc's malloc. Under a steady load glibc's per-thread arenas kept freed
/// memory, so RSS grew by a third over 100,000 documents while the live heap stayed flat
/// (heaptrack; BENCHMARKS.md, footprint); jemalloc returns unused pages after its decay time.
/// Its `malloc` is unprefixed, so the C code linked in (SQLite above all: its page cache and
/// every statement it prepares) allocates from jemalloc too; with glibc's malloc, SQLite's
/// writer thread spent a fifth of its time in `_int_malloc`, `malloc_consolidate` and
/// `unlink_chunk` (perf; BENCHMARKS.md, "SQLite on jemalloc").
pub use tikv_jemallocator::Jemalloc as Allocator;

pub mod api;
pub mod classify;
pub mod commands;
pub mod delivery;
pub mod error;
pub mod health;
pub mod host;
pub mod keys;
pub mod metrics;
pub mod names;
pub mod queen;
pub mod record;
pub mod retention;
pub mod schedule;
pub mod supervisor;
pub mod swarm;
pub mod traces;

pub use swarm::Swarm;
