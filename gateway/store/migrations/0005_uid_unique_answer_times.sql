-- UIDs are unique across the whole gateway, not only within a calendar: an
-- attendee's answer (an iTIP REPLY names the event by UID alone, RFC 5546
-- 3.2.3) must not be able to land on a copy another calendar's user stored
-- under the same UID.
--
-- A live database may already hold such copies. This migration must not fail
-- on it, and deleting somebody's calendar object is not its call, so they are
-- kept: the oldest object of each UID stays as it is, every later one is
-- marked uid_shared = 1 and left out of the unique index. The store refuses
-- every NEW object whose UID another calendar holds (a check in the writing
-- transaction, gateway.store.sqlite); the index below backs that up in the
-- database. Marked objects can still be changed and deleted; each start logs
-- the UIDs still shared (gateway.store.uids) and each calendar's log (the
-- sync log the admin API shows) gets one warning per marked object now.
-- Replies to a shared UID are routed by their ORGANIZER or refused
-- (gateway.core.answers).
ALTER TABLE objects ADD COLUMN uid_shared INTEGER NOT NULL DEFAULT 0
    CHECK (uid_shared IN (0, 1));

UPDATE objects SET uid_shared = 1
WHERE EXISTS (SELECT 1 FROM objects AS first WHERE first.uid = objects.uid AND first.id < objects.id);

CREATE UNIQUE INDEX objects_by_uid ON objects (uid) WHERE uid_shared = 0;

-- Replies look objects up by UID alone, in every calendar.
CREATE INDEX objects_uid ON objects (uid);

-- Finds the UIDs still shared without scanning the table (only marked rows).
CREATE INDEX objects_uid_shared ON objects (uid) WHERE uid_shared = 1;

INSERT INTO sync_log (resource_id, at, kind, message, booking_id)
SELECT o.resource_id,
       strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000+00:00',
       'warning',
       'the calendar object ' || quote(o.href) || ' has UID ' || quote(o.uid)
           || ', as an object of another calendar has (both stored before UIDs had to be '
           || 'unique across the gateway). Answers from attendees to this UID are applied '
           || 'only when their ORGANIZER tells the objects apart: delete the copy that '
           || 'should not be there.',
       o.booking_id
FROM objects AS o
WHERE o.uid IN (SELECT uid FROM objects WHERE uid_shared = 1);

-- The time of each attendee's current answer is kept beside the answer, in
-- the attendees JSON column (key "answered_at", ISO-8601 UTC; see
-- gateway.store.rows), so that an answer given earlier than the one stored
-- (a late e-mail, RFC 5546 3.2.3 DTSTAMP) no longer overturns it. The column
-- is already JSON, so nothing changes on disk: answers stored before this
-- version have no time and any later answer supersedes them.
