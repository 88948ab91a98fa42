-- Source health for analysts: a source that keeps failing, or stays silent past its expected
-- period, is an incident that subscribers are told of once, and once more when it recovers.
-- `down_since` marks an open incident; `health_incidents` counts them (it names the alerts).
-- Outbox rows and alerts now name an event or a source, so their `event_id` may be NULL:
-- SQLite cannot drop a NOT NULL, so both tables are rebuilt with their rows and ids.
ALTER TABLE sources ADD COLUMN down_since INTEGER;
ALTER TABLE sources ADD COLUMN down_reason TEXT;
ALTER TABLE sources ADD COLUMN health_incidents INTEGER NOT NULL DEFAULT 0;

CREATE TABLE outbox_rebuilt (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   BIGINT  REFERENCES tge_events (id) ON DELETE CASCADE,
    source_id  BIGINT  REFERENCES sources (id) ON DELETE CASCADE,
    revision   BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    detail     TEXT,
    created_at BIGINT  NOT NULL,
    fanned_out BOOLEAN NOT NULL DEFAULT FALSE,
    CHECK ((event_id IS NULL) <> (source_id IS NULL))
);
INSERT INTO outbox_rebuilt (id, event_id, revision, kind, created_at, fanned_out)
    SELECT id, event_id, revision, kind, created_at, fanned_out FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_waiting ON outbox (id) WHERE NOT fanned_out;

CREATE TABLE alert_deliveries_rebuilt (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id  BIGINT  NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_id         BIGINT,
    source_id        BIGINT,
    revision         BIGINT  NOT NULL,
    kind             TEXT    NOT NULL,
    detail           TEXT,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    status           TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    lease_until      BIGINT,
    last_status_code BIGINT,
    last_error       TEXT,
    event_stored_at  BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL,
    delivered_at     BIGINT
);
INSERT INTO alert_deliveries_rebuilt (id, subscription_id, event_id, revision, kind,
        idempotency_key, status, attempts, next_attempt_at, lease_until, last_status_code,
        last_error, event_stored_at, created_at, delivered_at)
    SELECT id, subscription_id, event_id, revision, kind, idempotency_key, status, attempts,
        next_attempt_at, lease_until, last_status_code, last_error, event_stored_at,
        created_at, delivered_at FROM alert_deliveries;
DROP TABLE alert_deliveries;
ALTER TABLE alert_deliveries_rebuilt RENAME TO alert_deliveries;
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_by_subscription ON alert_deliveries (subscription_id, id DESC);
CREATE INDEX alert_deliveries_by_event ON alert_deliveries (subscription_id, event_id, created_at);
