-- Initial schema. Applied by gateway.store.schema inside one transaction, which
-- then sets PRAGMA user_version = 1. Never edit a shipped migration: add the
-- next numbered file instead, so existing databases move forward the same way.

-- One row per calendar (resource). The revision is the ctag / sync token and
-- is bumped by every change to the collection.
CREATE TABLE collections (
    resource_id TEXT PRIMARY KEY NOT NULL,
    revision    INTEGER NOT NULL CHECK (revision >= 0)
) WITHOUT ROWID;

-- Calendar objects: the iCalendar text exactly as received beside the parsed
-- Booking fields. `id` aliases the rowid so it survives VACUUM (an implicit
-- rowid may be renumbered, which would orphan the time_index rows keyed by it);
-- (resource_id, uid) is the natural key the spec calls for.
CREATE TABLE objects (
    id          INTEGER PRIMARY KEY,
    resource_id TEXT NOT NULL REFERENCES collections (resource_id),
    uid         TEXT NOT NULL,
    booking_id  TEXT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    location    TEXT NOT NULL,
    -- ISO-8601 with the UTC offset the booking had in its own timezone.
    start_at    TEXT NOT NULL,
    end_at      TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    -- ISO-8601 in UTC.
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    attendees   TEXT NOT NULL CHECK (json_valid(attendees)),
    status      TEXT NOT NULL CHECK (status IN ('confirmed', 'tentative', 'cancelled')),
    transparent INTEGER NOT NULL CHECK (transparent IN (0, 1)),
    origin      TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    recurring   INTEGER NOT NULL CHECK (recurring IN (0, 1)),
    ics         TEXT NOT NULL,
    etag        TEXT NOT NULL,
    -- Indexed extent in whole epoch seconds (UTC): exact integers the R*Tree
    -- candidates are re-checked against.
    span_start  INTEGER NOT NULL,
    span_end    INTEGER NOT NULL CHECK (span_end >= span_start),
    -- Collection revision at this object's last change.
    revision    INTEGER NOT NULL,
    UNIQUE (resource_id, uid)
);

CREATE INDEX objects_by_start ON objects (resource_id, span_start);

-- Time-range index. R*Tree coordinates are 32-bit floats rounded outward, so a
-- box always contains the exact span and the query re-checks objects' integer
-- columns. Integer R*Trees (rtree_i32) cannot hold year 9999 (FAR_FUTURE).
CREATE VIRTUAL TABLE time_index USING rtree (id, span_start, span_end);

-- Triggers keep the index in step with objects whatever statement touches
-- them, so the two cannot drift apart.
CREATE TRIGGER objects_index_insert AFTER INSERT ON objects
BEGIN
    INSERT INTO time_index (id, span_start, span_end)
    VALUES (NEW.id, NEW.span_start, NEW.span_end);
END;

CREATE TRIGGER objects_index_update AFTER UPDATE OF span_start, span_end ON objects
BEGIN
    UPDATE time_index SET span_start = NEW.span_start, span_end = NEW.span_end
    WHERE id = NEW.id;
END;

CREATE TRIGGER objects_index_delete AFTER DELETE ON objects
BEGIN
    DELETE FROM time_index WHERE id = OLD.id;
END;

-- Change log (RFC 6578 sync-collection, feeds): exactly one row per revision.
CREATE TABLE changes (
    resource_id TEXT NOT NULL REFERENCES collections (resource_id),
    revision    INTEGER NOT NULL,
    uid         TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('put', 'delete')),
    PRIMARY KEY (resource_id, revision)
) WITHOUT ROWID;

-- Finds the latest change of each UID without scanning the log.
CREATE INDEX changes_by_uid ON changes (resource_id, uid, revision);

-- Deleted objects, kept so a pruned change log can still report deletions.
CREATE TABLE tombstones (
    resource_id TEXT NOT NULL REFERENCES collections (resource_id),
    uid         TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    deleted_at  TEXT NOT NULL,
    PRIMARY KEY (resource_id, uid)
) WITHOUT ROWID;

-- Side effects committed with the change that caused them, drained by workers.
-- AUTOINCREMENT: ids never repeat, even once done rows are purged, so a stale
-- worker can never complete or retry somebody else's item.
-- next_attempt_at NULL means "due now" whatever clock the worker uses.
-- Times are ISO-8601 UTC with microseconds: they sort as text.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    resource_id     TEXT NOT NULL,
    booking_id      TEXT NOT NULL,
    payload         TEXT NOT NULL CHECK (json_valid(payload)),
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    done_at         TEXT
);

CREATE INDEX outbox_pending ON outbox (id) WHERE done_at IS NULL;

CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY NOT NULL,
    fingerprint TEXT NOT NULL,
    booking_id  TEXT NOT NULL,
    created_at  TEXT NOT NULL
) WITHOUT ROWID;
