//! The `TGE_SWARM_*` environment overlay.

use std::path::PathBuf;

use super::Config;
use crate::error::{Error, Result};

impl Config {
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
        if let Some(value) = lookup(crate::domain::X_TOKEN_ENV) {
            self.scraping.x_bearer_token = Some(value.trim())
                .filter(|value| !value.is_empty())
                .map(super::Secret::new);
        }
        let set = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        use crate::domain::{BINANCE_KEY_ENV, BINANCE_SECRET_ENV};
        match (set(BINANCE_KEY_ENV), set(BINANCE_SECRET_ENV)) {
            (Some(key), Some(secret)) => {
                self.scraping.binance_api =
                    Some((super::Secret::new(key), super::Secret::new(secret)));
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(Error::config(
                    BINANCE_SECRET_ENV,
                    format!("is not set but {BINANCE_KEY_ENV} is: Binance signs with both"),
                ));
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    BINANCE_KEY_ENV,
                    format!("is not set but {BINANCE_SECRET_ENV} is: Binance signs with both"),
                ));
            }
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
        if let Some(value) = lookup("TGE_SWARM_SMTP_PASSWORD")
            && !value.is_empty()
        {
            let Some(smtp) = self.delivery.smtp.as_mut() else {
                return Err(Error::config(
                    "TGE_SWARM_SMTP_PASSWORD",
                    "is set but the config has no [delivery.smtp] section",
                ));
            };
            smtp.password = Some(value);
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
}

/// A comma-separated environment value as a list (blank entries dropped).
pub(super) fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn parse_env<T: std::str::FromStr>(name: &str, value: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|err: T::Err| Error::config(name, format!("`{value}`: {err}")))
}

pub(super) fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(
            name,
            format!("`{value}` is not a boolean (true/false)"),
        )),
    }
}
