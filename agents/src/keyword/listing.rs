//! Documents that state a fact rather than tell a story: a symbol that appeared in an
//! exchange's market list. Their detection is decided by the fact (the scraping agent
//! compared the list with every symbol seen on every watched exchange), not by the text
//! model: a first listing is an event; a secondary listing only joins its token's event. The
//! event is the watchlist company's when the asset is one of its tickers (so it merges with
//! the company's other reports), else the ticker's; an asset the swarm holds as already
//! trading (the operator's list, an older event) is no first listing wherever it appears.

use swarm_shared::domain::{Detection, Evidence, MarketFact};

/// Score of a market-list listing: a fact read from the exchange itself.
pub const LISTING_SCORE: f64 = 0.99;

/// The detection of a document carrying a new-market fact. `company` is the watchlist
/// company whose ticker the asset is; `already_trading`, whether the swarm holds it as
/// trading already.
pub fn market_detection(
    fact: &MarketFact,
    seen_day: &str,
    company: Option<&str>,
    already_trading: bool,
) -> Detection {
    let listing = &fact.listing;
    let first = fact.first_listing && !already_trading;
    let day = listing
        .listed_at
        .map(|at| at.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| seen_day.to_owned());
    let (feature, what) = if first {
        (
            "market:first_listing",
            "first market on any watched exchange",
        )
    } else {
        ("market:secondary_listing", "already trades elsewhere")
    };
    Detection {
        score: LISTING_SCORE,
        is_tge: true,
        project: Some(company.unwrap_or(&listing.base).to_owned()),
        token: Some(listing.base.clone()),
        event_date: Some(day),
        evidence: vec![Evidence {
            feature: feature.to_owned(),
            snippet: format!(
                "{} appeared in {}'s {} market list ({what})",
                listing.symbol,
                fact.exchange.display_name(),
                listing.market.label()
            ),
            weight: 0.0,
        }],
        join_only: !first,
    }
}

#[cfg(test)]
mod tests {
    use swarm_shared::domain::{Exchange, MarketListing, MarketType};

    use super::*;

    #[test]
    fn a_first_listing_creates_and_a_secondary_one_only_joins() {
        let mut fact = MarketFact {
            exchange: Exchange::Bybit,
            listing: MarketListing {
                market: MarketType::Perp,
                symbol: "VLRUSDT".into(),
                base: "VLR".into(),
                quote: "USDT".into(),
                status: Some("Trading".into()),
                listed_at: None,
            },
            first_listing: true,
        };
        let first = market_detection(&fact, "2026-12-06", None, false);
        assert!(first.is_tge && !first.join_only);
        assert_eq!(first.project.as_deref(), Some("VLR"));
        assert_eq!(first.token.as_deref(), Some("VLR"));
        assert_eq!(first.event_date.as_deref(), Some("2026-12-06"));
        assert_eq!(
            first.evidence[0].snippet,
            "VLRUSDT appeared in Bybit's perpetual market list (first market on any watched exchange)"
        );
        let watched = market_detection(&fact, "2026-12-06", Some("Velora"), false);
        assert_eq!(
            watched.project.as_deref(),
            Some("Velora"),
            "the watchlist's company"
        );
        assert_eq!(watched.token.as_deref(), Some("VLR"));
        let trading = market_detection(&fact, "2026-12-06", None, true);
        assert!(
            trading.join_only,
            "a token held as trading is no first listing"
        );
        fact.first_listing = false;
        let second = market_detection(&fact, "2026-12-06", None, false);
        assert!(second.is_tge && second.join_only);
        assert_eq!(second.evidence[0].feature, "market:secondary_listing");
    }
}
