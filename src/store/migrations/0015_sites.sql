-- Sites: several gateways sharing one PostgreSQL database (docs/scale-out.md). On a single Pi
-- (SQLite) these tables hold the one site and its modems, and nothing reads them for routing.
--
-- A site is one daemon with its own modems. `sites.heartbeat_at` says the daemon is alive;
-- `site_modems.heartbeat_at` says that modem is up and sending (NULL: registered, not up now).
-- Both are stamped by the site's own clock every few seconds; readers compare them with their
-- own clock against `[dispatch] failover_after_minutes`, so NTP-level skew (milliseconds) is
-- irrelevant. A modem belongs to one site at a time: its send history and limits stay exact
-- because only the site it is plugged into ever sends on it.
--
-- The lease of an in-flight row is its modem's site heartbeat: a row `claimed` by a modem whose
-- site has been silent for the failover time is recovered with the in-doubt policy, once, by
-- whichever site's sweep gets the write lock first (store/sites.rs).
CREATE TABLE sites (
    name         TEXT PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    version      TEXT NOT NULL
);

CREATE TABLE site_modems (
    modem        TEXT PRIMARY KEY,
    site         TEXT NOT NULL REFERENCES sites (name),
    heartbeat_at INTEGER
);
CREATE INDEX site_modems_site ON site_modems (site);

-- Voicemail audio kept in the database, so that every site can play a voicemail whichever site
-- took the call. NULL: the audio is the file at `path` (a single Pi keeps files).
ALTER TABLE voicemails ADD COLUMN audio BLOB;
