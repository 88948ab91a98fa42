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
    /// Where the symbols are in a response.
    reader: Reader,
}

/// Where the symbols of a market list are.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// Each field at its own pointer.
    Fields(Fields),
    /// Only a symbol `BASE<separator>QUOTE` (or quote first), at `symbol` in each item.
    Split {
        items: &'static str,
        symbol: &'static str,
        separator: char,
        quote_first: bool,
    },
}

impl MarketList {
    /// The symbols of one response, after its envelope is checked.
    pub fn parse(&self, root: &Value) -> Result<Vec<MarketListing>, ParseError> {
        if let Some(envelope) = &self.envelope {
            envelope.check(root)?;
        }
        match self.reader {
            Reader::Fields(fields) => read(root, &fields, self.market),
            Reader::Split {
                items,
                symbol,
                separator,
                quote_first,
            } => read_split(root, items, symbol, separator, quote_first, self.market),
        }
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
#[derive(Debug, Clone, Copy)]
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

/// The four pointers every list has; the others are added by the methods below.
const fn fields(
    items: &'static str,
    symbol: &'static str,
    base: &'static str,
    quote: &'static str,
) -> Fields {
    Fields {
        items,
        symbol,
        base,
        quote,
        status: None,
        listed: None,
        only: None,
    }
}

impl Fields {
    const fn status(self, pointer: &'static str) -> Fields {
        Fields {
            status: Some(pointer),
            ..self
        }
    }

    const fn listed(self, pointer: &'static str) -> Fields {
        Fields {
            listed: Some(pointer),
            ..self
        }
    }

    const fn only(self, pointer: &'static str, text: &'static str) -> Fields {
        Fields {
            only: Some((pointer, text)),
            ..self
        }
    }
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

/// The market lists of `exchange`, spot first (sources of each shape beside it).
pub fn lists(exchange: Exchange) -> Vec<MarketList> {
    use MarketType::{Perp, Spot};
    let code = |pointer, ok, message| {
        Some(Envelope::Code {
            pointer,
            ok,
            message,
        })
    };
    let bybit = code("/retCode", "0", "/retMsg");
    let okx = code("/code", "0", "/msg");
    let bitget = code("/code", "00000", "/msg");
    let kucoin = code("/code", "200000", "/msg");
    let list = |market, host, path, envelope, fields: Fields| MarketList {
        market,
        host,
        path,
        envelope,
        cursor: None,
        reader: Reader::Fields(fields),
    };
    let split = |market, host, path, symbol, separator, quote_first| MarketList {
        market,
        host,
        path,
        envelope: None,
        cursor: None,
        reader: Reader::Split {
            items: "",
            symbol,
            separator,
            quote_first,
        },
    };
    // developers.binance.com (spot and USDⓈ-M futures "Exchange Information"); MEXC's spot
    // API v3 answers the same shape.
    let exchange_info =
        fields("/symbols", "/symbol", "/baseAsset", "/quoteAsset").status("/status");
    let bybit_list = fields("/result/list", "/symbol", "/baseCoin", "/quoteCoin").status("/status");
    match exchange {
        Exchange::Binance => vec![
            list(
                Spot,
                "https://api.binance.com",
                "/api/v3/exchangeInfo",
                None,
                exchange_info,
            ),
            list(
                Perp,
                "https://fapi.binance.com",
                "/fapi/v1/exchangeInfo",
                None,
                exchange_info
                    .listed("/onboardDate")
                    .only("/contractType", "PERPETUAL"),
            ),
        ],
        // bybit-exchange.github.io/docs/v5/market/instrument (linear pages by cursor).
        Exchange::Bybit => vec![
            list(
                Spot,
                "https://api.bybit.com",
                "/v5/market/instruments-info?category=spot",
                bybit,
                bybit_list,
            ),
            MarketList {
                cursor: Some(("/result/nextPageCursor", "cursor")),
                ..list(
                    Perp,
                    "https://api.bybit.com",
                    "/v5/market/instruments-info?category=linear&limit=1000",
                    bybit,
                    bybit_list
                        .listed("/launchTime")
                        .only("/contractType", "LinearPerpetual"),
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
                fields("/data", "/instId", "/baseCcy", "/quoteCcy")
                    .status("/state")
                    .listed("/listTime"),
            ),
            list(
                Perp,
                "https://www.okx.com",
                "/api/v5/public/instruments?instType=SWAP",
                okx,
                fields("/data", "/instId", "/ctValCcy", "/settleCcy")
                    .status("/state")
                    .listed("/listTime"),
            ),
        ],
        // bitget.com/api-doc: spot "Get Symbol Info", futures "Get All Symbols' Contract Config".
        Exchange::Bitget => vec![
            list(
                Spot,
                "https://api.bitget.com",
                "/api/v2/spot/public/symbols",
                bitget,
                fields("/data", "/symbol", "/baseCoin", "/quoteCoin").status("/status"),
            ),
            list(
                Perp,
                "https://api.bitget.com",
                "/api/v2/mix/market/contracts?productType=USDT-FUTURES",
                bitget,
                fields("/data", "/symbol", "/baseCoin", "/quoteCoin")
                    .status("/symbolStatus")
                    .listed("/launchTime")
                    .only("/symbolType", "perpetual"),
            ),
        ],
        // kucoin.com/docs: spot "Get All Symbols", futures "Get All Contract List".
        Exchange::Kucoin => vec![
            list(
                Spot,
                "https://api.kucoin.com",
                "/api/v2/symbols",
                kucoin,
                fields("/data", "/symbol", "/baseCurrency", "/quoteCurrency")
                    .status("/enableTrading"),
            ),
            list(
                Perp,
                "https://api-futures.kucoin.com",
                "/api/v1/contracts/active",
                kucoin,
                fields("/data", "/symbol", "/baseCurrency", "/quoteCurrency")
                    .status("/status")
                    .listed("/firstOpenDate")
                    .only("/type", "FFWCSX"),
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
                fields("", "/id", "/base", "/quote")
                    .status("/trade_status")
                    .listed("/buy_start"),
            ),
            split(
                Perp,
                "https://api.gateio.ws",
                "/api/v4/futures/usdt/contracts",
                "/name",
                '_',
                false,
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
                exchange_info,
            ),
            list(
                Perp,
                "https://contract.mexc.com",
                "/api/v1/contract/detail",
                None,
                fields("/data", "/symbol", "/baseCoin", "/quoteCoin").status("/state"),
            ),
        ],
        // global-docs.upbit.com, "Market list": `KRW-BTC` is quote first; spot only.
        Exchange::Upbit => vec![split(
            Spot,
            "https://api.upbit.com",
            "/v1/market/all",
            "/market",
            '-',
            true,
        )],
    }
}
