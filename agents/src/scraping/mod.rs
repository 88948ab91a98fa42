//! Scraping efficiency specialist: takes scrape tasks, fetches sources through the
//! reliability layer (swarm-wide per-host breakers, retries, size and time limits, conditional
//! GET), parses items into documents and enqueues them for classification. Every fetch outcome
//! is recorded on the source (visible in `GET /api/v1/sources`) and reported to the API
//! reliability agent.

pub mod cadence;
pub mod exchange;
pub mod fetch;
mod outcome;
pub mod parse;
pub mod x;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ractor::ActorProcessingErr;
use std::time::Duration;
use swarm_shared::channels::{QUEUE_CLASSIFY, QUEUE_SCRAPE};
use swarm_shared::context::AgentContext;
use swarm_shared::domain::{
    AgentKind, Document, Exchange, FetchStatus, MarketListing, ScrapeTask, SourceFacts, SourceKind,
    document_id,
};
use swarm_shared::messages::{AgentMessage, BreakerState, encode};
use swarm_shared::ports::publish;
use swarm_shared::reliability::breaker;
use swarm_shared::telemetry;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use url::Url;

use crate::html::HtmlLimits;
use crate::normalize::{canonical_url, html_to_text};
use crate::worker::{BatchResult, Stage, WorkerActor};
use fetch::{Fetched, Fetcher, Validators};
use outcome::{Assessment, Failure, Parsed, assess};

/// The scraping actor.
pub type ScrapingActor = WorkerActor<ScrapingStage>;

/// State of a scraping agent.
#[derive(Debug)]
pub struct ScrapingStage {
    fetcher: Fetcher,
    /// Parse limits, from the config once.
    limits: parse::Limits,
    /// Breaker view per host, as broadcast by the API reliability agent.
    breakers: HashMap<String, (BreakerState, Option<DateTime<Utc>>)>,
    /// Fetches in flight, with the id of their task. Dropping the set (the actor died) aborts
    /// them; their tasks, never acknowledged, are taken back after the restart.
    in_flight: JoinSet<(String, TaskOutcome)>,
    /// Fetch slots per host (host:port), `scraping.per_host_concurrency` each.
    host_slots: HashMap<String, Arc<Semaphore>>,
    /// Set when the stage is dropped (its actor stopped): parses still running on blocking
    /// threads, which aborting their task cannot stop, give up at their next check.
    stopping: Arc<AtomicBool>,
}

impl Drop for ScrapingStage {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

/// Outcome of one task.
#[derive(Debug)]
struct TaskOutcome {
    task: ScrapeTask,
    host: Option<String>,
    result: Result<Parsed, Failure>,
    /// An exchange's market lists as read, to compare with what the store has seen.
    markets: Option<(Exchange, Vec<MarketListing>)>,
    /// How long the source's API asked not to be called (a spent rate-limit window).
    hold: Option<Duration>,
}

/// A cheap fingerprint of a body, to recognise an unchanged one from servers that send no
/// validators. Not cryptographic: a collision only delays noticing a change by one poll.
pub fn body_hash(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    format!("{:016x}-{}", hasher.finish(), bytes.len())
}

/// Turns parsed items into documents: links resolved and canonicalised, markup removed,
/// content-addressed ids. Items without a usable link or any text are skipped (and counted).
pub fn to_documents(
    task: &ScrapeTask,
    items: Vec<parse::RawItem>,
    html: HtmlLimits,
    fetched_at: DateTime<Utc>,
) -> (Vec<Document>, usize) {
    let source = &task.source;
    let Ok(base) = Url::parse(&source.url) else {
        return (Vec::new(), items.len());
    };
    let mut documents = Vec::with_capacity(items.len());
    let mut skipped = 0;
    for (index, item) in items.iter().enumerate() {
        let link = parse::resolve_link(item, &base, index);
        let Ok(url) = canonical_url(&link, Some(&base)) else {
            skipped += 1;
            continue;
        };
        let title = html_to_text(&item.title, html);
        let text = html_to_text(&item.text, html);
        if title.is_empty() && text.is_empty() {
            skipped += 1;
            continue;
        }
        let facts = SourceFacts {
            category: item.category.clone(),
            venue: source
                .exchange
                .map(|exchange| exchange.display_name().to_owned()),
            market: None,
        };
        documents.push(Document {
            id: document_id(&url, &title, &text),
            source_id: source.id,
            source_name: source.name.clone(),
            source_tier: source.tier,
            url,
            title,
            text,
            published_at: item.published,
            fetched_at,
            source_kind: Some(source.kind),
            facts,
        });
    }
    (documents, skipped)
}

/// The breaker key of a URL: its host, plus the port when one is given explicitly (two
/// servers on one host are two failure domains). `file://` URLs have none.
pub fn breaker_key(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    match url.port() {
        Some(port) => Some(format!("{host}:{port}")),
        None => Some(host.to_owned()),
    }
}

impl ScrapingStage {
    fn breaker_allows(&self, host: &str, now: DateTime<Utc>) -> Result<(), String> {
        let Some((state, until)) = self.breakers.get(host) else {
            return Ok(());
        };
        if breaker::allows(*state, *until, now) {
            return Ok(());
        }
        let until = until
            .map(|at| at.to_rfc3339())
            .unwrap_or_else(|| "further notice".into());
        Err(format!("circuit breaker open for {host} until {until}"))
    }

    async fn record(
        &self,
        ctx: &AgentContext,
        agent_id: &str,
        joined: Result<(String, TaskOutcome), tokio::task::JoinError>,
        result: &mut BatchResult,
    ) {
        match joined {
            Ok((id, outcome)) => {
                if record_outcome(ctx, agent_id, outcome).await {
                    result.done.push(id);
                } else {
                    result.failed += 1;
                }
            }
            Err(err) => {
                // The task stays pending and is reclaimed after the visibility timeout.
                tracing::error!(agent = %agent_id, error = %err, "fetch task crashed");
                result.failed += 1;
            }
        }
    }
}

/// Fetches and parses one source (runs as its own tokio task, so fetches overlap).
async fn run_task(
    fetcher: Fetcher,
    limits: parse::Limits,
    stopping: Arc<AtomicBool>,
    task: ScrapeTask,
    host: Option<String>,
) -> TaskOutcome {
    if matches!(task.source.kind, SourceKind::Exchange | SourceKind::X) {
        return read_api(fetcher, limits, task, host).await;
    }
    let validators = Validators {
        etag: task.etag.clone(),
        last_modified: task.last_modified.clone(),
    };
    let started = Instant::now();
    let fetched = fetcher.fetch(&task.source.url, &validators).await;
    telemetry::stage_took(telemetry::Stage::Fetch, started.elapsed().as_secs_f64());
    let result = match fetched {
        Err(err) => Err(Failure::Fetch(err)),
        Ok(Fetched::NotModified) => Ok(Parsed::NotModified),
        Ok(Fetched::Body { bytes, .. })
            if task.content_hash.as_deref() == Some(body_hash(&bytes).as_str()) =>
        {
            // Same bytes as last time: nothing to parse, nothing new to enqueue.
            Ok(Parsed::NotModified)
        }
        Ok(Fetched::Body {
            bytes,
            etag,
            last_modified,
            ..
        }) => {
            let content_hash = body_hash(&bytes);
            let parsing = Instant::now();
            let parse_task = task.clone();
            // Parsing pages and the markup in items is CPU work: keep it off the async
            // workers. It is bounded by `limits` and gives up when the stage stops.
            let parsed = tokio::task::spawn_blocking(move || {
                let source = &parse_task.source;
                parse::parse(
                    source.kind,
                    &bytes,
                    source.selectors.as_ref(),
                    source.json.as_ref(),
                    &limits,
                    Some(&stopping),
                )
                .map(|items| to_documents(&parse_task, items, limits.html, Utc::now()))
            })
            .await;
            telemetry::stage_took(telemetry::Stage::Parse, parsing.elapsed().as_secs_f64());
            match parsed {
                Ok(Ok((documents, skipped))) => {
                    if skipped > 0 {
                        tracing::debug!(source = %task.source.name, skipped, "items without link or text skipped");
                    }
                    Ok(Parsed::Documents {
                        documents,
                        validators: Validators {
                            etag,
                            last_modified,
                        },
                        content_hash,
                    })
                }
                Ok(Err(err)) => Err(Failure::Parse(err.to_string())),
                Err(join) => Err(Failure::Parse(format!("parser crashed: {join}"))),
            }
        }
    };
    TaskOutcome {
        task,
        host,
        result,
        markets: None,
        hold: None,
    }
}

/// Reads an exchange or X source through its connector (its own requests and pages).
async fn read_api(
    fetcher: Fetcher,
    limits: parse::Limits,
    task: ScrapeTask,
    host: Option<String>,
) -> TaskOutcome {
    let started = Instant::now();
    let read = match task.source.kind {
        SourceKind::X => x::read(&fetcher, &task, &limits).await,
        _ => exchange::read(&fetcher, &task, &limits).await,
    };
    telemetry::stage_took(telemetry::Stage::Fetch, started.elapsed().as_secs_f64());
    let mut markets = None;
    let mut hold = None;
    let result = match read {
        Ok(exchange::Read::Unchanged) => Ok(Parsed::NotModified),
        Ok(exchange::Read::Notices {
            items,
            content_hash,
            hold: wait,
        }) => {
            hold = wait;
            let (documents, _) = to_documents(&task, items, limits.html, Utc::now());
            Ok(Parsed::Documents {
                documents,
                validators: Validators::default(),
                content_hash,
            })
        }
        Ok(exchange::Read::Markets {
            exchange,
            listings,
            content_hash,
        }) => {
            markets = Some((exchange, listings));
            Ok(Parsed::Documents {
                documents: Vec::new(),
                validators: Validators::default(),
                content_hash,
            })
        }
        Err(exchange::Failure::Fetch(err)) => Err(Failure::Fetch(err)),
        Err(exchange::Failure::Parse(reason)) => Err(Failure::Parse(reason)),
    };
    TaskOutcome {
        task,
        host,
        result,
        markets,
        hold,
    }
}

#[async_trait]
impl Stage for ScrapingStage {
    const KIND: AgentKind = AgentKind::Scraping;
    const QUEUE: &'static str = QUEUE_SCRAPE;
    type Item = ScrapeTask;

    async fn init(ctx: &AgentContext, _agent_id: &str) -> Result<Self, ActorProcessingErr> {
        let fetcher = Fetcher::new(&ctx.config.scraping)?;
        Ok(ScrapingStage {
            fetcher,
            limits: parse::Limits::from_config(&ctx.config.scraping),
            breakers: HashMap::new(),
            in_flight: JoinSet::new(),
            host_slots: HashMap::new(),
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    fn batch(ctx: &AgentContext) -> usize {
        ctx.config.scraping.concurrency
    }

    fn capacity(&self, ctx: &AgentContext) -> usize {
        ctx.config
            .scraping
            .concurrency
            .saturating_sub(self.in_flight.len())
    }

    fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn agent_messages() -> &'static [&'static str] {
        &[swarm_shared::messages::agent_tags::BREAKER_UPDATE]
    }

    async fn on_agent_message(&mut self, _ctx: &AgentContext, message: AgentMessage) {
        if let AgentMessage::BreakerUpdate { host, state, until } = message {
            if state == BreakerState::Closed {
                self.breakers.remove(&host);
            } else {
                self.breakers.insert(host, (state, until));
            }
        }
    }

    /// Starts a fetch for each task (they run concurrently, at most `scraping.concurrency`);
    /// tasks whose host's breaker is open are recorded at once without a request.
    async fn process(
        &mut self,
        ctx: &AgentContext,
        agent_id: &str,
        batch: Vec<(String, ScrapeTask)>,
    ) -> BatchResult {
        let mut result = BatchResult::default();
        for (id, task) in batch {
            let host = Url::parse(&task.source.url)
                .ok()
                .and_then(|url| breaker_key(&url));
            if let Some(host) = &host
                && let Err(reason) = self.breaker_allows(host, Utc::now())
            {
                let outcome = TaskOutcome {
                    task,
                    host: Some(host.clone()),
                    result: Err(Failure::CircuitOpen(reason)),
                    markets: None,
                    hold: None,
                };
                self.record(ctx, agent_id, Ok((id, outcome)), &mut result)
                    .await;
                continue;
            }
            let fetcher = self.fetcher.clone();
            let limits = self.limits;
            let stopping = self.stopping.clone();
            let per_host = ctx.config.scraping.per_host_concurrency;
            let slots = host.as_ref().map(|host| {
                self.host_slots
                    .entry(host.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(per_host)))
                    .clone()
            });
            self.in_flight.spawn(async move {
                // Held for the whole fetch; the semaphore is never closed, so this waits.
                let _slot = match slots {
                    Some(slots) => slots.acquire_owned().await.ok(),
                    None => None,
                };
                (id, run_task(fetcher, limits, stopping, task, host).await)
            });
        }
        result
    }

    /// Records fetches as they complete: each outcome (and its documents) the moment its fetch
    /// finishes, so a slow source never delays a fast one's announcements.
    async fn drain(&mut self, ctx: &AgentContext, agent_id: &str, wait: Duration) -> BatchResult {
        let mut result = BatchResult::default();
        let first = match tokio::time::timeout(wait, self.in_flight.join_next()).await {
            Ok(Some(joined)) => joined,
            Ok(None) | Err(_) => return result,
        };
        self.record(ctx, agent_id, first, &mut result).await;
        while let Some(joined) = self.in_flight.try_join_next() {
            self.record(ctx, agent_id, joined, &mut result).await;
        }
        result
    }
}

/// Carries out what [`assess`] decided about a fetch: enqueues its documents, records the
/// report on the source, reports the call. Returns whether the task is done (false leaves it
/// pending for redelivery).
async fn record_outcome(ctx: &AgentContext, agent_id: &str, mut outcome: TaskOutcome) -> bool {
    let now = Utc::now();
    // The symbols of this read that the store has not seen, to remember once announced.
    let mut unseen: Option<(Exchange, Vec<MarketListing>)> = None;
    if let (Some((exchange, listings)), Ok(Parsed::Documents { documents, .. })) =
        (outcome.markets.take(), &mut outcome.result)
    {
        // Read-only: the symbols are remembered only after their documents are enqueued
        // (below), so a failure in between finds them new again at the next read. Their
        // documents' ids do not depend on the read, so a repeat is dropped as a duplicate.
        match ctx.store.market_changes(exchange, &listings).await {
            Ok(seen) => {
                if !seen.first_reads.is_empty() {
                    tracing::info!(source = %outcome.task.source.name, symbols = listings.len(), markets = ?seen.first_reads, "first read of market lists: recorded, nothing announced");
                }
                documents.extend(exchange::listings::listing_documents(
                    &outcome.task,
                    exchange,
                    &seen,
                    now,
                ));
                unseen = Some((exchange, seen.unseen(listings)));
            }
            Err(err) => {
                tracing::warn!(source = %outcome.task.source.name, error = %err, "reading known markets failed; the task stays pending");
                return false;
            }
        }
    }
    let source = &outcome.task.source;
    let Assessment { mut report, call } = assess(
        source.interval,
        source.effective_interval,
        &outcome.result,
        now,
    );
    if matches!(source.kind, SourceKind::Exchange | SourceKind::X)
        && matches!(report.status, FetchStatus::Ok | FetchStatus::NotModified)
    {
        // A primary source is polled at its interval whatever it yields: quiet is its
        // normal state, and the lag to its next notice is the figure that matters. A spent
        // rate-limit window holds it until the window resets.
        report.next_interval = Some(outcome.hold.map_or(source.interval, |hold| {
            source.interval.max(hold + cadence::RETRY_AFTER_MARGIN)
        }));
    }
    match &outcome.result {
        Ok(Parsed::Documents { documents, .. }) => {
            if !documents.is_empty() {
                let mut payloads = Vec::with_capacity(documents.len());
                for document in documents {
                    match encode(document) {
                        Ok(bytes) => payloads.push(bytes),
                        Err(err) => tracing::error!(error = %err, "document encoding failed"),
                    }
                }
                if let Err(err) = ctx.queue.enqueue(QUEUE_CLASSIFY, payloads).await {
                    tracing::warn!(agent = %agent_id, source = %source.name, error = %err, "enqueueing documents failed");
                    return false;
                }
            }
            if let Some((exchange, listings)) = &unseen
                && !listings.is_empty()
                && let Err(err) = ctx.store.record_markets(*exchange, listings, now).await
            {
                tracing::warn!(source = %source.name, error = %err, "recording market lists failed; the task stays pending");
                return false;
            }
            telemetry::documents_fetched(source.kind, documents.len() as u64);
        }
        Ok(Parsed::NotModified) => {}
        Err(_) => {
            let message = report.error.as_deref().unwrap_or_default();
            tracing::warn!(agent = %agent_id, source = %source.name, error = %message, "source fetch failed");
        }
    }
    telemetry::source_fetched(&source.name, report.status);
    if let Err(err) = ctx.store.record_fetch(source.id, &report).await {
        // Left pending: the task is redelivered and fetched again (its documents, already
        // enqueued, are dropped downstream as duplicates). Acknowledging it would leave the
        // source looking "in flight" to the queen until the task counts as lost.
        tracing::warn!(source = %source.name, error = %err, "recording fetch outcome failed; the task stays pending");
        return false;
    }
    if let (Some(host), Some((outcome, retry_after))) = (outcome.host, call) {
        let message = AgentMessage::CallOutcome {
            host,
            outcome,
            retry_after_s: retry_after.map(|wait| wait.as_secs()),
            agent_id: agent_id.to_owned(),
            at: now,
        };
        if let Err(err) = publish(ctx.bus.as_ref(), &message).await {
            tracing::debug!(error = %err, "call outcome publish failed");
        }
    }
    true
}
