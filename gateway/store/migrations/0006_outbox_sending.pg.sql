-- PostgreSQL form of 0006_outbox_sending.sql (items marked before an effect
-- that must not silently happen twice; items closed as failed; the
-- /healthz write probe).
ALTER TABLE outbox ADD COLUMN sending_since TEXT COLLATE "C";
ALTER TABLE outbox ADD COLUMN resends INTEGER NOT NULL DEFAULT 0;

ALTER TABLE outbox ADD COLUMN failed_at TEXT COLLATE "C";

CREATE INDEX outbox_failed ON outbox (failed_at) WHERE failed_at IS NOT NULL;

CREATE TABLE storage_probe (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TEXT NOT NULL,
    pad        BYTEA
);
