-- The outbox hands out only the oldest undone item of each kind and booking;
-- this index answers "is there an older undone item of this kind for this
-- booking?" without a scan of the queue.
CREATE INDEX outbox_by_booking ON outbox (resource_id, booking_id, kind, id)
    WHERE done_at IS NULL;

-- A claimed item is leased to its worker until this time: no other worker
-- takes it meanwhile, and making deferred items due early (after a
-- reconnect) cannot hand an item that is being run to a second worker.
-- Kept apart from next_attempt_at, which says when a retry is due.
ALTER TABLE outbox ADD COLUMN leased_until TEXT;
