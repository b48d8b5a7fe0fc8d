-- PostgreSQL form of 0007_outbox_lease_owner.sql: the key of the advisory
-- lock (namespace postgres_schema.WORKER_NAMESPACE) the leasing replica
-- holds while it lives.
ALTER TABLE outbox ADD COLUMN leased_by INTEGER;
