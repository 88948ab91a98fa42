-- An event's search vector takes its first 20 sources once per statement, not once per row:
-- the row trigger counted the event's sources at every row (a cost growing with the event)
-- and rewrote the vector and its index entries for each source (BENCHMARKS.md, "Where
-- Postgres spends the distributed pipeline's time"). Row triggers fire after the whole
-- statement, so its count also saw every row of the statement: the rows of a statement
-- that carried an event past its twentieth source were never indexed. `sources` counts the
-- sources indexed. Rows stored before: an event with at most 20 sources had them all indexed;
-- one with more may have missed some, so its vector is built again from its names and first
-- 20 sources, as migration 0017 built every one.
ALTER TABLE event_search ADD COLUMN sources INTEGER NOT NULL DEFAULT 0;
UPDATE event_search s SET sources = n.sources
FROM (SELECT event_id, COUNT(*) AS sources FROM event_sources GROUP BY event_id) n
WHERE s.event_id = n.event_id AND n.sources <= 20;
UPDATE event_search s SET sources = 20, search = strip(to_tsvector('simple',
    COALESCE(e.project, '') || ' ' || COALESCE(e.token, '') || ' ' || COALESCE((
        SELECT string_agg(part, ' ') FROM (
            SELECT d.title || ' ' || left(d.text, 5000) AS part
            FROM event_sources es JOIN documents d ON d.id = es.document_id
            WHERE es.event_id = e.id ORDER BY es.added_at, es.document_id LIMIT 20
        ) AS first_sources
    ), '')))
FROM tge_events e
WHERE s.event_id = e.id
  AND (SELECT COUNT(*) FROM event_sources es WHERE es.event_id = e.id) > 20;

DROP TRIGGER event_search_sources ON event_sources;
CREATE OR REPLACE FUNCTION event_search_sources() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH added AS (
        SELECT n.event_id, n.document_id,
               ROW_NUMBER() OVER (PARTITION BY n.event_id ORDER BY n.added_at, n.document_id) AS k
        FROM new_sources n
    ), indexed AS (
        SELECT a.event_id, COUNT(*) AS n,
               strip(to_tsvector('simple',
                   string_agg(d.title || ' ' || left(d.text, 5000), ' '))) AS words
        FROM added a
        JOIN event_search s ON s.event_id = a.event_id
        JOIN documents d ON d.id = a.document_id
        WHERE s.sources + a.k <= 20
        GROUP BY a.event_id
    )
    UPDATE event_search s SET search = s.search || i.words, sources = s.sources + i.n
    FROM indexed i WHERE s.event_id = i.event_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER event_search_sources AFTER INSERT ON event_sources
REFERENCING NEW TABLE AS new_sources
FOR EACH STATEMENT EXECUTE FUNCTION event_search_sources();
