//! Domain types: agents, sources, companies (watchlist), documents, detections and TGE
//! events. These are the shapes stored, queued and served by the API.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// The kind of an actor in the swarm.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// The queen: scheduler and supervisor of the swarm.
    Queen,
    /// Scraping efficiency specialist: fetches and parses sources.
    Scraping,
    /// Keyword precision specialist: scores documents.
    Keyword,
    /// API reliability optimizer: swarm-wide circuit breakers per host.
    ApiReliability,
    /// Performance bottleneck eliminator: finds the bottleneck, recommends scaling.
    Performance,
    /// Data quality enforcer: validation, dedup, merge into events.
    DataQuality,
    /// Memory coordinator: shared memory and synthesis.
    MemoryCoordinator,
}

impl AgentKind {
    /// Every kind, in start order.
    pub const ALL: [AgentKind; 7] = [
        AgentKind::Queen,
        AgentKind::MemoryCoordinator,
        AgentKind::ApiReliability,
        AgentKind::Performance,
        AgentKind::DataQuality,
        AgentKind::Keyword,
        AgentKind::Scraping,
    ];

    /// Parses a wire name (`api-reliability`, ...).
    pub fn parse(text: &str) -> Option<AgentKind> {
        AgentKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// The wire name (`api-reliability`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Queen => "queen",
            AgentKind::Scraping => "scraping",
            AgentKind::Keyword => "keyword",
            AgentKind::ApiReliability => "api-reliability",
            AgentKind::Performance => "performance",
            AgentKind::DataQuality => "data-quality",
            AgentKind::MemoryCoordinator => "memory-coordinator",
        }
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Health of an actor as the queen sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Spawned, no heartbeat yet.
    Starting,
    /// Heartbeating on time.
    Healthy,
    /// Heartbeats missed.
    Unhealthy,
    /// Crashed; a restart is scheduled.
    Restarting,
    /// Crashed and the restart budget is spent.
    Failed,
    /// Stopped cleanly.
    Stopped,
}

/// How a source is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// RSS 2.0 feed.
    Rss,
    /// Atom feed.
    Atom,
    /// HTML page read with CSS selectors.
    Html,
    /// Local file (`file://`): a feed, an HTML page (with selectors) or JSON Lines documents.
    File,
}

impl SourceKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Rss => "rss",
            SourceKind::Atom => "atom",
            SourceKind::Html => "html",
            SourceKind::File => "file",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<SourceKind> {
        match text {
            "rss" => Some(SourceKind::Rss),
            "atom" => Some(SourceKind::Atom),
            "html" => Some(SourceKind::Html),
            "file" => Some(SourceKind::File),
            _ => None,
        }
    }
}

/// CSS selectors for HTML sources. `item` selects each entry; the others are relative to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selectors {
    /// Selects each item on the page (required for HTML sources).
    pub item: String,
    /// Selects the title inside an item; defaults to the item's first heading or link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Selects the link (`href`) inside an item; defaults to the first `a[href]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Selects the date inside an item (`datetime` attribute or text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Selects the body text inside an item; defaults to the item's whole text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// What a client sends to create or replace a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    /// Unique name.
    pub name: String,
    /// How the source is read.
    pub kind: SourceKind,
    /// `http(s)://` URL, or `file://` path for file sources.
    pub url: String,
    /// Poll interval as a humantime string (`30s`, `5m`).
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "5m")]
    pub interval: Duration,
    /// CSS selectors (required for `html`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selectors: Option<Selectors>,
    /// Prior reliability of the source, 1 (best) to 4.
    #[serde(default = "default_tier")]
    pub tier: u8,
    /// Whether the queen schedules it.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_tier() -> u8 {
    2
}

fn default_true() -> bool {
    true
}

/// Shortest poll interval accepted, to protect the sources we read.
pub const MIN_SOURCE_INTERVAL: Duration = Duration::from_millis(200);
/// Longest poll interval accepted (30 days): a source polled less often is better disabled.
pub const MAX_SOURCE_INTERVAL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest source URL accepted, in bytes.
pub const MAX_SOURCE_URL_BYTES: usize = 2048;

impl SourceInput {
    /// Checks the input; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(Error::Invalid("name: must be 1 to 200 characters".into()));
        }
        if self.interval < MIN_SOURCE_INTERVAL || self.interval > MAX_SOURCE_INTERVAL {
            return Err(Error::Invalid(format!(
                "interval: must be between {} and {}",
                humantime::format_duration(MIN_SOURCE_INTERVAL),
                humantime::format_duration(MAX_SOURCE_INTERVAL)
            )));
        }
        if self.url.len() > MAX_SOURCE_URL_BYTES {
            return Err(Error::Invalid(format!(
                "url: must be at most {MAX_SOURCE_URL_BYTES} bytes"
            )));
        }
        if !(1..=4).contains(&self.tier) {
            return Err(Error::Invalid("tier: must be between 1 and 4".into()));
        }
        let parsed = url::Url::parse(&self.url)
            .map_err(|err| Error::Invalid(format!("url: {err}: {}", self.url)))?;
        match (self.kind, parsed.scheme()) {
            (SourceKind::File, "file") => {}
            (SourceKind::File, other) => {
                return Err(Error::Invalid(format!(
                    "url: file sources need a file:// url, got {other}://"
                )));
            }
            (_, "http" | "https") => {}
            (_, other) => {
                return Err(Error::Invalid(format!(
                    "url: {} sources need an http(s) url, got {other}://",
                    self.kind.as_str()
                )));
            }
        }
        if self.kind == SourceKind::Html && self.selectors.is_none() {
            return Err(Error::Invalid(
                "selectors: html sources need at least selectors.item".into(),
            ));
        }
        if let Some(selectors) = &self.selectors {
            validate_selector("selectors.item", Some(&selectors.item))?;
            validate_selector("selectors.title", selectors.title.as_deref())?;
            validate_selector("selectors.link", selectors.link.as_deref())?;
            validate_selector("selectors.date", selectors.date.as_deref())?;
            validate_selector("selectors.text", selectors.text.as_deref())?;
        }
        Ok(())
    }
}

fn validate_selector(field: &str, selector: Option<&str>) -> Result<()> {
    let Some(selector) = selector else {
        return Ok(());
    };
    if selector.trim().is_empty() {
        return Err(Error::Invalid(format!("{field}: must not be empty")));
    }
    if selector.len() > 500 {
        return Err(Error::Invalid(format!(
            "{field}: longer than 500 characters"
        )));
    }
    Ok(())
}

/// Result of the last fetch of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FetchStatus {
    /// Fetched and parsed.
    Ok,
    /// 304: nothing new.
    NotModified,
    /// Failed; see `last_error`.
    Error,
    /// Skipped because the host's circuit breaker is open.
    CircuitOpen,
}

impl FetchStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchStatus::Ok => "ok",
            FetchStatus::NotModified => "not_modified",
            FetchStatus::Error => "error",
            FetchStatus::CircuitOpen => "circuit_open",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<FetchStatus> {
        match text {
            "ok" => Some(FetchStatus::Ok),
            "not_modified" => Some(FetchStatus::NotModified),
            "error" => Some(FetchStatus::Error),
            "circuit_open" => Some(FetchStatus::CircuitOpen),
            _ => None,
        }
    }
}

/// A stored source with its fetch health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Source {
    /// Identifier.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// How it is read.
    pub kind: SourceKind,
    /// Where it is read from.
    pub url: String,
    /// Poll interval (humantime).
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "5m")]
    pub interval: Duration,
    /// CSS selectors for HTML.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selectors: Option<Selectors>,
    /// Prior reliability tier, 1 (best) to 4.
    pub tier: u8,
    /// Whether it is scheduled.
    pub enabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When the last fetch finished.
    pub last_fetch_at: Option<DateTime<Utc>>,
    /// Outcome of the last fetch.
    pub last_status: Option<FetchStatus>,
    /// Error of the last fetch, if it failed.
    pub last_error: Option<String>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Items parsed by the last successful fetch.
    pub last_item_count: u32,
    /// Interval until the next fetch, adapted to the source's yield (none: `interval`).
    #[serde(with = "humantime_serde::option")]
    #[schema(value_type = Option<String>, example = "7m 30s")]
    pub effective_interval: Option<Duration>,
    /// Hash of the last body, to recognise an unchanged one without validators.
    #[serde(skip)]
    pub content_hash: Option<String>,
    /// ETag of the last 200 response, for conditional GET.
    #[serde(skip)]
    pub etag: Option<String>,
    /// Last-Modified of the last 200 response, for conditional GET.
    #[serde(skip)]
    pub last_modified: Option<String>,
}

/// What a scraping agent reports about one fetch of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchReport {
    /// When the fetch finished.
    pub at: DateTime<Utc>,
    /// Outcome.
    pub status: FetchStatus,
    /// Error text when it failed.
    pub error: Option<String>,
    /// Items parsed.
    pub items: u32,
    /// New validators (only on 200).
    pub etag: Option<String>,
    /// New validators (only on 200).
    pub last_modified: Option<String>,
    /// Hash of the body (only on 200).
    pub content_hash: Option<String>,
    /// Interval until the next fetch; none keeps the current one.
    pub next_interval: Option<Duration>,
}

/// Watchlist priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Priority {
    /// Most watched.
    High,
    /// Watched.
    Medium,
    /// Tracked.
    Low,
}

impl Priority {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "HIGH",
            Priority::Medium => "MEDIUM",
            Priority::Low => "LOW",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Priority> {
        match text {
            "HIGH" => Some(Priority::High),
            "MEDIUM" => Some(Priority::Medium),
            "LOW" => Some(Priority::Low),
            _ => None,
        }
    }
}

/// A watchlist company as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyInput {
    /// Canonical name (unique).
    pub name: String,
    /// Other names it goes by.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Token tickers, without `$`; digits allowed (SP1).
    #[serde(default)]
    pub tickers: Vec<String>,
    /// Watch priority.
    #[serde(default = "default_priority")]
    pub priority: Priority,
    /// Token status (`pre_token`, `has_token`, ...), free text.
    #[serde(default = "default_status")]
    pub status: String,
    /// Phrases that mean the name is used in another sense (a volcanic caldera).
    #[serde(default)]
    pub exclusions: Vec<String>,
}

fn default_priority() -> Priority {
    Priority::Medium
}

fn default_status() -> String {
    "pre_token".to_owned()
}

/// Most aliases, tickers or exclusions a company may list.
pub const MAX_COMPANY_LIST: usize = 50;
/// Longest alias, exclusion or status, in bytes.
pub const MAX_COMPANY_TEXT: usize = 200;

impl CompanyInput {
    /// Checks the input; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(Error::Invalid("name: must be 1 to 200 characters".into()));
        }
        if self.status.len() > MAX_COMPANY_TEXT {
            return Err(Error::Invalid(format!(
                "status: must be at most {MAX_COMPANY_TEXT} bytes"
            )));
        }
        for (field, list) in [
            ("aliases", &self.aliases),
            ("tickers", &self.tickers),
            ("exclusions", &self.exclusions),
        ] {
            if list.len() > MAX_COMPANY_LIST {
                return Err(Error::Invalid(format!(
                    "{field}: at most {MAX_COMPANY_LIST} entries"
                )));
            }
        }
        for (index, alias) in self.aliases.iter().enumerate() {
            if alias.trim().is_empty() || alias.len() > MAX_COMPANY_TEXT {
                return Err(Error::Invalid(format!(
                    "aliases[{index}]: must be 1 to {MAX_COMPANY_TEXT} bytes"
                )));
            }
        }
        for (index, ticker) in self.tickers.iter().enumerate() {
            let valid = (1..=12).contains(&ticker.len())
                && ticker
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.');
            if !valid {
                return Err(Error::Invalid(format!(
                    "tickers[{index}]: `{ticker}` must be 1 to 12 letters or digits"
                )));
            }
        }
        for (index, exclusion) in self.exclusions.iter().enumerate() {
            if exclusion.trim().is_empty() || exclusion.len() > MAX_COMPANY_TEXT {
                return Err(Error::Invalid(format!(
                    "exclusions[{index}]: must be 1 to {MAX_COMPANY_TEXT} bytes"
                )));
            }
        }
        Ok(())
    }
}

/// A stored watchlist company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Company {
    /// Identifier.
    pub id: i64,
    /// Canonical name.
    pub name: String,
    /// Other names.
    pub aliases: Vec<String>,
    /// Tickers.
    pub tickers: Vec<String>,
    /// Watch priority.
    pub priority: Priority,
    /// Token status.
    pub status: String,
    /// Homonym exclusions.
    pub exclusions: Vec<String>,
}

/// A scrape task: the queen asks a scraping agent to fetch one source now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScrapeTask {
    /// The source, as stored when the task was scheduled.
    pub source: Source,
    /// When the queen scheduled it.
    pub scheduled_at: DateTime<Utc>,
    /// ETag to send (`If-None-Match`); carried explicitly because the API hides it.
    #[serde(default)]
    pub etag: Option<String>,
    /// Last-Modified to send (`If-Modified-Since`).
    #[serde(default)]
    pub last_modified: Option<String>,
    /// Hash of the last body fetched, to skip an identical one.
    #[serde(default)]
    pub content_hash: Option<String>,
}

/// A document parsed from a source: one feed entry, page item or file record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Document {
    /// Content id: hash of canonical URL and normalised content (idempotency key).
    pub id: String,
    /// Source it came from.
    pub source_id: i64,
    /// Source name (for evidence and logs).
    pub source_name: String,
    /// Source tier (prior), 1 to 4.
    pub source_tier: u8,
    /// Canonical URL.
    pub url: String,
    /// Title, plain text.
    pub title: String,
    /// Body, plain text.
    pub text: String,
    /// Publication time, if the source stated it.
    pub published_at: Option<DateTime<Utc>>,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
}

/// Computes a document id from its canonical URL and its content.
pub fn document_id(canonical_url: &str, title: &str, text: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(canonical_url.as_bytes());
    hasher.update(b"\n");
    hasher.update(normalise_for_hash(title).as_bytes());
    hasher.update(b"\n");
    hasher.update(normalise_for_hash(text).as_bytes());
    let digest = hasher.finalize();
    hex::encode(&digest[..16])
}

/// Lowercases and collapses whitespace so cosmetic differences do not change a hash.
pub fn normalise_for_hash(text: &str) -> String {
    normalise_whitespace(text).to_lowercase()
}

/// A span of text that drove a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// What kind of feature matched (`phrase:strong`, `company`, `ticker`, `date`, ...).
    pub feature: String,
    /// The matched text with some context.
    pub snippet: String,
    /// Contribution to the score's log-odds.
    pub weight: f64,
}

/// The keyword agent's verdict on a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Detection {
    /// Probability that the document announces a TGE, 0..1.
    pub score: f64,
    /// Whether the score passed the threshold.
    pub is_tge: bool,
    /// Project named, if found.
    pub project: Option<String>,
    /// Token ticker, if found.
    pub token: Option<String>,
    /// Event date as stated (`2026-03-05`, `Q1 2026`, `next week`).
    pub event_date: Option<String>,
    /// Evidence spans, strongest first.
    pub evidence: Vec<Evidence>,
}

/// A document with its detection: what travels from keyword to data quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifiedDocument {
    /// The document.
    pub document: Document,
    /// Its detection.
    pub detection: Detection,
}

/// One distinct source document merged into an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventSource {
    /// Canonical URL of the document.
    pub url: String,
    /// Its title.
    pub title: String,
    /// When it was published, if stated.
    pub published_at: Option<DateTime<Utc>>,
    /// Name of the source it came from.
    pub source_name: String,
    /// Score of this document.
    pub score: f64,
    /// When it was merged in.
    pub seen_at: DateTime<Utc>,
}

/// A TGE event: one project's announcement, merged across sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TgeEvent {
    /// Identifier.
    pub id: i64,
    /// Project named.
    pub project: Option<String>,
    /// Token ticker.
    pub token: Option<String>,
    /// Highest score among its documents.
    pub score: f64,
    /// Event date as stated.
    pub event_date: Option<String>,
    /// When the first document arrived.
    pub first_seen: DateTime<Utc>,
    /// When the last document arrived.
    pub last_seen: DateTime<Utc>,
    /// How many distinct source documents are merged into the event.
    pub source_count: u64,
    /// Its source documents in the order they were merged in: all of them for one event, the
    /// first `sources_per_event` of them in a list.
    pub sources: Vec<EventSource>,
    /// Evidence of the best-scoring document.
    pub evidence: Vec<Evidence>,
}

/// Filters and cursor of `GET /events`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    /// Project name (case-insensitive; also matches watchlist aliases).
    pub company: Option<String>,
    /// Token ticker (case-insensitive).
    pub token: Option<String>,
    /// Lowest score.
    pub min_score: Option<f64>,
    /// Only events first seen at or after.
    pub since: Option<DateTime<Utc>>,
    /// Free text over project, token and the titles and text of the sources.
    pub q: Option<String>,
    /// Page size (1..=200).
    pub page_size: u32,
    /// Opaque cursor from a previous page.
    pub page_token: Option<String>,
    /// Sources listed per event (0..=200; `None`: [`DEFAULT_SOURCES_PER_EVENT`]). An event's
    /// `source_count` always counts them all.
    pub sources_per_event: Option<u32>,
}

/// Sources a page of events lists per event unless asked otherwise: the first few reports of
/// an announcement, while a widely copied one can have hundreds (`GET /events/{id}` has them
/// all).
pub const DEFAULT_SOURCES_PER_EVENT: u32 = 5;

/// Most sources a page of events lists per event.
pub const MAX_SOURCES_PER_EVENT: u32 = 200;

/// A page of events.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// Events, newest first.
    pub events: Vec<TgeEvent>,
    /// Cursor of the next page, if any.
    pub next_page_token: Option<String>,
}

/// What happened when a classified document was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The document id was already stored: nothing changed.
    Duplicate,
    /// Stored; not a TGE.
    Stored,
    /// Stored and a new event was created.
    EventCreated(i64),
    /// Stored and merged into an existing event.
    EventMerged(i64),
}

/// A key's last use is recorded at most this often (milliseconds), so a busy key costs one
/// write a minute: the API skips the write, and the store's update does nothing, when the
/// stored time is newer.
pub const API_KEY_USE_RECORDED_EVERY_MS: i64 = 60_000;

/// A stored API key, as listed: never its secret, which is stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    /// Identifier.
    pub id: i64,
    /// Human name.
    pub name: String,
    /// Scopes (`admin`, `read`, `write`).
    pub scopes: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last time a request carried it (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked (rotated or deleted), if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Why the key does not work at `now`, if it does not.
    pub fn unusable(&self, now: DateTime<Utc>) -> Option<String> {
        if let Some(at) = self.revoked_at {
            return Some(format!(
                "API key `{}` was revoked at {}",
                self.name,
                at.to_rfc3339()
            ));
        }
        match self.expires_at {
            Some(at) if at <= now => Some(format!(
                "API key `{}` expired at {}",
                self.name,
                at.to_rfc3339()
            )),
            _ => None,
        }
    }
}

/// An analyst's verdict on an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackLabel {
    /// It is a TGE announcement.
    TruePositive,
    /// It is not.
    FalsePositive,
}

impl FeedbackLabel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackLabel::TruePositive => "true_positive",
            FeedbackLabel::FalsePositive => "false_positive",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<FeedbackLabel> {
        match text {
            "true_positive" => Some(FeedbackLabel::TruePositive),
            "false_positive" => Some(FeedbackLabel::FalsePositive),
            _ => None,
        }
    }
}

/// Stored analyst feedback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Feedback {
    /// Identifier (feedback is replayed in id order).
    pub id: i64,
    /// The event judged.
    pub event_id: i64,
    /// The verdict.
    pub label: FeedbackLabel,
    /// The analyst's note.
    pub note: Option<String>,
    /// What the keyword agents learn from: pattern keys and the model's log-odds.
    pub sample: serde_json::Value,
    /// When it was given.
    pub created_at: DateTime<Utc>,
}

/// One piece of desired state written by a queen command (see [`crate::commands`]); each write
/// bumps `generation`, which is how hosts tell a new restart request from one already applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DesiredEntry {
    /// What it is about (`replicas/keyword`, `restart/node-a/keyword-0`, `drain/node-a`).
    pub key: String,
    /// The desired value.
    pub value: serde_json::Value,
    /// Writes so far, starting at 1.
    pub generation: i64,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// A synthesis snapshot of shared memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SynthesisSnapshot {
    /// Identifier.
    pub id: i64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The synthesis.
    pub body: serde_json::Value,
}

/// A memory entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemoryEntry {
    /// Namespace (`breakers`, `sources`, ...).
    pub namespace: String,
    /// Key within the namespace.
    pub key: String,
    /// Value.
    pub value: serde_json::Value,
    /// Version, incremented on every write.
    pub version: u64,
    /// Who wrote it last.
    pub written_by: String,
    /// When it was written.
    pub updated_at: DateTime<Utc>,
    /// When it expires, if it has a TTL.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Key-value tags of a service instance.
pub type Meta = BTreeMap<String, String>;

/// Collapses runs of whitespace into single spaces and trims.
pub fn normalise_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Content fingerprint of a text: sha256 of its normalised form, 16 bytes in hex.
pub fn fingerprint(text: &str) -> String {
    let digest = Sha256::digest(normalise_for_hash(text).as_bytes());
    hex::encode(&digest[..16])
}

/// How a supervisor's action went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// Done, and its effect seen (the actor started, the work moved, the replicas changed,
    /// the alert went out).
    Succeeded,
    /// Tried and failed (the reason says why).
    Failed,
}

impl ActionOutcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionOutcome::Succeeded => "succeeded",
            ActionOutcome::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<ActionOutcome> {
        match text {
            "succeeded" => Some(ActionOutcome::Succeeded),
            "failed" => Some(ActionOutcome::Failed),
            _ => None,
        }
    }
}

/// One supervisor decision to record.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorActionInput {
    /// The component acted on: an agent id (`keyword-0`, `node-b/keyword-0` for another
    /// process), a kind for scaling, or a dependency (`redis`, `postgres`).
    pub component: String,
    /// Its agent kind.
    pub kind: AgentKind,
    /// The node whose supervisor decided.
    pub node: String,
    /// What the supervisor saw (`panic`, `hang`, `unreachable`, `backlog`, ...).
    pub observation: String,
    /// What it did.
    pub action: crate::supervision::Action,
    /// How that went.
    pub outcome: ActionOutcome,
    /// Why, in words.
    pub reason: String,
}

/// A recorded supervisor decision.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SupervisorAction {
    /// Id.
    pub id: i64,
    /// The component acted on.
    pub component: String,
    /// Its agent kind.
    pub kind: AgentKind,
    /// The node whose supervisor decided.
    pub node: String,
    /// What the supervisor saw.
    pub observation: String,
    /// `restart`, `recreate`, `scale_up`, `scale_down`, `failover` or `alert_only`.
    #[schema(value_type = String)]
    pub action: crate::supervision::Action,
    /// `succeeded` or `failed`.
    pub outcome: ActionOutcome,
    /// Why.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Filters of `GET /api/v1/supervisor/actions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SupervisorActionQuery {
    /// Only this kind.
    pub kind: Option<AgentKind>,
    /// Only this action.
    pub action: Option<crate::supervision::Action>,
    /// Only this component.
    pub component: Option<String>,
    /// At most this many (newest first).
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company() -> CompanyInput {
        CompanyInput {
            name: "Fhenix".into(),
            aliases: vec!["Fhenix Protocol".into()],
            tickers: vec!["FHE".into()],
            priority: Priority::High,
            status: "pre_token".into(),
            exclusions: Vec::new(),
        }
    }

    #[test]
    fn company_lists_and_texts_are_bounded() {
        assert!(company().validate().is_ok());
        let long = "x".repeat(MAX_COMPANY_TEXT + 1);
        let cases: Vec<(CompanyInput, &str)> = vec![
            (
                CompanyInput {
                    aliases: vec!["a".into(); MAX_COMPANY_LIST + 1],
                    ..company()
                },
                "aliases: at most",
            ),
            (
                CompanyInput {
                    aliases: vec![long.clone()],
                    ..company()
                },
                "aliases[0]: must be 1 to",
            ),
            (
                CompanyInput {
                    exclusions: vec![long.clone()],
                    ..company()
                },
                "exclusions[0]: must be 1 to",
            ),
            (
                CompanyInput {
                    status: long,
                    ..company()
                },
                "status: must be at most",
            ),
            (
                CompanyInput {
                    tickers: vec!["FHE".into(); MAX_COMPANY_LIST + 1],
                    ..company()
                },
                "tickers: at most",
            ),
        ];
        for (input, needle) in cases {
            let err = input.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
