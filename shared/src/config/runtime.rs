//! The sections a running process needs: its node, tracing, connections, servers, breakers,
//! supervision, queues, shared memory and the performance analysis.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::AgentKind;
use crate::error::{Error, Result};
use crate::supervision::Policy;

/// Process identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Name of this node, used in registry ids and queue consumer names.
    #[serde(default = "default_node_name")]
    pub name: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: default_node_name(),
        }
    }
}

pub(super) fn default_node_name() -> String {
    "local".to_owned()
}

/// Trace export: the process's spans (API requests, work batches of every stage) go to an
/// OpenTelemetry collector or Jaeger over OTLP/HTTP (protobuf) when `otlp_endpoint` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// Base URL of the OTLP/HTTP receiver (`TGE_SWARM_OTLP_ENDPOINT`), `http://jaeger:4318`;
    /// spans are posted to `<endpoint>/v1/traces`. None: no export.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// Share of traces kept, 0 to 1 (`TGE_SWARM_TRACE_SAMPLE_RATIO`).
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            otlp_endpoint: None,
            sample_ratio: default_sample_ratio(),
        }
    }
}

pub(super) fn default_sample_ratio() -> f64 {
    1.0
}

/// Servers of the distributed mode. Each one set replaces the embedded adapter of its port;
/// `tge-swarm queen|agent|memory-coordinator` need Redis and a shared database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsConfig {
    /// Redis for the bus and the work queues (`TGE_SWARM_REDIS_URL`), `redis://host:6379/0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// The store (`TGE_SWARM_DATABASE_URL`): `postgres://user:pass@host/db` or
    /// `sqlite:///path/file.sqlite`; unset means SQLite under the data dir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Consul agent for service registration (`TGE_SWARM_CONSUL_URL`), `http://host:8500`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul_url: Option<String>,
    /// Consul ACL token (`TGE_SWARM_CONSUL_TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul_token: Option<String>,
}

/// HTTP servers, data directory and API access.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// REST API address (`TGE_SWARM_API_ADDR`).
    #[serde(default = "default_api_addr")]
    pub api_addr: SocketAddr,
    /// Prometheus metrics address (`TGE_SWARM_METRICS_ADDR`).
    #[serde(default = "default_metrics_addr")]
    pub metrics_addr: SocketAddr,
    /// Where the SQLite store lives (`TGE_SWARM_DATA_DIR`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Whether reads need an API key too (`TGE_SWARM_REQUIRE_KEY_FOR_READS`).
    #[serde(default)]
    pub require_key_for_reads: bool,
    /// Largest request body the API accepts, bytes.
    #[serde(default = "default_api_body_limit")]
    pub max_request_bytes: usize,
    /// How long a `GET /events` page may be served from the cache. Pages are dropped at once
    /// when a data quality agent announces an event change; the TTL bounds staleness when
    /// such an announcement is lost. `0s` turns the cache off.
    #[serde(default = "default_events_cache_ttl", with = "humantime_serde")]
    pub events_cache_ttl: Duration,
    /// How often the live event stream sends a heartbeat comment to an idle client.
    #[serde(default = "default_stream_heartbeat", with = "humantime_serde")]
    pub stream_heartbeat: Duration,
    /// Requests a second from one client address (0: no limit); beyond it, 429.
    #[serde(default = "default_rate_limit_per_address")]
    pub rate_limit_per_address: u32,
    /// Requests a second with one API key, from any address (0: no limit); beyond it, 429.
    #[serde(default = "default_rate_limit_per_key")]
    pub rate_limit_per_key: u32,
    /// Requests allowed at once above the rate, for both limits.
    #[serde(default = "default_rate_limit_burst")]
    pub rate_limit_burst: u32,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client
    /// (`TGE_SWARM_TRUSTED_PROXIES`, comma-separated).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Origins browsers may call the API from (`https://desk.example`, or `*`); empty: CORS
    /// off (`TGE_SWARM_CORS_ORIGINS`, comma-separated).
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

pub(super) fn default_rate_limit_per_address() -> u32 {
    50
}

pub(super) fn default_rate_limit_per_key() -> u32 {
    100
}

pub(super) fn default_rate_limit_burst() -> u32 {
    100
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            api_addr: default_api_addr(),
            metrics_addr: default_metrics_addr(),
            data_dir: default_data_dir(),
            require_key_for_reads: false,
            max_request_bytes: default_api_body_limit(),
            events_cache_ttl: default_events_cache_ttl(),
            stream_heartbeat: default_stream_heartbeat(),
            rate_limit_per_address: default_rate_limit_per_address(),
            rate_limit_per_key: default_rate_limit_per_key(),
            rate_limit_burst: default_rate_limit_burst(),
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
        }
    }
}

pub(super) fn default_api_addr() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}

pub(super) fn default_metrics_addr() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8001))
}

fn default_stream_heartbeat() -> Duration {
    Duration::from_secs(15)
}

pub(super) fn default_events_cache_ttl() -> Duration {
    Duration::from_secs(1)
}

pub(super) fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

pub(super) fn default_api_body_limit() -> usize {
    1024 * 1024
}

/// Per-host circuit breakers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReliabilityConfig {
    /// Failures in a row that open a host's breaker.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// How long a breaker stays open before a trial call (doubles on each failed trial).
    #[serde(default = "default_open_for", with = "humantime_serde")]
    pub open_for: Duration,
    /// Longest open period.
    #[serde(default = "default_max_open_for", with = "humantime_serde")]
    pub max_open_for: Duration,
}

impl Default for ReliabilityConfig {
    fn default() -> Self {
        ReliabilityConfig {
            failure_threshold: default_failure_threshold(),
            open_for: default_open_for(),
            max_open_for: default_max_open_for(),
        }
    }
}

pub(super) fn default_failure_threshold() -> u32 {
    5
}

pub(super) fn default_open_for() -> Duration {
    Duration::from_secs(60)
}

pub(super) fn default_max_open_for() -> Duration {
    Duration::from_secs(600)
}

/// Heartbeats, the supervision policy (per kind) and fault injection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisionConfig {
    /// Heartbeat period of every actor.
    #[serde(default = "default_heartbeat", with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Missed heartbeats after which the queen marks an actor unhealthy.
    #[serde(default = "default_missed")]
    pub missed_heartbeats: u32,
    /// How long a stopping actor gets before it is killed.
    #[serde(default = "default_stop_timeout", with = "humantime_serde")]
    pub stop_timeout: Duration,
    /// How often the queen's health supervisor looks at the swarm (probes, progress, load).
    #[serde(default = "default_supervisor_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Where alerts are POSTed as JSON (`TGE_SWARM_ALERT_WEBHOOK`); none means metric and log
    /// only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_webhook: Option<String>,
    /// Whether `POST /api/v1/faults` may inject faults (`TGE_SWARM_FAULT_INJECTION`). Off in
    /// production; for tests and drills.
    #[serde(default)]
    pub fault_injection: bool,
    /// The policy of every kind.
    #[serde(default)]
    pub policy: Policy,
    /// Per-kind overrides of `policy`, e.g. `[supervision.kinds.keyword] max_replicas = 4`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kinds: BTreeMap<String, toml::Table>,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        SupervisionConfig {
            heartbeat_interval: default_heartbeat(),
            missed_heartbeats: default_missed(),
            stop_timeout: default_stop_timeout(),
            interval: default_supervisor_interval(),
            alert_webhook: None,
            fault_injection: false,
            policy: Policy::default(),
            kinds: BTreeMap::new(),
        }
    }
}

impl SupervisionConfig {
    /// The policy of `kind`: `policy` with the kind's overrides applied. The error names the
    /// table and the field.
    pub fn policy_for(&self, kind: AgentKind) -> Result<Policy> {
        let Some(overrides) = self.kinds.get(kind.as_str()) else {
            return Ok(self.policy.clone());
        };
        let field = format!("supervision.kinds.{kind}");
        let base = toml::Table::try_from(&self.policy)
            .map_err(|err| Error::config(field.clone(), err.to_string()))?;
        let mut merged = base;
        merged.extend(overrides.clone());
        let policy: Policy = merged.try_into().map_err(|err: toml::de::Error| {
            Error::config(field.clone(), err.message().to_owned())
        })?;
        policy
            .check()
            .map_err(|err| Error::config(field.clone(), err))?;
        Ok(policy)
    }

    /// The policy of `kind`, falling back to the shared one (the config was validated at load,
    /// so the fall-back is never taken in a running swarm).
    pub fn policy(&self, kind: AgentKind) -> Policy {
        self.policy_for(kind)
            .unwrap_or_else(|_| self.policy.clone())
    }
}

pub(super) fn default_supervisor_interval() -> Duration {
    Duration::from_secs(5)
}

pub(super) fn default_heartbeat() -> Duration {
    Duration::from_secs(10)
}

pub(super) fn default_missed() -> u32 {
    3
}

pub(super) fn default_stop_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Work queues and the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// An entry taken but not acknowledged for this long is redelivered to another consumer.
    #[serde(default = "default_visibility", with = "humantime_serde")]
    pub visibility_timeout: Duration,
    /// Buffered messages per bus subscriber; a slower subscriber loses the oldest (counted).
    #[serde(default = "default_bus_buffer")]
    pub bus_buffer: usize,
    /// How long a consumer waits for work before it looks again.
    #[serde(default = "default_poll_wait", with = "humantime_serde")]
    pub poll_wait: Duration,
    /// Documents waiting to be classified or recorded (ready and pending) at which scraping
    /// agents stop taking scrape tasks until fewer wait: a burst waits at its sources, not in
    /// memory or Redis.
    #[serde(default = "default_max_backlog")]
    pub max_backlog: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            visibility_timeout: default_visibility(),
            bus_buffer: default_bus_buffer(),
            poll_wait: default_poll_wait(),
            max_backlog: default_max_backlog(),
        }
    }
}

pub(super) fn default_visibility() -> Duration {
    Duration::from_secs(120)
}

pub(super) fn default_bus_buffer() -> usize {
    16_384
}

pub(super) fn default_max_backlog() -> u64 {
    10_000
}

pub(super) fn default_poll_wait() -> Duration {
    Duration::from_millis(250)
}

/// Memory coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// How often findings are synthesised into a persisted snapshot.
    #[serde(default = "default_sync_interval", with = "humantime_serde")]
    pub sync_interval: Duration,
    /// TTL of entries written without one.
    #[serde(default = "default_ttl", with = "humantime_serde")]
    pub default_ttl: Duration,
    /// Most entries held; writes past it evict the entry closest to expiry.
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
    /// Write-behind: a change is applied (and readable) at once, then persisted to the store,
    /// mirrored to its `swarm:memory:*` key and announced on `memory-sync` within this
    /// interval, each key's changes coalesced into its last. `0s` writes every change through
    /// before the next message is handled.
    #[serde(default = "default_flush_interval", with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Keys changed since the last flush that trigger a flush at once, before the interval.
    #[serde(default = "default_flush_keys")]
    pub flush_keys: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            sync_interval: default_sync_interval(),
            default_ttl: default_ttl(),
            max_entries: default_max_entries(),
            flush_interval: default_flush_interval(),
            flush_keys: default_flush_keys(),
        }
    }
}

pub(super) fn default_sync_interval() -> Duration {
    Duration::from_secs(90)
}

pub(super) fn default_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}

pub(super) fn default_max_entries() -> usize {
    100_000
}

pub(super) fn default_flush_interval() -> Duration {
    Duration::from_millis(100)
}

pub(super) fn default_flush_keys() -> usize {
    10_000
}

/// Performance agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceConfig {
    /// How often the bottleneck analysis runs.
    #[serde(default = "default_analysis_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Queue depth above which a stage counts as backlogged.
    #[serde(default = "default_backlog")]
    pub backlog_threshold: u64,
}

impl Default for PerformanceConfig {
    fn default() -> Self {
        PerformanceConfig {
            interval: default_analysis_interval(),
            backlog_threshold: default_backlog(),
        }
    }
}

pub(super) fn default_analysis_interval() -> Duration {
    Duration::from_secs(30)
}

pub(super) fn default_backlog() -> u64 {
    1_000
}
