-- Kind-specific settings of a source (exchange and feed, JSON mapping), as JSON.
ALTER TABLE sources ADD COLUMN params TEXT;

-- Every symbol seen in an exchange's market lists, so that a new one is recognised.
CREATE TABLE exchange_markets (
    exchange      TEXT    NOT NULL,
    market        TEXT    NOT NULL,
    symbol        TEXT    NOT NULL,
    base          TEXT    NOT NULL,
    quote         TEXT    NOT NULL,
    first_seen_at BIGINT  NOT NULL,
    PRIMARY KEY (exchange, market, symbol)
);
CREATE INDEX exchange_markets_by_base ON exchange_markets (base, exchange);

-- When the first report of an event was published by its source (its lag is first_seen minus this).
ALTER TABLE tge_events ADD COLUMN published_at BIGINT;
