-- CalDAV clients choose the name of each calendar object resource (RFC 4791
-- 5.3.2: the href is the client's, the UID is the object's), and vdirsyncer,
-- for one, names objects after something other than the UID when the UID has
-- characters unsafe in a URL. So objects get a name of their own, unique in
-- their collection. Existing objects keep the name the gateway always served:
-- the UID plus ".ics".
ALTER TABLE objects ADD COLUMN href TEXT NOT NULL DEFAULT '';
UPDATE objects SET href = uid || '.ics';
CREATE UNIQUE INDEX objects_by_href ON objects (resource_id, href);

-- sync-collection (RFC 6578) reports changes by href; a deletion must name the
-- href the object had, which nothing else remembers once the object is gone.
ALTER TABLE changes ADD COLUMN href TEXT NOT NULL DEFAULT '';
UPDATE changes SET href = uid || '.ics';
CREATE INDEX changes_by_href ON changes (resource_id, href, revision);

ALTER TABLE tombstones ADD COLUMN href TEXT NOT NULL DEFAULT '';
UPDATE tombstones SET href = uid || '.ics';

-- Properties clients may set on a calendar with PROPPATCH (display name,
-- colour, ...), keyed by their Clark name "{namespace}local". The calendar
-- itself still comes from the config file.
CREATE TABLE collection_properties (
    resource_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (resource_id, name)
) WITHOUT ROWID;
