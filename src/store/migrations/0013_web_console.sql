-- The web console's accounts, sessions and audit trail (docs/web.md). A password is kept only as
-- its Argon2id hash (PHC string); a session only as the SHA-256 of its cookie value, so neither a
-- copy of the database nor a backup holds a usable credential. Removing a user removes its
-- sessions (ON DELETE CASCADE) but not its audit rows: who changed what stays answerable.
CREATE TABLE web_users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'volunteer')),
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES web_users (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- One row per change made through the console: who (the account's name, kept as text so it
-- survives the account's removal), what (the command and a short detail), when.
CREATE TABLE web_audit (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    user   TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
) STRICT;
CREATE INDEX web_audit_at ON web_audit (at);
