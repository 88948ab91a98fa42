-- Retention (queen/src/retention.rs): old documents and fingerprints are deleted in small
-- batches, oldest first, so both are read by age.
CREATE INDEX documents_by_stored_at ON documents (stored_at);
CREATE INDEX document_fingerprints_by_stored_at ON document_fingerprints (stored_at);
