//! `[retention]`: how long documents and fingerprints are kept (events are kept, with their
//! evidence and sources, and so are the documents they list).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Retention of the store's documents and fingerprints, run by the process that serves the
/// API (queen/src/retention.rs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Documents no event lists are deleted once stored longer than this; `"0s"` keeps
    /// every document.
    #[serde(default = "default_documents", with = "humantime_serde")]
    pub documents: Duration,
    /// Fingerprints (the near-copy index) are deleted once stored longer than this; at least
    /// `quality.merge_window` (the index is read over that window); `"0s"` keeps them all.
    #[serde(default = "default_fingerprints", with = "humantime_serde")]
    pub fingerprints: Duration,
    /// How often a pass runs.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Rows deleted per statement; a pass runs statements until one deletes fewer.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Most rows deleted per table in one pass (the rest waits for the next).
    #[serde(default = "default_max_per_pass")]
    pub max_per_pass: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            documents: default_documents(),
            fingerprints: default_fingerprints(),
            interval: default_interval(),
            batch: default_batch(),
            max_per_pass: default_max_per_pass(),
        }
    }
}

fn default_documents() -> Duration {
    Duration::from_secs(90 * 24 * 3600)
}

fn default_fingerprints() -> Duration {
    Duration::from_secs(60 * 24 * 3600)
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_batch() -> usize {
    500
}

fn default_max_per_pass() -> usize {
    100_000
}

impl RetentionConfig {
    /// The ranges (README, Configuration) and the fingerprints' floor, `merge_window`.
    pub fn validate(&self, merge_window: Duration) -> Result<()> {
        // Ten minutes at least, for soaks and small disks. Below the time a feed keeps an
        // item, a deleted document is read again and stored anew (docs/runtime.md).
        const FLOOR: Duration = Duration::from_secs(600);
        const YEARS: Duration = Duration::from_secs(3650 * 24 * 3600);
        for (field, value) in [
            ("retention.documents", self.documents),
            ("retention.fingerprints", self.fingerprints),
        ] {
            if !value.is_zero() && !(FLOOR..=YEARS).contains(&value) {
                return Err(Error::config(field, "must be 0s (keep) or 10m to 3650days"));
            }
        }
        if !self.fingerprints.is_zero() && self.fingerprints < merge_window {
            return Err(Error::config(
                "retention.fingerprints",
                format!(
                    "must be at least quality.merge_window ({}): near copies are looked for over that window",
                    humantime::format_duration(merge_window)
                ),
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(24 * 3600)).contains(&self.interval) {
            return Err(Error::config("retention.interval", "must be 1s to 1day"));
        }
        if !(1..=100_000).contains(&self.batch) {
            return Err(Error::config("retention.batch", "must be 1 to 100000"));
        }
        if !(1..=100_000_000).contains(&self.max_per_pass) {
            return Err(Error::config(
                "retention.max_per_pass",
                "must be 1 to 100000000",
            ));
        }
        Ok(())
    }
}
