//! The exchange connectors against a local server that answers every exchange's announcement
//! and market-list paths in its documented shape (fixtures written for these tests from the
//! exchanges' API documentation): each exchange's notices with their own time, link and
//! category; paging; market lists with a cursor; and every way a call goes wrong (429 with
//! Retry-After, 5xx, invalid JSON, a changed shape, the API's own error code).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use swarm_agents::scraping::exchange::{self, Failure, Read};
use swarm_agents::scraping::fetch::{FetchError, Fetcher};
use swarm_agents::scraping::parse::Limits;
use swarm_shared::config::ScrapingConfig;
use swarm_shared::domain::{
    Exchange, ExchangeFeed, FetchStatus, MarketType, ScrapeTask, Source, SourceKind,
};

/// How the server answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    RateLimited,
    ServerError,
    Malformed,
    Renamed,
    ApiError,
}

struct Simulator {
    mode: Mutex<Mode>,
    /// Notices, newest first: (title, code, published ms).
    notices: Mutex<Vec<(String, String, i64)>>,
    /// Every request's path and query, in order.
    requests: Mutex<Vec<String>>,
}

type Shared = Arc<Simulator>;

fn notice(n: usize, at: i64) -> (String, String, i64) {
    (
        format!("Notice {n}: Listing of Token{n} (TK{n})"),
        format!("c{n}"),
        at,
    )
}

const T0: i64 = 1_780_000_000_000; // 2026-05-28T20:26:40Z

fn page_of(
    state: &Shared,
    query: &HashMap<String, String>,
    key: &str,
) -> Vec<(String, String, i64)> {
    let page: usize = query.get(key).and_then(|p| p.parse().ok()).unwrap_or(1);
    let notices = state.notices.lock().unwrap();
    notices
        .iter()
        .skip((page - 1) * 20)
        .take(20)
        .cloned()
        .collect()
}

/// Each exchange's announcement response, in its documented shape.
fn announcements(path: &str, state: &Shared, query: &HashMap<String, String>) -> Option<Value> {
    Some(match path {
        "/bapi/composite/v1/public/cms/article/list/query" => {
            let articles: Vec<Value> = page_of(state, query, "pageNo")
                .into_iter()
                .map(|(title, code, at)| json!({"id": 1, "code": code, "title": title, "type": 1, "releaseDate": at}))
                .collect();
            json!({"code": "000000", "message": null, "messageDetail": null,
                   "data": {"catalogs": [{"catalogId": 48, "catalogName": "New Cryptocurrency Listing", "articles": articles, "total": 3}]},
                   "success": true})
        }
        "/v5/announcements/index" => {
            let list: Vec<Value> = page_of(state, query, "page")
                .into_iter()
                .map(|(title, code, at)| json!({"title": title, "description": format!("{title} on Bybit"),
                    "type": {"title": "New Listings", "key": "new_crypto"}, "tags": ["Spot"],
                    "url": format!("https://announcements.bybit.com/en-US/article/{code}"),
                    "dateTimestamp": at, "startDateTimestamp": at, "endDateTimestamp": at, "publishTime": at}))
                .collect();
            json!({"retCode": 0, "retMsg": "OK", "result": {"total": list.len(), "list": list}, "retExtInfo": {}, "time": T0})
        }
        "/api/v5/support/announcements" => {
            let details: Vec<Value> = page_of(state, query, "page")
                .into_iter()
                .map(|(title, code, at)| json!({"annType": "announcements-new-listings", "title": title,
                    "url": format!("https://www.okx.com/help/{code}"), "pTime": at.to_string(), "businessPTime": at.to_string()}))
                .collect();
            json!({"code": "0", "msg": "", "data": [{"details": details, "totalPage": "1"}]})
        }
        "/api/v2/public/annoucements" => {
            let data: Vec<Value> = page_of(state, query, "none")
                .into_iter()
                .map(|(title, code, at)| json!({"annId": code, "annTitle": title, "annDesc": "Bitget will list it",
                    "cTime": at.to_string(), "language": "en_US", "annUrl": format!("https://www.bitget.com/support/articles/{code}")}))
                .collect();
            json!({"code": "00000", "msg": "success", "requestTime": T0, "data": data})
        }
        "/api/v3/announcements" if query.contains_key("annType") => {
            let items: Vec<Value> = page_of(state, query, "currentPage")
                .into_iter()
                .map(|(title, code, at)| json!({"annId": 1, "annTitle": title, "annType": ["latest-announcements", "new-listings"],
                    "annDesc": "KuCoin lists it", "cTime": at, "language": "en_US", "annUrl": format!("https://www.kucoin.com/announcement/{code}")}))
                .collect();
            json!({"code": "200000", "data": {"totalNum": items.len(), "totalPage": 1, "currentPage": 1, "pageSize": 20, "items": items}})
        }
        "/api/v3/announcements" => {
            let details: Vec<Value> = page_of(state, query, "page")
                .into_iter()
                .map(|(title, code, at)| json!({"title": title, "url": format!("https://www.mexc.com/support/articles/{code}"), "language": "en-US", "postTime": at}))
                .collect();
            json!({"code": 0, "data": [{"details": details, "totalPage": 1}]})
        }
        "/api/v1/announcements" => {
            let notices: Vec<Value> = page_of(state, query, "page")
                .into_iter()
                .map(|(title, code, at)| {
                    let kst = Utc.timestamp_millis_opt(at).unwrap().with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap());
                    json!({"id": code.trim_start_matches('c').parse::<i64>().unwrap(), "title": title, "category": "Trade",
                           "listed_at": kst.to_rfc3339(), "first_listed_at": kst.to_rfc3339(), "need_new_badge": false})
                })
                .collect();
            json!({"success": true, "data": {"total_pages": 1, "total_count": notices.len(), "notices": notices, "fixed_notices": []}})
        }
        _ => return None,
    })
}

fn cursor_page(query: &HashMap<String, String>) -> Value {
    // Bybit linear: two pages joined by a cursor.
    if query.get("cursor").map(String::as_str) == Some("p2") {
        json!({"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "nextPageCursor": "",
            "list": [{"symbol": "NEWUSDT", "contractType": "LinearPerpetual", "status": "PreLaunch", "baseCoin": "NEW", "quoteCoin": "USDT", "launchTime": "1780000000000"}]}})
    } else {
        json!({"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "nextPageCursor": "p2",
            "list": [{"symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "BTC", "quoteCoin": "USDT", "launchTime": "1585526400000"},
                     {"symbol": "BTC-26DEC26", "contractType": "LinearFutures", "status": "Trading", "baseCoin": "BTC", "quoteCoin": "USDC", "launchTime": "1585526400000"}]}})
    }
}

/// Each exchange's market lists, in their documented shapes (one old symbol and one new).
fn markets(path: &str, query: &HashMap<String, String>) -> Option<Value> {
    Some(match path {
        "/api/v3/exchangeInfo" => json!({"timezone": "UTC", "serverTime": T0, "symbols": [
            {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "isSpotTradingAllowed": true},
            {"symbol": "NEWUSDT", "status": "PRE_TRADING", "baseAsset": "NEW", "quoteAsset": "USDT", "isSpotTradingAllowed": true}]}),
        "/fapi/v1/exchangeInfo" => json!({"symbols": [
            {"symbol": "BTCUSDT", "pair": "BTCUSDT", "contractType": "PERPETUAL", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "onboardDate": 1569398400000_i64},
            {"symbol": "BTCUSDT_261225", "pair": "BTCUSDT", "contractType": "CURRENT_QUARTER", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "onboardDate": 1569398400000_i64}]}),
        "/v5/market/instruments-info"
            if query.get("category").map(String::as_str) == Some("linear") =>
        {
            cursor_page(query)
        }
        "/v5/market/instruments-info" => {
            json!({"retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [
            {"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "status": "Trading"}]}})
        }
        "/api/v5/public/instruments"
            if query.get("instType").map(String::as_str) == Some("SWAP") =>
        {
            json!({"code": "0", "msg": "", "data": [
            {"instId": "NEW-USDT-SWAP", "instType": "SWAP", "ctValCcy": "NEW", "settleCcy": "USDT", "state": "preopen", "listTime": "1780000000000"}]})
        }
        "/api/v5/public/instruments" => json!({"code": "0", "msg": "", "data": [
            {"instId": "BTC-USDT", "instType": "SPOT", "baseCcy": "BTC", "quoteCcy": "USDT", "state": "live", "listTime": "1548133413000"}]}),
        "/api/v2/spot/public/symbols" => json!({"code": "00000", "msg": "success", "data": [
            {"symbol": "NEWUSDT", "baseCoin": "NEW", "quoteCoin": "USDT", "status": "gray"}]}),
        "/api/v2/mix/market/contracts" => json!({"code": "00000", "msg": "success", "data": [
            {"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "symbolType": "perpetual", "symbolStatus": "normal", "launchTime": ""}]}),
        "/api/v2/symbols" => json!({"code": "200000", "data": [
            {"symbol": "NEW-USDT", "baseCurrency": "NEW", "quoteCurrency": "USDT", "enableTrading": true}]}),
        "/api/v1/contracts/active" => json!({"code": "200000", "data": [
            {"symbol": "XBTUSDTM", "rootSymbol": "USDT", "type": "FFWCSX", "baseCurrency": "XBT", "quoteCurrency": "USDT", "firstOpenDate": 1585555200000_i64}]}),
        "/api/v4/spot/currency_pairs" => json!([
            {"id": "NEW_USDT", "base": "NEW", "quote": "USDT", "trade_status": "tradable", "buy_start": 1780000000}]),
        "/api/v4/futures/usdt/contracts" => {
            json!([{"name": "BTC_USDT", "type": "direct", "in_delisting": false}])
        }
        "/api/v1/contract/detail" => json!({"success": true, "code": 0, "data": [
            {"symbol": "NEW_USDT", "baseCoin": "NEW", "quoteCoin": "USDT", "settleCoin": "USDT", "state": 0}]}),
        "/v1/market/all" => {
            json!([{"market": "KRW-NEW", "korean_name": "뉴", "english_name": "New"}])
        }
        _ => return None,
    })
}

async fn handler(
    State(state): State<Shared>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    state.requests.lock().unwrap().push(uri.to_string());
    let mode = *state.mode.lock().unwrap();
    match mode {
        Mode::RateLimited => {
            return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")]).into_response();
        }
        Mode::ServerError => return StatusCode::BAD_GATEWAY.into_response(),
        Mode::Malformed => {
            return (
                [(header::CONTENT_TYPE, "application/json")],
                "{\"retCode\": 0, \"result\": {\"list\": [",
            )
                .into_response();
        }
        Mode::Renamed => {
            return axum::Json(json!({"retCode": 0, "retMsg": "OK", "result": {"rows": []}}))
                .into_response();
        }
        Mode::ApiError => {
            return axum::Json(
                json!({"retCode": 10006, "retMsg": "Too many visits!", "result": {}}),
            )
            .into_response();
        }
        Mode::Normal => {}
    }
    let path = uri.path();
    match announcements(path, &state, &query).or_else(|| markets(path, &query)) {
        Some(body) => axum::Json(body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn server(notices: usize) -> (SocketAddr, Shared) {
    let state = Arc::new(Simulator {
        mode: Mutex::new(Mode::Normal),
        notices: Mutex::new(
            (0..notices)
                .map(|n| notice(n, T0 - n as i64 * 60_000))
                .collect(),
        ),
        requests: Mutex::new(Vec::new()),
    });
    let router = Router::new().fallback(handler).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, state)
}

fn fetcher() -> Fetcher {
    Fetcher::new(&ScrapingConfig {
        retries: 0,
        timeout: Duration::from_secs(5),
        allow_hosts: vec!["127.0.0.1".into()],
        ..ScrapingConfig::default()
    })
    .unwrap()
}

fn task(
    addr: SocketAddr,
    exchange: Exchange,
    feed: ExchangeFeed,
    last_fetch_at: Option<DateTime<Utc>>,
) -> ScrapeTask {
    ScrapeTask {
        source: Source {
            provenance: None,
            id: 1,
            name: format!("{}-{}", exchange.as_str(), feed.as_str()),
            kind: SourceKind::Exchange,
            url: format!("http://{addr}"),
            interval: Duration::from_secs(30),
            selectors: None,
            exchange: Some(exchange),
            feed: Some(feed),
            json: None,
            channel: None,
            query: None,
            account: None,
            tier: 1,
            enabled: true,
            created_at: Utc::now(),
            last_fetch_at,
            last_status: last_fetch_at.map(|_| FetchStatus::Ok),
            last_error: None,
            consecutive_failures: 0,
            last_item_count: 0,
            effective_interval: None,
            content_hash: None,
            etag: None,
            last_modified: None,
            down_since: None,
            down_reason: None,
        },
        scheduled_at: Utc::now(),
        etag: None,
        last_modified: None,
        content_hash: None,
    }
}

async fn read(task: &ScrapeTask) -> Result<Read, Failure> {
    exchange::read(&fetcher(), task, &Limits::default()).await
}

#[tokio::test]
async fn every_exchange_notice_keeps_its_own_time_link_and_category() {
    let (addr, _) = server(3).await;
    let want_link = |exchange: Exchange, code: &str| match exchange {
        Exchange::Binance => format!("https://www.binance.com/en/support/announcement/{code}"),
        Exchange::Bybit => format!("https://announcements.bybit.com/en-US/article/{code}"),
        Exchange::Okx => format!("https://www.okx.com/help/{code}"),
        Exchange::Bitget => format!("https://www.bitget.com/support/articles/{code}"),
        Exchange::Kucoin => format!("https://www.kucoin.com/announcement/{code}"),
        Exchange::Mexc => format!("https://www.mexc.com/support/articles/{code}"),
        Exchange::Upbit => format!(
            "https://upbit.com/service_center/notice?id={}",
            code.trim_start_matches('c')
        ),
        Exchange::Gate => unreachable!("no REST announcements"),
    };
    let want_category = |exchange: Exchange| match exchange {
        Exchange::Binance => Some("New Cryptocurrency Listing"),
        Exchange::Bybit => Some("New Listings"),
        Exchange::Okx => Some("announcements-new-listings"),
        Exchange::Bitget => Some("coin_listings"),
        Exchange::Kucoin => Some("latest-announcements, new-listings"),
        Exchange::Upbit => Some("Trade"),
        Exchange::Mexc | Exchange::Gate => None,
    };
    for exchange in Exchange::ALL.into_iter().filter(|e| *e != Exchange::Gate) {
        let Ok(Read::Notices {
            items,
            content_hash,
            ..
        }) = read(&task(addr, exchange, ExchangeFeed::Announcements, None)).await
        else {
            panic!("{exchange:?}: no notices read")
        };
        assert!(!content_hash.is_empty());
        assert_eq!(items.len(), 3, "{exchange:?}");
        for (n, item) in items.iter().enumerate() {
            assert_eq!(
                item.title,
                format!("Notice {n}: Listing of Token{n} (TK{n})"),
                "{exchange:?}"
            );
            assert_eq!(
                item.link.as_deref(),
                Some(want_link(exchange, &format!("c{n}")).as_str()),
                "{exchange:?}"
            );
            let at = Utc.timestamp_millis_opt(T0 - n as i64 * 60_000).unwrap();
            assert_eq!(
                item.published,
                Some(at),
                "{exchange:?}: the notice's own time, in UTC"
            );
            assert_eq!(
                item.category.as_deref(),
                want_category(exchange),
                "{exchange:?}"
            );
        }
    }
    // Gate has no REST announcements: its source reads the WebSocket channel on its API
    // host (`gate_notices_pushed_on_its_channel_become_events` in the e2e tests).
    let gate = swarm_shared::domain::SourceInput {
        provenance: None,
        name: "gate".into(),
        kind: SourceKind::Exchange,
        url: String::new(),
        interval: Duration::from_secs(30),
        selectors: None,
        exchange: Some(Exchange::Gate),
        feed: Some(ExchangeFeed::Announcements),
        json: None,
        channel: None,
        query: None,
        account: None,
        tier: 1,
        enabled: true,
    };
    gate.validate().unwrap();
    assert_eq!(gate.effective_url(), "https://api.gateio.ws");
}

#[tokio::test]
async fn announcements_page_back_only_to_the_last_read() {
    let (addr, state) = server(45).await;
    let requests = |state: &Shared| std::mem::take(&mut *state.requests.lock().unwrap());
    // First read: the newest page only, whatever lies beyond it.
    let Ok(Read::Notices { items, .. }) = read(&task(
        addr,
        Exchange::Bybit,
        ExchangeFeed::Announcements,
        None,
    ))
    .await
    else {
        panic!()
    };
    assert_eq!(items.len(), 20);
    assert_eq!(requests(&state).len(), 1);
    // Read before the newest 30 notices were posted: all of page 1 is newer than that read,
    // page 2 reaches past it, so two pages are read and no third.
    let last = Utc.timestamp_millis_opt(T0 - 30 * 60_000 - 1).unwrap();
    let Ok(Read::Notices { items, .. }) = read(&task(
        addr,
        Exchange::Bybit,
        ExchangeFeed::Announcements,
        Some(last),
    ))
    .await
    else {
        panic!()
    };
    let asked = requests(&state);
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[1].contains("page=2"), "{asked:?}");
    assert_eq!(items.len(), 40);
    // Read a minute ago: nothing beyond the first page can be new.
    let recent = Utc.timestamp_millis_opt(T0 - 90_000).unwrap();
    let Ok(Read::Notices { items, .. }) = read(&task(
        addr,
        Exchange::Kucoin,
        ExchangeFeed::Announcements,
        Some(recent),
    ))
    .await
    else {
        panic!()
    };
    assert_eq!((items.len(), requests(&state).len()), (20, 1));
    // The same first page as last time: unchanged, nothing parsed.
    let Ok(Read::Notices { content_hash, .. }) = read(&task(
        addr,
        Exchange::Okx,
        ExchangeFeed::Announcements,
        None,
    ))
    .await
    else {
        panic!()
    };
    let mut again = task(addr, Exchange::Okx, ExchangeFeed::Announcements, None);
    again.content_hash = Some(content_hash);
    assert!(matches!(read(&again).await, Ok(Read::Unchanged)));
}

#[tokio::test]
async fn every_failure_is_a_clear_source_error() {
    let (addr, state) = server(3).await;
    let bybit = task(addr, Exchange::Bybit, ExchangeFeed::Announcements, None);
    let set = |mode| *state.mode.lock().unwrap() = mode;

    set(Mode::RateLimited);
    match read(&bybit).await {
        Err(Failure::Fetch(err)) => {
            assert!(err.is_rate_limited(), "{err}");
            assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        }
        other => panic!("429: {other:?}"),
    }
    set(Mode::ServerError);
    match read(&bybit).await {
        Err(Failure::Fetch(err @ FetchError::Status { status: 502, .. })) => {
            assert!(err.is_transient())
        }
        other => panic!("502: {other:?}"),
    }
    let parse_error = |result: Result<Read, Failure>| match result {
        Err(Failure::Parse(reason)) => reason,
        other => panic!("expected a parse error, got {other:?}"),
    };
    set(Mode::Malformed);
    let reason = parse_error(read(&bybit).await);
    assert!(
        reason.starts_with("invalid JSON: EOF while parsing"),
        "{reason}"
    );
    set(Mode::Renamed);
    assert_eq!(
        parse_error(read(&bybit).await),
        "unexpected response shape: no value at /result/list"
    );
    set(Mode::ApiError);
    assert_eq!(
        parse_error(read(&bybit).await),
        "the API reported an error: code 10006: Too many visits!"
    );
    // A market list that changed shape names the list it came from.
    let reason = parse_error(read(&task(addr, Exchange::Bybit, ExchangeFeed::Markets, None)).await);
    assert_eq!(
        reason,
        "Bybit spot market list: the API reported an error: code 10006: Too many visits!"
    );
    set(Mode::Normal);
    assert!(matches!(read(&bybit).await, Ok(Read::Notices { .. })));
}

#[tokio::test]
async fn every_exchange_market_list_is_read_in_its_documented_shape() {
    let (addr, state) = server(0).await;
    for exchange in Exchange::ALL {
        let Ok(Read::Markets {
            exchange: read_from,
            listings,
            ..
        }) = read(&task(addr, exchange, ExchangeFeed::Markets, None)).await
        else {
            panic!("{exchange:?}: no market lists read")
        };
        assert_eq!(read_from, exchange);
        let names: Vec<(MarketType, &str, &str, &str)> = listings
            .iter()
            .map(|l| {
                (
                    l.market,
                    l.symbol.as_str(),
                    l.base.as_str(),
                    l.quote.as_str(),
                )
            })
            .collect();
        use MarketType::{Perp, Spot};
        let want: Vec<(MarketType, &str, &str, &str)> = match exchange {
            // Quarterly futures are not perpetuals.
            Exchange::Binance => vec![
                (Spot, "BTCUSDT", "BTC", "USDT"),
                (Spot, "NEWUSDT", "NEW", "USDT"),
                (Perp, "BTCUSDT", "BTC", "USDT"),
            ],
            // The linear list's second page, by its cursor.
            Exchange::Bybit => vec![
                (Spot, "BTCUSDT", "BTC", "USDT"),
                (Perp, "BTCUSDT", "BTC", "USDT"),
                (Perp, "NEWUSDT", "NEW", "USDT"),
            ],
            Exchange::Okx => vec![
                (Spot, "BTC-USDT", "BTC", "USDT"),
                (Perp, "NEW-USDT-SWAP", "NEW", "USDT"),
            ],
            Exchange::Bitget => vec![
                (Spot, "NEWUSDT", "NEW", "USDT"),
                (Perp, "BTCUSDT", "BTC", "USDT"),
            ],
            Exchange::Kucoin => vec![
                (Spot, "NEW-USDT", "NEW", "USDT"),
                (Perp, "XBTUSDTM", "XBT", "USDT"),
            ],
            Exchange::Gate => vec![
                (Spot, "NEW_USDT", "NEW", "USDT"),
                (Perp, "BTC_USDT", "BTC", "USDT"),
            ],
            Exchange::Mexc => vec![
                (Spot, "BTCUSDT", "BTC", "USDT"),
                (Spot, "NEWUSDT", "NEW", "USDT"),
                (Perp, "NEW_USDT", "NEW", "USDT"),
            ],
            Exchange::Upbit => vec![(Spot, "KRW-NEW", "NEW", "KRW")],
        };
        assert_eq!(names, want, "{exchange:?}");
    }
    let asked = state.requests.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .any(|uri| uri.contains("category=linear") && uri.contains("cursor=p2")),
        "{asked:?}"
    );
    // Where the exchange says when a market opens, it is kept.
    let Ok(Read::Markets { listings, .. }) =
        read(&task(addr, Exchange::Okx, ExchangeFeed::Markets, None)).await
    else {
        panic!()
    };
    assert_eq!(
        listings[1].listed_at,
        Some(Utc.timestamp_millis_opt(T0).unwrap())
    );
    assert_eq!(listings[1].status.as_deref(), Some("preopen"));
}
