-- PostgreSQL form of 0010_object_sizes.sql: the UTF-8 size of each calendar
-- object's text, written with the text; objects stored before get theirs.
ALTER TABLE objects ADD COLUMN ics_size INTEGER NOT NULL DEFAULT 0;

UPDATE objects SET ics_size = octet_length(ics);
