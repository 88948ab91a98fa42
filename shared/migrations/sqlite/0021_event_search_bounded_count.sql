-- Whether a new source is among an event's first 20 is told by counting at most 21 of its
-- sources, not all of them (a cost that grew with the event). SQLite fires row triggers row
-- by row, so the count sees the rows inserted before this one, as it should.
DROP TRIGGER event_search_source_added;
CREATE TRIGGER event_search_source_added AFTER INSERT ON event_sources
WHEN (SELECT COUNT(*) FROM (
    SELECT 1 FROM event_sources WHERE event_id = NEW.event_id LIMIT 21
)) <= 20 BEGIN
    DELETE FROM event_search WHERE rowid = NEW.event_id;
    INSERT INTO event_search (rowid, body)
    SELECT event_id, body FROM event_search_text WHERE event_id = NEW.event_id;
END;
