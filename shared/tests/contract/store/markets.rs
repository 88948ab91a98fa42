//! Primary sources in the store: exchange and JSON sources keep their settings, and market
//! lists are remembered so that a symbol appearing is told apart from one seen before.

use std::sync::Arc;

use chrono::Utc;
use swarm_shared::Error;
use swarm_shared::domain::{
    Exchange, ExchangeFeed, JsonMapping, MarketListing, MarketType, Provenance, SourceKind,
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
