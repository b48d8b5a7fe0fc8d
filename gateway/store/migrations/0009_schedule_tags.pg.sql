-- PostgreSQL form of 0009_schedule_tags.sql: the schedule tag of each
-- calendar object (RFC 6638 3.2.10); objects stored before get their ETag.
ALTER TABLE objects ADD COLUMN schedule_tag TEXT NOT NULL DEFAULT '';

UPDATE objects SET schedule_tag = etag;
