-- The venues (exchanges) the titles of an event's reports name, as a JSON list. A report that
-- names a new one is a material change: a new revision and an update alert.
ALTER TABLE tge_events ADD COLUMN venues TEXT NOT NULL DEFAULT '[]';
