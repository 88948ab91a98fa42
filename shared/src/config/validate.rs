//! Validation of what serde cannot check: URLs, combinations, and every duration, size and
//! count against its documented range. Every error names the field.

use std::time::Duration;

use super::Config;
use crate::domain::AgentKind;
use crate::error::{Error, Result};

impl Config {
    /// Validates values serde cannot check; the error names the field.
    pub fn validate(&self) -> Result<()> {
        // Ranges first: the checks below do arithmetic on these values.
        self.check_ranges()?;
        self.retention.validate(self.quality.merge_window)?;
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
        self.delivery.validate()?;
        if let Some(threshold) = self.detection.threshold
            && (!(0.0..=1.0).contains(&threshold) || threshold.is_nan())
        {
            return Err(Error::config(
                "detection.threshold",
                "must be between 0 and 1",
            ));
        }
        let shift = self.detection.already_trading_shift;
        if !(-20.0..=0.0).contains(&shift) || shift.is_nan() {
            return Err(Error::config(
                "detection.already_trading_shift",
                "must be between -20 and 0",
            ));
        }
        crate::domain::validate_trading_tokens(&self.detection.trading_tokens)
            .map_err(|err| Error::config("detection.trading_tokens", err.to_string()))?;
        // Batches and text limits: in `check_ranges`.
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
        let durations: [(&str, Duration, Duration, Duration); 25] = [
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
                "quality.lease",
                self.quality.lease,
                Duration::from_millis(100),
                Duration::from_secs(600),
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
            (
                "server.stream_heartbeat",
                self.server.stream_heartbeat,
                MS,
                Duration::from_secs(300),
            ),
            (
                "delivery.poll_interval",
                self.delivery.poll_interval,
                MS,
                Duration::from_secs(60),
            ),
            (
                "delivery.timeout",
                self.delivery.timeout,
                MS,
                Duration::from_secs(300),
            ),
            (
                "delivery.retry_min_delay",
                self.delivery.retry_min_delay,
                MS,
                HOUR,
            ),
            (
                "delivery.retry_max_delay",
                self.delivery.retry_max_delay,
                MS,
                DAY,
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
        let counts: [(&str, u64, u64, u64); 27] = [
            (
                "delivery.max_attempts",
                u64::from(self.delivery.max_attempts),
                1,
                100,
            ),
            (
                "delivery.concurrency",
                self.delivery.concurrency as u64,
                1,
                256,
            ),
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
                "quality.partitions",
                u64::from(self.quality.partitions),
                1,
                64,
            ),
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
}
