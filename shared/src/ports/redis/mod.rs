//! [`Bus`] and [`WorkQueue`] on Redis, through fred.
//!
//! * Bus: `PUBLISH` on the four `swarm:channels:*` channels. One subscriber connection per
//!   process subscribes to all four and fans messages out in process (the embedded bus does
//!   the fan-out, so slow local subscribers lose the oldest messages exactly as in embedded
//!   mode, counted in `tge_swarm_bus_dropped_total`). fred's own subscriber buffer is sized to
//!   the configured bus buffer (its default of 32 drops messages under bursts). After a Redis
//!   restart fred reconnects with backoff and the subscriber resubscribes. Short-lived keys
//!   (`swarm:metrics:*`, `swarm:memory:*`) are plain `SET .. PX`.
//! * Work queue: one stream per queue with the consumer group `swarm`. `enqueue` is `XADD`;
//!   `take` first `XAUTOCLAIM`s entries idle past the visibility timeout (left by a consumer
//!   that died), then `XREADGROUP >`, blocking on a connection of the consumer's own so one
//!   blocked read never stalls the others; `recover` re-`XCLAIM`s the consumer's own pending
//!   entries; `ack` is `XACK` then `XDEL`, so the stream holds only ready and pending work.
//!   Delivery counts come from `XPENDING`. A group lost with the data (a Redis restart without
//!   persistence) is recreated on `NOGROUP`.
//!
//! Nothing here retries on its own: a failed call returns [`Error::Unavailable`] and the caller
//! keeps its work pending (workers do not acknowledge, the queen reschedules next tick).

//!
//! * Registry: service discovery without Consul (`registry.rs`): per service a hash of
//!   instances and a sorted set of TTL-check expiries on the server's clock.
//!
//! Files: the connection settings here, the bus in `bus.rs`, the work queue in `queue.rs`,
//! the registry in `registry.rs`.

mod bus;
mod leases;
mod queue;
mod registry;

pub use bus::RedisBus;
pub use queue::RedisQueue;
pub use registry::RedisRegistry;

use std::time::Duration;

use fred::prelude::*;

use crate::error::{Error as SwarmError, Result};

/// Consumer group every queue is read through.
pub const GROUP: &str = "swarm";
/// Stream field holding an item's payload.
pub(super) const FIELD: &str = "p";
/// Per-command timeout (blocking reads get theirs on top of the wait).
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest number of pending entries looked at in one `XPENDING`.
pub(super) const PENDING_SCAN: u64 = 10_000;
/// Commands per pipeline in [`Bus::write_batch`].
pub(super) const PIPELINE_COMMANDS: usize = 1_000;

pub(super) fn unavailable(err: fred::error::Error) -> SwarmError {
    SwarmError::unavailable("redis", err)
}

/// Settings shared by every connection of a process.
#[derive(Clone)]
pub struct RedisSettings {
    /// The URL with any password masked, for messages.
    shown: String,
    config: Config,
    buffer: usize,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the configuration itself: it holds the password.
        f.debug_struct("RedisSettings")
            .field("url", &self.shown)
            .field("buffer", &self.buffer)
            .finish()
    }
}

impl RedisSettings {
    /// Settings for `url` (`redis://[:password@]host:port[/db]`); `buffer` sizes pub/sub
    /// buffers (the bus buffer of the config).
    pub fn new(url: &str, buffer: usize) -> Result<RedisSettings> {
        let shown = redact(url);
        let config = Config::from_url(url).map_err(|err| {
            // fred's message may quote the URL: only the redacted one is shown.
            let reason = err.details().replace(url, &shown);
            SwarmError::Invalid(format!("TGE_SWARM_REDIS_URL: {reason}: {shown}"))
        })?;
        Ok(RedisSettings {
            shown,
            config,
            buffer: buffer.max(1),
        })
    }

    fn builder(&self) -> Builder {
        let mut builder = Builder::from_config(self.config.clone());
        builder
            .with_performance_config(|perf| {
                perf.default_command_timeout = COMMAND_TIMEOUT;
                perf.broadcast_channel_capacity = self.buffer;
            })
            .with_connection_config(|conn| {
                conn.connection_timeout = Duration::from_secs(3);
                conn.internal_command_timeout = COMMAND_TIMEOUT;
                // A command in flight when the connection dropped is retried once after the
                // reconnect; then the caller sees the error.
                conn.max_command_attempts = 2;
            })
            // Retry forever, 100 ms doubling to 2 s: a Redis restart is waited out.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
        builder
    }

    fn connect_error(&self, err: fred::error::Error) -> SwarmError {
        SwarmError::unavailable("redis", format!("connecting to {}: {err}", self.shown))
    }

    /// A connected client; fails (naming the URL without its password) if Redis cannot be
    /// reached now.
    pub async fn connect(&self) -> Result<Client> {
        let client = self.builder().build().map_err(unavailable)?;
        client.init().await.map_err(|err| self.connect_error(err))?;
        Ok(client)
    }
}

/// The URL with any password replaced by `***`, for messages. A URL that does not parse has
/// its whole user-info part replaced, so a malformed URL never leaks a password either.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => {
            let Some(scheme_end) = url.find("://") else {
                return url.to_owned();
            };
            let rest = &url[scheme_end + 3..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{}***{}", &url[..scheme_end + 3], &rest[at..]),
                None => url.to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
