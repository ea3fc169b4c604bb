-- What an outbox row's `text` is: 'text' is sent as an ordinary SMS (GSM 7-bit or UCS-2,
-- concatenated when long); 'vcard' is a vCard sent as 8-bit data to application port 9204
-- (the contact card's `vcard_sms` mode). Existing rows are texts, which the default keeps.
-- SQLite adds a column with a constant default without rewriting the table, so this is cheap on
-- a large outbox, and STRICT tables accept the CHECK here.
ALTER TABLE outbox ADD COLUMN payload TEXT NOT NULL DEFAULT 'text'
    CHECK (payload = 'text' OR payload = 'vcard');
