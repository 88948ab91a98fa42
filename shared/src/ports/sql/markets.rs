//! Exchange market lists: every symbol seen per exchange and market type, so that a symbol
//! appearing is recognised, and what the swarm knew of its asset elsewhere.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, QueryBuilder, Row, Type,
};

use super::{DbRow, Sql, SqlBackend, from_ms, statement_chunks, to_ms};
use crate::domain::{Exchange, ListedToken, MarketListing, MarketType, MarketsSeen, NewMarket};
use crate::error::Result;

impl<B> Sql<'_, B>
where
    B: SqlBackend,
    // What the SQL needs of the database, restated on every block (see `Sql`).
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> bool: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> &'q str: ColumnIndex<DbRow<B>>,
{
    /// What one read of `exchange`'s market lists holds that the store has not seen: market
    /// types never read on this exchange (to be recorded whole, announcing nothing) and new
    /// symbols in the others, with what the swarm knew of their asset. Reads only; see
    /// [`Sql::record_markets`].
    pub async fn market_changes(
        &self,
        exchange: Exchange,
        listings: &[MarketListing],
    ) -> Result<MarketsSeen> {
        let name = exchange.as_str();
        let mut known_types: BTreeSet<MarketType> = BTreeSet::new();
        let mut known_bases: HashSet<String> = HashSet::new();
        let mut known: HashSet<(String, String)> = HashSet::new();
        let rows =
            sqlx::query("SELECT market, symbol, base FROM exchange_markets WHERE exchange = $1")
                .bind(name)
                .fetch_all(self.0.reader())
                .await?;
        for row in rows {
            let market: String = row.try_get("market")?;
            if let Some(market) = MarketType::parse(&market) {
                known_types.insert(market);
            }
            known_bases.insert(row.try_get("base")?);
            known.insert((market, row.try_get("symbol")?));
        }
        let mut first_reads: BTreeSet<MarketType> = BTreeSet::new();
        let mut seen_now: HashSet<(MarketType, &str)> = HashSet::new();
        let mut new = Vec::new();
        for listing in listings {
            if !seen_now.insert((listing.market, listing.symbol.as_str()))
                || known.contains(&(listing.market.as_str().to_owned(), listing.symbol.clone()))
            {
                continue;
            }
            if !known_types.contains(&listing.market) {
                first_reads.insert(listing.market);
                continue;
            }
            let elsewhere = sqlx::query(
                "SELECT DISTINCT exchange FROM exchange_markets WHERE base = $1 AND exchange <> $2 \
                 ORDER BY exchange",
            )
            .bind(listing.base.as_str())
            .bind(name)
            .fetch_all(self.0.reader())
            .await?
            .iter()
            .map(|row| row.try_get("exchange"))
            .collect::<std::result::Result<Vec<String>, _>>()?;
            new.push(NewMarket {
                listing: listing.clone(),
                base_on_this_exchange: known_bases.contains(&listing.base),
                base_elsewhere: elsewhere,
            });
        }
        Ok(MarketsSeen {
            first_reads: first_reads.into_iter().collect(),
            new,
        })
    }

    /// The tokens the watched exchanges list that trade, by their earliest sighting on any of
    /// them: one its exchange listed, trading, at the first read of that market type (it
    /// traded before the swarm looked), or one first seen before `seen_before`. A token whose
    /// earliest sighting is a new symbol within the window is launching, even if another
    /// exchange's first read has it since. One per base, by base.
    pub async fn listed_tokens(&self, seen_before: DateTime<Utc>) -> Result<Vec<ListedToken>> {
        let rows = sqlx::query(
            "SELECT base, exchange, market, first_seen_at, first_read, pre_trading FROM ( \
             SELECT base, exchange, market, first_seen_at, first_read, pre_trading, \
             ROW_NUMBER() OVER (PARTITION BY base ORDER BY first_seen_at, exchange, market) \
             AS sighting FROM exchange_markets) m \
             WHERE sighting = 1 AND ((first_read AND NOT pre_trading) OR first_seen_at < $1) \
             ORDER BY base",
        )
        .bind(to_ms(seen_before))
        .fetch_all(self.0.reader())
        .await?;
        let mut tokens: Vec<ListedToken> = Vec::with_capacity(rows.len());
        for row in rows {
            let first_seen_at: i64 = row.try_get("first_seen_at")?;
            let first_read: bool = row.try_get("first_read")?;
            let pre_trading: bool = row.try_get("pre_trading")?;
            tokens.push(ListedToken {
                base: row.try_get("base")?,
                exchange: row.try_get("exchange")?,
                market: row.try_get("market")?,
                first_seen_at: from_ms(first_seen_at),
                in_first_read: first_read && !pre_trading,
            });
        }
        Ok(tokens)
    }

    /// Remembers every symbol of `listings` on `exchange` (those already known are left as
    /// they are, with their first sighting). Run after the new ones were announced: a read
    /// that fails before this finds them new again.
    pub async fn record_markets(
        &self,
        exchange: Exchange,
        listings: &[MarketListing],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let name = exchange.as_str();
        let at = to_ms(at);
        let mut tx = self.0.begin_write().await?;
        // The market types this exchange has rows of: a listing of another type is part of
        // that type's first read. Read again here, in the writing transaction, rather than
        // taken from `market_changes`: another agent may have recorded this exchange's first
        // read since, and then this one is not a first read.
        let mut read_before: BTreeSet<String> = BTreeSet::new();
        for row in sqlx::query("SELECT DISTINCT market FROM exchange_markets WHERE exchange = $1")
            .bind(name)
            .fetch_all(&mut *tx)
            .await?
        {
            read_before.insert(row.try_get("market")?);
        }
        for chunk in statement_chunks(listings) {
            let mut builder: QueryBuilder<B::Db> = QueryBuilder::new(
                "INSERT INTO exchange_markets (exchange, market, symbol, base, quote, \
                 first_seen_at, first_read, pre_trading) ",
            );
            builder.push_values(chunk, |mut row, listing| {
                row.push_bind(name)
                    .push_bind(listing.market.as_str())
                    .push_bind(listing.symbol.as_str())
                    .push_bind(listing.base.as_str())
                    .push_bind(listing.quote.as_str())
                    .push_bind(at)
                    .push_bind(!read_before.contains(listing.market.as_str()))
                    .push_bind(listing.is_pre_trading());
            });
            builder.push(" ON CONFLICT (exchange, market, symbol) DO NOTHING");
            builder.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
