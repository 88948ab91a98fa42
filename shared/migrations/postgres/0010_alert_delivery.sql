-- Alert delivery: subscriptions, the transactional outbox (one row per event change, written
-- in the transaction that made the change) and the alerts fanned out from it, one per
-- (subscription, event, revision), with their attempts.
CREATE TABLE subscriptions (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    channel       TEXT    NOT NULL,
    filters       TEXT    NOT NULL,
    quiet_minutes BIGINT  NOT NULL,
    enabled       BOOLEAN NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE outbox (
    id         BIGSERIAL PRIMARY KEY,
    event_id   BIGINT  NOT NULL REFERENCES tge_events (id) ON DELETE CASCADE,
    revision   BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    fanned_out BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX outbox_waiting ON outbox (id) WHERE NOT fanned_out;

CREATE TABLE alert_deliveries (
    id               BIGSERIAL PRIMARY KEY,
    subscription_id  BIGINT  NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_id         BIGINT  NOT NULL,
    revision         BIGINT  NOT NULL,
    kind             TEXT    NOT NULL,
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
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_by_subscription ON alert_deliveries (subscription_id, id DESC);
CREATE INDEX alert_deliveries_by_event ON alert_deliveries (subscription_id, event_id, created_at);
