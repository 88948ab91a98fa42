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
    // Binance's spot list read first on the 1st: 300 symbols (more than one statement) that
    // traded before the swarm looked, and XPR shown before its trading opens.
    let mut spot: Vec<MarketListing> = (0..300)
        .map(|i| listing(Spot, &format!("T{i:03}USDT"), &format!("T{i:03}")))
        .collect();
    spot.push(listing(Spot, "BTCUSDT", "BTC"));
    let mut pre = listing(Spot, "XPRUSDT", "XPR");
    pre.status = Some("pre_trading".into());
    spot.push(pre);
    // Later on Binance: a second quote of BTC, VLR on the 10th and NRV on the 20th; its
    // perpetual list is first read on the 20th. Bybit lists VLR too, from its own first read
    // on the 5th (before Binance did); NRV is in OKX's first read on the 22nd, after it
    // appeared on Binance: it is launching.
    let reads = [
        (Exchange::Binance, spot, 1),
        (
            Exchange::Binance,
            vec![
                listing(Spot, "BTCUSDC", "BTC"),
                listing(Spot, "VLRUSDT", "VLR"),
            ],
            10,
        ),
        (Exchange::Binance, vec![listing(Spot, "NRVUSDT", "NRV")], 20),
        (Exchange::Binance, vec![listing(Perp, "QLOUSDT", "QLO")], 20),
        (Exchange::Bybit, vec![listing(Spot, "VLRUSDT", "VLR")], 5),
        (Exchange::Okx, vec![listing(Spot, "NRV-USDT", "NRV")], 22),
    ];
    for (exchange, listings, on) in reads {
        store
            .record_markets(exchange, &listings, day(on))
            .await
            .unwrap();
    }

    type Row = (String, String, String, u32, bool);
    let view = |tokens: Vec<ListedToken>| -> Vec<Row> {
        tokens
            .into_iter()
            .filter(|t| !t.base.starts_with('T'))
            .map(|t| {
                let day = t.first_seen_at.day();
                (t.base, t.exchange, t.market, day, t.in_first_read)
            })
            .collect()
    };
    let row = |base: &str, exchange: &str, market: &str, day: u32, first: bool| -> Row {
        (base.into(), exchange.into(), market.into(), day, first)
    };
    // The first reads' trading symbols count whatever the cut: BTC once, by its first read,
    // all 300 of the others, and VLR by its earliest sighting, Bybit's first read. Not XPR:
    // it was not trading when first read, so it counts as a sighting of the 1st.
    let first_reads = store.listed_tokens(day(1)).await.unwrap();
    assert_eq!(
        first_reads
            .iter()
            .filter(|t| t.base.starts_with('T'))
            .count(),
        300
    );
    assert_eq!(
        view(first_reads),
        vec![
            row("BTC", "binance", "spot", 1, true),
            row("QLO", "binance", "perp", 20, true),
            row("VLR", "bybit", "spot", 5, true),
        ]
    );
    // Seen before the 15th: XPR too, not NRV (first seen on the 20th as a new Binance
    // symbol; OKX's first read later does not make it old).
    assert_eq!(
        view(store.listed_tokens(day(15)).await.unwrap()),
        vec![
            row("BTC", "binance", "spot", 1, true),
            row("QLO", "binance", "perp", 20, true),
            row("VLR", "bybit", "spot", 5, true),
            row("XPR", "binance", "spot", 1, false),
        ]
    );
    // A sighting counts when strictly before the cut: NRV at the 20th, not at 20th 09:00.
    let at_nrv = view(store.listed_tokens(day(20)).await.unwrap());
    assert!(at_nrv.iter().all(|(base, ..)| base != "NRV"), "{at_nrv:?}");
    // Before the 25th NRV and XPR count, as sightings.
    assert_eq!(
        view(store.listed_tokens(day(25)).await.unwrap()),
        vec![
            row("BTC", "binance", "spot", 1, true),
            row("NRV", "binance", "spot", 20, false),
            row("QLO", "binance", "perp", 20, true),
            row("VLR", "bybit", "spot", 5, true),
            row("XPR", "binance", "spot", 1, false),
        ]
    );
}

/// Rows stored before the market lists kept their first reads get them from their times: a
/// first read was written with one timestamp, the oldest of its exchange and market type.
#[tokio::test]
async fn market_rows_stored_before_first_reads_were_kept_get_them() {
    use swarm_shared::ports::postgres::PgStore;
    use swarm_shared::ports::sqlite::SqliteStore;

    const OLDER_ROWS: &str = "INSERT INTO exchange_markets \
        (exchange, market, symbol, base, quote, first_seen_at) VALUES \
        ('binance', 'spot', 'BTCUSDT', 'BTC', 'USDT', 1000), \
        ('binance', 'spot', 'ETHUSDT', 'ETH', 'USDT', 1000), \
        ('binance', 'spot', 'VLRUSDT', 'VLR', 'USDT', 5000), \
        ('gate', 'spot', 'VLR_USDT', 'VLR', 'USDT', 9000)";
    async fn check(store: &dyn Store) {
        let tokens = store
            .listed_tokens(Utc.timestamp_millis_opt(2000).unwrap())
            .await
            .unwrap();
        let seen: Vec<(String, bool)> = tokens
            .into_iter()
            .map(|t| (t.base, t.in_first_read))
            .collect();
        assert_eq!(
            seen,
            [("BTC".to_owned(), true), ("ETH".to_owned(), true)],
            "VLR is a later Binance symbol, not old enough; Gate's first read came after it"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("older.sqlite");
    super::older_sqlite(&path, "market first reads", &[OLDER_ROWS])
        .await
        .close()
        .await;
    check(&SqliteStore::open(&path).await.unwrap()).await;

    let (url, pool) = super::older_postgres("market first reads", &[OLDER_ROWS]).await;
    pool.close().await;
    check(&PgStore::connect(&url).await.unwrap()).await;
}
