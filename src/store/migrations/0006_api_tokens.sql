-- API tokens of the HTTP API (docs/http-api.md, "Tokens"). Only a SHA-256 hash of the secret is
-- kept: the secret is shown once by `gsmgate tokens create` and cannot be read back from here. A
-- revoked token keeps its row (who had access, and until when, stays answerable); its name can be
-- reused by a new token, hence the partial unique index instead of a unique column.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    scope       TEXT NOT NULL CHECK (scope IN ('read', 'send', 'admin')),
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at  INTEGER
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Idempotency keys of creating POSTs: the first request with a key reserves it (state
-- 'pending') before the command runs; its response is saved with it ('done'), and a retry with
-- the same key and the same request gets that saved response instead of a second send. Keys
-- belong to the token that used them. Rows older than a day are pruned.
CREATE TABLE idempotency_keys (
    token        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    status       INTEGER,
    body         TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (token, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
