-- An event's revision: 1 when created, raised by each material change (a date set), which
-- also writes an outbox row, so subscribers are told of the update once.
ALTER TABLE tge_events ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
