//! Data quality enforcer: validates and sanitises classified documents, drops exact
//! duplicates (same canonical URL and content) and near duplicates from the same source
//! (body SimHash, see `swarm_shared::dedup`), and merges announcements of the same project
//! from several sources into one TGE event, which it persists and announces.

pub mod clean;

use async_trait::async_trait;
use chrono::Utc;
use ractor::ActorProcessingErr;
use swarm_shared::channels::QUEUE_QUALITY;
use swarm_shared::context::AgentContext;
use swarm_shared::dedup::fingerprint::simhash;
use swarm_shared::dedup::key::merge_key;
use swarm_shared::domain::{AgentKind, ClassifiedDocument, RecordOutcome};
use swarm_shared::messages::AgentMessage;
use swarm_shared::ports::{ToRecord, publish};
use swarm_shared::telemetry;
use tokio::time::Instant;

use crate::html::HtmlLimits;
use crate::worker::{BatchResult, Stage, WorkerActor};

/// The data quality actor.
pub type DataQualityActor = WorkerActor<DataQualityStage>;

/// State of the data quality agent (none beyond the ports: dedup and merge live in the store,
/// so every replica sees the same events).
#[derive(Debug, Default)]
pub struct DataQualityStage;

#[async_trait]
impl Stage for DataQualityStage {
    const KIND: AgentKind = AgentKind::DataQuality;
    const QUEUE: &'static str = QUEUE_QUALITY;
    type Item = ClassifiedDocument;

    async fn init(_ctx: &AgentContext, _agent_id: &str) -> Result<Self, ActorProcessingErr> {
        Ok(DataQualityStage)
    }

    fn batch(ctx: &AgentContext) -> usize {
        ctx.config.quality.batch
    }

    async fn process(
        &mut self,
        ctx: &AgentContext,
        agent_id: &str,
        batch: Vec<(String, ClassifiedDocument)>,
    ) -> BatchResult {
        let mut result = BatchResult::default();
        let quality = &ctx.config.quality;
        let html = HtmlLimits::from_config(&ctx.config.scraping);
        let started = Instant::now();
        let mut ids = Vec::with_capacity(batch.len());
        let mut cleaned = Vec::with_capacity(batch.len());
        for (id, item) in batch {
            match clean::validate(item.document, quality.max_text_bytes, html) {
                Ok(document) => {
                    let key = merge_key(&item.detection, &document.title);
                    let simhash = simhash(&document.text);
                    cleaned.push((
                        ClassifiedDocument {
                            document,
                            detection: item.detection,
                        },
                        key,
                        simhash,
                    ));
                    ids.push(id);
                }
                Err(rejection) => {
                    tracing::warn!(agent = %agent_id, reason = %rejection, "document rejected");
                    telemetry::document_dropped(telemetry::DropReason::Invalid);
                    result.done.push(id);
                }
            }
        }
        if cleaned.is_empty() {
            return result;
        }
        // One transaction for the batch: the store's commit, not the documents, is the cost.
        let records: Vec<ToRecord<'_>> = cleaned
            .iter()
            .map(|(item, key, simhash)| ToRecord {
                item,
                merge_key: key,
                simhash: *simhash,
            })
            .collect();
        let outcomes = match ctx
            .store
            .record_classified_batch(&records, quality.merge_window)
            .await
        {
            Ok(outcomes) => outcomes,
            Err(err) => {
                // Left pending: redelivered once the store is back.
                tracing::warn!(agent = %agent_id, error = %err, documents = ids.len(), "recording documents failed");
                result.failed += ids.len() as u64;
                return result;
            }
        };
        let per_document = started.elapsed().as_secs_f64() / records.len() as f64;
        let now = Utc::now();
        let mut recorded: Vec<Recorded<'_>> = Vec::new();
        for ((item, _, _), outcome) in cleaned.iter().zip(outcomes) {
            count(outcome);
            if let (RecordOutcome::EventCreated(_), Some(published)) =
                (outcome, item.document.published_at)
            {
                let lag = (now - published).num_milliseconds() as f64 / 1000.0;
                telemetry::detection_lag(item.document.source_kind, lag);
            }
            let event = match outcome {
                RecordOutcome::EventCreated(id) => Some((id, true)),
                RecordOutcome::EventMerged(id) => Some((id, false)),
                RecordOutcome::Duplicate | RecordOutcome::Stored => None,
            };
            if let Some((event_id, created)) = event {
                match recorded.iter_mut().find(|r| r.event_id == event_id) {
                    Some(event) => event.add(item, created),
                    None => recorded.push(Recorded {
                        event_id,
                        created,
                        project: item.detection.project.as_deref(),
                        first_url: &item.document.url,
                        documents: 1,
                    }),
                }
            }
            telemetry::stage_took(telemetry::Stage::Quality, per_document);
            let age = (now - item.document.fetched_at)
                .to_std()
                .unwrap_or_default();
            telemetry::stage_took(telemetry::Stage::Pipeline, age.as_secs_f64());
        }
        // One announcement per event per batch: a widely copied announcement merges dozens of
        // documents into one event in a batch, and each message costs a memory write.
        for event in &recorded {
            announce(ctx, event).await;
        }
        result.done.extend(ids);
        result
    }
}

/// What a batch recorded into one event.
struct Recorded<'a> {
    event_id: i64,
    created: bool,
    project: Option<&'a str>,
    first_url: &'a str,
    documents: u32,
}

impl<'a> Recorded<'a> {
    fn add(&mut self, item: &'a ClassifiedDocument, created: bool) {
        self.created |= created;
        self.project = self.project.or(item.detection.project.as_deref());
        self.documents += 1;
    }
}

/// Counts one document's outcome.
fn count(outcome: RecordOutcome) {
    match outcome {
        RecordOutcome::Duplicate => {
            telemetry::document_dropped(telemetry::DropReason::Duplicate);
        }
        RecordOutcome::Stored => {}
        RecordOutcome::EventCreated(_) => {
            telemetry::event_created();
        }
        RecordOutcome::EventMerged(_) => {
            telemetry::event_merged();
        }
    }
}

async fn announce(ctx: &AgentContext, event: &Recorded<'_>) {
    tracing::info!(event = event.event_id, created = event.created, documents = event.documents, project = ?event.project, url = %event.first_url, "tge event recorded");
    let message = AgentMessage::EventRecorded {
        event_id: event.event_id,
        created: event.created,
        project: event.project.map(str::to_owned),
        documents: event.documents,
    };
    if let Err(err) = publish(ctx.bus.as_ref(), &message).await {
        tracing::warn!(error = %err, "event announcement failed");
    }
}
