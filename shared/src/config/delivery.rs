//! Alert delivery: how the queen's deliverer polls the outbox, sends alerts and retries them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The queen's alert deliverer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// How often the outbox and the due alerts are read.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Whole-request timeout of one attempt.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts before an alert is given up (dead).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Delay before the second attempt; it doubles for each further one, with ±20 % jitter.
    #[serde(default = "default_retry_min_delay", with = "humantime_serde")]
    pub retry_min_delay: Duration,
    /// Longest delay between attempts (a receiver's Retry-After may ask for more).
    #[serde(default = "default_retry_max_delay", with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// Alerts sent at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Failed fetches in a row after which a source is down and subscribers are told (0:
    /// never).
    #[serde(default = "default_source_down_after")]
    pub source_down_after: u32,
    /// Expected periods (the source's interval) without a completed fetch after which a
    /// source is down (0: never).
    #[serde(default = "default_source_silent_after")]
    pub source_silent_after: u32,
    /// Silence allowed beyond those periods (a slow fetch, a busy scheduler).
    #[serde(default = "default_source_silence_grace", with = "humantime_serde")]
    pub source_silence_grace: Duration,
    /// How often sources' health is checked.
    #[serde(default = "default_health_check_interval", with = "humantime_serde")]
    pub health_check_interval: Duration,
    /// The SMTP relay e-mail alerts go through; e-mail subscriptions are refused without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpConfig>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            poll_interval: default_poll_interval(),
            timeout: default_timeout(),
            max_attempts: default_max_attempts(),
            retry_min_delay: default_retry_min_delay(),
            retry_max_delay: default_retry_max_delay(),
            concurrency: default_concurrency(),
            source_down_after: default_source_down_after(),
            source_silent_after: default_source_silent_after(),
            source_silence_grace: default_source_silence_grace(),
            health_check_interval: default_health_check_interval(),
            smtp: None,
        }
    }
}

fn default_poll_interval() -> Duration {
    Duration::from_millis(250)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_attempts() -> u32 {
    8
}

fn default_retry_min_delay() -> Duration {
    Duration::from_secs(2)
}

fn default_retry_max_delay() -> Duration {
    Duration::from_secs(600)
}

fn default_concurrency() -> usize {
    8
}

/// How the connection to the SMTP relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// A plain connection upgraded with STARTTLS before anything else is sent; a relay that
    /// does not offer STARTTLS is refused (submission port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (implicit TLS, port 465).
    Tls,
}

/// The SMTP relay of e-mail alerts (`[delivery.smtp]`). The password is never written in
/// the file: it comes from `TGE_SWARM_SMTP_PASSWORD`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's host name; its certificate must name it.
    pub host: String,
    /// Its port (default 587, the submission port).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls` (default) or `tls`; there is no unencrypted mode.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// The sender: `alerts@example.com` or `TGE alerts <alerts@example.com>`.
    pub from: String,
    /// The user to log in as (with `TGE_SWARM_SMTP_PASSWORD`); none: no login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password, from `TGE_SWARM_SMTP_PASSWORD` only.
    #[serde(skip)]
    pub password: Option<String>,
    /// A PEM file of extra CA certificates to trust for the relay (a private CA), besides the
    /// system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl DeliveryConfig {
    /// When a source is down.
    pub fn health_policy(&self) -> crate::domain::HealthPolicy {
        crate::domain::HealthPolicy {
            down_after_failures: self.source_down_after,
            silent_after_intervals: self.source_silent_after,
            grace: self.source_silence_grace,
        }
    }

    /// Checks what the ranges of `Config::validate` do not: the retry delays' order and the
    /// SMTP relay.
    pub fn validate(&self) -> Result<()> {
        if self.source_down_after > 1000 {
            return Err(Error::config(
                "delivery.source_down_after",
                "must be between 0 and 1000",
            ));
        }
        if self.source_silent_after > 1000 {
            return Err(Error::config(
                "delivery.source_silent_after",
                "must be between 0 and 1000",
            ));
        }
        if self.health_check_interval.is_zero()
            || self.health_check_interval > Duration::from_secs(3600)
        {
            return Err(Error::config(
                "delivery.health_check_interval",
                "must be between 1ms and 1h",
            ));
        }
        if self.source_silence_grace > Duration::from_secs(7 * 24 * 3600) {
            return Err(Error::config(
                "delivery.source_silence_grace",
                "must be between 0 and 7days",
            ));
        }
        if self.retry_min_delay > self.retry_max_delay {
            return Err(Error::config(
                "delivery.retry_min_delay",
                "must not exceed delivery.retry_max_delay",
            ));
        }
        match &self.smtp {
            Some(smtp) => smtp.validate(),
            None => Ok(()),
        }
    }
}

impl SmtpConfig {
    /// Checks the relay's settings; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.host.trim().is_empty() {
            return Err(Error::config("delivery.smtp.host", "must not be empty"));
        }
        if self.port == 0 {
            return Err(Error::config("delivery.smtp.port", "must not be 0"));
        }
        let address = match self.from.rsplit_once('<') {
            Some((_, rest)) => rest.strip_suffix('>').unwrap_or(""),
            None => self.from.trim(),
        };
        if !crate::domain::plausible_address(address.trim()) {
            return Err(Error::config(
                "delivery.smtp.from",
                format!(
                    "`{}` is not an address (`alerts@example.com` or `Name <alerts@example.com>`)",
                    self.from
                ),
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(Error::config(
                "delivery.smtp.username",
                "TGE_SWARM_SMTP_PASSWORD is set but no username is configured",
            ));
        }
        Ok(())
    }
}

fn default_source_down_after() -> u32 {
    5
}

fn default_source_silent_after() -> u32 {
    3
}

fn default_source_silence_grace() -> Duration {
    Duration::from_secs(120)
}

fn default_health_check_interval() -> Duration {
    Duration::from_secs(10)
}

fn default_smtp_port() -> u16 {
    587
}
