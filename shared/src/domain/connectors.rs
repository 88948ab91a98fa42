//! What primary-source kinds are configured with: the exchange and its feed for `exchange`
//! sources, the JSON-pointer mapping for `json` sources.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// An exchange whose public announcement API and market lists the swarm reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Exchange {
    /// Binance.
    Binance,
    /// Bybit.
    Bybit,
    /// OKX.
    Okx,
    /// Bitget.
    Bitget,
    /// KuCoin.
    Kucoin,
    /// Gate.
    Gate,
    /// MEXC.
    Mexc,
    /// Upbit.
    Upbit,
}

impl Exchange {
    /// Every exchange, in the order they are documented.
    pub const ALL: [Exchange; 8] = [
        Exchange::Binance,
        Exchange::Bybit,
        Exchange::Okx,
        Exchange::Bitget,
        Exchange::Kucoin,
        Exchange::Gate,
        Exchange::Mexc,
        Exchange::Upbit,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Exchange::Binance => "binance",
            Exchange::Bybit => "bybit",
            Exchange::Okx => "okx",
            Exchange::Bitget => "bitget",
            Exchange::Kucoin => "kucoin",
            Exchange::Gate => "gate",
            Exchange::Mexc => "mexc",
            Exchange::Upbit => "upbit",
        }
    }

    /// The name analysts know it by (as it appears in venues).
    pub fn display_name(self) -> &'static str {
        match self {
            Exchange::Binance => "Binance",
            Exchange::Bybit => "Bybit",
            Exchange::Okx => "OKX",
            Exchange::Bitget => "Bitget",
            Exchange::Kucoin => "KuCoin",
            Exchange::Gate => "Gate",
            Exchange::Mexc => "MEXC",
            Exchange::Upbit => "Upbit",
        }
    }

    /// The base URL of its public API for `feed` when none is configured. Paths are added
    /// by the connector; a configured `url` replaces scheme, host and port for every
    /// request of the source (tests and proxies use it).
    pub fn default_base(self, feed: ExchangeFeed) -> &'static str {
        match (self, feed) {
            (Exchange::Binance, ExchangeFeed::Announcements) => "https://www.binance.com",
            (Exchange::Binance, ExchangeFeed::Markets) => "https://api.binance.com",
            (Exchange::Bybit, _) => "https://api.bybit.com",
            (Exchange::Okx, _) => "https://www.okx.com",
            (Exchange::Bitget, _) => "https://api.bitget.com",
            (Exchange::Kucoin, _) => "https://api.kucoin.com",
            // Announcements: the WebSocket channel on this host (`wss://`).
            (Exchange::Gate, _) => "https://api.gateio.ws",
            (Exchange::Mexc, ExchangeFeed::Announcements) => "https://www.mexc.com",
            (Exchange::Mexc, ExchangeFeed::Markets) => "https://api.mexc.com",
            (Exchange::Upbit, ExchangeFeed::Announcements) => "https://api-manager.upbit.com",
            (Exchange::Upbit, ExchangeFeed::Markets) => "https://api.upbit.com",
        }
    }
}

/// Which of an exchange's public feeds a source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeFeed {
    /// Its announcements (new listings, launchpools, airdrops).
    Announcements,
    /// Its spot and perpetual market lists: a symbol not seen before is a listing.
    Markets,
}

impl ExchangeFeed {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeFeed::Announcements => "announcements",
            ExchangeFeed::Markets => "markets",
        }
    }
}

/// How close to the origin a report is: the exchange itself, the project's own channel, the
/// press, or social posts by others. Ordered from the most to the least primary.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// An exchange's own notice or market list.
    Exchange,
    /// The project's own site, blog, X account or channel.
    Official,
    /// News and research outlets.
    Media,
    /// Social posts and channels of others.
    Social,
}

impl Provenance {
    /// What a source of `kind` is unless its configuration says otherwise: exchanges are
    /// `exchange`, X and Telegram `social`, feeds, pages and APIs `media`.
    pub fn of_kind(kind: super::SourceKind) -> Provenance {
        match kind {
            super::SourceKind::Exchange => Provenance::Exchange,
            super::SourceKind::X | super::SourceKind::Telegram => Provenance::Social,
            _ => Provenance::Media,
        }
    }
}

/// Which market list a symbol was read from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MarketType {
    /// Spot pairs.
    Spot,
    /// Perpetual (swap) contracts.
    Perp,
}

impl MarketType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MarketType::Spot => "spot",
            MarketType::Perp => "perp",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<MarketType> {
        match text {
            "spot" => Some(MarketType::Spot),
            "perp" => Some(MarketType::Perp),
            _ => None,
        }
    }

    /// How analysts name it.
    pub fn label(self) -> &'static str {
        match self {
            MarketType::Spot => "spot",
            MarketType::Perp => "perpetual",
        }
    }
}

/// One symbol of an exchange's market list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct MarketListing {
    /// Spot or perpetual.
    pub market: MarketType,
    /// The exchange's own symbol (`VLRUSDT`, `VLR-USDT`, `KRW-VLR`).
    pub symbol: String,
    /// The asset listed, upper case (`VLR`).
    pub base: String,
    /// What it is quoted in, upper case (`USDT`).
    pub quote: String,
    /// The exchange's own status for it (`TRADING`, `online`, `gray`), when it gives one.
    pub status: Option<String>,
    /// When the exchange says it opened or opens, when it says.
    pub listed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The statuses the exchanges document for a symbol shown before its trading opens: Binance's
/// `PRE_TRADING` (spot) and `PENDING_TRADING` (futures), Bybit's `PreLaunch`, OKX's `preopen`,
/// Bitget's `gray`. Compared without regard to case.
pub const PRE_TRADING_STATUSES: &[&str] = &[
    "PRE_TRADING",
    "PENDING_TRADING",
    "PreLaunch",
    "preopen",
    "gray",
];

impl MarketListing {
    /// Whether the exchange shows the symbol before its trading opens
    /// ([`PRE_TRADING_STATUSES`]).
    pub fn is_pre_trading(&self) -> bool {
        self.status.as_deref().is_some_and(|status| {
            PRE_TRADING_STATUSES
                .iter()
                .any(|pre| pre.eq_ignore_ascii_case(status.trim()))
        })
    }
}

/// A symbol seen for the first time on an exchange, and what the swarm knew of its asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMarket {
    /// The symbol.
    pub listing: MarketListing,
    /// Whether the asset already had another market on this exchange (a perpetual added to
    /// a spot listing, a second quote currency).
    pub base_on_this_exchange: bool,
    /// The other exchanges where the asset already has a market, by wire name.
    pub base_elsewhere: Vec<String>,
}

impl NewMarket {
    /// Whether this is the asset's first market on any watched exchange: a first listing.
    pub fn is_first_listing(&self) -> bool {
        !self.base_on_this_exchange && self.base_elsewhere.is_empty()
    }
}

/// What recording one read of an exchange's market lists found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarketsSeen {
    /// Market types read for the first time on this exchange: recorded, nothing announced.
    pub first_reads: Vec<MarketType>,
    /// Symbols not seen before on this exchange (in market types read before).
    pub new: Vec<NewMarket>,
}

impl MarketsSeen {
    /// The symbols of `listings` (the read this was found in) that the store has not seen:
    /// every one of a market type read for the first time, and the new ones.
    pub fn unseen(&self, listings: Vec<MarketListing>) -> Vec<MarketListing> {
        listings
            .into_iter()
            .filter(|listing| {
                self.first_reads.contains(&listing.market)
                    || self.new.iter().any(|new| {
                        new.listing.market == listing.market && new.listing.symbol == listing.symbol
                    })
            })
            .collect()
    }
}

/// A token a watched exchange lists, as the market lists recorded it: its earliest sighting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedToken {
    /// The asset, upper case (`VLR`).
    pub base: String,
    /// The exchange's wire name.
    pub exchange: String,
    /// The market type's wire name (`spot`, `perp`).
    pub market: String,
    /// When the swarm first saw it there.
    pub first_seen_at: chrono::DateTime<chrono::Utc>,
    /// Whether it was in the first read of that exchange's market type, trading: it traded
    /// before the swarm looked. (A symbol a first read shows before its trading opens counts
    /// as a later sighting.)
    pub in_first_read: bool,
}

/// How a `json` source's response maps onto items: JSON pointers (RFC 6901). `items` is
/// read from the response's root; the others from each item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonMapping {
    /// Pointer to the array of items; empty when the response itself is the array.
    #[serde(default)]
    pub items: String,
    /// Pointer to an item's title.
    pub title: String,
    /// Pointer to an item's body text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Pointer to an item's link (resolved against the source URL when relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Pointer to an item's publication time: RFC 3339, RFC 2822, `YYYY-MM-DD[ HH:MM:SS]`
    /// (UTC), or seconds or milliseconds since the epoch (number or digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// Longest JSON pointer accepted, in bytes.
const MAX_POINTER_BYTES: usize = 500;

fn validate_pointer(field: &str, pointer: &str, may_be_root: bool) -> Result<()> {
    if pointer.is_empty() && may_be_root {
        return Ok(());
    }
    if !pointer.starts_with('/') {
        return Err(Error::Invalid(format!(
            "{field}: a JSON pointer starts with `/` (got `{pointer}`)"
        )));
    }
    if pointer.len() > MAX_POINTER_BYTES {
        return Err(Error::Invalid(format!(
            "{field}: longer than {MAX_POINTER_BYTES} bytes"
        )));
    }
    Ok(())
}

impl JsonMapping {
    /// Checks every pointer; the error names the field.
    pub fn validate(&self) -> Result<()> {
        validate_pointer("json.items", &self.items, true)?;
        validate_pointer("json.title", &self.title, false)?;
        for (field, pointer) in [
            ("json.text", &self.text),
            ("json.link", &self.link),
            ("json.date", &self.date),
        ] {
            if let Some(pointer) = pointer {
                validate_pointer(field, pointer, false)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_are_checked_by_field() {
        let mut mapping = JsonMapping {
            items: "/data/list".into(),
            title: "/title".into(),
            ..JsonMapping::default()
        };
        assert!(mapping.validate().is_ok());
        mapping.items = String::new();
        assert!(mapping.validate().is_ok(), "the root may be the array");
        mapping.title = String::new();
        let err = mapping.validate().unwrap_err().to_string();
        assert!(err.contains("json.title"), "{err}");
        mapping.title = "/t".into();
        mapping.date = Some("date".into());
        let err = mapping.validate().unwrap_err().to_string();
        assert!(err.contains("json.date") && err.contains("`/`"), "{err}");
    }

    #[test]
    fn only_what_the_store_has_not_seen_is_remembered() {
        let listing = |market, symbol: &str| MarketListing {
            market,
            symbol: symbol.into(),
            base: symbol.into(),
            quote: "USDT".into(),
            status: None,
            listed_at: None,
        };
        let seen = MarketsSeen {
            first_reads: vec![MarketType::Perp],
            new: vec![NewMarket {
                listing: listing(MarketType::Spot, "VLR"),
                base_on_this_exchange: false,
                base_elsewhere: Vec::new(),
            }],
        };
        let read = vec![
            listing(MarketType::Spot, "BTC"),
            listing(MarketType::Spot, "VLR"),
            listing(MarketType::Perp, "BTC"),
        ];
        let unseen: Vec<(MarketType, String)> = seen
            .unseen(read)
            .into_iter()
            .map(|listing| (listing.market, listing.symbol))
            .collect();
        assert_eq!(
            unseen,
            vec![
                (MarketType::Spot, "VLR".into()),
                (MarketType::Perp, "BTC".into())
            ]
        );
    }

    #[test]
    fn every_exchange_has_a_public_base_for_each_feed() {
        for exchange in Exchange::ALL {
            for feed in [ExchangeFeed::Announcements, ExchangeFeed::Markets] {
                let base = url::Url::parse(exchange.default_base(feed)).unwrap();
                assert_eq!(base.scheme(), "https", "{exchange:?} {feed:?}");
            }
            let wire = serde_json::to_string(&exchange).unwrap();
            assert_eq!(wire, format!("\"{}\"", exchange.as_str()));
        }
    }
}
