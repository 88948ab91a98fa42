//! `/api/v1/subscriptions`: who is told about which events, through which channel, the
//! delivery log of each, and a test alert (write scope for all: channel URLs and chats are
//! the subscriber's, and secrets are never shown).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use swarm_shared::domain::{Alert, SubscriptionInput, SubscriptionView};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::WriteAccess;
use super::error::{ApiError, ApiResult, Problem};
use super::routes::refuse_unreachable;
use crate::delivery::channels::Answer;

/// Every subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    /// Oldest first.
    pub subscriptions: Vec<SubscriptionView>,
}

/// A subscription's alerts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    /// Newest first.
    pub alerts: Vec<Alert>,
}

/// How many alerts of the log to show.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Most alerts, newest first, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// What the receiver of a test alert answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// Whether it accepted the alert (2xx).
    pub delivered: bool,
    /// Its HTTP status, or the SMTP relay's reply code, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Refuses (422) a channel whose destination the outbound guard would refuse at every send
/// (a literal non-public address, `localhost`), as for sources; host names are checked when
/// they resolve. E-mail goes through the operator's relay, and is refused when none is
/// configured.
fn check_outbound(state: &AppState, input: &SubscriptionInput) -> ApiResult<()> {
    match input.channel.endpoint()? {
        Some(url) => refuse_unreachable(state, "channel", &url),
        None if state.ctx.config.delivery.smtp.is_none() => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "channel: e-mail alerts need an SMTP relay, and this swarm's config has no [delivery.smtp]",
        )),
        None => Ok(()),
    }
}

/// Lists the subscriptions, without secrets.
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "alerts", security(("api_key" = [])),
    responses((status = 200, body = SubscriptionList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_subscriptions(
    _access: WriteAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<SubscriptionList>> {
    let subscriptions = state.ctx.store.list_subscriptions().await?;
    Ok(Json(SubscriptionList {
        subscriptions: subscriptions.iter().map(|s| s.view()).collect(),
    }))
}

/// Subscribes a channel to events: every new event passing the filters is sent to it once
/// (see the README, "Alerts"). Secrets in the channel are stored for sending and never shown.
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "alerts", request_body = SubscriptionInput,
    security(("api_key" = [])),
    responses((status = 201, body = SubscriptionView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_subscription(
    _access: WriteAccess,
    State(state): State<AppState>,
    input: Result<Json<SubscriptionInput>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Json(input) = input?;
    input.validate()?;
    check_outbound(&state, &input)?;
    let created = state.ctx.store.create_subscription(&input).await?;
    Ok((StatusCode::CREATED, Json(created.view())))
}

/// One subscription, without secrets.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "Subscription id")), security(("api_key" = [])),
    responses((status = 200, body = SubscriptionView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn get_subscription(
    _access: WriteAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<SubscriptionView>> {
    let Path(id) = id?;
    Ok(Json(state.ctx.store.get_subscription(id).await?.view()))
}

/// Deletes a subscription with its delivery log; its pending alerts are not sent.
#[utoipa::path(delete, path = "/api/v1/subscriptions/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "Subscription id")), security(("api_key" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn delete_subscription(
    _access: WriteAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    state.ctx.store.delete_subscription(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The subscription's delivery log: each alert with its idempotency key, status (`pending`,
/// `delivered`, `dead`), attempts, the receiver's last status and error, newest first.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}/deliveries", tag = "alerts",
    params(("id" = i64, Path, description = "Subscription id"), DeliveryParams), security(("api_key" = [])),
    responses((status = 200, body = AlertList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn list_deliveries(
    _access: WriteAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    params: Result<Query<DeliveryParams>, QueryRejection>,
) -> ApiResult<Json<AlertList>> {
    let Path(id) = id?;
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: must be between 1 and 1000"));
    }
    // Not found when the subscription does not exist, rather than an empty log.
    state.ctx.store.get_subscription(id).await?;
    Ok(Json(AlertList {
        alerts: state.ctx.store.list_deliveries(id, limit).await?,
    }))
}

/// Sends a test alert (`"type": "tge.test"`, no event) to the subscription now, once, and
/// says what its receiver answered. Not retried and not in the delivery log.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/test", tag = "alerts",
    params(("id" = i64, Path, description = "Subscription id")), security(("api_key" = [])),
    responses((status = 200, body = TestResult), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn test_subscription(
    _access: WriteAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<TestResult>> {
    let Path(id) = id?;
    let subscription = state.ctx.store.get_subscription(id).await?;
    let result = match state.deliverer.test_send(&subscription).await {
        Answer::Accepted { status } => TestResult {
            delivered: true,
            status: Some(status),
            error: None,
        },
        Answer::Refused { status, detail, .. } => TestResult {
            delivered: false,
            status: Some(status),
            error: Some(if detail.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {detail}")
            }),
        },
        Answer::Smtp { code, detail, .. } => TestResult {
            delivered: false,
            status: code,
            error: Some(detail),
        },
        Answer::Transport { error } => TestResult {
            delivered: false,
            status: None,
            error: Some(error),
        },
    };
    Ok(Json(result))
}
