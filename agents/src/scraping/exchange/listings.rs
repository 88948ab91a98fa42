//! A symbol new to an exchange's market list becomes a document: a first listing when its
//! asset trades on no watched exchange yet, a secondary listing otherwise. The document says
//! so in words (for analysts and the evidence) and in its facts (for detection), and links to
//! the exchange's trading page for the symbol as its proof.

use chrono::{DateTime, SecondsFormat, Utc};
use swarm_shared::domain::{
    Document, Exchange, MarketFact, MarketListing, MarketType, MarketsSeen, NewMarket, ScrapeTask,
    SourceFacts, document_id,
};

/// The exchange's public trading page for a symbol.
pub fn trade_url(exchange: Exchange, listing: &MarketListing) -> String {
    let (base, quote, symbol) = (&listing.base, &listing.quote, &listing.symbol);
    match (exchange, listing.market) {
        (Exchange::Binance, MarketType::Spot) => {
            format!("https://www.binance.com/en/trade/{base}_{quote}")
        }
        (Exchange::Binance, MarketType::Perp) => {
            format!("https://www.binance.com/en/futures/{symbol}")
        }
        (Exchange::Bybit, MarketType::Spot) => {
            format!("https://www.bybit.com/trade/spot/{base}/{quote}")
        }
        (Exchange::Bybit, MarketType::Perp) => format!("https://www.bybit.com/trade/usdt/{symbol}"),
        (Exchange::Okx, MarketType::Spot) => {
            format!("https://www.okx.com/trade-spot/{}", symbol.to_lowercase())
        }
        (Exchange::Okx, MarketType::Perp) => {
            format!("https://www.okx.com/trade-swap/{}", symbol.to_lowercase())
        }
        (Exchange::Bitget, MarketType::Spot) => format!("https://www.bitget.com/spot/{symbol}"),
        (Exchange::Bitget, MarketType::Perp) => {
            format!("https://www.bitget.com/futures/usdt/{symbol}")
        }
        (Exchange::Kucoin, MarketType::Spot) => {
            format!("https://www.kucoin.com/trade/{base}-{quote}")
        }
        (Exchange::Kucoin, MarketType::Perp) => {
            format!("https://www.kucoin.com/trade/futures/{symbol}")
        }
        (Exchange::Gate, MarketType::Spot) => format!("https://www.gate.com/trade/{base}_{quote}"),
        (Exchange::Gate, MarketType::Perp) => format!("https://www.gate.com/futures/USDT/{symbol}"),
        (Exchange::Mexc, MarketType::Spot) => {
            format!("https://www.mexc.com/exchange/{base}_{quote}")
        }
        (Exchange::Mexc, MarketType::Perp) => format!("https://futures.mexc.com/exchange/{symbol}"),
        (Exchange::Upbit, _) => format!("https://upbit.com/exchange?code=CRIX.UPBIT.{symbol}"),
    }
}

fn names(exchanges: &[String]) -> String {
    let shown: Vec<&str> = exchanges
        .iter()
        .map(|name| {
            Exchange::ALL
                .iter()
                .find(|exchange| exchange.as_str() == name)
                .map_or(name.as_str(), |exchange| exchange.display_name())
        })
        .collect();
    shown.join(", ")
}

/// The document announcing one new symbol.
pub fn listing_document(
    task: &ScrapeTask,
    exchange: Exchange,
    new: &NewMarket,
    seen_at: DateTime<Utc>,
) -> Document {
    let listing = &new.listing;
    let venue = exchange.display_name();
    let market = listing.market.label();
    let first = new.is_first_listing();
    let pair = if listing.quote.is_empty() {
        listing.base.clone()
    } else {
        format!("{}/{}", listing.base, listing.quote)
    };
    let title = if first {
        format!(
            "{venue} lists {base}: new {market} market {pair}",
            base = listing.base
        )
    } else {
        format!("{venue} adds {pair} {market} market",)
    };
    // Nothing of the read itself (its time) is in the text: the document's id must be the
    // same when a failed read is repeated, so the repeat is dropped as a duplicate.
    let mut text = format!(
        "{symbol} appeared in {venue}'s {market} market list.",
        symbol = listing.symbol,
    );
    if let Some(at) = listing.listed_at {
        text.push_str(&format!(
            " {venue} gives its listing time as {}.",
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ));
    }
    if let Some(status) = &listing.status {
        text.push_str(&format!(" Status: {status}."));
    }
    if first {
        text.push_str(&format!(
            " {} has no market on any other watched exchange: a first listing.",
            listing.base
        ));
    } else if !new.base_elsewhere.is_empty() {
        text.push_str(&format!(
            " {} already trades on {}: a secondary listing.",
            listing.base,
            names(&new.base_elsewhere)
        ));
    } else {
        text.push_str(&format!(
            " {} already has another market on {venue}.",
            listing.base
        ));
    }
    let url = trade_url(exchange, listing);
    Document {
        id: document_id(&url, &title, &text),
        source_id: task.source.id,
        source_name: task.source.name.clone(),
        source_tier: task.source.tier,
        url,
        title,
        text,
        published_at: Some(
            listing
                .listed_at
                .filter(|at| *at <= seen_at)
                .unwrap_or(seen_at),
        ),
        fetched_at: seen_at,
        source_kind: Some(swarm_shared::domain::SourceKind::Exchange),
        facts: SourceFacts {
            category: Some(format!("new {market} market")),
            venue: Some(venue.to_owned()),
            market: Some(MarketFact {
                exchange,
                listing: listing.clone(),
                first_listing: first,
            }),
        },
    }
}

/// The documents of one market-list read: one per new symbol.
pub fn listing_documents(
    task: &ScrapeTask,
    exchange: Exchange,
    seen: &MarketsSeen,
    at: DateTime<Utc>,
) -> Vec<Document> {
    seen.new
        .iter()
        .map(|new| listing_document(task, exchange, new, at))
        .collect()
}
