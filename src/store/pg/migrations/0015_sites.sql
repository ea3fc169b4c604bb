-- PostgreSQL twin of src/store/migrations/0015_sites.sql: the sites sharing this database, their
-- modems with heartbeats, and voicemail audio kept in the database.
CREATE TABLE sites (
    name         TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    version      TEXT NOT NULL
);

CREATE TABLE site_modems (
    modem        TEXT PRIMARY KEY,
    site         TEXT NOT NULL REFERENCES sites (name),
    heartbeat_at BIGINT
);
CREATE INDEX site_modems_site ON site_modems (site);

ALTER TABLE voicemails ADD COLUMN audio BYTEA;
