//! The typed configuration tree: a TOML file plus `TGE_SWARM_*` environment overrides,
//! validated once at start. Unknown keys are errors; every error names the field.
//!
//! The shipped `config/tge-swarm.toml` is embedded in the binary, so `tge-swarm run` works
//! from any directory with the default watchlist and feeds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{AgentKind, Company, CompanyInput, SourceInput};
use crate::error::{Error, Result};
use crate::supervision::Policy;

/// The shipped default configuration (`config/tge-swarm.toml`).
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../config/tge-swarm.toml");

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process identity.
    #[serde(default)]
    pub node: NodeConfig,
    /// HTTP servers, data directory and API access.
    #[serde(default)]
    pub server: ServerConfig,
    /// The queen's scheduler.
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    /// Scraping agents: fetch limits and retries.
    #[serde(default)]
    pub scraping: ScrapingConfig,
    /// Keyword agents: threshold and batch.
    #[serde(default)]
    pub detection: DetectionConfig,
    /// Data quality agents.
    #[serde(default)]
    pub quality: QualityConfig,
    /// Per-host circuit breakers (API reliability agent).
    #[serde(default)]
    pub reliability: ReliabilityConfig,
    /// Heartbeats and restarts.
    #[serde(default)]
    pub supervision: SupervisionConfig,
    /// Work queues and the bus.
    #[serde(default)]
    pub queues: QueueConfig,
    /// Memory coordinator.
    #[serde(default)]
    pub memory: MemoryConfig,
    /// Performance agent.
    #[serde(default)]
    pub performance: PerformanceConfig,
    /// Servers of the distributed mode; unset ones are replaced by embedded adapters.
    #[serde(default)]
    pub connections: ConnectionsConfig,
    /// Trace export (OpenTelemetry, OTLP over HTTP); off unless an endpoint is set.
    #[serde(default)]
    pub tracing: TracingConfig,
    /// Sources seeded into an empty store at first start.
    #[serde(default)]
    pub sources: Vec<SourceInput>,
    /// Watchlist seeded into an empty store at first start.
    #[serde(default)]
    pub companies: Vec<CompanyInput>,
}

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

fn default_node_name() -> String {
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

fn default_sample_ratio() -> f64 {
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

fn default_rate_limit_per_address() -> u32 {
    50
}

fn default_rate_limit_per_key() -> u32 {
    100
}

fn default_rate_limit_burst() -> u32 {
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
            rate_limit_per_address: default_rate_limit_per_address(),
            rate_limit_per_key: default_rate_limit_per_key(),
            rate_limit_burst: default_rate_limit_burst(),
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
        }
    }
}

fn default_api_addr() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}

fn default_metrics_addr() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8001))
}

fn default_events_cache_ttl() -> Duration {
    Duration::from_secs(1)
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

fn default_api_body_limit() -> usize {
    1024 * 1024
}

/// The queen's scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// How often the queen checks which sources are due.
    #[serde(default = "default_tick", with = "humantime_serde")]
    pub tick: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            tick: default_tick(),
        }
    }
}

fn default_tick() -> Duration {
    Duration::from_secs(1)
}

/// Scraping agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapingConfig {
    /// Scraping actors in this process.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Whole-request timeout, including reading the body.
    #[serde(default = "default_fetch_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Connect timeout.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Largest response body read, bytes; larger responses are an error.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// Retries after the first attempt for transient failures.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First retry delay (doubles, with jitter).
    #[serde(default = "default_retry_min", with = "humantime_serde")]
    pub retry_min_delay: Duration,
    /// Longest retry delay.
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// Fetches in flight per scraping actor.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Fetches in flight to one host (host:port) per scraping actor, to be a polite client.
    #[serde(default = "default_per_host_concurrency")]
    pub per_host_concurrency: usize,
    /// Largest number of items taken from one source per fetch.
    #[serde(default = "default_max_items")]
    pub max_items: usize,
    /// User-Agent header.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Longest one fetched body may take to parse; a slower parse is abandoned with an error.
    #[serde(default = "default_parse_timeout", with = "humantime_serde")]
    pub parse_timeout: Duration,
    /// Deepest element nesting read from an HTML page (browsers stop nesting at 512).
    #[serde(default = "default_max_html_depth")]
    pub max_html_depth: u32,
    /// Most nodes (elements, text runs, comments) read from one HTML page.
    #[serde(default = "default_max_html_nodes")]
    pub max_html_nodes: usize,
    /// Deepest element nesting read from an XML feed.
    #[serde(default = "default_max_xml_depth")]
    pub max_xml_depth: u32,
    /// Non-public hosts sources may reach anyway: host names, IP addresses and CIDR ranges
    /// (`TGE_SWARM_ALLOW_HOSTS`, comma-separated). Empty: public addresses only.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// The directory `file` sources may read under (`TGE_SWARM_FILE_ROOT`); none: no file
    /// sources.
    #[serde(default)]
    pub file_root: Option<PathBuf>,
}

impl Default for ScrapingConfig {
    fn default() -> Self {
        ScrapingConfig {
            replicas: 1,
            timeout: default_fetch_timeout(),
            connect_timeout: default_connect_timeout(),
            max_body_bytes: default_max_body(),
            retries: default_retries(),
            retry_min_delay: default_retry_min(),
            retry_max_delay: default_retry_max(),
            concurrency: default_concurrency(),
            per_host_concurrency: default_per_host_concurrency(),
            max_items: default_max_items(),
            user_agent: default_user_agent(),
            parse_timeout: default_parse_timeout(),
            max_html_depth: default_max_html_depth(),
            max_html_nodes: default_max_html_nodes(),
            max_xml_depth: default_max_xml_depth(),
            allow_hosts: Vec::new(),
            file_root: None,
        }
    }
}

fn one() -> u32 {
    1
}

fn default_fetch_timeout() -> Duration {
    Duration::from_secs(20)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_body() -> u64 {
    10 * 1024 * 1024
}

fn default_retries() -> u32 {
    2
}

fn default_retry_min() -> Duration {
    Duration::from_millis(500)
}

fn default_retry_max() -> Duration {
    Duration::from_secs(8)
}

fn default_concurrency() -> usize {
    8
}

fn default_per_host_concurrency() -> usize {
    2
}

/// A comma-separated environment value as a list (blank entries dropped).
fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

fn default_parse_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_html_depth() -> u32 {
    512
}

fn default_max_html_nodes() -> usize {
    250_000
}

fn default_max_xml_depth() -> u32 {
    128
}

fn default_max_items() -> usize {
    500
}

fn default_user_agent() -> String {
    concat!(
        "tge-swarm/",
        env!("CARGO_PKG_VERSION"),
        " (+https://github.com/tge-swarm)"
    )
    .to_owned()
}

/// Keyword agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionConfig {
    /// Keyword actors in this process.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Score at or above which a document is a TGE announcement. Unset: the threshold the
    /// shipped model was calibrated with (chosen by cross-validation when it was trained).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Documents taken from the queue at once.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Documents per second, per keyword actor, that the detection's third stage (the
    /// sentence encoder, tens of milliseconds each) may read, in bursts of up to ten seconds'
    /// worth. Past it the second stage decides, so a flood of documents never queues behind
    /// the encoder. 0 turns the third stage off.
    #[serde(default = "default_sentence_stage_per_second")]
    pub sentence_stage_per_second: u32,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            replicas: 1,
            threshold: None,
            batch: default_batch(),
            sentence_stage_per_second: default_sentence_stage_per_second(),
        }
    }
}

fn default_sentence_stage_per_second() -> u32 {
    2
}

fn default_batch() -> usize {
    64
}

/// Data quality agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityConfig {
    /// Data quality actors in this process.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Announcements of the same project within this window merge into one event.
    #[serde(default = "default_merge_window", with = "humantime_serde")]
    pub merge_window: Duration,
    /// Longest document text kept, bytes; longer text is truncated at a char boundary.
    #[serde(default = "default_max_text")]
    pub max_text_bytes: usize,
    /// Most documents taken from the queue at once, recorded in one transaction. A take
    /// returns what is waiting, so batches are this large only under a backlog, where the
    /// transaction's fixed costs (commit, lookups) are shared by more documents.
    #[serde(default = "default_quality_batch")]
    pub batch: usize,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            replicas: 1,
            merge_window: default_merge_window(),
            max_text_bytes: default_max_text(),
            batch: default_quality_batch(),
        }
    }
}

/// 512 rather than the other stages' 64: recording is the pipeline's slowest stage, and its
/// per-transaction costs dominate small batches (BENCHMARKS.md, "Pipeline").
fn default_quality_batch() -> usize {
    512
}

fn default_merge_window() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

fn default_max_text() -> usize {
    200_000
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

fn default_failure_threshold() -> u32 {
    5
}

fn default_open_for() -> Duration {
    Duration::from_secs(60)
}

fn default_max_open_for() -> Duration {
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

fn default_supervisor_interval() -> Duration {
    Duration::from_secs(5)
}

fn default_heartbeat() -> Duration {
    Duration::from_secs(10)
}

fn default_missed() -> u32 {
    3
}

fn default_stop_timeout() -> Duration {
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

fn default_visibility() -> Duration {
    Duration::from_secs(120)
}

fn default_bus_buffer() -> usize {
    16_384
}

fn default_max_backlog() -> u64 {
    10_000
}

fn default_poll_wait() -> Duration {
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

fn default_sync_interval() -> Duration {
    Duration::from_secs(90)
}

fn default_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_max_entries() -> usize {
    100_000
}

fn default_flush_interval() -> Duration {
    Duration::from_millis(100)
}

fn default_flush_keys() -> usize {
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

fn default_analysis_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_backlog() -> u64 {
    1_000
}

impl Config {
    /// The configured watchlist as companies, numbered from 1 in file order (for offline
    /// scoring, where there is no store to assign ids).
    pub fn watchlist(&self) -> Vec<Company> {
        let mut companies = Vec::with_capacity(self.companies.len());
        for (index, company) in self.companies.iter().enumerate() {
            companies.push(Company {
                id: index as i64 + 1,
                name: company.name.clone(),
                aliases: company.aliases.clone(),
                tickers: company.tickers.clone(),
                priority: company.priority,
                status: company.status.clone(),
                exclusions: company.exclusions.clone(),
            });
        }
        companies
    }

    /// Parses TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config> {
        toml::from_str(text).map_err(|err| {
            let field = err
                .span()
                .map(|span| locate(text, span.start))
                .unwrap_or_else(|| origin.to_owned());
            Error::config(format!("{origin}{field}"), err.message().trim().to_owned())
        })
    }

    /// The configured actors per process of a worker kind (`scraping.replicas`,
    /// `detection.replicas`, `quality.replicas`); 1 for the other kinds.
    pub fn replicas(&self, kind: AgentKind) -> u32 {
        match kind {
            AgentKind::Scraping => self.scraping.replicas,
            AgentKind::Keyword => self.detection.replicas,
            AgentKind::DataQuality => self.quality.replicas,
            _ => 1,
        }
    }

    /// The shipped defaults.
    pub fn embedded_default() -> Result<Config> {
        Config::from_toml(DEFAULT_CONFIG_TOML, "embedded config/tge-swarm.toml")
    }

    /// Loads a file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading config file {}", path.display()),
            source,
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// Applies `TGE_SWARM_*` overrides from `lookup` (the process environment in production).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(value) = lookup("TGE_SWARM_API_ADDR") {
            self.server.api_addr = parse_env("TGE_SWARM_API_ADDR", &value)?;
        }
        if let Some(value) = lookup("TGE_SWARM_METRICS_ADDR") {
            self.server.metrics_addr = parse_env("TGE_SWARM_METRICS_ADDR", &value)?;
        }
        if let Some(value) = lookup("TGE_SWARM_DATA_DIR") {
            self.server.data_dir = PathBuf::from(value);
        }
        if let Some(value) = lookup("TGE_SWARM_REQUIRE_KEY_FOR_READS") {
            self.server.require_key_for_reads =
                parse_bool("TGE_SWARM_REQUIRE_KEY_FOR_READS", &value)?;
        }
        if let Some(value) = lookup("TGE_SWARM_FAULT_INJECTION") {
            self.supervision.fault_injection = parse_bool("TGE_SWARM_FAULT_INJECTION", &value)?;
        }
        if let Some(value) = lookup("TGE_SWARM_ALERT_WEBHOOK") {
            self.supervision.alert_webhook = Some(value).filter(|value| !value.trim().is_empty());
        }
        let lists = [
            (
                "TGE_SWARM_TRUSTED_PROXIES",
                &mut self.server.trusted_proxies,
            ),
            ("TGE_SWARM_CORS_ORIGINS", &mut self.server.cors_origins),
        ];
        for (name, slot) in lists {
            if let Some(value) = lookup(name) {
                *slot = comma_list(&value);
            }
        }
        if let Some(value) = lookup("TGE_SWARM_ALLOW_HOSTS") {
            self.scraping.allow_hosts = comma_list(&value);
        }
        if let Some(value) = lookup("TGE_SWARM_FILE_ROOT") {
            self.scraping.file_root =
                Some(PathBuf::from(value)).filter(|path| !path.as_os_str().is_empty());
        }
        if let Some(value) = lookup("TGE_SWARM_NODE_NAME") {
            self.node.name = value;
        }
        if let Some(value) = lookup("TGE_SWARM_OTLP_ENDPOINT") {
            self.tracing.otlp_endpoint = Some(value).filter(|value| !value.trim().is_empty());
        }
        if let Some(value) = lookup("TGE_SWARM_TRACE_SAMPLE_RATIO") {
            self.tracing.sample_ratio = parse_env("TGE_SWARM_TRACE_SAMPLE_RATIO", &value)?;
        }
        let connections = [
            ("TGE_SWARM_REDIS_URL", &mut self.connections.redis_url),
            ("TGE_SWARM_DATABASE_URL", &mut self.connections.database_url),
            ("TGE_SWARM_CONSUL_URL", &mut self.connections.consul_url),
            ("TGE_SWARM_CONSUL_TOKEN", &mut self.connections.consul_token),
        ];
        for (name, slot) in connections {
            // An empty variable unsets the connection (handy in Compose files).
            if let Some(value) = lookup(name) {
                *slot = Some(value).filter(|value| !value.trim().is_empty());
            }
        }
        Ok(())
    }

    /// Gives a role its default metrics port (memory coordinator 8002, agents 8010-8014)
    /// unless `server.metrics_addr` was changed from the default `0.0.0.0:8001`.
    pub fn use_role_metrics_port(&mut self, port: u16) {
        if self.server.metrics_addr == default_metrics_addr() {
            self.server.metrics_addr.set_port(port);
        }
    }

    /// Validates values serde cannot check; the error names the field.
    pub fn validate(&self) -> Result<()> {
        // Ranges first: the checks below do arithmetic on these values.
        self.check_ranges()?;
        if let Some(url) = &self.connections.database_url
            && !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
        {
            return Err(Error::config(
                "connections.database_url",
                "must start with postgres://, postgresql:// or sqlite: (TGE_SWARM_DATABASE_URL)",
            ));
        }
        if let Some(url) = &self.connections.redis_url
            && ![
                "redis://",
                "rediss://",
                "redis-cluster://",
                "rediss-cluster://",
            ]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            return Err(Error::config(
                "connections.redis_url",
                "must start with redis://, rediss://, redis-cluster:// or rediss-cluster:// (TGE_SWARM_REDIS_URL)",
            ));
        }
        if let Some(url) = &self.connections.consul_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Error::config(
                "connections.consul_url",
                "must start with http:// or https:// (TGE_SWARM_CONSUL_URL)",
            ));
        }
        let node = &self.node.name;
        if node.is_empty()
            || !node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(Error::config(
                "node.name",
                "must be non-empty letters, digits, '-', '_' or '.'",
            ));
        }
        for (field, replicas) in [
            ("scraping.replicas", self.scraping.replicas),
            ("detection.replicas", self.detection.replicas),
            ("quality.replicas", self.quality.replicas),
        ] {
            if !(1..=64).contains(&replicas) {
                return Err(Error::config(field, "must be between 1 and 64"));
            }
        }
        if self.scraping.concurrency == 0 {
            return Err(Error::config("scraping.concurrency", "must be at least 1"));
        }
        if self.scraping.per_host_concurrency == 0 {
            return Err(Error::config(
                "scraping.per_host_concurrency",
                "must be at least 1",
            ));
        }
        if self.scraping.max_body_bytes < 1024 {
            return Err(Error::config(
                "scraping.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if self.scraping.timeout.is_zero() {
            return Err(Error::config("scraping.timeout", "must be positive"));
        }
        if self.scraping.retry_min_delay > self.scraping.retry_max_delay {
            return Err(Error::config(
                "scraping.retry_min_delay",
                "must not exceed scraping.retry_max_delay",
            ));
        }
        if let Some(threshold) = self.detection.threshold
            && (!(0.0..=1.0).contains(&threshold) || threshold.is_nan())
        {
            return Err(Error::config(
                "detection.threshold",
                "must be between 0 and 1",
            ));
        }
        if self.detection.batch == 0 {
            return Err(Error::config("detection.batch", "must be at least 1"));
        }
        if self.quality.batch == 0 {
            return Err(Error::config("quality.batch", "must be at least 1"));
        }
        if self.quality.max_text_bytes < 256 {
            return Err(Error::config(
                "quality.max_text_bytes",
                "must be at least 256",
            ));
        }
        if self.reliability.failure_threshold == 0 {
            return Err(Error::config(
                "reliability.failure_threshold",
                "must be at least 1",
            ));
        }
        if self.reliability.open_for > self.reliability.max_open_for {
            return Err(Error::config(
                "reliability.open_for",
                "must not exceed reliability.max_open_for",
            ));
        }
        let supervision = &self.supervision;
        if supervision.heartbeat_interval.is_zero() {
            return Err(Error::config(
                "supervision.heartbeat_interval",
                "must be positive",
            ));
        }
        if supervision.missed_heartbeats == 0 {
            return Err(Error::config(
                "supervision.missed_heartbeats",
                "must be at least 1",
            ));
        }
        supervision
            .policy
            .check()
            .map_err(|err| Error::config("supervision.policy", err))?;
        for kind in supervision.kinds.keys() {
            let Some(kind) = AgentKind::parse(kind) else {
                return Err(Error::config(
                    format!("supervision.kinds.{kind}"),
                    "not an agent kind (queen, scraping, keyword, api-reliability, performance, data-quality, memory-coordinator)",
                ));
            };
            supervision.policy_for(kind)?;
        }
        if supervision.interval.is_zero() {
            return Err(Error::config("supervision.interval", "must be positive"));
        }
        if let Some(url) = &supervision.alert_webhook
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Error::config(
                "supervision.alert_webhook",
                "must start with http:// or https:// (TGE_SWARM_ALERT_WEBHOOK)",
            ));
        }
        if self.scheduler.tick.is_zero() {
            return Err(Error::config("scheduler.tick", "must be positive"));
        }
        if let Some(url) = &self.tracing.otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Error::config(
                "tracing.otlp_endpoint",
                "must start with http:// or https:// (TGE_SWARM_OTLP_ENDPOINT)",
            ));
        }
        if !(0.0..=1.0).contains(&self.tracing.sample_ratio) {
            return Err(Error::config(
                "tracing.sample_ratio",
                "must be between 0 and 1 (TGE_SWARM_TRACE_SAMPLE_RATIO)",
            ));
        }
        if self.queues.visibility_timeout.is_zero() {
            return Err(Error::config(
                "queues.visibility_timeout",
                "must be positive",
            ));
        }
        let attempts = self.scraping.retries + 1;
        let longest_fetch = self.scraping.timeout * attempts
            + self.scraping.retry_max_delay * self.scraping.retries
            + self.scraping.parse_timeout;
        if self.queues.visibility_timeout <= longest_fetch {
            return Err(Error::config(
                "queues.visibility_timeout",
                format!(
                    "must exceed the longest fetch ({}: scraping.timeout x (retries + 1) plus retry delays and scraping.parse_timeout), or tasks still being fetched are handed to another agent",
                    humantime::format_duration(longest_fetch)
                ),
            ));
        }
        if self.queues.max_backlog < 100 {
            return Err(Error::config(
                "queues.max_backlog",
                "must be at least 100 (documents waiting before scraping holds back)",
            ));
        }
        if self.queues.bus_buffer < 16 {
            return Err(Error::config("queues.bus_buffer", "must be at least 16"));
        }
        if self.memory.sync_interval.is_zero() {
            return Err(Error::config("memory.sync_interval", "must be positive"));
        }
        if self.server.events_cache_ttl > Duration::from_secs(60) {
            return Err(Error::config(
                "server.events_cache_ttl",
                "must be at most 60s (pages could be that stale when an announcement is lost)",
            ));
        }
        if self.memory.flush_keys == 0 {
            return Err(Error::config(
                "memory.flush_keys",
                "must be at least 1 (changed keys that trigger a flush)",
            ));
        }
        if self.memory.flush_interval > self.memory.sync_interval {
            return Err(Error::config(
                "memory.flush_interval",
                "must not exceed memory.sync_interval (changes would wait longer than a synthesis)",
            ));
        }
        if self.performance.interval.is_zero() {
            return Err(Error::config("performance.interval", "must be positive"));
        }
        for (index, entry) in self.server.trusted_proxies.iter().enumerate() {
            let parses =
                entry.parse::<ipnet::IpNet>().is_ok() || entry.parse::<std::net::IpAddr>().is_ok();
            if !parses {
                return Err(Error::config(
                    format!("server.trusted_proxies[{index}]"),
                    format!("`{entry}` is neither an IP address nor a CIDR range"),
                ));
            }
        }
        for (index, origin) in self.server.cors_origins.iter().enumerate() {
            let valid = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.trim_end_matches('/').contains(['?', '#', ' '])
                    && origin.len() <= 512);
            if !valid {
                return Err(Error::config(
                    format!("server.cors_origins[{index}]"),
                    format!("`{origin}` is not an origin (`https://host[:port]`, or `*`)"),
                ));
            }
        }
        if self.scraping.allow_hosts.len() > 1000 {
            return Err(Error::config(
                "scraping.allow_hosts",
                "must have at most 1000 entries",
            ));
        }
        let outbound = self.scraping.outbound()?;
        let mut names = std::collections::HashSet::new();
        for (index, source) in self.sources.iter().enumerate() {
            source
                .validate()
                .map_err(|err| Error::config(format!("sources[{index}]"), err.to_string()))?;
            if let Ok(url) = url::Url::parse(&source.url) {
                outbound.check_url(&url).map_err(|err| {
                    Error::config(format!("sources[{index}].url"), err.to_string())
                })?;
            }
            if !names.insert(source.name.as_str()) {
                return Err(Error::config(
                    format!("sources[{index}].name"),
                    format!("duplicate source name `{}`", source.name),
                ));
            }
        }
        let mut companies = std::collections::HashSet::new();
        for (index, company) in self.companies.iter().enumerate() {
            company
                .validate()
                .map_err(|err| Error::config(format!("companies[{index}]"), err.to_string()))?;
            if !companies.insert(company.name.to_lowercase()) {
                return Err(Error::config(
                    format!("companies[{index}].name"),
                    format!("duplicate company `{}`", company.name),
                ));
            }
        }
        Ok(())
    }

    /// The documented range of every duration, size and count (README, Configuration): values
    /// outside them are typos or attacks, and would overflow the arithmetic done on them.
    fn check_ranges(&self) -> Result<()> {
        const MS: Duration = Duration::from_millis(1);
        const HOUR: Duration = Duration::from_secs(3600);
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let durations: [(&str, Duration, Duration, Duration); 19] = [
            ("scheduler.tick", self.scheduler.tick, MS, HOUR),
            ("scraping.timeout", self.scraping.timeout, MS, HOUR),
            (
                "scraping.connect_timeout",
                self.scraping.connect_timeout,
                MS,
                HOUR,
            ),
            (
                "scraping.parse_timeout",
                self.scraping.parse_timeout,
                MS,
                Duration::from_secs(600),
            ),
            (
                "scraping.retry_min_delay",
                self.scraping.retry_min_delay,
                Duration::ZERO,
                HOUR,
            ),
            (
                "scraping.retry_max_delay",
                self.scraping.retry_max_delay,
                Duration::ZERO,
                HOUR,
            ),
            (
                "quality.merge_window",
                self.quality.merge_window,
                MS,
                DAY * 3650,
            ),
            (
                "reliability.open_for",
                self.reliability.open_for,
                MS,
                DAY * 7,
            ),
            (
                "reliability.max_open_for",
                self.reliability.max_open_for,
                MS,
                DAY * 7,
            ),
            (
                "supervision.heartbeat_interval",
                self.supervision.heartbeat_interval,
                MS,
                HOUR,
            ),
            (
                "supervision.stop_timeout",
                self.supervision.stop_timeout,
                Duration::ZERO,
                HOUR,
            ),
            ("supervision.interval", self.supervision.interval, MS, HOUR),
            (
                "queues.visibility_timeout",
                self.queues.visibility_timeout,
                MS,
                DAY * 7,
            ),
            (
                "queues.poll_wait",
                self.queues.poll_wait,
                MS,
                Duration::from_secs(60),
            ),
            ("memory.sync_interval", self.memory.sync_interval, MS, DAY),
            (
                "memory.default_ttl",
                self.memory.default_ttl,
                MS,
                DAY * 3650,
            ),
            (
                "memory.flush_interval",
                self.memory.flush_interval,
                Duration::ZERO,
                DAY,
            ),
            ("performance.interval", self.performance.interval, MS, DAY),
            (
                "server.events_cache_ttl",
                self.server.events_cache_ttl,
                Duration::ZERO,
                Duration::from_secs(60),
            ),
        ];
        for (field, value, min, max) in durations {
            if value < min || value > max {
                return Err(Error::config(
                    field,
                    format!(
                        "must be between {} and {}",
                        humantime::format_duration(min),
                        humantime::format_duration(max)
                    ),
                ));
            }
        }
        const MIB: u64 = 1024 * 1024;
        let counts: [(&str, u64, u64, u64); 24] = [
            (
                "server.max_request_bytes",
                self.server.max_request_bytes as u64,
                1024,
                1024 * MIB,
            ),
            (
                "scraping.max_body_bytes",
                self.scraping.max_body_bytes,
                1024,
                1024 * MIB,
            ),
            ("scraping.retries", u64::from(self.scraping.retries), 0, 10),
            (
                "scraping.concurrency",
                self.scraping.concurrency as u64,
                1,
                1024,
            ),
            (
                "scraping.per_host_concurrency",
                self.scraping.per_host_concurrency as u64,
                1,
                1024,
            ),
            (
                "scraping.max_items",
                self.scraping.max_items as u64,
                1,
                100_000,
            ),
            (
                "server.rate_limit_per_address",
                u64::from(self.server.rate_limit_per_address),
                0,
                1_000_000,
            ),
            (
                "server.rate_limit_per_key",
                u64::from(self.server.rate_limit_per_key),
                0,
                1_000_000,
            ),
            (
                "server.rate_limit_burst",
                u64::from(self.server.rate_limit_burst),
                1,
                1_000_000,
            ),
            (
                "scraping.max_html_depth",
                u64::from(self.scraping.max_html_depth),
                16,
                4096,
            ),
            (
                "scraping.max_html_nodes",
                self.scraping.max_html_nodes as u64,
                1000,
                10_000_000,
            ),
            (
                "scraping.max_xml_depth",
                u64::from(self.scraping.max_xml_depth),
                8,
                4096,
            ),
            (
                "scraping.user_agent",
                self.scraping.user_agent.len() as u64,
                1,
                512,
            ),
            ("detection.batch", self.detection.batch as u64, 1, 10_000),
            (
                "detection.sentence_stage_per_second",
                u64::from(self.detection.sentence_stage_per_second),
                0,
                10_000,
            ),
            ("quality.batch", self.quality.batch as u64, 1, 100_000),
            (
                "quality.max_text_bytes",
                self.quality.max_text_bytes as u64,
                256,
                64 * MIB,
            ),
            (
                "reliability.failure_threshold",
                u64::from(self.reliability.failure_threshold),
                1,
                1000,
            ),
            (
                "supervision.missed_heartbeats",
                u64::from(self.supervision.missed_heartbeats),
                1,
                100,
            ),
            (
                "queues.bus_buffer",
                self.queues.bus_buffer as u64,
                16,
                1 << 22,
            ),
            (
                "queues.max_backlog",
                self.queues.max_backlog,
                100,
                10_000_000,
            ),
            (
                "memory.max_entries",
                self.memory.max_entries as u64,
                1,
                10_000_000,
            ),
            (
                "memory.flush_keys",
                self.memory.flush_keys as u64,
                1,
                1_000_000,
            ),
            (
                "performance.backlog_threshold",
                self.performance.backlog_threshold,
                1,
                100_000_000,
            ),
        ];
        for (field, value, min, max) in counts {
            if value < min || value > max {
                return Err(Error::config(
                    field,
                    format!("must be between {min} and {max}"),
                ));
            }
        }
        Ok(())
    }

    /// Loads `path` (or the embedded defaults when `path` is none), applies the process
    /// environment and validates.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let mut config = match path {
            Some(path) => Config::from_file(path)?,
            None => Config::embedded_default()?,
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Path of the SQLite database under the data dir.
    pub fn sqlite_path(&self) -> PathBuf {
        self.server.data_dir.join("tge-swarm.sqlite")
    }
}

fn locate(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|tail| tail.chars().count() + 1)
        .unwrap_or(1);
    format!(":{line}:{column}")
}

fn parse_env<T: std::str::FromStr>(name: &str, value: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|err: T::Err| Error::config(name, format!("`{value}`: {err}")))
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(
            name,
            format!("`{value}` is not a boolean (true/false)"),
        )),
    }
}

impl ScrapingConfig {
    /// What sources may reach (`scraping.allow_hosts`, `scraping.file_root`); the error names
    /// the setting and the entry that does not parse.
    pub fn outbound(&self) -> Result<crate::outbound::OutboundPolicy> {
        crate::outbound::OutboundPolicy::new(&self.allow_hosts, self.file_root.as_deref())
            .map_err(|err| Error::config(err.field, err.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let config = Config::embedded_default().unwrap();
        config.validate().unwrap();
        assert_eq!(config.companies.len(), 15);
        assert_eq!(config.sources.len(), 21);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            ("[server]\nbogus = 1\n", "bogus"),
            ("[scraping]\ntimeout = \"soon\"\n", "t.toml:2"),
            ("[detection]\nthreshold = 1.5\n", "detection.threshold"),
            (
                "[supervision.policy]\nbackoff_jitter = 2.0\n",
                "backoff_jitter",
            ),
            (
                "[supervision.kinds.keyword]\nmax_restart = 4\n",
                "supervision.kinds.keyword",
            ),
            (
                "[supervision.kinds.keyword]\nmin_replicas = 9\n",
                "min_replicas",
            ),
            ("[supervision.kinds.kewyord]\nmax_replicas = 4\n", "kewyord"),
            (
                "[supervision]\nalert_webhook = \"hooks:9000\"\n",
                "supervision.alert_webhook",
            ),
            (
                "[queues]\nvisibility_timeout = \"30s\"\n",
                "queues.visibility_timeout",
            ),
            ("[memory]\nflush_keys = 0\n", "memory.flush_keys"),
            (
                "[server]\nevents_cache_ttl = \"5m\"\n",
                "server.events_cache_ttl",
            ),
            (
                "[memory]\nsync_interval = \"1s\"\nflush_interval = \"2s\"\n",
                "memory.flush_interval",
            ),
            (
                "[[sources]]\nname = \"x\"\nkind = \"html\"\nurl = \"https://a.b\"\ninterval = \"1m\"\n",
                "sources[0]",
            ),
            (
                "[[sources]]\nname = \"x\"\nkind = \"rss\"\nurl = \"ftp://a.b\"\ninterval = \"1m\"\n",
                "sources[0]",
            ),
            (
                "[[companies]]\nname = \"A\"\ntickers = [\"$$\"]\n",
                "companies[0]",
            ),
        ];
        for (text, needle) in cases {
            let result = Config::from_toml(text, "t.toml").and_then(|config| config.validate());
            let message = result.expect_err(text).to_string();
            assert!(message.contains(needle), "{text:?} -> {message}");
        }
    }

    /// Every duration and count at an extreme (far too large, and zero where zero is
    /// meaningless) is refused with an error naming its field, never a panic or an overflow.
    #[test]
    fn extreme_values_are_refused_by_name() {
        let huge = "\"300000years\"";
        let durations = [
            ("scheduler", "tick"),
            ("scraping", "timeout"),
            ("scraping", "connect_timeout"),
            ("scraping", "parse_timeout"),
            ("scraping", "retry_min_delay"),
            ("scraping", "retry_max_delay"),
            ("quality", "merge_window"),
            ("reliability", "open_for"),
            ("reliability", "max_open_for"),
            ("supervision", "heartbeat_interval"),
            ("supervision", "stop_timeout"),
            ("supervision", "interval"),
            ("queues", "visibility_timeout"),
            ("queues", "poll_wait"),
            ("memory", "sync_interval"),
            ("memory", "default_ttl"),
            ("memory", "flush_interval"),
            ("performance", "interval"),
            ("server", "events_cache_ttl"),
            ("supervision.policy", "restart_window"),
            ("supervision.policy", "backoff_base"),
            ("supervision.policy", "cooldown"),
            ("supervision.policy", "reset_after"),
            ("supervision.policy", "stuck_after"),
            ("supervision.policy", "latency"),
            ("supervision.policy", "scale_down_after"),
            ("supervision.kinds.keyword", "cpu_for"),
        ];
        let counts = [
            ("server", "max_request_bytes"),
            ("server", "rate_limit_per_address"),
            ("server", "rate_limit_per_key"),
            ("server", "rate_limit_burst"),
            ("scraping", "max_body_bytes"),
            ("scraping", "retries"),
            ("scraping", "concurrency"),
            ("scraping", "per_host_concurrency"),
            ("scraping", "max_items"),
            ("scraping", "max_html_depth"),
            ("scraping", "max_html_nodes"),
            ("scraping", "max_xml_depth"),
            ("detection", "batch"),
            ("quality", "batch"),
            ("quality", "max_text_bytes"),
            ("reliability", "failure_threshold"),
            ("supervision", "missed_heartbeats"),
            ("queues", "bus_buffer"),
            ("queues", "max_backlog"),
            ("memory", "max_entries"),
            ("memory", "flush_keys"),
            ("performance", "backlog_threshold"),
            ("supervision.policy", "max_restarts"),
            ("supervision.policy", "max_replicas"),
            ("supervision.policy", "backlog"),
        ];
        let mut cases: Vec<(String, &str)> = Vec::new();
        for (section, key) in durations {
            cases.push((format!("[{section}]\n{key} = {huge}\n"), key));
        }
        for (section, key) in counts {
            // Within u32 (a larger number is refused by the parser, naming the line).
            cases.push((format!("[{section}]\n{key} = 4000000000\n"), key));
            cases.push((format!("[{section}]\n{key} = 0\n"), key));
        }
        cases.push((
            "[[sources]]\nname = \"x\"\nkind = \"rss\"\nurl = \"https://a.b\"\ninterval = \"300000years\"\n".into(),
            "interval",
        ));
        for (text, needle) in &cases {
            let result = Config::from_toml(text, "t.toml").and_then(|config| config.validate());
            let Err(err) = result else {
                // Zero is a valid value for some counts (retries, backlog).
                assert!(text.ends_with("= 0\n"), "{text:?} was accepted");
                continue;
            };
            let message = err.to_string();
            assert!(message.contains(needle), "{text:?} -> {message}");
        }
    }

    #[test]
    fn policies_are_overridden_per_kind() {
        let text = "[supervision.policy]\nmax_replicas = 6\n\n[supervision.kinds.keyword]\nmax_replicas = 4\ncooldown = \"10s\"\n";
        let config = Config::from_toml(text, "t.toml").unwrap();
        config.validate().unwrap();
        let keyword = config.supervision.policy(AgentKind::Keyword);
        assert_eq!(keyword.max_replicas, 4);
        assert_eq!(keyword.cooldown, Duration::from_secs(10));
        assert_eq!(
            keyword.max_restarts, 3,
            "the rest comes from [supervision.policy]"
        );
        let scraping = config.supervision.policy(AgentKind::Scraping);
        assert_eq!(scraping.max_replicas, 6);
        assert_eq!(scraping.cooldown, Duration::from_secs(300));
        let mut env = Config::embedded_default().unwrap();
        env.apply_env(|name| match name {
            "TGE_SWARM_FAULT_INJECTION" => Some("true".into()),
            "TGE_SWARM_ALERT_WEBHOOK" => Some("http://hooks:9000/a".into()),
            _ => None,
        })
        .unwrap();
        assert!(env.supervision.fault_injection);
        assert_eq!(
            env.supervision.alert_webhook.as_deref(),
            Some("http://hooks:9000/a")
        );
        let bad =
            env.apply_env(|name| (name == "TGE_SWARM_FAULT_INJECTION").then(|| "maybe".to_owned()));
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("TGE_SWARM_FAULT_INJECTION")
        );
    }

    #[test]
    fn connection_settings_come_from_env_and_are_checked() {
        let mut config = Config::embedded_default().unwrap();
        config
            .apply_env(|name| match name {
                "TGE_SWARM_REDIS_URL" => Some("redis://cache:6379/0".into()),
                "TGE_SWARM_DATABASE_URL" => Some("postgres://u@db/tge".into()),
                "TGE_SWARM_CONSUL_URL" => Some("".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            config.connections.redis_url.as_deref(),
            Some("redis://cache:6379/0")
        );
        assert_eq!(config.connections.consul_url, None, "empty unsets");
        config.validate().unwrap();
        config.connections.database_url = Some("mysql://db/tge".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("connections.database_url") && err.contains("TGE_SWARM_DATABASE_URL"),
            "{err}"
        );
        config.connections.database_url = None;
        config.connections.redis_url =
            Some("redis-cluster://:pw@redis-1:7001?node=redis-2:7002&node=redis-3:7003".into());
        config.validate().unwrap();
        config.connections.redis_url = Some("http://cache:6379".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("connections.redis_url") && err.contains("redis-cluster://"),
            "{err}"
        );
        let mut roles = Config::embedded_default().unwrap();
        roles.use_role_metrics_port(8011);
        assert_eq!(roles.server.metrics_addr.port(), 8011);
        roles.server.metrics_addr = "127.0.0.1:9000".parse().unwrap();
        roles.use_role_metrics_port(8011);
        assert_eq!(
            roles.server.metrics_addr.port(),
            9000,
            "an explicit address wins"
        );
    }

    #[test]
    fn tracing_settings_come_from_env_and_are_checked() {
        let mut config = Config::embedded_default().unwrap();
        assert_eq!(config.tracing.otlp_endpoint, None, "off by default");
        config
            .apply_env(|name| match name {
                "TGE_SWARM_OTLP_ENDPOINT" => Some("http://jaeger:4318".into()),
                "TGE_SWARM_TRACE_SAMPLE_RATIO" => Some("0.25".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            config.tracing.otlp_endpoint.as_deref(),
            Some("http://jaeger:4318")
        );
        assert!((config.tracing.sample_ratio - 0.25).abs() < f64::EPSILON);
        config.validate().unwrap();
        config.tracing.sample_ratio = 1.5;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("tracing.sample_ratio"), "{err}");
        config.tracing.sample_ratio = 1.0;
        config.tracing.otlp_endpoint = Some("jaeger:4318".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("tracing.otlp_endpoint"), "{err}");
        let err = config
            .apply_env(|name| (name == "TGE_SWARM_TRACE_SAMPLE_RATIO").then(|| "half".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TGE_SWARM_TRACE_SAMPLE_RATIO"), "{err}");
    }

    #[test]
    fn env_overrides_apply_and_are_checked() {
        let mut config = Config::embedded_default().unwrap();
        config
            .apply_env(|name| match name {
                "TGE_SWARM_API_ADDR" => Some("127.0.0.1:9999".into()),
                "TGE_SWARM_REQUIRE_KEY_FOR_READS" => Some("true".into()),
                "TGE_SWARM_DATA_DIR" => Some("/tmp/x".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.server.api_addr.port(), 9999);
        assert!(config.server.require_key_for_reads);
        assert_eq!(config.server.data_dir, PathBuf::from("/tmp/x"));
        let err = config
            .apply_env(|name| (name == "TGE_SWARM_METRICS_ADDR").then(|| "nope".into()))
            .unwrap_err();
        assert!(err.to_string().contains("TGE_SWARM_METRICS_ADDR"));
    }
}
