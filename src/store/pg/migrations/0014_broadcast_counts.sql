-- PostgreSQL twin of src/store/migrations/0014_broadcast_counts.sql: per-broadcast row counts by
-- (state, held, home modem, zone, part count) that a progress poll reads instead of the outbox.
-- The enqueue adds its counts itself at the end of its transaction; every other change of a
-- counted column, and a deleted row, goes through the triggers below; pause, resume and cancel
-- list their broadcast in `broadcast_counts_bulk` for the length of their UPDATE and rewrite its
-- counts themselves.
--
-- Translation: SQLite's `IS` / `IS NOT` between nullable values are `IS NOT DISTINCT FROM` /
-- `IS DISTINCT FROM`; a trigger's WHEN cannot hold a subquery in PostgreSQL, so the bulk check
-- moved into the function.
CREATE TABLE broadcast_counts (
    broadcast_id BIGINT NOT NULL REFERENCES broadcasts (id),
    state        TEXT NOT NULL,
    held         BIGINT NOT NULL,
    modem_pref   TEXT,
    zone         TEXT,
    parts        BIGINT,
    n            BIGINT NOT NULL
);
CREATE INDEX broadcast_counts_key
    ON broadcast_counts (broadcast_id, state, held, modem_pref, zone, parts);

CREATE TABLE broadcast_counts_bulk (broadcast_id BIGINT PRIMARY KEY);

CREATE FUNCTION broadcast_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM broadcast_counts_bulk k WHERE k.broadcast_id = NEW.broadcast_id) THEN
        RETURN NULL;
    END IF;
    UPDATE broadcast_counts SET n = n - 1
     WHERE broadcast_id = OLD.broadcast_id AND state = OLD.state AND held = OLD.held
       AND modem_pref IS NOT DISTINCT FROM OLD.modem_pref AND zone IS NOT DISTINCT FROM OLD.zone
       AND parts IS NOT DISTINCT FROM OLD.parts;
    INSERT INTO broadcast_counts (broadcast_id, state, held, modem_pref, zone, parts, n)
    SELECT NEW.broadcast_id, NEW.state, NEW.held, NEW.modem_pref, NEW.zone, NEW.parts, 0
     WHERE NEW.broadcast_id IS NOT NULL AND NOT EXISTS (
         SELECT 1 FROM broadcast_counts
          WHERE broadcast_id = NEW.broadcast_id AND state = NEW.state AND held = NEW.held
            AND modem_pref IS NOT DISTINCT FROM NEW.modem_pref
            AND zone IS NOT DISTINCT FROM NEW.zone AND parts IS NOT DISTINCT FROM NEW.parts);
    UPDATE broadcast_counts SET n = n + 1
     WHERE broadcast_id = NEW.broadcast_id AND state = NEW.state AND held = NEW.held
       AND modem_pref IS NOT DISTINCT FROM NEW.modem_pref AND zone IS NOT DISTINCT FROM NEW.zone
       AND parts IS NOT DISTINCT FROM NEW.parts;
    RETURN NULL;
END $$;
CREATE TRIGGER broadcast_counts_update
    AFTER UPDATE OF state, held, modem_pref, zone, parts, broadcast_id ON outbox
    FOR EACH ROW
    WHEN ((OLD.broadcast_id IS NOT NULL OR NEW.broadcast_id IS NOT NULL)
      AND (OLD.state IS DISTINCT FROM NEW.state OR OLD.held IS DISTINCT FROM NEW.held
           OR OLD.modem_pref IS DISTINCT FROM NEW.modem_pref
           OR OLD.zone IS DISTINCT FROM NEW.zone OR OLD.parts IS DISTINCT FROM NEW.parts
           OR OLD.broadcast_id IS DISTINCT FROM NEW.broadcast_id))
    EXECUTE FUNCTION broadcast_counts_update();

CREATE FUNCTION broadcast_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE broadcast_counts SET n = n - 1
     WHERE broadcast_id = OLD.broadcast_id AND state = OLD.state AND held = OLD.held
       AND modem_pref IS NOT DISTINCT FROM OLD.modem_pref AND zone IS NOT DISTINCT FROM OLD.zone
       AND parts IS NOT DISTINCT FROM OLD.parts;
    RETURN NULL;
END $$;
CREATE TRIGGER broadcast_counts_delete AFTER DELETE ON outbox
    FOR EACH ROW WHEN (OLD.broadcast_id IS NOT NULL)
    EXECUTE FUNCTION broadcast_counts_delete();

-- Broadcasts already in the database.
INSERT INTO broadcast_counts (broadcast_id, state, held, modem_pref, zone, parts, n)
SELECT broadcast_id, state, held, modem_pref, zone, parts, count(*)
  FROM outbox WHERE broadcast_id IS NOT NULL
 GROUP BY broadcast_id, state, held, modem_pref, zone, parts;
