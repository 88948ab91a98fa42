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
    /// Checks what the ranges of `Config::validate` do not: the retry delays' order and the
    /// SMTP relay.
    pub fn validate(&self) -> Result<()> {
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

fn default_smtp_port() -> u16 {
    587
}
