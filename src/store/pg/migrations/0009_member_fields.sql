-- PostgreSQL twin of src/store/migrations/0009_member_fields.sql: custom member fields and why
-- a member's home modem was chosen.
CREATE TABLE member_fields (
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    field     TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (member_id, field)
);
CREATE INDEX member_fields_value ON member_fields (field, value COLLATE nocase, member_id);

ALTER TABLE members ADD COLUMN home_reason TEXT;
ALTER TABLE members ADD COLUMN home_reason_modem TEXT;
UPDATE members SET home_reason_modem = home_modem;
