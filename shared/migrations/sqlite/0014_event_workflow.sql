-- The analysts' workflow: a status per event with who set it and when, an audit of every
-- status change and note, and what the event is: its kind and the precision of its date.
-- `kind` is NULL only for events stored before this migration, until the store fills it in
-- at its next start (inferred from the event's first document, in Rust).
ALTER TABLE tge_events ADD COLUMN status TEXT NOT NULL DEFAULT 'new';
ALTER TABLE tge_events ADD COLUMN status_changed_at INTEGER;
ALTER TABLE tge_events ADD COLUMN status_by TEXT;
ALTER TABLE tge_events ADD COLUMN kind TEXT;
ALTER TABLE tge_events ADD COLUMN date_precision TEXT;
CREATE INDEX tge_events_by_status ON tge_events (status, first_seen DESC, id DESC);
CREATE INDEX tge_events_by_kind ON tge_events (kind, first_seen DESC, id DESC);

CREATE TABLE event_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL REFERENCES tge_events (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    status_from TEXT,
    status_to   TEXT,
    note        TEXT
);
CREATE INDEX event_changes_by_event ON event_changes (event_id, id);
