//! Shared foundation of tge-swarm: domain types, bus messages, channel and queue names,
//! configuration, the ports (`Bus`, `WorkQueue`, `Store`, `Registry`) with their embedded
//! adapters, reliability primitives (circuit breaker, retry policy), the restart policy used
//! by agent hosts, and telemetry names.
//!
//! Every other crate of the workspace depends on this one and on nothing else of ours, so
//! anything two processes must agree on (a message shape, a channel name, a metric name)
//! lives here.

pub mod channels;
pub mod commands;
pub mod config;
pub mod context;
pub mod dedup;
pub mod domain;
pub mod error;
pub mod faults;
pub mod messages;
pub mod outbound;
pub mod ports;
pub mod procstat;
pub mod reliability;
pub mod supervision;
pub mod telemetry;
pub mod time;

pub use error::{Error, Result};

/// Installs ring as the process's TLS crypto provider (reqwest is built without one so the
/// workspace has a single provider); safe to call any number of times.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
