-- SIM identity (docs/modems.md, "SIM identity"): send counts, home-modem assignments and history
-- belong to the SIM (its ICCID), not to the USB port or configured name it happens to sit in.
--
-- The rows that carry a modem name (send_log.modem, members.home_modem, outbox.modem_pref, ...)
-- keep their columns: `sims.key` says under which name a SIM's rows are kept. While a SIM sits in
-- configured modem N its key is N; when it moves, its rows are renamed in one transaction
-- (Store::record_sim), and a SIM pushed out of its slot is parked under `sim:<ICCID>` until it
-- shows up again. Renaming on a move (rare) keeps every reader of those columns unchanged.
CREATE TABLE sims (
    iccid         TEXT PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,           -- the name its rows are kept under
    imsi          TEXT,
    own_number    TEXT,                           -- from AT+CNUM, when the SIM has it
    modem         TEXT,                           -- the configured modem it was last seen in
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    last_sent_at  INTEGER,                        -- carried over from send_log, which is pruned
    keepalive_at  INTEGER,                        -- the last keep-alive
    balance       REAL,                           -- the last balance read by USSD
    balance_text  TEXT,                           -- the network's answer it was read from
    balance_at    INTEGER,
    balance_low   INTEGER NOT NULL DEFAULT 0 CHECK (balance_low BETWEEN 0 AND 1)
) STRICT;

-- Existing rows: every SIM the modems table knows keeps the rows of the modem it was last seen
-- in (one SIM reported by two names, possible before this migration, goes to the later one).
INSERT INTO sims (iccid, key, imsi, own_number, modem, first_seen_at, last_seen_at)
SELECT iccid, name, imsi, own_number, name, seen, seen FROM (
    SELECT iccid, name, imsi, own_number, coalesce(last_seen_at, updated_at) AS seen,
           row_number() OVER (PARTITION BY iccid
                              ORDER BY coalesce(last_seen_at, updated_at) DESC, name) AS rank
    FROM modems WHERE iccid IS NOT NULL AND iccid <> ''
) WHERE rank = 1;

-- What `modems` shows after a different SIM appeared in a configured slot.
ALTER TABLE modems ADD COLUMN previous_iccid TEXT;
ALTER TABLE modems ADD COLUMN sim_changed_at INTEGER;
