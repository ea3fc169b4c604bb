-- PostgreSQL twin of src/store/migrations/0005_submit_evidence.sql: the evidence that resolves a
-- message in flight at a crash by its status report (docs/dispatch.md, "In-doubt policy at
-- restart"): each modem's last TP-MR, and the submit in flight for an outbox row.
CREATE TABLE modem_refs (
    modem   TEXT PRIMARY KEY,
    last_mr BIGINT NOT NULL CHECK (last_mr BETWEEN 0 AND 255),
    at      BIGINT NOT NULL
);

ALTER TABLE outbox ADD COLUMN submit_modem TEXT;
ALTER TABLE outbox ADD COLUMN submit_part BIGINT CHECK (submit_part BETWEEN 1 AND 255);
ALTER TABLE outbox ADD COLUMN submit_total BIGINT CHECK (submit_total BETWEEN 1 AND 255);
ALTER TABLE outbox ADD COLUMN submit_at BIGINT;
ALTER TABLE outbox ADD COLUMN submit_mr BIGINT CHECK (submit_mr BETWEEN 0 AND 255);

CREATE INDEX outbox_in_doubt_mr ON outbox (submit_modem, submit_mr) WHERE state = 'in_doubt';
