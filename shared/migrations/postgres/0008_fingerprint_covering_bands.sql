-- The near-duplicate lookup of a batch reads, per band value, the newest fingerprints'
-- SimHashes and compares them in memory; only the few within the distance are read in full.
-- Each band's index carries the SimHash and the document id, so that first read never
-- touches the table.
DROP INDEX document_fingerprints_band0_at;
DROP INDEX document_fingerprints_band1_at;
DROP INDEX document_fingerprints_band2_at;
DROP INDEX document_fingerprints_band3_at;
DROP INDEX document_fingerprints_band4_at;
CREATE INDEX document_fingerprints_band0_cover ON document_fingerprints (band0, stored_at) INCLUDE (simhash, document_id);
CREATE INDEX document_fingerprints_band1_cover ON document_fingerprints (band1, stored_at) INCLUDE (simhash, document_id);
CREATE INDEX document_fingerprints_band2_cover ON document_fingerprints (band2, stored_at) INCLUDE (simhash, document_id);
CREATE INDEX document_fingerprints_band3_cover ON document_fingerprints (band3, stored_at) INCLUDE (simhash, document_id);
CREATE INDEX document_fingerprints_band4_cover ON document_fingerprints (band4, stored_at) INCLUDE (simhash, document_id);
