-- PostgreSQL form of 0002_hrefs.sql (object names chosen by clients, names
-- in the change log and tombstones, collection properties).
ALTER TABLE objects ADD COLUMN href TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE objects SET href = uid || '.ics';
CREATE UNIQUE INDEX objects_by_href ON objects (resource_id, href);

ALTER TABLE changes ADD COLUMN href TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE changes SET href = uid || '.ics';
CREATE INDEX changes_by_href ON changes (resource_id, href, revision);

ALTER TABLE tombstones ADD COLUMN href TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE tombstones SET href = uid || '.ics';

CREATE TABLE collection_properties (
    resource_id TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (resource_id, name)
);
