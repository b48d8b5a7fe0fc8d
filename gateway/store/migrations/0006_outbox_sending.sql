-- Outbox items whose effect cannot be undone or repeated unnoticed (e-mail)
-- are marked, in a commit of their own, right before the effect starts:
-- after a crash a set sending_since tells "maybe done" from "not started".
-- resends counts how often an item was found so (claimed again while
-- marked), for the log and /healthz.
ALTER TABLE outbox ADD COLUMN sending_since TEXT;
ALTER TABLE outbox ADD COLUMN resends INTEGER NOT NULL DEFAULT 0;

-- Closed without its effect (a permanent failure, like a mailbox the mail
-- server refuses): done_at is set too, so it never runs again; last_error
-- keeps the reason.
ALTER TABLE outbox ADD COLUMN failed_at TEXT;

CREATE INDEX outbox_failed ON outbox (failed_at) WHERE failed_at IS NOT NULL;

-- /healthz proves the database takes a write: one heartbeat row, and room
-- for a booking taken and given back inside a savepoint (the file does not
-- grow; see SqliteRepository.check_writable).
CREATE TABLE storage_probe (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TEXT NOT NULL,
    pad        BLOB
);
