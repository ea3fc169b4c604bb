-- A broadcast's progress without counting its rows (docs/benchmarks.md, "Progress poll";
-- docs/store.md): `broadcast --wait`, GET /api/v1/broadcasts/ID and the console poll a broadcast
-- once a second, and on a 100,000-row broadcast every GROUP BY over its rows cost milliseconds
-- each. This table holds the count of a broadcast's outbox rows per (state, held, home modem,
-- zone, part count): a handful of rows per broadcast, which a poll reads instead of the outbox.
--
-- Who keeps it right, in the transaction of the change itself:
-- - a new row: the enqueue (`Inserter` in store/outbox/enqueue.rs) adds its counts once, at the
--   end of its transaction, summed in memory. Not an INSERT trigger: one firing per row made a
--   100,000-row enqueue 2.4-3.3x slower.
-- - any change of a row's state, pause flag, home modem, zone or part count, and a deleted row:
--   the triggers below. Every transition of an outbox row is an UPDATE of these columns (claims,
--   outcomes, recovery, pause/resume/cancel, in-doubt review, a SIM or home move, opt-out
--   cancels), so none can be missed, whichever code path or future one makes it; a single-row
--   transition pays three indexed statements on this small table.
-- - the verbs that change all of one broadcast's rows at once (pause, resume, cancel): three
--   statements per row made them 1.6-2x slower on 100,000 rows, so for the length of their UPDATE
--   the broadcast is listed in `broadcast_counts_bulk`, the triggers skip its rows, and the verb
--   rewrites the broadcast's few counts itself, in the same transaction (it knows what its UPDATE
--   did to every key: store/outbox/counts.rs, `in_bulk`).
-- NULL keys (no home modem, the default zone, an uncounted row) are stored as NULL and compared
-- with IS; the key is unique because rows are only ever added when no row has it. Counts that
-- fall to zero stay (readers skip them): they are few and come back with the next retry.
CREATE TABLE broadcast_counts (
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id),
    state        TEXT NOT NULL,
    held         INTEGER NOT NULL,
    modem_pref   TEXT,
    zone         TEXT,
    parts        INTEGER,
    n            INTEGER NOT NULL
) STRICT;
CREATE INDEX broadcast_counts_key
    ON broadcast_counts (broadcast_id, state, held, modem_pref, zone, parts);

-- Broadcasts whose counts the running transaction rewrites itself (empty outside one).
CREATE TABLE broadcast_counts_bulk (broadcast_id INTEGER PRIMARY KEY) STRICT;

CREATE TRIGGER broadcast_counts_update
AFTER UPDATE OF state, held, modem_pref, zone, parts, broadcast_id ON outbox
WHEN (OLD.broadcast_id IS NOT NULL OR NEW.broadcast_id IS NOT NULL)
 AND (OLD.state IS NOT NEW.state OR OLD.held IS NOT NEW.held
      OR OLD.modem_pref IS NOT NEW.modem_pref OR OLD.zone IS NOT NEW.zone
      OR OLD.parts IS NOT NEW.parts OR OLD.broadcast_id IS NOT NEW.broadcast_id)
 AND NOT EXISTS (SELECT 1 FROM broadcast_counts_bulk k WHERE k.broadcast_id = NEW.broadcast_id)
BEGIN
    UPDATE broadcast_counts SET n = n - 1
     WHERE broadcast_id = OLD.broadcast_id AND state = OLD.state AND held = OLD.held
       AND modem_pref IS OLD.modem_pref AND zone IS OLD.zone AND parts IS OLD.parts;
    INSERT INTO broadcast_counts (broadcast_id, state, held, modem_pref, zone, parts, n)
    SELECT NEW.broadcast_id, NEW.state, NEW.held, NEW.modem_pref, NEW.zone, NEW.parts, 0
     WHERE NEW.broadcast_id IS NOT NULL AND NOT EXISTS (
         SELECT 1 FROM broadcast_counts
          WHERE broadcast_id = NEW.broadcast_id AND state = NEW.state AND held = NEW.held
            AND modem_pref IS NEW.modem_pref AND zone IS NEW.zone AND parts IS NEW.parts);
    UPDATE broadcast_counts SET n = n + 1
     WHERE broadcast_id = NEW.broadcast_id AND state = NEW.state AND held = NEW.held
       AND modem_pref IS NEW.modem_pref AND zone IS NEW.zone AND parts IS NEW.parts;
END;

CREATE TRIGGER broadcast_counts_delete AFTER DELETE ON outbox
WHEN OLD.broadcast_id IS NOT NULL
BEGIN
    UPDATE broadcast_counts SET n = n - 1
     WHERE broadcast_id = OLD.broadcast_id AND state = OLD.state AND held = OLD.held
       AND modem_pref IS OLD.modem_pref AND zone IS OLD.zone AND parts IS OLD.parts;
END;

-- Broadcasts already in the database.
INSERT INTO broadcast_counts (broadcast_id, state, held, modem_pref, zone, parts, n)
SELECT broadcast_id, state, held, modem_pref, zone, parts, count(*)
  FROM outbox WHERE broadcast_id IS NOT NULL
 GROUP BY broadcast_id, state, held, modem_pref, zone, parts;
