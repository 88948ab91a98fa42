//! `/api/v1/trading-tokens`: the operator's list of tokens that already trade, kept as
//! desired state so every process reads the same one, and the set detection holds (see
//! `swarm_agents::keyword::trading`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use swarm_agents::keyword::trading;
use swarm_shared::domain::{TRADING_TOKENS_KEY, TradingTokenList, TradingTokensView};
use swarm_shared::messages::QueenCommand;

use super::AppState;
use super::auth::{ReadAccess, WriteAccess};
use super::error::{ApiResult, Problem};
use super::routes::announce;

async fn view(state: &AppState) -> ApiResult<TradingTokensView> {
    let ctx = &state.ctx;
    let companies = ctx.store.list_companies().await?;
    let (operator, effective) = trading::load_with_operator(ctx, &companies).await?;
    Ok(TradingTokensView {
        operator: operator.tokens,
        effective: effective.list(),
        shift: ctx.config.detection.already_trading_shift,
    })
}

/// Tokens detection holds as already trading: the operator's list, and every token with the
/// reason it counts (the list, `detection.trading_tokens`, a `has_token` watchlist company, a
/// launched event, a watched exchange's market list).
#[utoipa::path(get, path = "/api/v1/trading-tokens", tag = "detection",
    responses((status = 200, body = TradingTokensView), (status = 401, body = Problem)))]
pub async fn get_trading_tokens(
    _access: ReadAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<TradingTokensView>> {
    Ok(Json(view(&state).await?))
}

/// Replaces the operator's list (write scope). Tickers are stored upper case without `$`,
/// sorted, each once; keyword agents and `POST /classify` use the new list at once.
#[utoipa::path(put, path = "/api/v1/trading-tokens", tag = "detection", request_body = TradingTokenList,
    security(("api_key" = [])),
    responses((status = 200, body = TradingTokensView), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn put_trading_tokens(
    _access: WriteAccess,
    State(state): State<AppState>,
    input: Result<Json<TradingTokenList>, JsonRejection>,
) -> ApiResult<Json<TradingTokensView>> {
    let Json(input) = input?;
    input.validate()?;
    let value = serde_json::json!({ "tokens": input.normalized().tokens });
    state
        .ctx
        .store
        .put_desired(TRADING_TOKENS_KEY, &value)
        .await?;
    state.scorer.invalidate().await;
    // Keyword agents reload their watchlist, feedback and trading tokens on this command.
    announce(&state, QueenCommand::CompaniesChanged).await;
    Ok(Json(view(&state).await?))
}
