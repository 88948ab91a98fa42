//! Primary sources in the store: exchange and JSON sources keep their settings, and market
//! lists are remembered so that a symbol appearing is told apart from one seen before.

use std::sync::Arc;

use chrono::{Datelike, TimeZone, Utc};
use swarm_shared::Error;
use swarm_shared::domain::{
    Exchange, ExchangeFeed, JsonMapping, ListedToken, MarketListing, MarketType, Provenance,
    SourceKind,
};
use swarm_shared::ports::Store;

use super::source;

fn listing(market: MarketType, symbol: &str, base: &str) -> MarketListing {
    MarketListing {
        market,
        symbol: symbol.into(),
        base: base.into(),
        quote: "USDT".into(),
        status: None,
        listed_at: None,
    }
}

pub async fn primary_sources_keep_their_settings(store: Arc<dyn Store>) {
    let mut binance = source("binance-notices");
    binance.kind = SourceKind::Exchange;
    binance.url = String::new();
    assert!(
        matches!(store.create_source(&binance).await, Err(Error::Invalid(message)) if message.starts_with("exchange:"))
    );
    binance.exchange = Some(Exchange::Binance);
    binance.feed = Some(ExchangeFeed::Announcements);
    let stored = store.create_source(&binance).await.unwrap();
    assert_eq!(
        stored.url, "https://www.binance.com",
        "the exchange's API by default"
    );
    assert_eq!(
        (stored.exchange, stored.feed),
        (Some(Exchange::Binance), Some(ExchangeFeed::Announcements))
    );
    let read = store.get_source(stored.id).await.unwrap();
    assert_eq!(read.exchange, Some(Exchange::Binance));

    let mut api = source("listings-api");
    api.kind = SourceKind::Json;
    assert!(
        matches!(store.create_source(&api).await, Err(Error::Invalid(message)) if message.starts_with("json:"))
    );
    api.json = Some(JsonMapping {
        items: "/items".into(),
        title: "/name".into(),
        link: Some("/href".into()),
        ..JsonMapping::default()
    });
    let created = store.create_source(&api).await.unwrap();
    assert_eq!(created.json, api.json);
    // A project's own account, marked as such.
    let mut official = source("velora-x");
    official.kind = SourceKind::X;
    official.url = String::new();
    official.account = Some("@VeloraHQ".into());
    official.provenance = Some(Provenance::Official);
    let stored = store.create_source(&official).await.unwrap();
    assert_eq!(
        stored.account.as_deref(),
        Some("VeloraHQ"),
        "kept without its @"
    );
    assert_eq!(stored.provenance, Some(Provenance::Official));
    assert_eq!(stored.url, "https://api.twitter.com");
    // A field of another kind is refused, naming it.
    let mut rss = source("mixed");
    rss.exchange = Some(Exchange::Okx);
    assert!(
        matches!(store.create_source(&rss).await, Err(Error::Invalid(message)) if message.contains("only for exchange sources"))
    );
    // Changing kind drops what belonged to the old one.
    let plain = store
        .update_source(created.id, &source("listings-api"))
        .await
        .unwrap();
    assert_eq!((plain.kind, plain.json), (SourceKind::Rss, None));
}

pub async fn market_lists_tell_new_symbols_from_known_ones(store: Arc<dyn Store>) {
    use MarketType::{Perp, Spot};
    let at = Utc::now();
    let first = vec![
        listing(Spot, "BTCUSDT", "BTC"),
        listing(Spot, "ETHUSDT", "ETH"),
    ];
    // The first read of a market type announces nothing and is remembered.
    let seen = store
        .market_changes(Exchange::Binance, &first)
        .await
        .unwrap();
    assert_eq!((seen.first_reads, seen.new.len()), (vec![Spot], 0));
    store
        .record_markets(Exchange::Binance, &first, at)
        .await
        .unwrap();
    let bybit = vec![listing(Spot, "BTCUSDT", "BTC")];
    store
        .record_markets(Exchange::Bybit, &bybit, at)
        .await
        .unwrap();

    // A symbol new to Binance: a first listing when no exchange has its asset...
    let mut second = first.clone();
    second.push(listing(Spot, "VLRUSDT", "VLR"));
    // ...a new market of an asset Binance already has...
    second.push(listing(Spot, "ETHUSDC", "ETH"));
    // ...and a perpetual list read for the first time: remembered, not announced.
    second.push(listing(Perp, "BTCUSDT", "BTC"));
    let seen = store
        .market_changes(Exchange::Binance, &second)
        .await
        .unwrap();
    assert_eq!(seen.first_reads, vec![Perp]);
    let new: Vec<(&str, bool)> = seen
        .new
        .iter()
        .map(|new| (new.listing.symbol.as_str(), new.is_first_listing()))
        .collect();
    assert_eq!(new, vec![("VLRUSDT", true), ("ETHUSDC", false)]);
    assert!(seen.new[1].base_on_this_exchange);
    // Reading is not remembering: the same read again finds the same.
    assert_eq!(
        store
            .market_changes(Exchange::Binance, &second)
            .await
            .unwrap(),
        seen
    );
    store
        .record_markets(Exchange::Binance, &second, at)
        .await
        .unwrap();
    store
        .record_markets(Exchange::Binance, &second, at)
        .await
        .unwrap();
    let after = store
        .market_changes(Exchange::Binance, &second)
        .await
        .unwrap();
    assert!(
        after.new.is_empty() && after.first_reads.is_empty(),
        "{after:?}"
    );

    // VLR appearing on Bybit later: a secondary listing, naming where it trades.
    let mut later = bybit.clone();
    later.push(listing(Spot, "VLRUSDT", "VLR"));
    let seen = store.market_changes(Exchange::Bybit, &later).await.unwrap();
    assert_eq!(seen.new.len(), 1);
    assert!(!seen.new[0].is_first_listing());
    assert_eq!(seen.new[0].base_elsewhere, vec!["binance".to_owned()]);
    assert!(!seen.new[0].base_on_this_exchange);
}

pub async fn listed_tokens_are_first_reads_and_old_sightings(store: Arc<dyn Store>) {
    use MarketType::{Perp, Spot};
    let day = |d: u32| Utc.with_ymd_and_hms(2026, 11, d, 9, 0, 0).unwrap();
    assert!(store.listed_tokens(day(30)).await.unwrap().is_empty());
    // Binance's spot list read first on the 1st: BTC and ETH traded before the swarm looked.
    let spot = vec![
        listing(Spot, "BTCUSDT", "BTC"),
        listing(Spot, "ETHUSDT", "ETH"),
    ];
    store
        .record_markets(Exchange::Binance, &spot, day(1))
        .await
        .unwrap();
    // VLR appears on the 10th, NRV on the 20th; its perpetual list is first read on the 20th.
    store
        .record_markets(
            Exchange::Binance,
            &[listing(Spot, "VLRUSDT", "VLR")],
            day(10),
        )
        .await
        .unwrap();
    store
        .record_markets(
            Exchange::Binance,
            &[listing(Spot, "NRVUSDT", "NRV")],
            day(20),
        )
        .await
        .unwrap();
    store
        .record_markets(
            Exchange::Binance,
            &[listing(Perp, "QLOUSDT", "QLO")],
            day(20),
        )
        .await
        .unwrap();
    // Bybit lists VLR too, from its own first read on the 5th (before Binance did).
    store
        .record_markets(Exchange::Bybit, &[listing(Spot, "VLRUSDT", "VLR")], day(5))
        .await
        .unwrap();
    // NRV is in OKX's first read on the 22nd, after it appeared on Binance: it is launching.
    store
        .record_markets(Exchange::Okx, &[listing(Spot, "NRV-USDT", "NRV")], day(22))
        .await
        .unwrap();

    let view = |tokens: Vec<ListedToken>| -> Vec<(String, String, String, u32, bool)> {
        tokens
            .into_iter()
            .map(|t| {
                (
                    t.base,
                    t.exchange,
                    t.market,
                    t.first_seen_at.day(),
                    t.in_first_read,
                )
            })
            .collect()
    };
    let owned = |base: &str, exchange: &str, market: &str, day: u32, first: bool| {
        (
            base.to_owned(),
            exchange.to_owned(),
            market.to_owned(),
            day,
            first,
        )
    };
    // Seen before the 15th: first reads always count, VLR by its earliest sighting (Bybit's
    // first read), NRV not yet: its earliest sighting is Binance's, a new symbol, not OKX's
    // first read.
    assert_eq!(
        view(store.listed_tokens(day(15)).await.unwrap()),
        vec![
            owned("BTC", "binance", "spot", 1, true),
            owned("ETH", "binance", "spot", 1, true),
            owned("QLO", "binance", "perp", 20, true),
            owned("VLR", "bybit", "spot", 5, true),
        ]
    );
    // Before the 25th NRV counts too, as a sighting, not a first read.
    let later = view(store.listed_tokens(day(25)).await.unwrap());
    assert_eq!(later.len(), 5);
    assert_eq!(later[1], owned("ETH", "binance", "spot", 1, true));
    assert_eq!(later[2], owned("NRV", "binance", "spot", 20, false));
}
