-- Evidence kept so that a message in flight at a crash can be resolved by its status report
-- (docs/dispatch.md, "In-doubt policy at restart").
--
-- modem_refs: the last `+CMGS: <mr>` each modem answered. The modem picks TP-MR itself and
-- increments it by one per SMS-SUBMIT, modulo 256 (3GPP TS 23.040 §9.2.3.6; the gateway's PDUs
-- carry TP-MR 0 and the modem ignores it), so the reference of the next submit is predictable.
-- Its own table rather than a column of `modems`: a reference is recorded on every send, also
-- for a modem whose identity row was never written.
CREATE TABLE modem_refs (
    modem   TEXT PRIMARY KEY,
    last_mr INTEGER NOT NULL CHECK (last_mr BETWEEN 0 AND 255),
    at      INTEGER NOT NULL
) STRICT;

-- The submit in flight (or last started) for an outbox row, written just before `AT+CMGS`:
-- which part of how many, on which modem, when, and the reference the modem is expected to
-- give it (NULL when the modem's last reference was unknown).
ALTER TABLE outbox ADD COLUMN submit_modem TEXT;
ALTER TABLE outbox ADD COLUMN submit_part INTEGER CHECK (submit_part BETWEEN 1 AND 255);
ALTER TABLE outbox ADD COLUMN submit_total INTEGER CHECK (submit_total BETWEEN 1 AND 255);
ALTER TABLE outbox ADD COLUMN submit_at INTEGER;
ALTER TABLE outbox ADD COLUMN submit_mr INTEGER CHECK (submit_mr BETWEEN 0 AND 255);

-- Status reports look up in-doubt rows by modem and expected reference; in-doubt rows are few.
CREATE INDEX outbox_in_doubt_mr ON outbox (submit_modem, submit_mr) WHERE state = 'in_doubt';
