-- PostgreSQL twin of src/store/migrations/0012_sim_identity.sql: SIM identity (docs/modems.md,
-- "SIM identity"): under which name a SIM's rows are kept, and its balance.
CREATE TABLE sims (
    iccid         TEXT PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    imsi          TEXT,
    own_number    TEXT,
    modem         TEXT,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    last_sent_at  BIGINT,
    keepalive_at  BIGINT,
    balance       DOUBLE PRECISION,
    balance_text  TEXT,
    balance_at    BIGINT,
    balance_low   BIGINT NOT NULL DEFAULT 0 CHECK (balance_low BETWEEN 0 AND 1)
);

INSERT INTO sims (iccid, key, imsi, own_number, modem, first_seen_at, last_seen_at)
SELECT iccid, name, imsi, own_number, name, seen, seen FROM (
    SELECT iccid, name, imsi, own_number, coalesce(last_seen_at, updated_at) AS seen,
           row_number() OVER (PARTITION BY iccid
                              ORDER BY coalesce(last_seen_at, updated_at) DESC, name) AS rank
    FROM modems WHERE iccid IS NOT NULL AND iccid <> ''
) AS ranked WHERE rank = 1;

ALTER TABLE modems ADD COLUMN previous_iccid TEXT;
ALTER TABLE modems ADD COLUMN sim_changed_at BIGINT;
