//! What the swarm reads and watches: sources and the watchlist.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use swarm_shared::domain::{Company, CompanyInput, Source, SourceInput};
use swarm_shared::messages::QueenCommand;
use utoipa::ToSchema;

use super::announce;
use crate::api::AppState;
use crate::api::auth::{ReadAccess, WriteAccess};
use crate::api::error::{ApiError, ApiResult, Problem};

/// All sources.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceList {
    /// Sources with their fetch health.
    pub sources: Vec<Source>,
}

/// The watchlist.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyList {
    /// Companies.
    pub companies: Vec<Company>,
}

/// Lists sources with their fetch health (last status, error, failures in a row).
#[utoipa::path(get, path = "/api/v1/sources", tag = "sources", responses((status = 200, body = SourceList)))]
pub async fn list_sources(
    _access: ReadAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<SourceList>> {
    Ok(Json(SourceList {
        sources: state.ctx.store.list_sources().await?,
    }))
}

/// One source.
#[utoipa::path(get, path = "/api/v1/sources/{id}", tag = "sources", params(("id" = i64, Path, description = "Source id")),
    responses((status = 200, body = Source), (status = 404, body = Problem)))]
pub async fn get_source(
    _access: ReadAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Source>> {
    let Path(id) = id?;
    Ok(Json(state.ctx.store.get_source(id).await?))
}

/// Rejects selectors that do not compile (422, naming the field) before they are stored.
fn check_selectors(input: &SourceInput) -> ApiResult<()> {
    let Some(selectors) = &input.selectors else {
        return Ok(());
    };
    swarm_agents::scraping::parse::validate_selectors(selectors)
        .map_err(|err| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", err.to_string()))
}

/// Refuses (422) what the outbound guard would refuse at every fetch, where it shows without
/// the network or the file system: a literal non-public address, `localhost`, a scheme, a
/// `file` URL outside `scraping.file_root`. Host names are checked when they resolve.
fn check_outbound(state: &AppState, input: &SourceInput) -> ApiResult<()> {
    let Ok(url) = url::Url::parse(&input.effective_url()) else {
        // Malformed: the store's validation names it.
        return Ok(());
    };
    refuse_unreachable(state, "url", &url)
}

/// Refuses (422, naming `field`) a destination the outbound guard refuses without the
/// network: a literal non-public address, `localhost`, a scheme (sources and alert channels).
pub(crate) fn refuse_unreachable(state: &AppState, field: &str, url: &url::Url) -> ApiResult<()> {
    let policy = state.outbound.as_ref().as_ref().map_err(|err| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "config", err.to_string())
    })?;
    policy.check_url(url).map_err(|refusal| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{field}: {refusal}"),
        )
    })
}

/// Adds a source (admin key).
#[utoipa::path(post, path = "/api/v1/sources", tag = "sources", request_body = SourceInput,
    security(("api_key" = [])),
    responses((status = 201, body = Source), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_source(
    _access: WriteAccess,
    State(state): State<AppState>,
    input: Result<Json<SourceInput>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Json(input) = input?;
    check_selectors(&input)?;
    check_outbound(&state, &input)?;
    let source = state.ctx.store.create_source(&input).await?;
    announce(&state, QueenCommand::SourcesChanged).await;
    Ok((StatusCode::CREATED, Json(source)))
}

/// Replaces a source's definition (admin key).
#[utoipa::path(put, path = "/api/v1/sources/{id}", tag = "sources", request_body = SourceInput,
    params(("id" = i64, Path, description = "Source id")), security(("api_key" = [])),
    responses((status = 200, body = Source), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_source(
    _access: WriteAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    input: Result<Json<SourceInput>, JsonRejection>,
) -> ApiResult<Json<Source>> {
    let Path(id) = id?;
    let Json(input) = input?;
    check_selectors(&input)?;
    check_outbound(&state, &input)?;
    let source = state.ctx.store.update_source(id, &input).await?;
    announce(&state, QueenCommand::SourcesChanged).await;
    Ok(Json(source))
}

/// Deletes a source (admin key).
#[utoipa::path(delete, path = "/api/v1/sources/{id}", tag = "sources",
    params(("id" = i64, Path, description = "Source id")), security(("api_key" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_source(
    _access: WriteAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    state.ctx.store.delete_source(id).await?;
    announce(&state, QueenCommand::SourcesChanged).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The watchlist.
#[utoipa::path(get, path = "/api/v1/companies", tag = "companies", responses((status = 200, body = CompanyList)))]
pub async fn list_companies(
    _access: ReadAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<CompanyList>> {
    Ok(Json(CompanyList {
        companies: state.ctx.store.list_companies().await?,
    }))
}

/// One company.
#[utoipa::path(get, path = "/api/v1/companies/{id}", tag = "companies", params(("id" = i64, Path, description = "Company id")),
    responses((status = 200, body = Company), (status = 404, body = Problem)))]
pub async fn get_company(
    _access: ReadAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<Company>> {
    let Path(id) = id?;
    Ok(Json(state.ctx.store.get_company(id).await?))
}

/// Adds a company to the watchlist (admin key).
#[utoipa::path(post, path = "/api/v1/companies", tag = "companies", request_body = CompanyInput, security(("api_key" = [])),
    responses((status = 201, body = Company), (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_company(
    _access: WriteAccess,
    State(state): State<AppState>,
    input: Result<Json<CompanyInput>, JsonRejection>,
) -> ApiResult<impl IntoResponse> {
    let Json(input) = input?;
    let company = state.ctx.store.create_company(&input).await?;
    state.scorer.invalidate().await;
    announce(&state, QueenCommand::CompaniesChanged).await;
    Ok((StatusCode::CREATED, Json(company)))
}

/// Replaces a company (admin key).
#[utoipa::path(put, path = "/api/v1/companies/{id}", tag = "companies", request_body = CompanyInput,
    params(("id" = i64, Path, description = "Company id")), security(("api_key" = [])),
    responses((status = 200, body = Company), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update_company(
    _access: WriteAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    input: Result<Json<CompanyInput>, JsonRejection>,
) -> ApiResult<Json<Company>> {
    let Path(id) = id?;
    let Json(input) = input?;
    let company = state.ctx.store.update_company(id, &input).await?;
    state.scorer.invalidate().await;
    announce(&state, QueenCommand::CompaniesChanged).await;
    Ok(Json(company))
}

/// Removes a company (admin key).
#[utoipa::path(delete, path = "/api/v1/companies/{id}", tag = "companies",
    params(("id" = i64, Path, description = "Company id")), security(("api_key" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_company(
    _access: WriteAccess,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    state.ctx.store.delete_company(id).await?;
    state.scorer.invalidate().await;
    announce(&state, QueenCommand::CompaniesChanged).await;
    Ok(StatusCode::NO_CONTENT)
}
