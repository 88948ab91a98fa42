//! Retention: every `retention.interval`, deletes documents no event lists and fingerprints
//! stored longer than configured, in statements of `retention.batch` rows, oldest first, so
//! writers wait for one short statement at most and the store stays bounded under a steady
//! load. Runs in the process that serves the API (one per swarm); a second one would only
//! find fewer rows to delete.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use swarm_shared::config::RetentionConfig;
use swarm_shared::ports::Store;
use swarm_shared::telemetry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Rows one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Documents (with their detections).
    pub documents: u64,
    /// Fingerprints.
    pub fingerprints: u64,
}

/// The retention job.
#[derive(Clone)]
pub struct Retention {
    store: Arc<dyn Store>,
    config: RetentionConfig,
}

impl Retention {
    /// A job on `store` with `config`.
    pub fn new(store: Arc<dyn Store>, config: RetentionConfig) -> Retention {
        Retention { store, config }
    }

    /// Whether anything is to be deleted at all (`"0s"` keeps a table whole).
    pub fn enabled(&self) -> bool {
        !self.config.documents.is_zero() || !self.config.fingerprints.is_zero()
    }

    /// Runs until `cancel`: a pass at start and every `retention.interval`. A failing
    /// store is logged and tried again at the next pass.
    pub fn spawn(self, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.config.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match self.pass(Utc::now(), &cancel).await {
                    Ok(pruned) if pruned != Pruned::default() => {
                        tracing::info!(
                            documents = pruned.documents,
                            fingerprints = pruned.fingerprints,
                            "retention deleted old rows"
                        );
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "retention pass failed; retrying next pass");
                    }
                }
            }
        })
    }

    /// One pass at `now`: each table's rows older than its retention, a batch per
    /// statement, until a statement deletes less than a batch or `retention.max_per_pass`
    /// rows went. Stops between statements when `cancel` fires.
    pub async fn pass(
        &self,
        now: DateTime<Utc>,
        cancel: &CancellationToken,
    ) -> swarm_shared::Result<Pruned> {
        let mut pruned = Pruned::default();
        let store = &self.store;
        let batch = self.config.batch;
        if let Some(before) = cutoff(now, self.config.documents) {
            pruned.documents = self
                .drain(cancel, "documents", || store.prune_documents(before, batch))
                .await?;
        }
        if let Some(before) = cutoff(now, self.config.fingerprints) {
            pruned.fingerprints = self
                .drain(cancel, "fingerprints", || {
                    store.prune_fingerprints(before, batch)
                })
                .await?;
        }
        Ok(pruned)
    }

    async fn drain<F, Fut>(
        &self,
        cancel: &CancellationToken,
        table: &'static str,
        mut statement: F,
    ) -> swarm_shared::Result<u64>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = swarm_shared::Result<u64>>,
    {
        let mut total = 0u64;
        let batch = self.config.batch as u64;
        while !cancel.is_cancelled() && total < self.config.max_per_pass as u64 {
            let deleted = statement().await?;
            telemetry::retention_deleted(table, deleted);
            total += deleted;
            if deleted < batch {
                break;
            }
            // Let the writers the statement held up go first.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(total)
    }
}

/// The time before which rows of a table kept for `keep` go, or none for `"0s"` (keep all).
fn cutoff(now: DateTime<Utc>, keep: Duration) -> Option<DateTime<Utc>> {
    if keep.is_zero() {
        return None;
    }
    let keep = chrono::Duration::from_std(keep).ok()?;
    now.checked_sub_signed(keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_shared::domain::{ClassifiedDocument, Detection, Document, document_id};
    use swarm_shared::ports::sqlite::SqliteStore;

    fn report(index: usize) -> ClassifiedDocument {
        let url = format!("https://wire.example/wrap-{index}");
        let title = format!("Market wrap {index}");
        let text = format!("{title} body");
        ClassifiedDocument {
            document: Document {
                source_kind: None,
                facts: Default::default(),
                id: document_id(&url, &title, &text),
                source_id: 1,
                source_name: "wire".into(),
                source_tier: 2,
                url,
                title,
                text,
                published_at: None,
                fetched_at: Utc::now(),
            },
            detection: Detection {
                join_only: false,
                score: 0.01,
                is_tge: false,
                project: None,
                token: None,
                event_date: None,
                evidence: vec![],
            },
        }
    }

    /// A pass deletes in batches until a batch comes back short, stops at `max_per_pass`,
    /// and leaves what is younger than the retention.
    #[tokio::test]
    async fn a_pass_deletes_in_batches_up_to_its_bound() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        let window = Duration::from_secs(3600);
        for index in 0..7 {
            store
                .record_classified(
                    &report(index),
                    &format!("k{index}"),
                    Some(index as u64 * 0x1111_1111),
                    window,
                )
                .await
                .unwrap();
            // Distinct times: the newest fingerprint (by time) is never deleted.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let config = RetentionConfig {
            documents: Duration::from_secs(3600),
            fingerprints: Duration::from_secs(3600),
            batch: 2,
            max_per_pass: 5,
            ..RetentionConfig::default()
        };
        let retention = Retention::new(store.clone(), config);
        let cancel = CancellationToken::new();
        // Nothing is an hour old yet.
        let pruned = retention.pass(Utc::now(), &cancel).await.unwrap();
        assert_eq!(pruned, Pruned::default());
        // Two hours on: batches of two until five per table (three statements, six rows at
        // most, stopped at the bound after the third), then the rest the next pass.
        let later = Utc::now() + chrono::Duration::hours(2);
        let first = retention.pass(later, &cancel).await.unwrap();
        assert_eq!(
            first,
            Pruned {
                documents: 6,
                fingerprints: 6
            }
        );
        assert_eq!(store.count_documents().await.unwrap(), 1);
        let second = retention.pass(later, &cancel).await.unwrap();
        // The last document goes; the newest fingerprint stays.
        assert_eq!(
            second,
            Pruned {
                documents: 1,
                fingerprints: 0
            }
        );
        assert_eq!(store.count_documents().await.unwrap(), 0);
        // "0s" keeps everything.
        let keep = Retention::new(
            store.clone(),
            RetentionConfig {
                documents: Duration::ZERO,
                fingerprints: Duration::ZERO,
                ..RetentionConfig::default()
            },
        );
        assert!(!keep.enabled());
    }
}
