-- Every filter of GET /events reads an index (docs/storage.md shows the plans), and its free
-- text `q` reads an FTS5 index with one row per event (rowid = event id): its project and
-- token and the titles and first 5,000 characters of text of its first 20 sources. The index
-- is contentless (the text stays in `documents` only) and kept by triggers, so no writer has
-- to know of it.
CREATE INDEX tge_events_by_token ON tge_events (UPPER(token), first_seen DESC, id DESC);
CREATE INDEX tge_events_by_date_precision ON tge_events (date_precision, first_seen DESC, id DESC);

-- `unicode61` cuts text into runs of letters and digits and folds case, as Postgres's
-- `simple` text search does; diacritics are kept, as Postgres keeps them.
CREATE VIRTUAL TABLE event_search USING fts5(
    body,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0'
);

-- What an event's row holds (read for one event at a time: the filter on `event_id` reaches
-- into the view, so only that event's sources are read).
CREATE VIEW event_search_text (event_id, body) AS
SELECT e.id, COALESCE(e.project, '') || ' ' || COALESCE(e.token, '') || ' ' || COALESCE((
    SELECT group_concat(part, ' ') FROM (
        SELECT d.title || ' ' || substr(d.text, 1, 5000) AS part
        FROM event_sources es JOIN documents d ON d.id = es.document_id
        WHERE es.event_id = e.id ORDER BY es.added_at, es.document_id LIMIT 20
    )
), '')
FROM tge_events e;

-- An event's row is written anew (a contentless row cannot be read back to append to) when it
-- is created, named, or given one of its first 20 sources; after that its text stays.
CREATE TRIGGER event_search_created AFTER INSERT ON tge_events BEGIN
    INSERT INTO event_search (rowid, body)
    VALUES (NEW.id, COALESCE(NEW.project, '') || ' ' || COALESCE(NEW.token, ''));
END;
CREATE TRIGGER event_search_named AFTER UPDATE OF project, token ON tge_events
WHEN OLD.project IS NOT NEW.project OR OLD.token IS NOT NEW.token BEGIN
    DELETE FROM event_search WHERE rowid = NEW.id;
    INSERT INTO event_search (rowid, body)
    SELECT event_id, body FROM event_search_text WHERE event_id = NEW.id;
END;
CREATE TRIGGER event_search_removed AFTER DELETE ON tge_events BEGIN
    DELETE FROM event_search WHERE rowid = OLD.id;
END;
CREATE TRIGGER event_search_source_added AFTER INSERT ON event_sources
WHEN (SELECT COUNT(*) FROM event_sources WHERE event_id = NEW.event_id) <= 20 BEGIN
    DELETE FROM event_search WHERE rowid = NEW.event_id;
    INSERT INTO event_search (rowid, body)
    SELECT event_id, body FROM event_search_text WHERE event_id = NEW.event_id;
END;

INSERT INTO event_search (rowid, body) SELECT event_id, body FROM event_search_text;
