-- Which symbols an exchange's market list held when the swarm first read it (they traded
-- before the swarm looked), and which were not trading yet when first seen (a pre-launch
-- status such as PRE_TRADING or preopen). Detection holds the assets of the first kind as
-- trading at once; the others once their first sighting is older than the merge window.
ALTER TABLE exchange_markets ADD COLUMN first_read INTEGER NOT NULL DEFAULT 0;
ALTER TABLE exchange_markets ADD COLUMN pre_trading INTEGER NOT NULL DEFAULT 0;

-- Rows stored before: a first read was recorded with one timestamp, the oldest of its
-- exchange and market type.
UPDATE exchange_markets SET first_read = 1
WHERE first_seen_at = (
    SELECT MIN(f.first_seen_at) FROM exchange_markets f
    WHERE f.exchange = exchange_markets.exchange AND f.market = exchange_markets.market
);
