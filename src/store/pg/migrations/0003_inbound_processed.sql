-- PostgreSQL twin of src/store/migrations/0003_inbound_processed.sql: when the community step
-- was applied to an inbound message (NULL: stored, not yet processed).
ALTER TABLE messages_in ADD COLUMN processed_at BIGINT;
UPDATE messages_in SET processed_at = received_at;
CREATE INDEX messages_in_unprocessed ON messages_in (id) WHERE processed_at IS NULL;
