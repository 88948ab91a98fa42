-- The near-duplicate lookup of the embedded store now reads a band index held in memory,
-- built from this table by the first recording transaction and brought up to date inside each
-- later one (shared/src/ports/band_index.rs). The five band indexes on disk cost five
-- random B-tree inserts per recorded document and as many seeks per lookup (BENCHMARKS.md,
-- "In-memory band index"). The band columns stay: the statements that write fingerprints are
-- shared with Postgres, which keeps its band indexes (several processes write there).
DROP INDEX document_fingerprints_band0_sim;
DROP INDEX document_fingerprints_band1_sim;
DROP INDEX document_fingerprints_band2_sim;
DROP INDEX document_fingerprints_band3_sim;
DROP INDEX document_fingerprints_band4_sim;
