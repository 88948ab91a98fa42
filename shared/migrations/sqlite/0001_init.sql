-- tge-swarm schema for the embedded SQLite store. Times are UTC milliseconds since the epoch.

CREATE TABLE sources (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    name                 TEXT    NOT NULL UNIQUE,
    kind                 TEXT    NOT NULL,
    url                  TEXT    NOT NULL,
    interval_ms          INTEGER NOT NULL,
    selectors            TEXT,
    tier                 INTEGER NOT NULL,
    enabled              INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    last_fetch_at        INTEGER,
    last_status          TEXT,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_item_count      INTEGER NOT NULL DEFAULT 0,
    etag                 TEXT,
    last_modified        TEXT,
    content_hash         TEXT,
    -- Interval until the next fetch, adapted to the source's yield; NULL means `interval_ms`.
    effective_interval_ms INTEGER
);

CREATE TABLE companies (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL UNIQUE,
    aliases    TEXT    NOT NULL,
    tickers    TEXT    NOT NULL,
    priority   TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    exclusions TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE documents (
    id           TEXT    PRIMARY KEY,
    source_id    INTEGER NOT NULL,
    source_name  TEXT    NOT NULL,
    url          TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    text         TEXT    NOT NULL,
    published_at INTEGER,
    fetched_at   INTEGER NOT NULL,
    stored_at    INTEGER NOT NULL
);

CREATE TABLE detections (
    document_id TEXT    PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    score       REAL    NOT NULL,
    is_tge      INTEGER NOT NULL,
    project     TEXT,
    token       TEXT,
    event_date  TEXT,
    evidence    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE tge_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project     TEXT,
    project_key TEXT    NOT NULL,
    token       TEXT,
    score       REAL    NOT NULL,
    event_date  TEXT,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    evidence    TEXT    NOT NULL
);
CREATE INDEX tge_events_by_key ON tge_events (project_key, last_seen);
CREATE INDEX tge_events_by_first_seen ON tge_events (first_seen DESC, id DESC);

CREATE TABLE event_sources (
    event_id    INTEGER NOT NULL REFERENCES tge_events (id) ON DELETE CASCADE,
    document_id TEXT    NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    added_at    INTEGER NOT NULL,
    PRIMARY KEY (event_id, document_id)
);

CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    key_hash   TEXT    NOT NULL UNIQUE,
    scopes     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE memory_snapshots (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
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
    version    INTEGER NOT NULL,
    written_by TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (namespace, key)
);
