-- The schedule tag of each calendar object (RFC 6638 3.2.10): the ETag the
-- object had when its organizer last wrote it (a CalDAV client, an import,
-- the gateway's own API); answers and SCHEDULE-STATUS written by the server
-- keep it (gateway.core.model.CalendarObject says why this value). Objects
-- stored before have no record of a server-only change, so their tag is
-- their ETag: the text as it stands is the organizer's as far as anyone knows.
ALTER TABLE objects ADD COLUMN schedule_tag TEXT NOT NULL DEFAULT '';

UPDATE objects SET schedule_tag = etag;
