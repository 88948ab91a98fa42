//! The one [`Store`](super::Store) of both SQL adapters, SQLite (embedded default) and
//! Postgres (production): ordinary code generic over the sqlx database, one module per
//! aggregate (`catalogue.rs` for sources and companies, `events.rs` for reading events,
//! `record.rs` for recording classified batches, `keys.rs` for API keys, `state.rs` for
//! memory, desired state, feedback, supervisor actions and snapshots), and the pure helpers
//! they share below. Every query is a string literal beside the code that binds it.
//!
//! One body of SQL keeps the two stores identical in behaviour (the contract suite checks
//! it); the SQL sticks to what both engines accept: `$N` parameters (SQLite reads `$N` as
//! positional), `RETURNING id`, `ON CONFLICT`, and `CASE` instead of `MAX(a, b)`/`GREATEST`.
//! What does differ is each adapter's
//! [`SqlBackend`] implementation: `begin_write` (SQLite takes the write lock up front with
//! `BEGIN IMMEDIATE`), `lock_merge_keys` (Postgres serialises merges of one project with a
//! transaction-scoped advisory lock; SQLite's single writer already does),
//! `band_neighbours` (the near-duplicate lookup: one `LATERAL` statement of fixed shape over
//! the band indexes on Postgres, whose planner spent more time on a compound `SELECT` of
//! hundreds of terms than on running it; an index held in memory on SQLite, see
//! [`band_index`](super::band_index)), and free text (`push_search`: FTS5 on SQLite, text
//! search on Postgres; docs/storage.md). Every `impl SqlBackend` is a [`Store`](super::Store)
//! (`store.rs`).
//!
//! Schema conventions shared by both migration folders: times are UTC milliseconds since the
//! epoch in 64-bit integers, lists and JSON bodies are JSON text.

use std::future::Future;
use std::hash::Hash;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::{Database, Decode, Encode, Pool, Transaction, Type};

use crate::domain::{
    DatePrecision, Detection, Document, EventKind, SearchWord, SourceInput, venues_in,
};
use crate::error::{Error, Result};

mod alerts;
mod catalogue;
mod events;
mod keys;
mod markets;
mod record;
pub(crate) mod retention;
mod state;
mod store;
mod workflow;

/// The shared SQL run over one adapter: `Sql(store).list_sources()`. Each aggregate module
/// adds its methods in one `impl` block that states the bounds sqlx asks of the database
/// (restated per block: Rust does not imply a trait's where-clauses, rust-lang/rust#20671).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sql<'s, B>(pub &'s B);

/// A fingerprint found through a band index: band, value, fingerprint key and SimHash.
pub type BandHit<K> = (usize, i32, K, i64);

/// A row of an adapter's database.
pub type DbRow<B> = <<B as SqlBackend>::Db as Database>::Row;

/// What an SQL adapter supplies besides the shared SQL: its pools and the few operations the
/// two engines do differently. Implementing it makes the adapter a [`Store`](super::Store).
pub trait SqlBackend: Send + Sync + 'static {
    /// The sqlx database.
    type Db: Database;
    /// What the adapter's band index carries besides the SimHash to find a fingerprint's row
    /// (the document id on Postgres, the rowid on SQLite, which every SQLite index entry ends
    /// with).
    type Key: Clone
        + Eq
        + Hash
        + Send
        + Sync
        + for<'q> Encode<'q, Self::Db>
        + for<'r> Decode<'r, Self::Db>
        + Type<Self::Db>;
    /// The column of `document_fingerprints f` that holds [`SqlBackend::Key`].
    const KEY_COLUMN: &'static str;

    /// The pool reads go through.
    fn reader(&self) -> &Pool<Self::Db>;
    /// The pool single writes go through.
    fn writer(&self) -> &Pool<Self::Db>;
    /// Rows a statement changed (sqlx gives each database's result its own type).
    fn rows_affected(done: &<Self::Db as Database>::QueryResult) -> u64;
    /// Opens a write transaction.
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Self::Db>>> + Send;
    /// Serialises merges into the projects of `keys` (sorted and distinct) until the
    /// transaction ends.
    fn lock_merge_keys(
        tx: &mut Transaction<'static, Self::Db>,
        keys: &[&str],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Locks the rows of events `ids` (sorted and distinct) until the transaction ends, in
    /// id order, before anything else of them is written: the recording of a batch and an
    /// analysts' update that touch the same events then wait for each other instead of
    /// deadlocking.
    fn lock_event_rows(
        tx: &mut Transaction<'static, Self::Db>,
        ids: &[i64],
    ) -> impl Future<Output = Result<()>> + Send;
    /// For each band and value, the newest
    /// [`NEAR_DUPLICATE_CANDIDATES`](crate::dedup::fingerprint::NEAR_DUPLICATE_CANDIDATES)
    /// fingerprints with that value in that band, as band, value, fingerprint key and SimHash.
    /// It may also return fingerprints stored before `window_start`, which the caller drops
    /// when it reads them in full.
    fn band_neighbours(
        &self,
        tx: &mut Transaction<'static, Self::Db>,
        bands: &[(usize, i32)],
        window_start: i64,
    ) -> impl Future<Output = Result<Vec<BandHit<Self::Key>>>> + Send;
    /// The engine's full-text query for every one of `words` (letters and digits only, so
    /// none needs quoting or escaping).
    fn search_expression(words: &[SearchWord]) -> String;
    /// A statement returning, as two integers, the events that match the expression bound
    /// as `$1` (counted up to [`COMMON_SEARCH`]) and the events stored (estimated from the
    /// largest id): an engine whose planner cannot tell a common word from a rare one itself
    /// (SQLite keeps no statistics of its full-text index) has it asked first, and
    /// [`search_is_common`] decides.
    const SEARCH_PROBE: Option<&'static str>;
    /// Narrows an event query over `tge_events e` to the events that match `expression`
    /// (`AND ...`): an event matches when each word is in its project or token or in the
    /// title or text of one of its first 20 sources. `common`: the probe found at least
    /// [`COMMON_SEARCH`] events, so the newest are best found by walking the events newest
    /// first and keeping those that match.
    fn push_search(builder: &mut sqlx::QueryBuilder<Self::Db>, expression: String, common: bool);
    /// What a statement starts with to have its plan returned instead of its rows.
    const EXPLAIN: &'static str;
    /// One step of a plan, from a row of the statement after [`SqlBackend::EXPLAIN`].
    fn plan_line(row: &<Self::Db as Database>::Row) -> Result<String>;
}

/// Events a search must match for SQLite to walk the events newest first and keep those the
/// full-text index lists, whatever the store's size (docs/storage.md has the figures of both
/// ways at a million documents); below it, [`search_is_common`] compares the two costs.
pub const COMMON_SEARCH: i64 = 2_000;

/// Whether a search matching `matches` of about `events` events is best answered by walking
/// the events newest first and keeping those in the matches (about `page + 1` x events /
/// matches events walked before the page is full), rather than looking every match up and
/// sorting them (`matches` lookups). The walk wins when matches x matches > (page + 1) x
/// events; a word in most events is common in a store of 600 (the soak measured its search
/// at 3.1 ms the second way and 0.7 ms the first, and the second grew with the events),
/// while a project's name stays rare. At [`COMMON_SEARCH`] matches or more it is common, as
/// measured at a million documents, and the probe counts no further.
///
/// `narrowed`: the query has other filters that drop events the walk reads (company,
/// token, score, status, kind, date precision, ids). The walk then stops later than the
/// estimate by a factor nobody knows, so only [`COMMON_SEARCH`] decides, as it did before.
pub fn search_is_common(matches: i64, events: i64, page_size: u32, narrowed: bool) -> bool {
    if matches >= COMMON_SEARCH {
        return true;
    }
    if matches <= 0 || narrowed {
        return false;
    }
    let walked = (i64::from(page_size) + 1).saturating_mul(events.max(0));
    matches.saturating_mul(matches) > walked
}

/// Most rows per multi-row statement when recording a batch (at most 11 columns, well under
/// the 32,766 parameters SQLite allows and Postgres' 65,535). A power of two: see
/// [`statement_chunks`].
pub const ROWS_PER_STATEMENT: usize = 256;

/// Splits `items` into the chunks a multi-row statement is built for: each one's length is a
/// power of two of at most [`ROWS_PER_STATEMENT`], the largest first (300 rows are sent as
/// 256, 32, 8 and 4). A statement's text depends only on its row count, so these few shapes
/// (nine per statement) are prepared once per connection and kept in sqlx's statement cache,
/// where a chunk of whatever length was waiting made every batch a new statement to parse and
/// plan (about 1 % of the SQLite writer's time in the embedded pipeline, more on Postgres,
/// which plans each one on the server; BENCHMARKS.md, "Statements prepared once").
pub fn statement_chunks<T>(items: &[T]) -> StatementChunks<'_, T> {
    StatementChunks { rest: items }
}

/// Iterator of [`statement_chunks`].
#[derive(Debug)]
pub struct StatementChunks<'a, T> {
    rest: &'a [T],
}

impl<'a, T> Iterator for StatementChunks<'a, T> {
    type Item = &'a [T];

    fn next(&mut self) -> Option<&'a [T]> {
        if self.rest.is_empty() {
            return None;
        }
        let len = if self.rest.len() >= ROWS_PER_STATEMENT {
            ROWS_PER_STATEMENT
        } else {
            // The largest power of two not above what is left.
            1 << (usize::BITS - 1 - self.rest.len().leading_zeros())
        };
        let (chunk, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(chunk)
    }
}

/// Statements kept prepared per connection. The recording path alone has nine statements of
/// up to nine shapes each ([`statement_chunks`]); sqlx's default cache of 100 would evict
/// some of them every batch.
pub const STATEMENT_CACHE_CAPACITY: usize = 512;

/// Times a batch is planned again when another writer stored one of its documents meanwhile.
pub const RECORD_ATTEMPTS: usize = 5;

/// What recording a batch changes in one event: its best document (the first with the
/// highest score, as when the documents are recorded one by one), the first project, token
/// and date named, and how many sources it gains.
#[derive(Debug, Clone, PartialEq)]
pub struct EventChange<'a> {
    /// Highest score of the batch's documents for the event.
    pub score: f64,
    /// Evidence (JSON) of the first document with that score.
    pub evidence: &'a str,
    /// First project named.
    pub project: Option<&'a str>,
    /// First token named.
    pub token: Option<&'a str>,
    /// First date named.
    pub event_date: Option<&'a str>,
    /// First date named to the day (what a date moved is judged by: a batch naming a month,
    /// then a day, moves the date as the two reports one by one would).
    pub day_date: Option<&'a str>,
    /// Documents merged in.
    pub sources: i64,
    /// The first document's title and text (what a new event's kind is read from).
    pub first_document: (&'a str, &'a str),
    /// When the first document was published, as its source says (ms).
    pub published_at: Option<i64>,
    /// The venues the documents' titles name, each once, in the order first named.
    pub venues: Vec<String>,
}

impl<'a> EventChange<'a> {
    /// The change of one document.
    pub fn new(
        document: &'a Document,
        detection: &'a Detection,
        evidence: &'a str,
    ) -> EventChange<'a> {
        EventChange {
            first_document: (&document.title, &document.text),
            published_at: document.published_at.map(to_ms),
            venues: document_venues(document),
            score: detection.score,
            evidence,
            project: detection.project.as_deref(),
            token: detection.token.as_deref(),
            event_date: detection.event_date.as_deref(),
            day_date: day_date(detection),
            sources: 1,
        }
    }

    /// Adds a later document of the batch.
    pub fn add(&mut self, document: &'a Document, detection: &'a Detection, evidence: &'a str) {
        for venue in document_venues(document) {
            if !self.venues.contains(&venue) {
                self.venues.push(venue);
            }
        }
        if detection.score > self.score {
            self.score = detection.score;
            self.evidence = evidence;
        }
        self.project = self.project.or(detection.project.as_deref());
        self.token = self.token.or(detection.token.as_deref());
        self.event_date = self.event_date.or(detection.event_date.as_deref());
        self.day_date = self.day_date.or(day_date(detection));
        self.sources += 1;
    }

    /// The kind of a new event, read from its first document.
    pub fn kind(&self) -> EventKind {
        EventKind::infer(self.first_document.0, self.first_document.1)
    }

    /// The precision of the date named, if any.
    pub fn date_precision(&self) -> Option<&'static str> {
        self.event_date
            .and_then(DatePrecision::of)
            .map(DatePrecision::as_str)
    }
}

/// The venues of a document: the exchange it comes from (an exchange source's own notice or
/// market list), then those its title names.
fn document_venues(document: &Document) -> Vec<String> {
    let mut venues = venues_in(&document.title);
    if let Some(venue) = &document.facts.venue {
        venues.retain(|named| named != venue);
        venues.insert(0, venue.clone());
    }
    venues
}

/// The date a detection names, if it names a day.
fn day_date(detection: &Detection) -> Option<&str> {
    detection
        .event_date
        .as_deref()
        .filter(|date| DatePrecision::of(date) == Some(DatePrecision::Day))
}

/// Milliseconds since the epoch, as stored.
pub fn to_ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A stored millisecond timestamp.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// A list as stored (JSON text).
pub fn json_list(values: &[String]) -> Result<String> {
    Ok(serde_json::to_string(values)?)
}

/// A stored list.
pub fn parse_list(text: &str) -> Result<Vec<String>> {
    Ok(serde_json::from_str(text)?)
}

/// Maps a unique-key violation to a conflict naming the duplicate, other errors as they are.
pub fn conflict(err: sqlx::Error, entity: &str, name: &str) -> Error {
    let duplicate = matches!(&err, sqlx::Error::Database(db) if db.is_unique_violation());
    if duplicate {
        return Error::Conflict(format!("a {entity} named `{name}` already exists"));
    }
    err.into()
}

/// A source's selectors as stored.
pub fn selectors_json(input: &SourceInput) -> Result<Option<String>> {
    match &input.selectors {
        Some(selectors) => Ok(Some(serde_json::to_string(selectors)?)),
        None => Ok(None),
    }
}

/// A source's kind-specific settings, stored as one JSON column (`params`).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SourceParams {
    /// The exchange (`exchange` sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<crate::domain::Exchange>,
    /// Its feed (`exchange` sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<crate::domain::ExchangeFeed>,
    /// The item mapping (`json` sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<crate::domain::JsonMapping>,
    /// The channel (`telegram` sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The search (`x` sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The account (`x` sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// How primary its reports are, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::domain::Provenance>,
}

/// A source's kind-specific settings as stored (none when it has none).
pub fn params_json(input: &SourceInput) -> Result<Option<String>> {
    if input.exchange.is_none()
        && input.feed.is_none()
        && input.json.is_none()
        && input.channel.is_none()
        && input.query.is_none()
        && input.account.is_none()
        && input.provenance.is_none()
    {
        return Ok(None);
    }
    let params = SourceParams {
        provenance: input.provenance,
        exchange: input.exchange,
        feed: input.feed,
        json: input.json.clone(),
        channel: input.channel.clone(),
        query: input.query.clone(),
        account: input
            .account
            .as_ref()
            .map(|account| account.trim_start_matches('@').to_owned()),
    };
    Ok(Some(serde_json::to_string(&params)?))
}

/// Encodes the cursor of the event after which the next page starts.
pub fn encode_cursor(first_seen_ms: i64, id: i64) -> String {
    hex::encode(format!("{first_seen_ms}:{id}"))
}

/// Decodes a cursor from [`encode_cursor`].
pub fn decode_cursor(token: &str) -> Result<(i64, i64)> {
    let invalid = || Error::Invalid("page_token: not a token returned by this API".into());
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (ms, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok((
        ms.parse().map_err(|_| invalid())?,
        id.parse().map_err(|_| invalid())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(n: usize) -> Vec<usize> {
        let items: Vec<usize> = (0..n).collect();
        statement_chunks(&items).map(<[usize]>::len).collect()
    }

    #[test]
    fn statement_chunks_are_powers_of_two_largest_first() {
        let cases: [(usize, &[usize]); 8] = [
            (0, &[]),
            (1, &[1]),
            (3, &[2, 1]),
            (255, &[128, 64, 32, 16, 8, 4, 2, 1]),
            (256, &[256]),
            (300, &[256, 32, 8, 4]),
            (512, &[256, 256]),
            (600, &[256, 256, 64, 16, 8]),
        ];
        for (n, expected) in cases {
            assert_eq!(lengths(n), expected, "{n} rows");
        }
    }

    #[test]
    fn statement_chunks_keep_every_item_in_order() {
        for n in 0..=(3 * ROWS_PER_STATEMENT) {
            let items: Vec<usize> = (0..n).collect();
            let rejoined: Vec<usize> = statement_chunks(&items).flatten().copied().collect();
            assert_eq!(rejoined, items);
            let mut shapes: Vec<usize> = statement_chunks(&items).map(<[usize]>::len).collect();
            assert!(
                shapes
                    .iter()
                    .all(|len| len.is_power_of_two() && *len <= ROWS_PER_STATEMENT)
            );
            shapes.sort_unstable();
            shapes.dedup();
            // At most one chunk of each length below the largest: nine shapes in all.
            assert!(shapes.len() <= 9, "{n} rows: {shapes:?}");
        }
    }

    #[test]
    fn a_search_walks_the_events_when_its_matches_are_a_large_share() {
        // (matches, events, page size, common)
        let cases = [
            // The soak's store of 623 events: a word in nearly all, and two words in half.
            (617, 623, 50, true),
            (315, 623, 50, true),
            // A project's name.
            (3, 623, 50, false),
            // Every tenth of 2,100 events, pages of 50 and 200.
            (210, 2_100, 50, false),
            (210, 2_100, 200, false),
            // At the probe's cap it is common however large the store.
            (COMMON_SEARCH, 10_000_000, 200, true),
            (COMMON_SEARCH - 1, 100_000, 50, false),
            // Nothing matches, or the store is empty.
            (0, 0, 50, false),
            (0, 1_000, 50, false),
            (1, 0, 50, true),
            // Out-of-range values saturate instead of overflowing.
            (1_999, i64::MAX, 200, false),
        ];
        for (matches, events, page, common) in cases {
            assert_eq!(
                search_is_common(matches, events, page, false),
                common,
                "{matches} of {events} events, pages of {page}"
            );
        }
        // With other filters only the count decides.
        assert!(!search_is_common(617, 623, 50, true));
        assert!(search_is_common(COMMON_SEARCH, 623, 50, true));
    }
}
