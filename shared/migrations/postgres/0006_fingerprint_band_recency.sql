-- The near-duplicate lookup reads the newest fingerprints of each band within the merge
-- window (see shared/src/ports/sql.rs NEAR_DUPLICATE_CANDIDATES): index each band with its
-- time, so that lookup reads only the rows it returns.
DROP INDEX document_fingerprints_band0;
DROP INDEX document_fingerprints_band1;
DROP INDEX document_fingerprints_band2;
DROP INDEX document_fingerprints_band3;
DROP INDEX document_fingerprints_band4;
CREATE INDEX document_fingerprints_band0_at ON document_fingerprints (band0, stored_at);
CREATE INDEX document_fingerprints_band1_at ON document_fingerprints (band1, stored_at);
CREATE INDEX document_fingerprints_band2_at ON document_fingerprints (band2, stored_at);
CREATE INDEX document_fingerprints_band3_at ON document_fingerprints (band3, stored_at);
CREATE INDEX document_fingerprints_band4_at ON document_fingerprints (band4, stored_at);
-- The same lookup joins each candidate to its event by document: without this index every
-- candidate scanned the whole event_sources table.
CREATE INDEX event_sources_by_document ON event_sources (document_id);
