//! The sections of the pipeline: scheduling, scraping, detection and data quality.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

/// A quarter of a second: a source is fetched at most this long after it is due, which is
/// what an exchange polled every few seconds can afford; each check reads the sources once.
pub(super) fn default_tick() -> Duration {
    Duration::from_millis(250)
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
    /// The app-only bearer token of `x` sources, from `TGE_SWARM_X_BEARER_TOKEN` only.
    #[serde(skip)]
    pub x_bearer_token: Option<Secret>,
    /// The API key and secret of Binance's announcement WebSocket, from
    /// `TGE_SWARM_BINANCE_API_KEY` and `TGE_SWARM_BINANCE_API_SECRET` only (both or neither).
    #[serde(skip)]
    pub binance_api: Option<(Secret, Secret)>,
}

/// A credential read from the environment: cloned and compared, never printed (its `Debug`
/// says only that it is set).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<set>")
    }
}

impl Default for ScrapingConfig {
    fn default() -> Self {
        ScrapingConfig {
            x_bearer_token: None,
            binance_api: None,
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

pub(super) fn one() -> u32 {
    1
}

pub(super) fn default_fetch_timeout() -> Duration {
    Duration::from_secs(20)
}

pub(super) fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

pub(super) fn default_max_body() -> u64 {
    10 * 1024 * 1024
}

pub(super) fn default_retries() -> u32 {
    2
}

pub(super) fn default_retry_min() -> Duration {
    Duration::from_millis(500)
}

pub(super) fn default_retry_max() -> Duration {
    Duration::from_secs(8)
}

pub(super) fn default_concurrency() -> usize {
    8
}

pub(super) fn default_per_host_concurrency() -> usize {
    2
}

pub(super) fn default_parse_timeout() -> Duration {
    Duration::from_secs(10)
}

pub(super) fn default_max_html_depth() -> u32 {
    512
}

pub(super) fn default_max_html_nodes() -> usize {
    250_000
}

pub(super) fn default_max_xml_depth() -> u32 {
    128
}

pub(super) fn default_max_items() -> usize {
    500
}

pub(super) fn default_user_agent() -> String {
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
    /// Tickers of tokens that already trade, beside the operator's list kept through the API
    /// (`PUT /api/v1/trading-tokens`), the watchlist's `has_token` companies and the swarm's
    /// own launched events.
    #[serde(default)]
    pub trading_tokens: Vec<String>,
    /// Log-odds added to a document whose token already trades (-20 to 0; 0 turns it off).
    #[serde(default = "default_already_trading_shift")]
    pub already_trading_shift: f64,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            replicas: 1,
            threshold: None,
            batch: default_batch(),
            sentence_stage_per_second: default_sentence_stage_per_second(),
            trading_tokens: Vec::new(),
            already_trading_shift: default_already_trading_shift(),
        }
    }
}

pub(super) fn default_sentence_stage_per_second() -> u32 {
    2
}

/// Enough to take a confident verdict (0.98) below the default threshold: by the labelling
/// policy a token that already trades has no TGE left to announce.
pub(super) fn default_already_trading_shift() -> f64 {
    -4.0
}

pub(super) fn default_batch() -> usize {
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
    /// Partitions of the data quality queue, by merge key: each is leased to one data quality
    /// actor at a time, so actors record disjoint projects side by side instead of waiting on
    /// each other's merge locks (docs/runtime.md, "Partitioned data quality"). Every process
    /// of a swarm must use the same number; change it only with the queue empty.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// How long a partition's lease lasts without renewal: a data quality actor that stops
    /// (killed, hung) hands its partitions to the others after at most this long, or at once
    /// when the health supervisor fails it over. Renewed every quarter of it, at most every 2 s.
    #[serde(default = "default_lease", with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            replicas: 1,
            merge_window: default_merge_window(),
            max_text_bytes: default_max_text(),
            batch: default_quality_batch(),
            partitions: default_partitions(),
            lease: default_lease(),
        }
    }
}

/// Enough for the actors a host runs (a partition serves one actor; more partitions than
/// actors spread the load more evenly).
pub(super) fn default_partitions() -> u32 {
    8
}

pub(super) fn default_lease() -> Duration {
    Duration::from_secs(10)
}

/// 512 rather than the other stages' 64: recording is the pipeline's slowest stage, and its
/// per-transaction costs dominate small batches (BENCHMARKS.md, "Pipeline").
pub(super) fn default_quality_batch() -> usize {
    512
}

pub(super) fn default_merge_window() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

pub(super) fn default_max_text() -> usize {
    200_000
}

impl ScrapingConfig {
    /// What sources may reach (`scraping.allow_hosts`, `scraping.file_root`); the error names
    /// the setting and the entry that does not parse.
    pub fn outbound(&self) -> Result<crate::outbound::OutboundPolicy> {
        crate::outbound::OutboundPolicy::new(&self.allow_hosts, self.file_root.as_deref())
            .map_err(|err| Error::config(err.field, err.reason))
    }
}
