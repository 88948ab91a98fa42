-- Near-duplicate index: each stored document's 64-bit body SimHash (stored as its signed
-- bit pattern) and its five bands. Copies within a few bits share at least one band, so a
-- lookup by band finds them without scanning (see shared/src/ports/sql.rs simhash_bands).
-- `merge_key` keeps templated notices of different projects (same text, another name) apart.
CREATE TABLE document_fingerprints (
    document_id TEXT    PRIMARY KEY,
    source_name TEXT    NOT NULL,
    merge_key   TEXT    NOT NULL,
    simhash     BIGINT  NOT NULL,
    band0       INTEGER NOT NULL,
    band1       INTEGER NOT NULL,
    band2       INTEGER NOT NULL,
    band3       INTEGER NOT NULL,
    band4       INTEGER NOT NULL,
    stored_at   BIGINT  NOT NULL
);
CREATE INDEX document_fingerprints_band0 ON document_fingerprints (band0);
CREATE INDEX document_fingerprints_band1 ON document_fingerprints (band1);
CREATE INDEX document_fingerprints_band2 ON document_fingerprints (band2);
CREATE INDEX document_fingerprints_band3 ON document_fingerprints (band3);
CREATE INDEX document_fingerprints_band4 ON document_fingerprints (band4);
