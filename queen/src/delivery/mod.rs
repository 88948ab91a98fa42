//! The alert deliverer, run by the process that serves the API (the queen, or `tge-swarm
//! run`): it fans the outbox out to subscriptions and sends the alerts that are due.
//!
//! Exactly once, as far as a receiver can tell:
//! - every new event writes an outbox row in the transaction that stores it, so an event
//!   stored is an alert owed, whatever dies afterwards;
//! - fanning a row out creates one alert per (subscription, event, revision) in one
//!   transaction with marking the row done; an alert's idempotency key is unique, so a row
//!   fanned out twice (a crash between the two) creates each alert once;
//! - an alert is leased before it is sent, so two deliverers never send it at once; a
//!   deliverer killed mid-send leaves a lease that ends, and the alert is sent again with the
//!   same `Idempotency-Key`, which the receiver uses to drop the repeat.
//!
//! Failed attempts are retried with exponential backoff and jitter, no sooner than a 429's
//! Retry-After; a permanent refusal (4xx) or the last allowed attempt makes the alert dead.
//! Every attempt's outcome is in the delivery log (`GET /api/v1/subscriptions/{id}/deliveries`).
//! The pure parts (request shapes, signatures, backoff, what an answer means) are in
//! [`channels`].

pub mod channels;
pub mod email;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use swarm_shared::config::DeliveryConfig;
use swarm_shared::domain::{
    Alert, AlertKind, AttemptOutcome, ChannelInput, Company, EventQuery, HealthChange,
    MAX_SOURCES_PER_EVENT, NewAlert, Source, Subscription, TgeEvent,
};
use swarm_shared::outbound::guarded_client;
use swarm_shared::ports::Store;
use swarm_shared::telemetry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use channels::{Answer, Message};
use email::Mailer;

/// Events read per query (the most a page of `list_events` holds).
const EVENTS_PER_READ: usize = 200;

/// Outbox rows fanned out per round: one write transaction each (a busy pipeline creates
/// hundreds of events a second, and SQLite has one writer).
const FAN_OUT_BATCH: u32 = 1000;

/// Sends alerts; one per API-serving process.
#[derive(Clone)]
pub struct Deliverer {
    store: Arc<dyn Store>,
    config: DeliveryConfig,
    /// The HTTP client, behind the same outbound guard as sources (`scraping.allow_hosts`);
    /// the guard's error when the config's rules do not build.
    client: std::result::Result<reqwest::Client, String>,
    /// The SMTP relay of e-mail alerts: none when `[delivery.smtp]` is absent; its error when
    /// the settings do not build (the CA file is unreadable, the sender no address).
    mailer: Option<std::result::Result<Mailer, String>>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("config", &self.config)
            .field("client", &self.client.as_ref().map(|_| "ready"))
            .field("mailer", &self.mailer)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer over the store, with the config's delivery settings and outbound rules.
    pub fn new(store: Arc<dyn Store>, config: &swarm_shared::config::Config) -> Deliverer {
        swarm_shared::install_crypto_provider();
        let client = config
            .scraping
            .outbound()
            .map_err(|err| format!("the outbound rules do not build: {err}"))
            .and_then(|policy| {
                // Receivers may move: a redirect is followed where a source could go, at
                // most three times.
                guarded_client(Arc::new(policy), 3)
                    .user_agent(concat!(
                        "tge-swarm/",
                        env!("CARGO_PKG_VERSION"),
                        " (alerts)"
                    ))
                    .timeout(config.delivery.timeout)
                    .connect_timeout(config.delivery.timeout.min(Duration::from_secs(5)))
                    .build()
                    .map_err(|err| format!("building the alert client: {err}"))
            });
        let mailer = config.delivery.smtp.as_ref().map(|smtp| {
            let mailer = Mailer::new(smtp, config.delivery.timeout);
            if let Err(err) = &mailer {
                tracing::error!(error = %err, "the SMTP relay's settings do not build; e-mail alerts will fail");
            }
            mailer
        });
        Deliverer {
            store,
            config: config.delivery.clone(),
            client,
            mailer,
        }
    }

    /// Runs until `cancel`: every `delivery.poll_interval`, fans the outbox out and sends the
    /// alerts that are due. A failing store is logged and tried again next round.
    pub fn spawn(self, cancel: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.config.poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Sources' silence counts from this process's start at the earliest: before it,
            // nobody was there to fetch them.
            let watching_since = Utc::now();
            let mut last_health_check: Option<tokio::time::Instant> = None;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if last_health_check
                    .is_none_or(|at| at.elapsed() >= self.config.health_check_interval)
                {
                    last_health_check = Some(tokio::time::Instant::now());
                    if let Err(err) = self.check_sources(Utc::now(), watching_since).await {
                        tracing::warn!(error = %err, "checking sources' health failed; retrying next round");
                    }
                }
                if let Err(err) = self.fan_out(Utc::now()).await {
                    tracing::warn!(error = %err, "fanning the alert outbox out failed; retrying next round");
                }
                if let Err(err) = self.send_due(Utc::now()).await {
                    tracing::warn!(error = %err, "sending due alerts failed; retrying next round");
                }
            }
        })
    }

    /// Assesses every source's health ([`HealthPolicy`](swarm_shared::domain::HealthPolicy)) and records each change, with its
    /// outbox row, so that subscribers hear of a source going down and coming back once.
    /// Returns the changes recorded.
    pub async fn check_sources(
        &self,
        now: DateTime<Utc>,
        watching_since: DateTime<Utc>,
    ) -> swarm_shared::Result<usize> {
        // Even with both thresholds at 0 (no new incident), open ones still end.
        let policy = self.config.health_policy();
        let mut recorded = 0;
        for source in self.store.list_sources().await? {
            let Some(change) = policy.assess(&source, now, watching_since) else {
                continue;
            };
            if self
                .store
                .record_source_health(source.id, &change, now)
                .await?
            {
                recorded += 1;
                match &change {
                    HealthChange::Down(reason) => {
                        tracing::warn!(source = %source.name, %reason, "source down; subscribers are told")
                    }
                    HealthChange::Recovered => {
                        tracing::info!(source = %source.name, "source recovered; subscribers are told")
                    }
                }
            }
        }
        Ok(recorded)
    }

    /// Fans waiting outbox rows out to the enabled subscriptions whose filters the event
    /// passes (and whose quiet window allows another alert of it), or, for a source's
    /// health, to those that want it. Returns the alerts created.
    pub async fn fan_out(&self, now: DateTime<Utc>) -> swarm_shared::Result<u64> {
        let waiting = self.store.waiting_outbox(FAN_OUT_BATCH).await?;
        if waiting.is_empty() {
            return Ok(0);
        }
        let subscriptions: Vec<Subscription> = self
            .store
            .list_subscriptions()
            .await?
            .into_iter()
            .filter(|subscription| subscription.enabled)
            .collect();
        let watchlist: Vec<Company> = if subscriptions
            .iter()
            .any(|subscription| subscription.filters.watchlist_only)
        {
            self.store.list_companies().await?
        } else {
            Vec::new()
        };
        let events = if subscriptions.is_empty() {
            HashMap::new()
        } else {
            self.events_by_id(waiting.iter().filter_map(|item| item.event_id))
                .await?
        };
        let sources = if subscriptions.is_empty() {
            HashMap::new()
        } else {
            self.sources_by_id(waiting.iter().filter_map(|item| item.source_id))
                .await?
        };
        let mut alerts = Vec::new();
        for item in &waiting {
            if let Some(source_id) = item.source_id {
                // A source deleted since has nothing to tell.
                let Some(source) = sources.get(&source_id) else {
                    continue;
                };
                for subscription in &subscriptions {
                    if subscription.filters.matches_source(source) {
                        alerts.push(NewAlert {
                            subscription_id: subscription.id,
                            event_id: None,
                            source_id: Some(source_id),
                            revision: item.revision,
                            kind: item.kind,
                            detail: item.detail.clone(),
                            event_stored_at: item.created_at,
                        });
                    }
                }
                continue;
            }
            // An event deleted since has nothing to tell.
            let Some(event) = item.event_id.and_then(|id| events.get(&id)) else {
                continue;
            };
            for subscription in &subscriptions {
                if !subscription.filters.matches(event, &watchlist) {
                    continue;
                }
                if subscription.quiet_minutes > 0
                    && let Some(last) = self.store.last_alert_at(subscription.id, event.id).await?
                    && now - last < chrono::Duration::minutes(i64::from(subscription.quiet_minutes))
                {
                    continue;
                }
                alerts.push(NewAlert {
                    subscription_id: subscription.id,
                    event_id: Some(event.id),
                    source_id: None,
                    revision: item.revision,
                    kind: item.kind,
                    detail: None,
                    event_stored_at: item.created_at,
                });
            }
        }
        let ids: Vec<i64> = waiting.iter().map(|item| item.id).collect();
        let created = self.store.fan_out(&ids, &alerts, now).await?;
        tracing::debug!(
            rows = ids.len(),
            alerts = created,
            "alert outbox fanned out"
        );
        Ok(created)
    }

    /// Leases the alerts due at `now` and sends them, `delivery.concurrency` at a time.
    /// Returns how many attempts were made.
    pub async fn send_due(&self, now: DateTime<Utc>) -> swarm_shared::Result<usize> {
        let concurrency = self.config.concurrency.max(1);
        // Long enough for a whole attempt with its timeout, then some.
        let lease = chrono::Duration::from_std(self.config.timeout * 2 + Duration::from_secs(5))
            .unwrap_or_else(|_| chrono::Duration::minutes(5));
        let due = self
            .store
            .claim_deliveries(now, now + lease, (concurrency * 4) as u32)
            .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let subscriptions: HashMap<i64, Subscription> = self
            .store
            .list_subscriptions()
            .await?
            .into_iter()
            .map(|subscription| (subscription.id, subscription))
            .collect();
        let events = self
            .events_by_id(due.iter().filter_map(|alert| alert.event_id))
            .await?;
        let sources = self
            .sources_by_id(due.iter().filter_map(|alert| alert.source_id))
            .await?;
        let attempts = due.len();
        futures::stream::iter(due)
            .for_each_concurrent(concurrency, |alert| {
                let subscription = subscriptions.get(&alert.subscription_id);
                let event = alert.event_id.and_then(|id| events.get(&id));
                let source = alert.source_id.and_then(|id| sources.get(&id));
                async move {
                    let outcome = self.attempt(&alert, subscription, event, source).await;
                    let finished = Utc::now();
                    telemetry::alert_attempted(
                        subscription.map_or("unknown", |s| s.channel.kind()),
                        &outcome,
                    );
                    if let AttemptOutcome::Delivered { .. } = outcome {
                        telemetry::alert_latency(
                            (finished - alert.event_stored_at)
                                .to_std()
                                .unwrap_or_default(),
                        );
                    }
                    if let Err(err) = self.store.finish_delivery(alert.id, &outcome, finished).await {
                        // The lease ends and the alert is sent again, with the same key.
                        tracing::warn!(alert = alert.id, error = %err, "recording an alert attempt failed");
                    }
                }
            })
            .await;
        Ok(attempts)
    }

    /// The events of `ids` that exist, with up to 200 sources each, read a page at a time
    /// (a row or an alert at a time cost two queries each).
    async fn events_by_id(
        &self,
        ids: impl Iterator<Item = i64>,
    ) -> swarm_shared::Result<HashMap<i64, TgeEvent>> {
        let ids: Vec<i64> = ids.collect::<BTreeSet<i64>>().into_iter().collect();
        let mut events = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(EVENTS_PER_READ) {
            let query = EventQuery {
                ids: chunk.to_vec(),
                page_size: EVENTS_PER_READ as u32,
                sources_per_event: Some(MAX_SOURCES_PER_EVENT),
                ..EventQuery::default()
            };
            for event in self.store.list_events(&query).await?.events {
                events.insert(event.id, event);
            }
        }
        Ok(events)
    }

    /// The sources of `ids` that exist (none read when there are none).
    async fn sources_by_id(
        &self,
        ids: impl Iterator<Item = i64>,
    ) -> swarm_shared::Result<HashMap<i64, Source>> {
        let wanted: BTreeSet<i64> = ids.collect();
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self
            .store
            .list_sources()
            .await?
            .into_iter()
            .filter(|source| wanted.contains(&source.id))
            .map(|source| (source.id, source))
            .collect())
    }

    /// One attempt of `alert`; what it means for the alert.
    async fn attempt(
        &self,
        alert: &Alert,
        subscription: Option<&Subscription>,
        event: Option<&TgeEvent>,
        source: Option<&Source>,
    ) -> AttemptOutcome {
        let Some(subscription) = subscription else {
            return AttemptOutcome::Dead {
                status_code: None,
                error: "its subscription was deleted".into(),
            };
        };
        if !subscription.enabled {
            return AttemptOutcome::Dead {
                status_code: None,
                error: "its subscription is disabled".into(),
            };
        }
        // What the alert is about must still exist: its source, or its event.
        let missing = match (alert.source_id, alert.event_id) {
            (Some(id), _) if source.is_none() => Some(format!("source {id} no longer exists")),
            (None, Some(id)) if event.is_none() => Some(format!("event {id} no longer exists")),
            _ => None,
        };
        if let Some(error) = missing {
            return AttemptOutcome::Dead {
                status_code: None,
                error,
            };
        }
        let message = Message {
            kind: alert.kind,
            idempotency_key: &alert.idempotency_key,
            subscription_id: subscription.id,
            subscription_name: &subscription.name,
            revision: alert.revision,
            event,
            source,
            detail: alert.detail.as_deref(),
        };
        let answer = self.send(subscription, &message).await;
        channels::outcome(
            &answer,
            alert.attempts,
            &self.config,
            Utc::now(),
            channels::jitter(),
        )
    }

    async fn send(&self, subscription: &Subscription, message: &Message<'_>) -> Answer {
        if let ChannelInput::Email { to } = &subscription.channel {
            return match &self.mailer {
                Some(Ok(mailer)) => mailer.send(to, message).await,
                Some(Err(error)) => Answer::Transport {
                    error: error.clone(),
                },
                None => Answer::Transport {
                    error: "no SMTP relay is configured ([delivery.smtp])".into(),
                },
            };
        }
        match &self.client {
            Ok(client) => channels::send(client, &subscription.channel, message, Utc::now()).await,
            Err(error) => Answer::Transport {
                error: error.clone(),
            },
        }
    }

    /// Sends a test alert to `subscription` now (not logged, not retried) and says what the
    /// receiver answered.
    pub async fn test_send(&self, subscription: &Subscription) -> Answer {
        let key = format!(
            "tge-swarm-test-{}-{}",
            subscription.id,
            Utc::now().timestamp_millis()
        );
        let message = Message {
            kind: AlertKind::Test,
            idempotency_key: &key,
            subscription_id: subscription.id,
            subscription_name: &subscription.name,
            revision: 0,
            event: None,
            source: None,
            detail: None,
        };
        self.send(subscription, &message).await
    }
}
