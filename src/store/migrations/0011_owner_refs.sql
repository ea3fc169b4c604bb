-- The owner on their own phone (docs/community.md, "Owners on their own phone").
--
-- `owner_refs`: the short random reference a member's forwarded text carries (`#k7q2m`), so an
-- owner can answer by texting `#k7q2m text`. One live reference per member, refreshed by each
-- forward; `expires_at` bounds how long a leaked or guessed reference is any use. Expired rows
-- are deleted by the next write, so a reference may be drawn again later.
CREATE TABLE owner_refs (
    ref        TEXT PRIMARY KEY,
    member     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX owner_refs_member ON owner_refs (member, expires_at);

-- `owner_confirmations`: a `BROADCAST` an owner asked for by SMS, waiting for `YES <code>` from
-- the same number. Stored (not held in memory) so a restart neither loses nor replays one; a
-- row is closed exactly once (`closed_at`, `outcome`), which is what makes a code single-use.
CREATE TABLE owner_confirmations (
    id         INTEGER PRIMARY KEY,
    owner      TEXT NOT NULL,
    code       TEXT NOT NULL,
    segment    TEXT,
    text       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    closed_at  INTEGER,
    -- An OR chain, not IN (…): docs/store.md, "The database file".
    outcome    TEXT CHECK (outcome IS NULL OR outcome = 'confirmed' OR outcome = 'wrong_code'
                           OR outcome = 'expired' OR outcome = 'replaced'),
    broadcast_id INTEGER
) STRICT;
CREATE INDEX owner_confirmations_open ON owner_confirmations (owner) WHERE closed_at IS NULL;
