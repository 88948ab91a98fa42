//! Documents as scraped, and the detection the keyword agent adds to them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::*;

/// A document parsed from a source: one feed entry, page item or file record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Document {
    /// Content id: hash of canonical URL and normalised content (idempotency key).
    pub id: String,
    /// Source it came from.
    pub source_id: i64,
    /// Source name (for evidence and logs).
    pub source_name: String,
    /// Source tier (prior), 1 to 4.
    pub source_tier: u8,
    /// Canonical URL.
    pub url: String,
    /// Title, plain text.
    pub title: String,
    /// Body, plain text.
    pub text: String,
    /// Publication time, if the source stated it.
    pub published_at: Option<DateTime<Utc>>,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
    /// How its source is read (none in documents queued before kinds were carried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_kind: Option<SourceKind>,
    /// What the source itself states about the item beside its text (exchange feeds).
    #[serde(default, skip_serializing_if = "SourceFacts::is_empty")]
    pub facts: SourceFacts,
}

/// What a source states about an item in its own fields: an exchange's category for a
/// notice, the venue, the symbol a market list showed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceFacts {
    /// The source's category for the item (`New Cryptocurrency Listing`, `new_crypto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The exchange the source belongs to, as analysts name it (`Binance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// The symbol that appeared in the exchange's market list, for market-list items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<MarketFact>,
}

impl SourceFacts {
    /// Whether nothing is stated.
    pub fn is_empty(&self) -> bool {
        self.category.is_none() && self.venue.is_none() && self.market.is_none()
    }
}

/// A symbol that appeared in an exchange's market list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MarketFact {
    /// The exchange.
    pub exchange: Exchange,
    /// The symbol as listed.
    pub listing: MarketListing,
    /// Whether its asset had no market on any watched exchange before: a first listing
    /// (otherwise a secondary listing, which only joins an event that already exists).
    pub first_listing: bool,
}

/// Computes a document id from its canonical URL and its content.
pub fn document_id(canonical_url: &str, title: &str, text: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(canonical_url.as_bytes());
    hasher.update(b"\n");
    hasher.update(normalise_for_hash(title).as_bytes());
    hasher.update(b"\n");
    hasher.update(normalise_for_hash(text).as_bytes());
    let digest = hasher.finalize();
    hex::encode(&digest[..16])
}

/// Lowercases and collapses whitespace so cosmetic differences do not change a hash.
pub fn normalise_for_hash(text: &str) -> String {
    normalise_whitespace(text).to_lowercase()
}

/// A span of text that drove a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// What kind of feature matched (`phrase:strong`, `company`, `ticker`, `date`, ...).
    pub feature: String,
    /// The matched text with some context.
    pub snippet: String,
    /// Contribution to the score's log-odds.
    pub weight: f64,
}

/// The keyword agent's verdict on a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Detection {
    /// Probability that the document announces a TGE, 0..1.
    pub score: f64,
    /// Whether the score passed the threshold.
    pub is_tge: bool,
    /// Project named, if found.
    pub project: Option<String>,
    /// Token ticker, if found.
    pub token: Option<String>,
    /// Event date as stated (`2026-03-05`, `Q1 2026`, `next week`).
    pub event_date: Option<String>,
    /// Evidence spans, strongest first.
    pub evidence: Vec<Evidence>,
    /// Joins an event of the same project when one exists and never creates one: a token
    /// already trading somewhere that appears on one more exchange (a secondary listing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub join_only: bool,
}

/// A document with its detection: what travels from keyword to data quality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifiedDocument {
    /// The document.
    pub document: Document,
    /// Its detection.
    pub detection: Detection,
}
