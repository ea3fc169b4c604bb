-- The event journal that webhooks and local hooks consume (docs/http-api.md, "Webhooks").
--
-- Why triggers: each journal row is written by SQLite in the same transaction as the fact it
-- reports (a message stored, an outbox row marked sent, a consent entry, a call ended), so a
-- crash (kill -9, power cut) can neither lose an event whose fact was committed nor invent one
-- whose fact was rolled back, and no code path that changes these tables can forget to publish.
-- Facts that are not stored (a modem going down or up, alerts) are appended by the daemon.
-- Event times are the fact's own time column (the caller's clock, as everywhere in the store).
-- Enumerations are OR chains, not IN lists, for the reason 0001 gives.

-- AUTOINCREMENT on purpose: ids are the receivers' de-duplication key and must never be reused,
-- also after pruning has emptied the table.
CREATE TABLE events (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    at   INTEGER NOT NULL,                     -- unix ms of the fact
    data TEXT NOT NULL                         -- a JSON object
) STRICT;

-- One durable cursor per consumer ('webhook:NAME' or 'hook:NAME'): every event with an id at or
-- below last_id was delivered or given up; attempts/next_attempt_at/last_error describe the
-- event after it while it is being retried.
CREATE TABLE event_consumers (
    name            TEXT PRIMARY KEY,
    last_id         INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error      TEXT,
    last_error_at   INTEGER,
    last_success_at INTEGER,
    delivered_total INTEGER NOT NULL DEFAULT 0,
    failed_total    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
) STRICT;

-- Replays an operator asked for (`gsmgate webhooks replay`): sent out of band by the webhook's
-- worker, which records the outcome.
CREATE TABLE event_replays (
    id           INTEGER PRIMARY KEY,
    consumer     TEXT NOT NULL,
    event_id     INTEGER NOT NULL,
    requested_at INTEGER NOT NULL,
    done_at      INTEGER,
    result       TEXT
) STRICT;
CREATE INDEX event_replays_pending ON event_replays (consumer, id) WHERE done_at IS NULL;

CREATE TRIGGER events_message_received AFTER INSERT ON messages_in
BEGIN
    INSERT INTO events (type, at, data) VALUES ('message_received', NEW.received_at,
        json_object('id', NEW.id, 'from', NEW.sender, 'modem', NEW.modem, 'text', NEW.text,
                    'parts', NEW.parts_total, 'complete', json(CASE WHEN NEW.complete THEN 'true' ELSE 'false' END)));
END;

CREATE TRIGGER events_outbox_outcome AFTER UPDATE OF state ON outbox
WHEN NEW.state <> OLD.state
 AND (NEW.state = 'sent' OR NEW.state = 'delivered' OR NEW.state = 'failed' OR NEW.state = 'expired')
BEGIN
    INSERT INTO events (type, at, data) VALUES (
        CASE NEW.state WHEN 'sent' THEN 'message_sent'
                       WHEN 'delivered' THEN 'message_delivered'
                       ELSE 'message_failed' END,
        CASE NEW.state WHEN 'sent' THEN coalesce(NEW.sent_at, NEW.finished_at, NEW.created_at)
                       ELSE coalesce(NEW.finished_at, NEW.delivered_at, NEW.created_at) END,
        json_object('id', NEW.id, 'to', NEW.to_number, 'modem', coalesce(NEW.submit_modem, NEW.claimed_by),
                    'kind', NEW.kind, 'text', NEW.text, 'broadcast_id', NEW.broadcast_id,
                    'state', NEW.state,
                    'error', CASE WHEN NEW.state = 'failed' OR NEW.state = 'expired' THEN NEW.last_error END));
END;

CREATE TRIGGER events_member_consent AFTER INSERT ON consent_log
WHEN NEW.event = 'joined' OR NEW.event = 'imported' OR NEW.event = 'opted_out' OR NEW.event = 'opted_in'
BEGIN
    INSERT INTO events (type, at, data) VALUES (
        CASE NEW.event WHEN 'opted_out' THEN 'member_opted_out'
                       WHEN 'opted_in' THEN 'member_opted_in'
                       ELSE 'member_joined' END,
        NEW.at,
        json_object('number', NEW.number, 'source', NEW.source, 'detail', NEW.detail,
                    'status', (SELECT status FROM members WHERE number = NEW.number)));
END;

CREATE TRIGGER events_call_ended AFTER UPDATE OF ended_at ON calls
WHEN OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL
BEGIN
    INSERT INTO events (type, at, data) VALUES ('call_ended', NEW.ended_at,
        json_object('id', NEW.id, 'from', NEW.number, 'modem', NEW.modem, 'outcome', NEW.outcome,
                    'duration_ms', NEW.duration_ms, 'answered', json(CASE WHEN NEW.answered_at IS NULL THEN 'false' ELSE 'true' END)));
END;

CREATE TRIGGER events_voicemail_left AFTER INSERT ON voicemails
BEGIN
    INSERT INTO events (type, at, data) VALUES ('voicemail_left', NEW.created_at,
        json_object('id', NEW.id, 'call_id', NEW.call_id, 'duration_ms', NEW.duration_ms,
                    'from', (SELECT number FROM calls WHERE id = NEW.call_id),
                    'modem', (SELECT modem FROM calls WHERE id = NEW.call_id)));
END;

CREATE TRIGGER events_broadcast_finished AFTER UPDATE OF state ON broadcasts
WHEN NEW.state <> OLD.state AND (NEW.state = 'done' OR NEW.state = 'cancelled')
BEGIN
    INSERT INTO events (type, at, data) VALUES ('broadcast_finished', NEW.updated_at,
        json_object('id', NEW.id, 'state', NEW.state, 'recipients', NEW.total,
                    'sent', (SELECT count(*) FROM outbox WHERE broadcast_id = NEW.id AND (state = 'sent' OR state = 'delivered')),
                    'failed', (SELECT count(*) FROM outbox WHERE broadcast_id = NEW.id AND (state = 'failed' OR state = 'expired'))));
END;
