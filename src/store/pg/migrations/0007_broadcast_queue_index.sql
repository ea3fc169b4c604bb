-- PostgreSQL twin of src/store/migrations/0007_broadcast_queue_index.sql: the queued rows of a
-- broadcast by home modem and pause flag, for the progress poll.
CREATE INDEX outbox_broadcast_queue ON outbox (broadcast_id, modem_pref, held, not_before)
    WHERE state = 'queued';
