-- API keys get a lifecycle: an optional expiry, the last time each was used (written at most
-- once a minute per key), and revocation. Revoked keys stay listed, for the record.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
