//! `/api/v1/keys`: API keys as a feature (admin key). Secrets appear once, in the answer that
//! makes them; lists show names, scopes and dates only.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use swarm_shared::domain::ApiKey;
use utoipa::ToSchema;

use super::AppState;
use super::auth::AdminAccess;
use super::error::{ApiResult, Problem};
use crate::keys::{self, IssuedKey, KeyInput};

/// Every key, revoked ones included.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Oldest first.
    pub keys: Vec<ApiKey>,
}

/// Lists the keys: names, scopes, creation, expiry, last use and revocation, never secrets.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("api_key" = [])),
    responses((status = 200, body = KeyList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_keys(
    _access: AdminAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<KeyList>> {
    Ok(Json(KeyList {
        keys: state.ctx.store.list_api_keys().await?,
    }))
}

/// Creates a key. The answer carries its secret, which is not stored and never shown again.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = KeyInput,
    security(("api_key" = [])),
    responses((status = 201, body = IssuedKey), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
pub async fn create_key(
    _access: AdminAccess,
    State(state): State<AppState>,
    input: Result<Json<KeyInput>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Json(input) = input?;
    let issued = keys::create(state.ctx.store.as_ref(), &input, chrono::Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Replaces a key's secret: a new key with the same name, scopes and expiry is made and the
/// old one revoked, in one transaction.
#[utoipa::path(post, path = "/api/v1/keys/{id}/rotate", tag = "keys",
    params(("id" = i64, Path, description = "Key id")), security(("api_key" = [])),
    responses((status = 201, body = IssuedKey), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn rotate_key(
    _access: AdminAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<impl IntoResponse> {
    let Path(id) = id?;
    let issued = keys::rotate(state.ctx.store.as_ref(), id, chrono::Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Revokes a key at once (it stays listed). The last working admin key cannot be revoked.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = i64, Path, description = "Key id")), security(("api_key" = [])),
    responses((status = 200, body = ApiKey), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn revoke_key(
    _access: AdminAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<ApiKey>> {
    let Path(id) = id?;
    Ok(Json(
        keys::revoke(state.ctx.store.as_ref(), id, chrono::Utc::now()).await?,
    ))
}
