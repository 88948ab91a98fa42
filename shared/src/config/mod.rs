//! The typed configuration tree: a TOML file plus `TGE_SWARM_*` environment overrides,
//! validated once at start. Unknown keys are errors; every error names the field.
//!
//! The shipped `config/tge-swarm.toml` is embedded in the binary, so `tge-swarm run` works
//! from any directory with the default watchlist and feeds.
//!
//! Split by concern: the sections a running process needs (`runtime.rs`), those of the
//! pipeline (`ingest.rs`), the `TGE_SWARM_*` overlay (`env.rs`) and validation with every
//! range (`validate.rs`).

mod delivery;
mod env;
mod ingest;
mod retention;
mod runtime;
mod validate;

pub use delivery::{DeliveryConfig, SmtpConfig, SmtpSecurity};
pub use ingest::{DetectionConfig, QualityConfig, SchedulerConfig, ScrapingConfig, Secret};
pub use retention::RetentionConfig;
pub use runtime::{
    ConnectionsConfig, MemoryConfig, NodeConfig, PerformanceConfig, QueueConfig, ReliabilityConfig,
    ServerConfig, SupervisionConfig, TracingConfig,
};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::{AgentKind, Company, CompanyInput, SourceInput};
use crate::error::{Error, Result};

/// The shipped default configuration (`config/tge-swarm.toml`).
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../../config/tge-swarm.toml");

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
    /// Alert delivery to subscriptions.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// How long documents and fingerprints are kept.
    #[serde(default)]
    pub retention: RetentionConfig,
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

    /// Gives a role its default metrics port (memory coordinator 8002, agents 8010-8014)
    /// unless `server.metrics_addr` was changed from the default `0.0.0.0:8001`.
    pub fn use_role_metrics_port(&mut self, port: u16) {
        if self.server.metrics_addr == runtime::default_metrics_addr() {
            self.server.metrics_addr.set_port(port);
        }
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

pub(super) fn locate(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|tail| tail.chars().count() + 1)
        .unwrap_or(1);
    format!(":{line}:{column}")
}

#[cfg(test)]
mod tests;
