-- PostgreSQL form of 0004_outbox_order.sql (oldest undone item of each kind
-- and booking first; leases).
CREATE INDEX outbox_by_booking ON outbox (resource_id, booking_id, kind, id)
    WHERE done_at IS NULL;

ALTER TABLE outbox ADD COLUMN leased_until TEXT COLLATE "C";
