-- The size of each calendar object's text in UTF-8 bytes, written with the
-- text (gateway.store.rows.encode_object): what getcontentlength answers.
-- A PROPFIND of the whole calendar lists every object's size, and working it
-- out there (length(CAST(ics AS BLOB))) reads every object's whole text,
-- most of that listing's time. Objects stored before get the size of the
-- text they have.
ALTER TABLE objects ADD COLUMN ics_size INTEGER NOT NULL DEFAULT 0;

UPDATE objects SET ics_size = length(CAST(ics AS BLOB));
