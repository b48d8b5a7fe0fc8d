-- The outbox hands out only the oldest undone item of each kind and booking;
-- this index answers "is there an older undone item of this kind for this
-- booking?" without a scan of the queue.
CREATE INDEX outbox_by_booking ON outbox (resource_id, booking_id, kind, id)
    WHERE done_at IS NULL;
