-- The near-duplicate lookup reads, per band value, the newest fingerprints' SimHashes from a
-- band index. Those indexes carried each fingerprint's document id too (33 of about 58 bytes
-- per entry), so that the lookup returned it without reading the table. Every entry of a
-- SQLite index already ends with its row's rowid: the lookup now returns the rowid, and the
-- few fingerprints close enough are read in full by rowid. Indexes less than half the size
-- mean fewer pages read and written for each recorded batch (BENCHMARKS.md, "Slimmer band
-- indexes"). Postgres keeps its covering indexes (0008): it has no stable row id to return.
DROP INDEX document_fingerprints_band0_cover;
DROP INDEX document_fingerprints_band1_cover;
DROP INDEX document_fingerprints_band2_cover;
DROP INDEX document_fingerprints_band3_cover;
DROP INDEX document_fingerprints_band4_cover;
CREATE INDEX document_fingerprints_band0_sim ON document_fingerprints (band0, stored_at, simhash);
CREATE INDEX document_fingerprints_band1_sim ON document_fingerprints (band1, stored_at, simhash);
CREATE INDEX document_fingerprints_band2_sim ON document_fingerprints (band2, stored_at, simhash);
CREATE INDEX document_fingerprints_band3_sim ON document_fingerprints (band3, stored_at, simhash);
CREATE INDEX document_fingerprints_band4_sim ON document_fingerprints (band4, stored_at, simhash);
