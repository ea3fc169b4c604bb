-- Custom member fields (answers to `[[community.onboarding]]` questions beyond the built-in
-- columns, and the same columns of a CSV import) and why a member's home modem was chosen.
--
-- A table rather than a JSON column on `members`: a segment condition `shirt_size=L` is then an
-- indexed lookup (`member_fields_value`), written like the tag condition, and a field is set or
-- cleared with one statement without rewriting the member's other answers.
CREATE TABLE member_fields (
    member_id INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    field     TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (member_id, field)
) STRICT, WITHOUT ROWID;
CREATE INDEX member_fields_value ON member_fields (field, value COLLATE NOCASE, member_id);

-- `home_reason` (geomatch, country, balance, sticky) is recorded for the modem named in
-- `home_reason_modem`: a home moved by anything that does not record a reason (the dispatch
-- runner's failover move) no longer matches it and reads as `failover`. Members from before this
-- migration have no recorded reason.
ALTER TABLE members ADD COLUMN home_reason TEXT;
ALTER TABLE members ADD COLUMN home_reason_modem TEXT;
UPDATE members SET home_reason_modem = home_modem;
