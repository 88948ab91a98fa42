-- Retention walked every document older than its cutoff by age and skipped, one by one, the
-- ones an event lists: those are kept for ever, so each batch statement read all of them
-- again and its cost grew with the store's age (the soak's kept documents grow by about 2 a
-- second). Recording now marks the documents it links to an event (they are linked only in
-- the batch that stores them), and retention walks an index of the others alone.
ALTER TABLE documents ADD COLUMN in_event BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE documents SET in_event = TRUE WHERE id IN (SELECT document_id FROM event_sources);
DROP INDEX documents_by_stored_at;
CREATE INDEX documents_unlisted_by_stored_at ON documents (stored_at) WHERE in_event = FALSE;
