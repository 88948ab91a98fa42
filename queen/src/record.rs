//! Where supervisor decisions go: the `supervisor_actions` table, the
//! `tge_swarm_supervisor_actions_total{agent,action,outcome}` counter, the breaker gauge, the
//! log, and for ALERT_ONLY the alert webhook (`supervision.alert_webhook`) and
//! `tge_swarm_supervisor_alerts_total`. One writer task per recorder keeps records in decision
//! order and keeps a slow store or webhook from ever holding up a supervisor's mailbox.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::Utc;
use swarm_shared::context::AgentContext;
use swarm_shared::domain::{ActionOutcome, AgentKind, SupervisorActionInput};
use swarm_shared::supervision::{Action, Breaker, Symptom};
use swarm_shared::telemetry;
use tokio::sync::mpsc;

/// How long one webhook delivery may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Webhook attempts per alert.
const WEBHOOK_ATTEMPTS: usize = 3;
/// Store attempts per record.
const STORE_ATTEMPTS: usize = 5;

/// Records supervisor decisions (cheap to clone).
#[derive(Debug, Clone)]
pub struct Recorder {
    node: String,
    jobs: mpsc::UnboundedSender<SupervisorActionInput>,
}

/// The body POSTed to the alert webhook.
#[derive(Debug, serde::Serialize)]
struct AlertBody<'a> {
    component: &'a str,
    kind: AgentKind,
    node: &'a str,
    observation: &'a str,
    reason: &'a str,
    at: chrono::DateTime<Utc>,
}

impl Recorder {
    /// A recorder writing through `ctx`'s store; its writer task ends when every clone is gone.
    pub fn new(ctx: &AgentContext) -> Recorder {
        let (jobs, mut rx) = mpsc::unbounded_channel::<SupervisorActionInput>();
        let node = ctx.config.node.name.clone();
        let ctx = ctx.clone();
        swarm_shared::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .unwrap_or_default();
        tokio::spawn(async move {
            while let Some(mut input) = rx.recv().await {
                if input.action == Action::AlertOnly {
                    deliver_alert(&ctx, &http, &mut input).await;
                }
                if let Err(err) = persist(&ctx, &input).await {
                    tracing::error!(component = %input.component, action = input.action.as_str(), error = %err, "recording a supervisor action failed after {STORE_ATTEMPTS} attempts");
                }
            }
        });
        Recorder { node, jobs }
    }

    /// Records one decision carried out (or tried).
    pub fn record(
        &self,
        component: &str,
        kind: AgentKind,
        symptom: Symptom,
        action: Action,
        outcome: ActionOutcome,
        reason: &str,
    ) {
        let observation = symptom.as_str();
        if action == Action::None {
            return;
        }
        match outcome {
            ActionOutcome::Succeeded => {
                tracing::info!(%component, %kind, observation, action = action.as_str(), %reason, "supervisor action")
            }
            ActionOutcome::Failed => {
                tracing::warn!(%component, %kind, observation, action = action.as_str(), %reason, "supervisor action failed")
            }
        }
        let input = SupervisorActionInput {
            component: component.to_owned(),
            kind,
            node: self.node.clone(),
            observation: observation.to_owned(),
            action,
            outcome,
            reason: reason.to_owned(),
        };
        if self.jobs.send(input).is_err() {
            tracing::error!(%component, "supervisor recorder is gone; action not stored");
        }
    }

    /// Sets the breaker gauge of a component.
    pub fn breaker(&self, component: &str, kind: AgentKind, breaker: Breaker) {
        breaker_gauge(component, kind, breaker);
    }
}

/// Sets the breaker gauge of a component: at its start (closed) and at every transition, so
/// a dashboard shows every supervised component, not only those that have failed.
pub fn breaker_gauge(component: &str, kind: AgentKind, breaker: Breaker) {
    telemetry::supervisor_breaker(kind, component, breaker);
}

/// Counts one decision and stores it, retrying a store that blips (a Postgres restart must
/// not lose the record). The supervisors' writers and the API's operator actions use it.
pub async fn persist(
    ctx: &AgentContext,
    input: &SupervisorActionInput,
) -> swarm_shared::Result<i64> {
    telemetry::supervisor_acted(input.kind, input.action, input.outcome);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(STORE_ATTEMPTS - 1)
        .with_jitter();
    (|| ctx.store.record_supervisor_action(input))
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .await
}

/// Posts the alert to the webhook, if one is set, retrying transient failures; the outcome
/// and reason of `input` say how that went.
async fn deliver_alert(
    ctx: &AgentContext,
    http: &reqwest::Client,
    input: &mut SupervisorActionInput,
) {
    let Some(url) = ctx.config.supervision.alert_webhook.clone() else {
        telemetry::supervisor_alerted(input.kind, telemetry::AlertDelivery::None);
        tracing::error!(component = %input.component, reason = %input.reason, "ALERT (no webhook set)");
        return;
    };
    let body = AlertBody {
        component: &input.component,
        kind: input.kind,
        node: &input.node,
        observation: &input.observation,
        reason: &input.reason,
        at: Utc::now(),
    };
    let post = || async {
        http.post(&url)
            .json(&body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_times(WEBHOOK_ATTEMPTS - 1)
        .with_jitter();
    let delivered = post.retry(backoff).sleep(tokio::time::sleep).await;
    match delivered {
        Ok(_) => {
            telemetry::supervisor_alerted(input.kind, telemetry::AlertDelivery::Webhook);
            tracing::error!(component = %input.component, reason = %input.reason, "ALERT sent");
        }
        Err(err) => {
            telemetry::supervisor_alerted(input.kind, telemetry::AlertDelivery::Failed);
            tracing::error!(component = %input.component, reason = %input.reason, error = %err, "ALERT webhook failed");
            input.outcome = ActionOutcome::Failed;
            input.reason = format!(
                "{}; alert webhook failed after {WEBHOOK_ATTEMPTS} attempts: {err}",
                input.reason
            );
        }
    }
}
