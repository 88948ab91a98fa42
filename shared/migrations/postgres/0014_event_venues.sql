-- The venues (exchanges) the titles of an event's reports name, as a JSON list. A report that
-- names a new one is a material change: a new revision and an update alert. NULL only for
-- events stored before this migration, until the store fills it in at its next start from the
-- titles of all their reports (without alerting).
ALTER TABLE tge_events ADD COLUMN venues TEXT;
CREATE INDEX tge_events_without_venues ON tge_events (id) WHERE venues IS NULL;
