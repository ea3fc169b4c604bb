-- PostgreSQL twin of src/store/migrations/0010_broadcast_progress.sql: what a broadcast's ETA
-- groups by, kept on the row at enqueue, and the covering index the progress poll reads.
ALTER TABLE outbox ADD COLUMN parts BIGINT CHECK (parts IS NULL OR parts BETWEEN 1 AND 255);
ALTER TABLE outbox ADD COLUMN zone TEXT;
ALTER TABLE outbox ADD COLUMN quiet_off BIGINT NOT NULL DEFAULT 0 CHECK (quiet_off BETWEEN 0 AND 1);

-- The same estimate as the SQLite file: SQLite's `NOT GLOB '*[^<LF><CR> -~]*'` (only printable
-- ASCII and line breaks) is the negated regular expression match here.
UPDATE outbox SET zone = (SELECT m.time_zone FROM members m WHERE m.number = outbox.to_number)
    WHERE broadcast_id IS NOT NULL;
UPDATE outbox SET parts = least(255, CASE
        WHEN text !~ ('[^' || chr(10) || chr(13) || ' -~]') THEN
            CASE WHEN length(text) <= 160 THEN 1 ELSE (length(text) + 152) / 153 END
        ELSE
            CASE WHEN length(text) <= 70 THEN 1 ELSE (length(text) + 66) / 67 END
    END)
    WHERE broadcast_id IS NOT NULL;

CREATE INDEX outbox_broadcast_progress
    ON outbox (broadcast_id, state, modem_pref, zone, parts, not_before)
    WHERE broadcast_id IS NOT NULL;
