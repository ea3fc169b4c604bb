-- A broadcast's rows leave the indexes that key on their state as soon as they leave the queue
-- (docs/store.md, "Pages per SMS"). `outbox_broadcast_progress` (0010) held every broadcast row
-- with its state as the second key column, so every transition of a copy (claimed, sent,
-- delivered) moved its entry: two to five of the ~25 pages an SMS wrote to the write-ahead log,
-- for a probe that only ever asks about queued rows (the ETA's earliest due time per group).
-- And `outbox_broadcast_queue` (0007) held the queued rows a second time in another order.
--
-- Now one partial index holds a broadcast's queued rows, keyed so that each reader binds a prefix:
-- the held reasons' walk groups by (home modem, pause flag); the ETA's earliest due time and the
-- held reasons' due-later ranges bind every column before `not_before` (a count row of
-- `broadcast_counts` knows all of them, pause flag included), so each is one seek or one range.
-- A claim removes the row from it; nothing after the claim touches it. A second index holds a
-- broadcast's rows by broadcast only, for the few reads that look at rows in any state (the
-- total at enqueue, resume, a copy's quiet-hours flag): its key never changes after the insert.
DROP INDEX outbox_broadcast_progress;
DROP INDEX outbox_broadcast_queue;
CREATE INDEX outbox_broadcast_queue
    ON outbox (broadcast_id, modem_pref, held, zone, parts, not_before)
    WHERE broadcast_id IS NOT NULL AND state = 'queued';
CREATE INDEX outbox_broadcast ON outbox (broadcast_id) WHERE broadcast_id IS NOT NULL;
