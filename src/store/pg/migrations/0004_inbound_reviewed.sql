-- PostgreSQL twin of src/store/migrations/0004_inbound_reviewed.sql: when a person reviewed a
-- flagged inbound message.
ALTER TABLE messages_in ADD COLUMN reviewed_at BIGINT;
CREATE INDEX messages_in_unreviewed ON messages_in (thread, received_at)
    WHERE flag = 'possible_opt_out' AND reviewed_at IS NULL;
