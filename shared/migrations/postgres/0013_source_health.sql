-- Source health for analysts: a source that keeps failing, or stays silent past its expected
-- period, is an incident that subscribers are told of once, and once more when it recovers.
-- `down_since` marks an open incident; `health_incidents` counts them (it names the alerts).
-- Outbox rows and alerts now name an event or a source, so their `event_id` may be NULL.
ALTER TABLE sources ADD COLUMN down_since BIGINT;
ALTER TABLE sources ADD COLUMN down_reason TEXT;
ALTER TABLE sources ADD COLUMN health_incidents BIGINT NOT NULL DEFAULT 0;

ALTER TABLE outbox ALTER COLUMN event_id DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN source_id BIGINT REFERENCES sources (id) ON DELETE CASCADE;
ALTER TABLE outbox ADD COLUMN detail TEXT;
ALTER TABLE outbox ADD CONSTRAINT outbox_names_one
    CHECK ((event_id IS NULL) <> (source_id IS NULL));

ALTER TABLE alert_deliveries ALTER COLUMN event_id DROP NOT NULL;
ALTER TABLE alert_deliveries ADD COLUMN source_id BIGINT;
ALTER TABLE alert_deliveries ADD COLUMN detail TEXT;
