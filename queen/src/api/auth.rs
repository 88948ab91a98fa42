//! API keys: `X-API-Key` is hashed (sha256) and looked up in the store; the key itself is
//! never stored. Mutating calls need the `admin` or `write` scope, supervisor actions by hand
//! and fault injection the `admin` scope; reads are open unless
//! `server.require_key_for_reads` is set.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::keys::hash_key;

/// The header carrying the key.
pub const API_KEY_HEADER: &str = "x-api-key";

async fn lookup(parts: &Parts, state: &AppState) -> Result<swarm_shared::domain::ApiKey, ApiError> {
    let Some(value) = parts.headers.get(API_KEY_HEADER) else {
        return Err(ApiError::unauthorized("missing X-API-Key header"));
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("X-API-Key is not valid text"))?;
    let found = match state.ctx.store.find_api_key(&hash_key(key.trim())).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(ApiError::unauthorized("unknown API key")),
        Err(err) => return Err(ApiError::internal(&err)),
    };
    let now = chrono::Utc::now();
    if let Some(reason) = found.unusable(now) {
        return Err(ApiError::unauthorized(&reason));
    }
    // At most one write a minute per key; a failure to record it does not fail the request.
    if found.last_used_at.is_none_or(|at| {
        now - at
            >= chrono::TimeDelta::milliseconds(swarm_shared::domain::API_KEY_USE_RECORDED_EVERY_MS)
    }) && let Err(err) = state.ctx.store.touch_api_key(found.id, now).await
    {
        tracing::debug!(error = %err, key = %found.name, "recording a key's use failed");
    }
    Ok(found)
}

/// The request's key, if it holds one of `scopes` (403 naming `needed` otherwise).
async fn require(
    parts: &Parts,
    state: &AppState,
    scopes: &[&str],
    needed: &str,
) -> Result<swarm_shared::domain::ApiKey, ApiError> {
    let key = lookup(parts, state).await?;
    if key
        .scopes
        .iter()
        .any(|scope| scopes.contains(&scope.as_str()))
    {
        return Ok(key);
    }
    Err(ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "forbidden",
        format!("API key `{}` lacks the {needed} scope", key.name),
    ))
}

/// Extractor: the request carries a key allowed to change things.
#[derive(Debug)]
pub struct WriteAccess {
    /// The key's name: who made a change, in an event's history.
    pub key_name: String,
}

impl FromRequestParts<AppState> for WriteAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        require(parts, state, &["admin", "write"], "write")
            .await
            .map(|key| WriteAccess { key_name: key.name })
    }
}

/// Extractor: the request carries an `admin` key (supervisor actions by hand, faults).
#[derive(Debug)]
pub struct AdminAccess;

impl FromRequestParts<AppState> for AdminAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        require(parts, state, &["admin"], "admin")
            .await
            .map(|_| AdminAccess)
    }
}

/// Extractor: the request may read (always, unless keys are required for reads).
#[derive(Debug)]
pub struct ReadAccess;

impl FromRequestParts<AppState> for ReadAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if !state.ctx.config.server.require_key_for_reads {
            return Ok(ReadAccess);
        }
        lookup(parts, state).await.map(|_| ReadAccess)
    }
}
