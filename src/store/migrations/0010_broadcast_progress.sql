-- Big broadcasts stay light to poll (docs/dispatch.md, "Progress and ETA"; docs/benchmarks.md):
-- what the broadcast's ETA groups by is kept on the row at enqueue, so one progress poll is a
-- single GROUP BY over a covering index instead of a join with the members and a segmentation
-- of every queued text.
--
-- `parts`: the SMS part count of the row's text, counted at enqueue by the command that knows
-- its encoding (NULL when the enqueuer did not count it; the ETA then counts those from the
-- text). `zone`: the recipient's time zone at enqueue (NULL = `[dispatch] default_time_zone`).
-- `quiet_off`: this row ignores quiet hours (a broadcast sent with `--ignore-quiet-hours`).
ALTER TABLE outbox ADD COLUMN parts INTEGER CHECK (parts IS NULL OR parts BETWEEN 1 AND 255);
ALTER TABLE outbox ADD COLUMN zone TEXT;
ALTER TABLE outbox ADD COLUMN quiet_off INTEGER NOT NULL DEFAULT 0 CHECK (quiet_off BETWEEN 0 AND 1);

-- Existing broadcast rows: the zone from their member, the part count estimated from the text
-- (SQL cannot run the modems' segmentation): printable ASCII and line breaks are taken as GSM
-- 7-bit (160 characters in one SMS, 153 per part beyond), anything else as UCS-2 (70, 67 per
-- part). Only the ETA of broadcasts queued before the upgrade reads the estimate.
UPDATE outbox SET zone = (SELECT m.time_zone FROM members m WHERE m.number = outbox.to_number)
    WHERE broadcast_id IS NOT NULL;
UPDATE outbox SET parts = min(255, CASE
        WHEN text NOT GLOB ('*[^' || char(10) || char(13) || ' -~]*') THEN
            CASE WHEN length(text) <= 160 THEN 1 ELSE (length(text) + 152) / 153 END
        ELSE
            CASE WHEN length(text) <= 70 THEN 1 ELSE (length(text) + 66) / 67 END
    END)
    WHERE broadcast_id IS NOT NULL;

-- The progress poll's GROUP BY reads only this index (covering, in group order: no temporary
-- B-tree; `not_before` trails for the group's earliest start); the EXPLAIN QUERY PLAN is pinned
-- by a test in store/outbox/broadcasts.rs.
CREATE INDEX outbox_broadcast_progress
    ON outbox (broadcast_id, state, modem_pref, zone, parts, not_before)
    WHERE broadcast_id IS NOT NULL;
