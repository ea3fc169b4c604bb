-- PostgreSQL twin of src/store/migrations/0002_outbox_payload.sql: what an outbox row's `text` is
-- ('text' or a 'vcard' sent as 8-bit data). Adding a column with a constant default does not
-- rewrite the table in PostgreSQL either.
ALTER TABLE outbox ADD COLUMN payload TEXT NOT NULL DEFAULT 'text'
    CHECK (payload = 'text' OR payload = 'vcard');
