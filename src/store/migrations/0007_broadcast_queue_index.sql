-- What holds a broadcast (`broadcasts`, `broadcast_progress`: docs/admin-protocol.md, `held`) is
-- counted on every progress poll, once a second under `broadcast --wait`. This partial index holds
-- exactly the queued rows, ordered by broadcast, home modem and pause flag, with the due time:
-- the count per (modem, paused) with its due-later split walks the index in order and never
-- touches the table (measured on 100,000 queued rows with the sqlite3 shell: about 20 ms of CPU,
-- against about 75 ms for the same GROUP BY over the table, which sorted in a temporary B-tree).
-- Rows leave it when they are claimed, so it stays as small as the queue.
CREATE INDEX outbox_broadcast_queue ON outbox (broadcast_id, modem_pref, held, not_before)
    WHERE state = 'queued';
