//! Alert delivery: how the queen's deliverer polls the outbox, sends alerts and retries them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

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
