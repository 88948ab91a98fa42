//! Each exchange's public market lists (spot pairs and perpetual contracts): where they are,
//! their documented shapes, and how one page leads to the next where the list pages.

use chrono::{DateTime, Utc};
use serde_json::Value;
use swarm_shared::domain::{Exchange, MarketListing, MarketType};

use super::super::parse::ParseError;
use super::super::parse::json::{array_at, json_date, text_at};
use super::Envelope;

/// One market list of an exchange.
#[derive(Debug, Clone, Copy)]
pub struct MarketList {
    /// Spot or perpetual.
    pub market: MarketType,
    /// The exchange's own host for it (a configured `url` replaces it).
    pub host: &'static str,
    /// Path and query.
    pub path: &'static str,
    /// How the response says it failed.
    pub envelope: Option<Envelope>,
    /// Pointer to the next-page cursor and the query parameter that sends it back.
    pub cursor: Option<(&'static str, &'static str)>,
    /// Reads the symbols of one response.
    read: fn(&Value) -> Result<Vec<MarketListing>, ParseError>,
}

impl MarketList {
    /// The symbols of one response, after its envelope is checked.
    pub fn parse(&self, root: &Value) -> Result<Vec<MarketListing>, ParseError> {
        if let Some(envelope) = &self.envelope {
            envelope.check(root)?;
        }
        (self.read)(root)
    }

    /// The cursor of the next page, when the response names one.
    pub fn next_cursor(&self, root: &Value) -> Option<(&'static str, String)> {
        let (pointer, parameter) = self.cursor?;
        text_at(root, pointer)
            .filter(|cursor| !cursor.is_empty())
            .map(|cursor| (parameter, cursor))
    }
}

/// Fields of one symbol: where each is in an item.
struct Fields {
    items: &'static str,
    symbol: &'static str,
    base: &'static str,
    quote: &'static str,
    status: Option<&'static str>,
    listed: Option<&'static str>,
    /// Keeps only items whose field at the pointer has this text (perpetuals among all
    /// contracts).
    only: Option<(&'static str, &'static str)>,
}

fn read(
    root: &Value,
    fields: &Fields,
    market: MarketType,
) -> Result<Vec<MarketListing>, ParseError> {
    let items = array_at(root, fields.items)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some((pointer, want)) = fields.only
            && text_at(item, pointer).as_deref() != Some(want)
        {
            continue;
        }
        let (Some(symbol), Some(base)) = (text_at(item, fields.symbol), text_at(item, fields.base))
        else {
            continue;
        };
        if symbol.trim().is_empty() || base.trim().is_empty() {
            continue;
        }
        out.push(MarketListing {
            market,
            symbol,
            base: base.trim().to_uppercase(),
            quote: text_at(item, fields.quote)
                .unwrap_or_default()
                .trim()
                .to_uppercase(),
            status: fields.status.and_then(|pointer| text_at(item, pointer)),
            listed_at: fields
                .listed
                .and_then(|pointer| item.pointer(pointer))
                .and_then(json_date)
                .filter(|at: &DateTime<Utc>| at.timestamp() > 0),
        });
    }
    if out.is_empty() && !items.is_empty() {
        return Err(ParseError::Schema(format!(
            "none of the {} items at {} has a symbol at {} and an asset at {}",
            items.len(),
            if fields.items.is_empty() {
                "/"
            } else {
                fields.items
            },
            fields.symbol,
            fields.base
        )));
    }
    Ok(out)
}

/// A list whose symbols are written `BASE<sep>QUOTE` (or `QUOTE<sep>BASE` when
/// `quote_first`) with no separate asset fields.
fn read_split(
    root: &Value,
    items: &'static str,
    symbol: &'static str,
    separator: char,
    quote_first: bool,
    market: MarketType,
) -> Result<Vec<MarketListing>, ParseError> {
    let values = array_at(root, items)?;
    let mut out = Vec::with_capacity(values.len());
    for item in values {
        let Some(name) = text_at(item, symbol) else {
            continue;
        };
        let Some((left, right)) = name.split_once(separator) else {
            continue;
        };
        let (base, quote) = if quote_first {
            (right, left)
        } else {
            (left, right)
        };
        if base.is_empty() {
            continue;
        }
        out.push(MarketListing {
            market,
            symbol: name.clone(),
            base: base.to_uppercase(),
            quote: quote.to_uppercase(),
            status: None,
            listed_at: None,
        });
    }
    if out.is_empty() && !values.is_empty() {
        return Err(ParseError::Schema(format!(
            "none of the {} items at {} has a symbol `BASE{separator}QUOTE` at {symbol}",
            values.len(),
            if items.is_empty() { "/" } else { items },
        )));
    }
    Ok(out)
}

const BINANCE_SPOT: Fields = Fields {
    items: "/symbols",
    symbol: "/symbol",
    base: "/baseAsset",
    quote: "/quoteAsset",
    status: Some("/status"),
    listed: None,
    only: None,
};

const BYBIT_SPOT: Fields = Fields {
    items: "/result/list",
    symbol: "/symbol",
    base: "/baseCoin",
    quote: "/quoteCoin",
    status: Some("/status"),
    listed: None,
    only: None,
};

/// The market lists of `exchange`, spot first.
pub fn lists(exchange: Exchange) -> Vec<MarketList> {
    use MarketType::{Perp, Spot};
    let bybit = Some(Envelope::Code {
        pointer: "/retCode",
        ok: "0",
        message: "/retMsg",
    });
    let okx = Some(Envelope::Code {
        pointer: "/code",
        ok: "0",
        message: "/msg",
    });
    let bitget = Some(Envelope::Code {
        pointer: "/code",
        ok: "00000",
        message: "/msg",
    });
    let kucoin = Some(Envelope::Code {
        pointer: "/code",
        ok: "200000",
        message: "/msg",
    });
    let list = |market, host, path, envelope, read| MarketList {
        market,
        host,
        path,
        envelope,
        cursor: None,
        read,
    };
    match exchange {
        // developers.binance.com: spot and USDⓈ-M futures "Exchange Information".
        Exchange::Binance => vec![
            list(
                Spot,
                "https://api.binance.com",
                "/api/v3/exchangeInfo",
                None,
                |root| read(root, &BINANCE_SPOT, Spot),
            ),
            list(
                Perp,
                "https://fapi.binance.com",
                "/fapi/v1/exchangeInfo",
                None,
                |root| {
                    read(
                        root,
                        &Fields {
                            listed: Some("/onboardDate"),
                            only: Some(("/contractType", "PERPETUAL")),
                            ..BINANCE_SPOT
                        },
                        Perp,
                    )
                },
            ),
        ],
        // bybit-exchange.github.io/docs/v5/market/instrument (linear pages by cursor).
        Exchange::Bybit => vec![
            list(
                Spot,
                "https://api.bybit.com",
                "/v5/market/instruments-info?category=spot",
                bybit,
                |root| read(root, &BYBIT_SPOT, Spot),
            ),
            MarketList {
                cursor: Some(("/result/nextPageCursor", "cursor")),
                ..list(
                    Perp,
                    "https://api.bybit.com",
                    "/v5/market/instruments-info?category=linear&limit=1000",
                    bybit,
                    |root| {
                        read(
                            root,
                            &Fields {
                                listed: Some("/launchTime"),
                                only: Some(("/contractType", "LinearPerpetual")),
                                ..BYBIT_SPOT
                            },
                            Perp,
                        )
                    },
                )
            },
        ],
        // okx.com/docs-v5, "Get instruments". A swap's asset is its contract value currency.
        Exchange::Okx => vec![
            list(
                Spot,
                "https://www.okx.com",
                "/api/v5/public/instruments?instType=SPOT",
                okx,
                |root| {
                    read(
                        root,
                        &Fields {
                            items: "/data",
                            symbol: "/instId",
                            base: "/baseCcy",
                            quote: "/quoteCcy",
                            status: Some("/state"),
                            listed: Some("/listTime"),
                            only: None,
                        },
                        Spot,
                    )
                },
            ),
            list(
                Perp,
                "https://www.okx.com",
                "/api/v5/public/instruments?instType=SWAP",
                okx,
                |root| {
                    read(
                        root,
                        &Fields {
                            items: "/data",
                            symbol: "/instId",
                            base: "/ctValCcy",
                            quote: "/settleCcy",
                            status: Some("/state"),
                            listed: Some("/listTime"),
                            only: None,
                        },
                        Perp,
                    )
                },
            ),
        ],
        // bitget.com/api-doc: spot "Get Symbol Info", futures "Get All Symbols' Contract Config".
        Exchange::Bitget => vec![
            list(
                Spot,
                "https://api.bitget.com",
                "/api/v2/spot/public/symbols",
                bitget,
                |root| {
                    read(
                        root,
                        &Fields {
                            items: "/data",
                            symbol: "/symbol",
                            base: "/baseCoin",
                            quote: "/quoteCoin",
                            status: Some("/status"),
                            listed: None,
                            only: None,
                        },
                        Spot,
                    )
                },
            ),
            list(
                Perp,
                "https://api.bitget.com",
                "/api/v2/mix/market/contracts?productType=USDT-FUTURES",
                bitget,
                |root| {
                    read(
                        root,
                        &Fields {
                            items: "/data",
                            symbol: "/symbol",
                            base: "/baseCoin",
                            quote: "/quoteCoin",
                            status: Some("/symbolStatus"),
                            listed: Some("/launchTime"),
                            only: Some(("/symbolType", "perpetual")),
                        },
                        Perp,
                    )
                },
            ),
        ],
        // kucoin.com/docs: spot "Get All Symbols", futures "Get All Contract List".
        Exchange::Kucoin => vec![
            list(
                Spot,
                "https://api.kucoin.com",
                "/api/v2/symbols",
                kucoin,
                |root| {
                    read(
                        root,
                        &Fields {
                            items: "/data",
                            symbol: "/symbol",
                            base: "/baseCurrency",
                            quote: "/quoteCurrency",
                            status: Some("/enableTrading"),
                            listed: None,
                            only: None,
                        },
                        Spot,
                    )
                },
            ),
            list(
                Perp,
                "https://api-futures.kucoin.com",
                "/api/v1/contracts/active",
                kucoin,
                |root| {
                    read(
                        root,
                        &Fields {
                            items: "/data",
                            symbol: "/symbol",
                            base: "/baseCurrency",
                            quote: "/quoteCurrency",
                            status: Some("/status"),
                            listed: Some("/firstOpenDate"),
                            only: Some(("/type", "FFWCSX")),
                        },
                        Perp,
                    )
                },
            ),
        ],
        // gate.com/docs/developers/apiv4: "List all currency pairs", "List all futures
        // contracts" (USDT-settled); both answer a bare array.
        Exchange::Gate => vec![
            list(
                Spot,
                "https://api.gateio.ws",
                "/api/v4/spot/currency_pairs",
                None,
                |root| {
                    read(
                        root,
                        &Fields {
                            items: "",
                            symbol: "/id",
                            base: "/base",
                            quote: "/quote",
                            status: Some("/trade_status"),
                            listed: Some("/buy_start"),
                            only: None,
                        },
                        Spot,
                    )
                },
            ),
            list(
                Perp,
                "https://api.gateio.ws",
                "/api/v4/futures/usdt/contracts",
                None,
                |root| read_split(root, "", "/name", '_', false, Perp),
            ),
        ],
        // mexc.com/api-docs: spot v3 "Exchange Information", contract "Get the contract
        // information".
        Exchange::Mexc => vec![
            list(
                Spot,
                "https://api.mexc.com",
                "/api/v3/exchangeInfo",
                None,
                |root| read(root, &BINANCE_SPOT, Spot),
            ),
            list(
                Perp,
                "https://contract.mexc.com",
                "/api/v1/contract/detail",
                None,
                |root| {
                    read(
                        root,
                        &Fields {
                            items: "/data",
                            symbol: "/symbol",
                            base: "/baseCoin",
                            quote: "/quoteCoin",
                            status: Some("/state"),
                            listed: None,
                            only: None,
                        },
                        Perp,
                    )
                },
            ),
        ],
        // global-docs.upbit.com, "Market list": `KRW-BTC` is quote first; spot only.
        Exchange::Upbit => vec![list(
            Spot,
            "https://api.upbit.com",
            "/v1/market/all",
            None,
            |root| read_split(root, "", "/market", '-', true, Spot),
        )],
    }
}
