-- PostgreSQL form of 0005_uid_unique_answer_times.sql: UIDs unique across
-- the gateway; copies stored before are kept, marked and logged (see the
-- SQLite form for the reasons). The answer times need no schema change.
ALTER TABLE objects ADD COLUMN uid_shared SMALLINT NOT NULL DEFAULT 0
    CHECK (uid_shared IN (0, 1));

UPDATE objects SET uid_shared = 1
WHERE EXISTS (SELECT 1 FROM objects AS first WHERE first.uid = objects.uid AND first.id < objects.id);

CREATE UNIQUE INDEX objects_by_uid ON objects (uid) WHERE uid_shared = 0;

CREATE INDEX objects_uid ON objects (uid);

CREATE INDEX objects_uid_shared ON objects (uid) WHERE uid_shared = 1;

-- The time written as gateway.store.rows.utc_text writes it.
INSERT INTO sync_log (resource_id, at, kind, message, booking_id)
SELECT o.resource_id,
       to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '.000000+00:00',
       'warning',
       'the calendar object ' || quote_literal(o.href) || ' has UID ' || quote_literal(o.uid)
           || ', as an object of another calendar has (both stored before UIDs had to be '
           || 'unique across the gateway). Answers from attendees to this UID are applied '
           || 'only when their ORGANIZER tells the objects apart: delete the copy that '
           || 'should not be there.',
       o.booking_id
FROM objects AS o
WHERE o.uid IN (SELECT uid FROM objects WHERE uid_shared = 1);
