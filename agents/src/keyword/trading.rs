//! "Is this token new": the tokens detection holds as already trading, and why. A document
//! about one announces no TGE under the labelling policy (a later airdrop season, a new listing
//! of a trading token), so the scorer lowers its log-odds by `detection.already_trading_shift`
//! and says why in the evidence.
//!
//! Five sources, in order of precedence for the reason shown: the operator's list kept through
//! the API (desired state [`TRADING_TOKENS_KEY`]), `detection.trading_tokens` in the
//! configuration, the watchlist's companies whose status is `has_token`, the swarm's own
//! events whose date lies further back than the merge window (the token has launched), and
//! the watched exchanges' market lists: an asset whose earliest sighting on any watched
//! exchange is in the first read of a market list (trading then), or lies further back than
//! the merge window, trades.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use swarm_shared::context::AgentContext;
use swarm_shared::domain::{
    Company, DesiredEntry, EventQuery, ListedToken, TRADING_TOKENS_KEY, TgeEvent, TradingToken,
    TradingTokenList, parse_day, ticker_key,
};
use swarm_shared::ports::newest_events;

/// Most recent events read for launched tokens (pages of 200).
pub const LAUNCHED_EVENTS_READ: usize = 5_000;

/// Tickers held as trading, each with its reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TradingTokens {
    why: HashMap<String, String>,
}

/// What the set is made from.
#[derive(Debug, Default)]
pub struct Parts<'a> {
    /// The operator's list (API).
    pub operator: &'a [String],
    /// `detection.trading_tokens`.
    pub configured: &'a [String],
    /// The watchlist.
    pub companies: &'a [Company],
    /// The swarm's events, any order.
    pub events: &'a [TgeEvent],
    /// Tokens the watched exchanges list, as [`Store::listed_tokens`] gives them (already
    /// limited to the first reads and those seen before the merge window).
    ///
    /// [`Store::listed_tokens`]: swarm_shared::ports::Store::listed_tokens
    pub listed: &'a [ListedToken],
}

impl TradingTokens {
    /// The set from its parts; an event counts when its date (to the day) plus `merge_window`
    /// lies before `now`.
    pub fn from_parts(parts: Parts<'_>, now: DateTime<Utc>, merge_window: Duration) -> Self {
        let mut why: HashMap<String, String> = HashMap::new();
        let mut add = |ticker: &str, reason: String| {
            let key = ticker_key(ticker);
            if !key.is_empty() {
                why.entry(key).or_insert(reason);
            }
        };
        for ticker in parts.operator {
            add(ticker, "operator list".to_owned());
        }
        for ticker in parts.configured {
            add(ticker, "configuration".to_owned());
        }
        for company in parts.companies.iter().filter(|c| c.status == "has_token") {
            for ticker in &company.tickers {
                add(ticker, format!("watchlist: {}", company.name));
            }
        }
        let cut = window_start(now, merge_window);
        for event in parts.events {
            let (Some(token), Some(date)) = (&event.token, &event.event_date) else {
                continue;
            };
            let Some(day) = parse_day(date) else {
                continue;
            };
            let Some(start) = day.and_hms_opt(0, 0, 0).map(|at| at.and_utc()) else {
                continue;
            };
            if start < cut {
                add(token, format!("launched: event {} dated {date}", event.id));
            }
        }
        for listed in parts.listed {
            let day = listed.first_seen_at.format("%Y-%m-%d");
            let reason = if listed.in_first_read {
                format!(
                    "market: {} {}, listed when the swarm first read it on {day}",
                    listed.exchange, listed.market
                )
            } else {
                format!("market: {} {} since {day}", listed.exchange, listed.market)
            };
            add(&listed.base, reason);
        }
        TradingTokens { why }
    }

    /// Why `ticker` is held as trading, when it is.
    pub fn why(&self, ticker: &str) -> Option<&str> {
        self.why.get(&ticker_key(ticker)).map(String::as_str)
    }

    /// How many tickers.
    pub fn len(&self) -> usize {
        self.why.len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.why.is_empty()
    }

    /// Every ticker with its reason, sorted by ticker.
    pub fn list(&self) -> Vec<TradingToken> {
        let mut list: Vec<TradingToken> = self
            .why
            .iter()
            .map(|(ticker, why)| TradingToken {
                ticker: ticker.clone(),
                why: why.clone(),
            })
            .collect();
        list.sort_by(|a, b| a.ticker.cmp(&b.ticker));
        list
    }
}

/// `now` less the merge window: a token listed before it has traded for longer than an
/// announcement of its launch is followed up (the distant past when the window is too large).
fn window_start(now: DateTime<Utc>, merge_window: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(merge_window)
        .ok()
        .and_then(|window| now.checked_sub_signed(window))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The operator's list from the desired state (empty when never set). An entry that does not
/// decode is reported and left out: the other sources still count.
pub fn operator_list(desired: &[DesiredEntry]) -> TradingTokenList {
    let Some(entry) = desired.iter().find(|e| e.key == TRADING_TOKENS_KEY) else {
        return TradingTokenList::default();
    };
    match serde_json::from_value::<TradingTokenList>(entry.value.clone()) {
        Ok(list) => list,
        Err(err) => {
            tracing::warn!(key = TRADING_TOKENS_KEY, error = %err, "the operator's trading-token list does not decode; ignoring it");
            TradingTokenList::default()
        }
    }
}

/// The set as the store and configuration give it now.
pub async fn load(
    ctx: &AgentContext,
    companies: &[Company],
) -> swarm_shared::Result<TradingTokens> {
    Ok(load_with_operator(ctx, companies).await?.1)
}

/// The operator's list as stored, and the set it is part of (one read of the desired state).
pub async fn load_with_operator(
    ctx: &AgentContext,
    companies: &[Company],
) -> swarm_shared::Result<(TradingTokenList, TradingTokens)> {
    let operator = operator_list(&ctx.store.list_desired().await?);
    let events = newest_events(
        ctx.store.as_ref(),
        &EventQuery::default(),
        LAUNCHED_EVENTS_READ,
        0,
    )
    .await?;
    let now = Utc::now();
    let merge_window = ctx.config.quality.merge_window;
    let listed = ctx
        .store
        .listed_tokens(window_start(now, merge_window))
        .await?;
    let tokens = TradingTokens::from_parts(
        Parts {
            operator: &operator.tokens,
            configured: &ctx.config.detection.trading_tokens,
            companies,
            events: &events,
            listed: &listed,
        },
        now,
        merge_window,
    );
    Ok((operator, tokens))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use swarm_shared::domain::{Priority, TgeEvent};

    use super::*;
    use crate::keyword::model::Model;
    use crate::keyword::scorer::{Input, Scorer};

    fn company(name: &str, tickers: &[&str], status: &str) -> Company {
        Company {
            id: 1,
            name: name.into(),
            aliases: Vec::new(),
            tickers: tickers.iter().map(|t| t.to_string()).collect(),
            priority: Priority::Medium,
            status: status.into(),
            exclusions: Vec::new(),
        }
    }

    fn event(id: i64, token: &str, date: Option<&str>) -> TgeEvent {
        let at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        TgeEvent {
            provenance: None,
            proof: None,
            published_at: None,
            starts_at: None,
            id,
            project: None,
            token: Some(token.into()),
            score: 0.9,
            event_date: date.map(str::to_owned),
            first_seen: at,
            last_seen: at,
            source_count: 1,
            sources: Vec::new(),
            evidence: Vec::new(),
            kind: swarm_shared::domain::EventKind::Tge,
            date_precision: None,
            venues: Vec::new(),
            event_day: None,
            status: swarm_shared::domain::EventStatus::New,
            status_changed_at: None,
            status_by: None,
            revision: 1,
        }
    }

    #[test]
    fn every_source_counts_with_its_reason_and_the_first_reason_wins() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
        let window = Duration::from_secs(7 * 86_400);
        let operator = vec!["$arb".to_owned()];
        let configured = vec!["ARB".to_owned(), "op".to_owned()];
        let companies = vec![
            company("Camelot", &["GRAIL"], "has_token"),
            company("Fhenix", &["FHE"], "pre_token"),
        ];
        let events = vec![
            event(7, "JTO", Some("2025-05-20")),
            event(8, "NEAR", Some("May 30, 2025")),
            event(9, "UNDATED", None),
            event(10, "VAGUE", Some("Q2 2025")),
        ];
        let listed = vec![
            ListedToken {
                base: "JTO".into(),
                exchange: "bybit".into(),
                market: "spot".into(),
                first_seen_at: Utc.with_ymd_and_hms(2025, 5, 2, 8, 0, 0).unwrap(),
                in_first_read: false,
            },
            ListedToken {
                base: "DOGE".into(),
                exchange: "binance".into(),
                market: "spot".into(),
                first_seen_at: Utc.with_ymd_and_hms(2025, 4, 1, 9, 30, 0).unwrap(),
                in_first_read: true,
            },
            ListedToken {
                base: "VLR".into(),
                exchange: "okx".into(),
                market: "perp".into(),
                first_seen_at: Utc.with_ymd_and_hms(2025, 5, 10, 0, 0, 0).unwrap(),
                in_first_read: false,
            },
        ];
        let set = TradingTokens::from_parts(
            Parts {
                operator: &operator,
                configured: &configured,
                companies: &companies,
                events: &events,
                listed: &listed,
            },
            now,
            window,
        );
        assert_eq!(set.why("ARB"), Some("operator list"));
        assert_eq!(set.why("$Op"), Some("configuration"));
        assert_eq!(set.why("grail"), Some("watchlist: Camelot"));
        assert_eq!(set.why("FHE"), None, "pre_token companies do not trade");
        assert_eq!(set.why("JTO"), Some("launched: event 7 dated 2025-05-20"));
        assert_eq!(
            set.why("NEAR"),
            None,
            "within the merge window: not yet launched"
        );
        assert_eq!(set.why("UNDATED"), None);
        assert_eq!(set.why("VAGUE"), None, "a quarter is not a day");
        assert_eq!(
            set.why("doge"),
            Some("market: binance spot, listed when the swarm first read it on 2025-04-01")
        );
        assert_eq!(set.why("VLR"), Some("market: okx perp since 2025-05-10"));
        let tickers: Vec<String> = set.list().into_iter().map(|t| t.ticker).collect();
        assert_eq!(tickers, ["ARB", "DOGE", "GRAIL", "JTO", "OP", "VLR"]);
    }

    #[test]
    fn the_market_lists_are_read_from_the_merge_window_back() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        assert_eq!(
            window_start(now, Duration::from_secs(30 * 86_400)),
            Utc.with_ymd_and_hms(2026, 11, 7, 12, 0, 0).unwrap()
        );
        assert_eq!(
            window_start(now, Duration::MAX),
            DateTime::<Utc>::MIN_UTC,
            "a window larger than time counts nothing as old"
        );
    }

    #[test]
    fn the_operator_list_is_read_from_desired_state_and_a_bad_one_is_ignored() {
        let entry = |value: serde_json::Value| DesiredEntry {
            key: TRADING_TOKENS_KEY.into(),
            value,
            generation: 1,
            updated_at: Utc::now(),
        };
        let good = entry(serde_json::json!({"tokens": ["ARB", "OP"]}));
        assert_eq!(operator_list(&[good]).tokens, ["ARB", "OP"]);
        let bad = entry(serde_json::json!({"tokens": "ARB"}));
        assert!(operator_list(&[bad]).tokens.is_empty());
        assert!(operator_list(&[]).tokens.is_empty());
    }

    #[test]
    fn a_token_that_already_trades_pulls_a_confident_verdict_below_the_threshold() {
        let scorer = Scorer::new(&[], Model::shipped().unwrap(), None).unwrap();
        let input = Input {
            title: "Arbitrum airdrop: $ARB claim opens March 23, 2023",
            text: "Arbitrum announced its governance token $ARB. Eligible users can claim the \
                   ARB airdrop from March 23, 2023 at 12:00 UTC on the official claim page; \
                   trading of ARB opens on major exchanges the same day.",
            tier: 2,
            year: 2023,
            url: None,
        };
        let plain = scorer.score(input);
        assert!(plain.is_tge, "{plain:?}");
        assert_eq!(plain.token.as_deref(), Some("ARB"), "{plain:?}");
        let trading = TradingTokens::from_parts(
            Parts {
                operator: &["ARB".to_owned()],
                ..Parts::default()
            },
            Utc::now(),
            Duration::ZERO,
        );
        let scorer = scorer.with_trading(Arc::new(trading), -4.0);
        let shifted = scorer.score(input);
        assert!(!shifted.is_tge, "{shifted:?}");
        assert!(shifted.score < plain.score);
        let item = shifted
            .evidence
            .iter()
            .find(|e| e.feature == "already_trading:ARB")
            .expect("the reason is in the evidence");
        assert_eq!(item.weight, -4.0);
        assert!(item.snippet.contains("operator list"), "{}", item.snippet);
        // A shift of 0 turns it off.
        let off = scorer.with_trading(Arc::new(TradingTokens::default()), 0.0);
        assert_eq!(off.score(input).score, plain.score);
    }
}
