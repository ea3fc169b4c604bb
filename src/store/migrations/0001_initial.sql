-- gsmgate schema, version 1. Applied once, inside one transaction, by store::schema::migrate.
-- All times are unix milliseconds (INTEGER). All tables are STRICT so a wrong type is an error,
-- not a silent coercion. Enumerations are checked with OR chains, not `IN (...)`: SQLite builds
-- an ephemeral table for an IN list on every statement run, which made a 100k-row broadcast
-- insert five times slower. Never edit a released migration: add a new file instead.

-- Modems: identity from the SIM/modem, last polled status, and whether the pool may use it.
CREATE TABLE modems (
    name            TEXT PRIMARY KEY,          -- the configured [[modem]] name
    iccid           TEXT,
    imsi            TEXT,
    imei            TEXT,
    own_number      TEXT,
    profile         TEXT,
    registration    TEXT,
    signal          INTEGER,                   -- +CSQ rssi (0-31, 99 = unknown)
    operator        TEXT,
    last_seen_at    INTEGER,
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled BETWEEN 0 AND 1),
    disabled_reason TEXT,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX modems_iccid ON modems (iccid);
CREATE INDEX modems_imsi ON modems (imsi);

-- Members of the community. number is E.164 text and the natural key used everywhere else.
CREATE TABLE members (
    id              INTEGER PRIMARY KEY,
    number          TEXT NOT NULL UNIQUE,
    name            TEXT,
    city            TEXT COLLATE NOCASE,
    region          TEXT COLLATE NOCASE,
    time_zone       TEXT,
    joined_at       INTEGER NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status = 'pending_confirmation' OR status = 'active' OR status = 'opted_out'),
    home_modem      TEXT,                      -- a modem name; not a foreign key: modems come and go
    onboarding_step TEXT,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX members_status ON members (status);
CREATE INDEX members_city ON members (city);
CREATE INDEX members_region ON members (region);
CREATE INDEX members_joined ON members (joined_at);

CREATE TABLE member_tags (
    member_id INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    tag       TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (member_id, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX member_tags_tag ON member_tags (tag, member_id);

-- Consent audit trail: append-only, enforced by triggers.
CREATE TABLE consent_log (
    id     INTEGER PRIMARY KEY,
    number TEXT NOT NULL,
    event  TEXT NOT NULL
           CHECK (event = 'joined' OR event = 'confirmed' OR event = 'opted_out' OR event = 'opted_in' OR event = 'imported' OR event = 'removed'),
    detail TEXT,                               -- keyword or text that caused the event
    source TEXT NOT NULL CHECK (source = 'sms' OR source = 'cli' OR source = 'import'),
    at     INTEGER NOT NULL
) STRICT;
CREATE INDEX consent_log_number ON consent_log (number, at);
CREATE TRIGGER consent_log_no_update BEFORE UPDATE ON consent_log
BEGIN SELECT RAISE(ABORT, 'consent_log is append-only'); END;
CREATE TRIGGER consent_log_no_delete BEFORE DELETE ON consent_log
BEGIN SELECT RAISE(ABORT, 'consent_log is append-only'); END;

-- The suppression list: one row per number that texted STOP and has not texted START since.
-- Kept apart from members so that removing a member never lifts an opt-out.
CREATE TABLE opt_outs (
    number TEXT PRIMARY KEY,
    since  INTEGER NOT NULL,
    detail TEXT
) STRICT, WITHOUT ROWID;

-- Inbound messages, whole (single part, or assembled from inbound_parts).
CREATE TABLE messages_in (
    id          INTEGER PRIMARY KEY,
    modem       TEXT NOT NULL,
    sender      TEXT NOT NULL,
    text        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    scts        TEXT,                          -- service centre time stamp, RFC 3339
    parts_total INTEGER NOT NULL DEFAULT 1,
    complete    INTEGER NOT NULL DEFAULT 1 CHECK (complete BETWEEN 0 AND 1),
    read        INTEGER NOT NULL DEFAULT 0 CHECK (read BETWEEN 0 AND 1),
    flag        TEXT,                          -- e.g. 'possible_opt_out'
    thread      TEXT NOT NULL,                 -- the member number the conversation is keyed by
    body_key    TEXT                           -- single-part dedup key (PDU hex, else text)
) STRICT;
CREATE UNIQUE INDEX messages_in_single_dedup ON messages_in (modem, sender, scts, body_key)
    WHERE body_key IS NOT NULL;
CREATE INDEX messages_in_thread ON messages_in (thread, received_at);
CREATE INDEX messages_in_unread ON messages_in (thread) WHERE read = 0;
CREATE INDEX messages_in_received ON messages_in (received_at);

-- Parts of concatenated messages, committed before the modem deletes them from the SIM.
CREATE TABLE inbound_parts (
    id         INTEGER PRIMARY KEY,
    modem      TEXT NOT NULL,
    sender     TEXT NOT NULL,
    reference  INTEGER NOT NULL,
    total      INTEGER NOT NULL CHECK (total BETWEEN 1 AND 255),
    sequence   INTEGER NOT NULL CHECK (sequence BETWEEN 1 AND 255),
    text       TEXT NOT NULL,
    scts       TEXT NOT NULL,
    pdu_hex    TEXT,
    stored_at  INTEGER NOT NULL,
    message_id INTEGER REFERENCES messages_in (id),
    UNIQUE (modem, sender, reference, total, sequence, scts)
) STRICT;
CREATE INDEX inbound_parts_pending ON inbound_parts (id) WHERE message_id IS NULL;

-- Broadcasts: one leader message to a segment, expanded into one outbox row per recipient.
CREATE TABLE broadcasts (
    id           INTEGER PRIMARY KEY,
    template     TEXT NOT NULL,
    segment      TEXT NOT NULL,                -- description of the segment (JSON or text)
    created_at   INTEGER NOT NULL,
    scheduled_at INTEGER,
    state        TEXT NOT NULL
                 CHECK (state = 'scheduled' OR state = 'running' OR state = 'paused' OR state = 'cancelled' OR state = 'done'),
    total        INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL
) STRICT;

-- The outbox: the single source of truth for what must be sent. One row per recipient message.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    to_number    TEXT NOT NULL,
    text         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind = 'reply' OR kind = 'compliance' OR kind = 'bulk' OR kind = 'direct'),
    priority     INTEGER NOT NULL,
    broadcast_id INTEGER REFERENCES broadcasts (id),
    modem_pref   TEXT,
    created_at   INTEGER NOT NULL,
    not_before   INTEGER NOT NULL,
    expires_at   INTEGER,
    state        TEXT NOT NULL CHECK (state = 'queued' OR state = 'claimed' OR state = 'sent' OR state = 'delivered' OR state = 'failed' OR state = 'expired' OR state = 'cancelled' OR state = 'in_doubt'),
    held         INTEGER NOT NULL DEFAULT 0 CHECK (held BETWEEN 0 AND 1),  -- broadcast paused
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    claimed_by   TEXT,
    claimed_at   INTEGER,
    sent_at      INTEGER,
    delivered_at INTEGER,
    finished_at  INTEGER,
    concat_ref   INTEGER,                      -- concatenation reference, kept for a resend
    UNIQUE (broadcast_id, to_number)           -- no member gets the same broadcast twice
) STRICT;
-- Few indexes on purpose: each one costs on every row of a 100k broadcast. The UNIQUE above
-- also serves "rows of broadcast N"; rows by state (claimed at start-up, in doubt for the admin)
-- are found by scanning, which is rare and takes milliseconds.
CREATE INDEX outbox_due ON outbox (priority DESC, not_before, id)
    WHERE state = 'queued' AND held = 0;
CREATE INDEX outbox_to ON outbox (to_number, created_at);

CREATE TABLE outbox_parts (
    outbox_id     INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    part          INTEGER NOT NULL CHECK (part BETWEEN 1 AND 255),
    total         INTEGER NOT NULL CHECK (total BETWEEN 1 AND 255),
    modem         TEXT NOT NULL,
    mr            INTEGER NOT NULL CHECK (mr BETWEEN 0 AND 255),
    sent_at       INTEGER NOT NULL,
    report_status INTEGER,
    delivered_at  INTEGER,
    PRIMARY KEY (outbox_id, part)
) STRICT;
CREATE INDEX outbox_parts_mr ON outbox_parts (modem, mr, sent_at);

-- Rate accounting that survives restarts: one row per SMS part handed to the network.
CREATE TABLE send_log (
    id        INTEGER PRIMARY KEY,
    modem     TEXT NOT NULL,
    to_number TEXT NOT NULL,
    outbox_id INTEGER,
    at        INTEGER NOT NULL
) STRICT;
CREATE INDEX send_log_modem_at ON send_log (modem, at);
CREATE INDEX send_log_to_at ON send_log (to_number, at);
CREATE INDEX send_log_at ON send_log (at);

-- Calls and voicemails.
CREATE TABLE calls (
    id          INTEGER PRIMARY KEY,
    modem       TEXT NOT NULL,
    number      TEXT,                          -- NULL when the caller id was withheld
    started_at  INTEGER NOT NULL,
    answered_at INTEGER,
    ended_at    INTEGER,
    duration_ms INTEGER,
    outcome     TEXT CHECK (outcome = 'missed' OR outcome = 'greeted' OR outcome = 'voicemail' OR outcome = 'rejected' OR outcome = 'failed')
) STRICT;
CREATE INDEX calls_started ON calls (started_at);

CREATE TABLE voicemails (
    id          INTEGER PRIMARY KEY,
    call_id     INTEGER NOT NULL REFERENCES calls (id),
    path        TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    heard       INTEGER NOT NULL DEFAULT 0 CHECK (heard BETWEEN 0 AND 1)
) STRICT;
CREATE INDEX voicemails_call ON voicemails (call_id);
