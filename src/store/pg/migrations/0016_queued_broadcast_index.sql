-- PostgreSQL twin of src/store/migrations/0016_queued_broadcast_index.sql: one partial index of
-- a broadcast's queued rows, which no transition after the claim touches, and one of its rows by
-- broadcast only, whose key never changes.
DROP INDEX outbox_broadcast_progress;
DROP INDEX outbox_broadcast_queue;
CREATE INDEX outbox_broadcast_queue
    ON outbox (broadcast_id, modem_pref, held, zone, parts, not_before)
    WHERE broadcast_id IS NOT NULL AND state = 'queued';
CREATE INDEX outbox_broadcast ON outbox (broadcast_id) WHERE broadcast_id IS NOT NULL;
