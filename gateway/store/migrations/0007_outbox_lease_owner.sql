-- Who holds an outbox item's lease. On PostgreSQL several replicas share one
-- outbox: each holds a session advisory lock of its own while it lives, and
-- a lease whose holder's lock is gone (the replica died) may be taken at
-- once instead of when leased_until runs out. SQLite has one server per
-- database file and leaves the column empty.
ALTER TABLE outbox ADD COLUMN leased_by INTEGER;
