//! Tokens that already trade: the operator's list, kept as desired state so every process
//! reads the same one. A document about a token that already trades announces no TGE (a
//! later airdrop season, a new listing of a trading token): detection lowers its log-odds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// The desired-state key the operator's list is stored under.
pub const TRADING_TOKENS_KEY: &str = "detection/trading-tokens";

/// Most tickers the operator's list may hold.
pub const MAX_TRADING_TOKENS: usize = 10_000;

/// Whether `ticker` is written as the watchlist writes tickers: 1 to 12 ASCII letters, digits
/// or dots, without `$`.
pub fn valid_ticker(ticker: &str) -> bool {
    (1..=12).contains(&ticker.len())
        && ticker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.')
}

/// A ticker as lists compare it: upper case, without a leading `$`.
pub fn ticker_key(ticker: &str) -> String {
    ticker.trim().trim_start_matches('$').to_ascii_uppercase()
}

/// The operator's list of tokens that already trade (`PUT /api/v1/trading-tokens`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TradingTokenList {
    /// Tickers (`$` optional, any case), at most 10,000.
    pub tokens: Vec<String>,
}

/// Checks a list of trading tickers (the API's and the configuration's): its length and every
/// ticker; the error names the first bad entry as `tokens[i]`.
pub fn validate_trading_tokens(tokens: &[String]) -> Result<()> {
    if tokens.len() > MAX_TRADING_TOKENS {
        return Err(Error::Invalid(format!(
            "tokens: {} tickers; at most {MAX_TRADING_TOKENS}",
            tokens.len()
        )));
    }
    for (index, token) in tokens.iter().enumerate() {
        if !valid_ticker(token.trim().trim_start_matches('$')) {
            return Err(Error::Invalid(format!(
                "tokens[{index}]: `{token}` must be 1 to 12 letters, digits or dots, `$` optional"
            )));
        }
    }
    Ok(())
}

impl TradingTokenList {
    /// See [`validate_trading_tokens`].
    pub fn validate(&self) -> Result<()> {
        validate_trading_tokens(&self.tokens)
    }

    /// The list as stored: upper case, without `$`, sorted, each once.
    pub fn normalized(&self) -> TradingTokenList {
        let mut tokens: Vec<String> = self.tokens.iter().map(|t| ticker_key(t)).collect();
        tokens.sort();
        tokens.dedup();
        TradingTokenList { tokens }
    }
}

/// One token detection holds as already trading, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TradingToken {
    /// Ticker, upper case.
    pub ticker: String,
    /// Where it comes from: `operator list`, `configuration`, `watchlist: <company>` (a
    /// company whose status is `has_token`), `launched: event <id> dated <date>` (the swarm's
    /// own event whose date is older than the merge window), or a watched exchange's market
    /// list: `market: <exchange> <spot|perp>, listed when the swarm first read it on <day>` or
    /// `market: <exchange> <spot|perp> since <day>` (first seen longer ago than the merge
    /// window).
    pub why: String,
}

/// `GET /api/v1/trading-tokens`: the operator's list and every token detection holds as
/// trading, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TradingTokensView {
    /// The operator's list, as stored.
    pub operator: Vec<String>,
    /// Every token held as trading (the operator's list, `detection.trading_tokens`, the
    /// watchlist's `has_token` companies, launched events), sorted by ticker.
    pub effective: Vec<TradingToken>,
    /// Log-odds added to a document about one of them (`detection.already_trading_shift`).
    pub shift: f64,
}
