-- tge-swarm schema for the Postgres store (same shape as the SQLite one, so both stores share
-- their SQL). Times are UTC milliseconds since the epoch.

CREATE TABLE sources (
    id                   BIGSERIAL PRIMARY KEY,
    name                 TEXT    NOT NULL UNIQUE,
    kind                 TEXT    NOT NULL,
    url                  TEXT    NOT NULL,
    interval_ms          BIGINT NOT NULL,
    selectors            TEXT,
    tier                 BIGINT NOT NULL,
    enabled              BOOLEAN NOT NULL,
    created_at           BIGINT NOT NULL,
    last_fetch_at        BIGINT,
    last_status          TEXT,
    last_error           TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    last_item_count      BIGINT NOT NULL DEFAULT 0,
    etag                 TEXT,
    last_modified        TEXT,
    content_hash         TEXT,
    -- Interval until the next fetch, adapted to the source's yield; NULL means `interval_ms`.
    effective_interval_ms BIGINT
);

CREATE TABLE companies (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL UNIQUE,
    aliases    TEXT    NOT NULL,
    tickers    TEXT    NOT NULL,
    priority   TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    exclusions TEXT    NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE documents (
    id           TEXT    PRIMARY KEY,
    source_id    BIGINT NOT NULL,
    source_name  TEXT    NOT NULL,
    url          TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    text         TEXT    NOT NULL,
    published_at BIGINT,
    fetched_at   BIGINT NOT NULL,
    stored_at    BIGINT NOT NULL
);

CREATE TABLE detections (
    document_id TEXT    PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    score       DOUBLE PRECISION    NOT NULL,
    is_tge      BOOLEAN NOT NULL,
    project     TEXT,
    token       TEXT,
    event_date  TEXT,
    evidence    TEXT    NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE tge_events (
    id          BIGSERIAL PRIMARY KEY,
    project     TEXT,
    project_key TEXT    NOT NULL,
    token       TEXT,
    score       DOUBLE PRECISION    NOT NULL,
    event_date  TEXT,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    evidence    TEXT    NOT NULL
);
CREATE INDEX tge_events_by_key ON tge_events (project_key, last_seen);
CREATE INDEX tge_events_by_first_seen ON tge_events (first_seen DESC, id DESC);

CREATE TABLE event_sources (
    event_id    BIGINT NOT NULL REFERENCES tge_events (id) ON DELETE CASCADE,
    document_id TEXT    NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (event_id, document_id)
);

CREATE TABLE api_keys (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT    NOT NULL,
    key_hash   TEXT    NOT NULL UNIQUE,
    scopes     TEXT    NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE memory_snapshots (
    id         BIGSERIAL PRIMARY KEY,
    created_at BIGINT NOT NULL,
    body       TEXT    NOT NULL
);

-- One-time markers (e.g. that the config's sources and watchlist were seeded).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Shared memory, written through by the memory coordinator and reloaded when it restarts.
CREATE TABLE memory_entries (
    namespace  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    version    BIGINT NOT NULL,
    written_by TEXT    NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (namespace, key)
);
