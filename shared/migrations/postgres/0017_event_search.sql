-- Every filter of GET /events reads an index (docs/storage.md shows the plans), and its free
-- text `q` reads `event_search`: per event, a GIN-indexed `tsvector` of its project and token
-- and the titles and first 5,000 characters of text of its first 20 sources, kept by
-- triggers. It is a table of its own so the frequent updates of an event's row (each report
-- merged moves `last_seen`) do not write its words into the index again. The `simple`
-- configuration cuts text into words and folds case, without stemming or stop words, as
-- SQLite's `unicode61` does; positions are stripped (no phrase search), so a vector stays far
-- under the 1 MiB a tsvector may hold.
CREATE INDEX tge_events_by_token ON tge_events (UPPER(token), first_seen DESC, id DESC);
CREATE INDEX tge_events_by_date_precision ON tge_events (date_precision, first_seen DESC, id DESC);
-- For a high `min_score` few events meet, which Postgres's statistics tell its planner (SQLite
-- keeps none, and walks the events newest first, which a few thousand matches make fast).
CREATE INDEX tge_events_by_score ON tge_events (score);

CREATE TABLE event_search (
    event_id BIGINT PRIMARY KEY REFERENCES tge_events (id) ON DELETE CASCADE,
    search   tsvector NOT NULL
);

CREATE FUNCTION event_search_names() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO event_search (event_id, search) VALUES (NEW.id, strip(to_tsvector('simple',
            COALESCE(NEW.project, '') || ' ' || COALESCE(NEW.token, ''))));
    ELSIF NEW.project IS DISTINCT FROM OLD.project OR NEW.token IS DISTINCT FROM OLD.token THEN
        UPDATE event_search SET search = search || strip(to_tsvector('simple',
            COALESCE(NEW.project, '') || ' ' || COALESCE(NEW.token, '')))
        WHERE event_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER event_search_names AFTER INSERT OR UPDATE OF project, token ON tge_events
FOR EACH ROW EXECUTE FUNCTION event_search_names();

CREATE FUNCTION event_search_sources() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT COUNT(*) FROM event_sources WHERE event_id = NEW.event_id) <= 20 THEN
        UPDATE event_search s SET search = s.search || strip(to_tsvector('simple',
            d.title || ' ' || left(d.text, 5000)))
        FROM documents d WHERE s.event_id = NEW.event_id AND d.id = NEW.document_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER event_search_sources AFTER INSERT ON event_sources
FOR EACH ROW EXECUTE FUNCTION event_search_sources();

INSERT INTO event_search (event_id, search)
SELECT e.id, strip(to_tsvector('simple',
    COALESCE(e.project, '') || ' ' || COALESCE(e.token, '') || ' ' || COALESCE((
        SELECT string_agg(part, ' ') FROM (
            SELECT d.title || ' ' || left(d.text, 5000) AS part
            FROM event_sources es JOIN documents d ON d.id = es.document_id
            WHERE es.event_id = e.id ORDER BY es.added_at, es.document_id LIMIT 20
        ) AS first_sources
    ), '')))
FROM tge_events e;
-- New words wait in the index's pending list until it holds 64 kB (the least Postgres
-- allows; 4 MB by default), and every search reads that list whole: kept short, a search
-- stays fast under a steady stream of new events.
CREATE INDEX event_search_words ON event_search USING GIN (search)
WITH (gin_pending_list_limit = 64);
