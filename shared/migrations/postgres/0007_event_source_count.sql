-- A page of events lists a bounded number of sources per event, so each event keeps the count
-- of all its sources (kept by the recording transaction, which adds one source per new
-- document it merges).
ALTER TABLE tge_events ADD COLUMN source_count BIGINT NOT NULL DEFAULT 0;
UPDATE tge_events
SET source_count = (SELECT COUNT(*) FROM event_sources es WHERE es.event_id = tge_events.id);
-- The first sources of each event of a page, in the order they were added, read from the
-- index alone (the primary key, by document, needs every row of the event and a sort).
CREATE INDEX event_sources_by_event_time ON event_sources (event_id, added_at, document_id);
