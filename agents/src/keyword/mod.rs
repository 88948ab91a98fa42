//! Keyword precision specialist: scores each fetched document with the [`scorer::Scorer`]
//! built from the watchlist in the store, and passes the document with its detection to data
//! quality. The watchlist is reloaded when the queen announces a change and every minute.
//!
//! Analyst feedback reaches the agents through the memory coordinator: the API stores it and
//! writes it to shared memory (namespace `feedback`); the coordinator announces the change on
//! `memory-sync`, and every keyword agent rebuilds its adaptation layer from the stored
//! feedback (the store is the source of truth, so a missed announcement is caught up at the
//! next minute's refresh).

pub mod corpus;
pub mod features;
pub mod feedback;
pub mod lexicon;
pub mod listing;
pub mod model;
pub mod notice;
pub mod salience;
pub mod scorer;
pub mod sentence;
#[cfg(test)]
mod tests;
pub mod text;
pub mod trading;
pub mod train;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ractor::ActorProcessingErr;
use swarm_shared::channels::{QUEUE_CLASSIFY, QUEUE_QUALITY};
use swarm_shared::context::AgentContext;
use swarm_shared::dedup::key::merge_key;
use swarm_shared::domain::{AgentKind, ClassifiedDocument, Document, Feedback};
use swarm_shared::messages::{MemoryChanges, QueenCommand, encode};
use swarm_shared::ports::partitioned::partition_key;
use swarm_shared::telemetry;
use tokio::time::Instant;

use crate::worker::{BatchResult, Stage, WorkerActor};
use model::{Adaptation, FeedbackSample, Model};
use scorer::{Input, Scorer};

/// The keyword actor.
pub type KeywordActor = WorkerActor<KeywordStage>;

/// The current UTC year (the scorer's notion of "past" years).
pub fn current_year() -> i32 {
    use chrono::Datelike;
    chrono::Utc::now().year()
}

const WATCHLIST_REFRESH: Duration = Duration::from_secs(60);

/// State of a keyword agent.
#[derive(Debug)]
pub struct KeywordStage {
    scorer: Arc<Scorer>,
    loaded_at: Instant,
    /// What the third stage may still read.
    budget: sentence::Budget,
}

/// Shared-memory namespace of analyst feedback.
pub const FEEDBACK_NAMESPACE: &str = "feedback";

/// The adaptation layer replayed from every stored feedback, oldest first. A sample that does
/// not decode is skipped with a warning (it cannot be learned from, and must not block the rest).
pub fn adaptation_from(feedback: &[Feedback]) -> Adaptation {
    let mut samples = Vec::with_capacity(feedback.len());
    for entry in feedback {
        match serde_json::from_value::<FeedbackSample>(entry.sample.clone()) {
            Ok(sample) => samples.push(sample),
            Err(err) => {
                tracing::warn!(feedback = entry.id, error = %err, "skipping feedback whose sample does not decode")
            }
        }
    }
    Adaptation::from_feedback(&samples)
}

/// Builds a scorer from the store's watchlist, feedback and the tokens that already trade.
pub async fn load_scorer(ctx: &AgentContext) -> Result<Scorer, ActorProcessingErr> {
    let companies = ctx.store.list_companies().await?;
    let feedback = ctx.store.list_feedback().await?;
    let trading = trading::load(ctx, &companies).await?;
    let model = Model::shipped()?;
    let scorer = Scorer::new(&companies, model, ctx.config.detection.threshold)?;
    Ok(scorer
        .with_adaptation(Arc::new(adaptation_from(&feedback)))
        .with_trading(
            Arc::new(trading),
            ctx.config.detection.already_trading_shift,
        ))
}

/// Scores each document of a batch within the third stage's budget, recording the stage's
/// metrics. A market-list document is decided by its fact; an exchange notice may become one
/// classified document per token it lists (see [`notice`]).
fn score_batch(
    scorer: &Scorer,
    budget: &mut sentence::Budget,
    batch: Vec<(String, Document)>,
) -> Vec<(String, Vec<ClassifiedDocument>)> {
    let year = current_year();
    let mut may_read_meaning = || budget.admit();
    batch
        .into_iter()
        .map(|(id, document)| {
            let started = std::time::Instant::now();
            let classified = match &document.facts.market {
                Some(fact) => {
                    let base = &fact.listing.base;
                    let detection = listing::market_detection(
                        fact,
                        &document.fetched_at.format("%Y-%m-%d").to_string(),
                        scorer.company_of_ticker(base),
                        scorer.already_trading(base).is_some(),
                    );
                    vec![ClassifiedDocument {
                        document,
                        detection,
                    }]
                }
                None => {
                    let detection = scorer.score_within(
                        Input {
                            title: &document.title,
                            text: &document.text,
                            tier: document.source_tier,
                            year,
                            url: Some(&document.url),
                        },
                        &mut may_read_meaning,
                    );
                    if document.facts.venue.is_some() {
                        notice::classify_notice(document, detection, |ticker| {
                            scorer.already_trading(ticker).map(str::to_owned)
                        })
                    } else {
                        vec![ClassifiedDocument {
                            document,
                            detection,
                        }]
                    }
                }
            };
            telemetry::stage_took(telemetry::Stage::Classify, started.elapsed().as_secs_f64());
            for item in &classified {
                telemetry::document_classified(item.detection.score, item.detection.is_tge);
            }
            (id, classified)
        })
        .collect()
}

impl KeywordStage {
    async fn reload(&mut self, ctx: &AgentContext) {
        match load_scorer(ctx).await {
            Ok(scorer) => {
                self.scorer = Arc::new(scorer);
                self.loaded_at = Instant::now();
            }
            Err(err) => {
                tracing::warn!(error = %err, "watchlist reload failed; keeping the previous one")
            }
        }
    }
}

#[async_trait]
impl Stage for KeywordStage {
    const KIND: AgentKind = AgentKind::Keyword;
    const QUEUE: &'static str = QUEUE_CLASSIFY;
    type Item = Document;

    async fn init(ctx: &AgentContext, _agent_id: &str) -> Result<Self, ActorProcessingErr> {
        Ok(KeywordStage {
            scorer: Arc::new(load_scorer(ctx).await?),
            loaded_at: Instant::now(),
            budget: sentence::Budget::new(ctx.config.detection.sentence_stage_per_second),
        })
    }

    fn batch(ctx: &AgentContext) -> usize {
        ctx.config.detection.batch
    }

    async fn on_command(&mut self, ctx: &AgentContext, command: QueenCommand) {
        if command == QueenCommand::CompaniesChanged {
            self.reload(ctx).await;
        }
    }

    fn wants_memory_changes() -> bool {
        true
    }

    async fn on_memory_changes(&mut self, ctx: &AgentContext, changes: MemoryChanges) {
        // Once per message, however many verdicts it carries.
        if changes
            .changes
            .iter()
            .any(|change| change.namespace == FEEDBACK_NAMESPACE)
        {
            self.reload(ctx).await;
        }
    }

    async fn on_heartbeat(&mut self, ctx: &AgentContext) {
        if self.loaded_at.elapsed() >= WATCHLIST_REFRESH {
            self.reload(ctx).await;
        }
    }

    async fn process(
        &mut self,
        ctx: &AgentContext,
        agent_id: &str,
        batch: Vec<(String, Document)>,
    ) -> BatchResult {
        let mut result = BatchResult::default();
        let mut ids = Vec::with_capacity(batch.len());
        let mut payloads = Vec::with_capacity(batch.len());
        let count = batch.len() as u64;
        // Scoring is CPU work (the sentence encoder's third stage tens of milliseconds per
        // document): it runs on a blocking thread, so the actor runtime's workers stay free.
        let scorer = Arc::clone(&self.scorer);
        let mut budget = self.budget;
        let scored = tokio::task::spawn_blocking(move || {
            let scored = score_batch(&scorer, &mut budget, batch);
            (scored, budget)
        })
        .await;
        let scored = match scored {
            Ok((scored, budget)) => {
                self.budget = budget;
                scored
            }
            Err(err) => {
                tracing::error!(agent = %agent_id, error = %err, "scoring a batch failed");
                result.failed += count;
                return result;
            }
        };
        'documents: for (id, classified) in scored {
            let mut encoded = Vec::with_capacity(classified.len());
            for item in &classified {
                match encode(item) {
                    // Keyed by merge key: one project's documents go to one data quality
                    // partition, so its merges never wait on another actor's locks.
                    Ok(bytes) => encoded.push((
                        partition_key(&merge_key(&item.detection, &item.document.title)),
                        bytes,
                    )),
                    Err(err) => {
                        tracing::error!(agent = %agent_id, error = %err, "encoding classified document failed");
                        result.failed += 1;
                        continue 'documents;
                    }
                }
            }
            payloads.extend(encoded);
            ids.push(id);
        }
        if payloads.is_empty() {
            return result;
        }
        match ctx.queue.enqueue_keyed(QUEUE_QUALITY, payloads).await {
            Ok(_) => result.done.extend(ids),
            Err(err) => {
                tracing::warn!(agent = %agent_id, error = %err, "enqueueing classified documents failed");
                result.failed += ids.len() as u64;
            }
        }
        result
    }
}
