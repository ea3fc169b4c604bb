//! The web console's accounts, sessions and audit trail (migration 0013, docs/web.md).
//!
//! Only SQL lives here. The store never sees a password or a session cookie: callers hand it the
//! Argon2id hash of a password (`commands::web`) and the SHA-256 of a session id (`web`), which
//! is what is stored and looked up. Roles are plain words (`owner`, `volunteer`) checked by the
//! table's CHECK constraint; what a role may do is decided above (`web` maps it to a scope).
//! Expiry is a plain comparison with the caller's `now`, so an expired session is refused even
//! before the periodic prune has removed its row.

use crate::store::db::{OptionalExtension, params};

use super::{Result, SqlContext, Store, StoreError};

/// One console account as listed (never its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUserRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub created_at: i64,
    /// Sessions that have not expired by the `now` of the listing.
    pub sessions: u64,
}

/// A live session with its account: what every console request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSessionRow {
    pub user_id: i64,
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

/// One change made in the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAuditRow {
    pub at: i64,
    pub user: String,
    pub action: String,
    pub detail: String,
}

impl Store {
    /// Stores a new account. [`StoreError::Conflict`] when the name is taken.
    pub fn web_user_add(&self, name: &str, role: &str, hash: &str, now: i64) -> Result<i64> {
        self.write("adding a web console user", |tx| {
            let taken: Option<i64> = tx
                .query_row(
                    "SELECT id FROM web_users WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .optional()
                .ctx("checking a web user name")?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a console user named {name:?} already exists; change its password with \
                     `gsmgate web user passwd {name}` or remove it first"
                )));
            }
            let id: i64 = tx
                .query_row_cached(
                    "INSERT INTO web_users (name, role, password_hash, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
                    params![name, role, hash, now],
                    |r| r.get(0),
                )
                .ctx("inserting a web user")?;
            Ok(id)
        })
    }

    /// Every account by name, with its live session count at `now`.
    pub fn web_users(&self, now: i64) -> Result<Vec<WebUserRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT u.id, u.name, u.role, u.created_at,
                        (SELECT count(*) FROM web_sessions s
                          WHERE s.user_id = u.id AND s.expires_at > ?1)
                 FROM web_users u ORDER BY u.name",
            )
            .ctx("listing web users")?;
        st.query_map(params![now], |r| {
            Ok(WebUserRow {
                id: r.get(0)?,
                name: r.get(1)?,
                role: r.get(2)?,
                created_at: r.get(3)?,
                sessions: r.get::<i64>(4)?.max(0) as u64,
            })
        })
        .ctx("listing web users")?
        .collect::<crate::store::db::DbResult<Vec<_>>>()
        .ctx("listing web users")
    }

    /// The account called `name` with its password hash: `(id, role, hash)`.
    pub fn web_user_credentials(&self, name: &str) -> Result<Option<(i64, String, String)>> {
        let conn = self.conn();
        conn.prepare_cached("SELECT id, role, password_hash FROM web_users WHERE name = ?1")
            .ctx("reading a web user")?
            .query_row(params![name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .ctx("reading a web user")
    }

    /// Replaces `name`'s password hash and ends all its sessions (a new password is how a
    /// leaked one is shut out). `NotFound` when there is no such account.
    pub fn web_user_set_password(&self, name: &str, hash: &str, now: i64) -> Result<u64> {
        self.write("changing a web user's password", |tx| {
            let id: Option<i64> = tx
                .query_row(
                    "UPDATE web_users SET password_hash = ?2, updated_at = ?3 WHERE name = ?1
                     RETURNING id",
                    params![name, hash, now],
                    |r| r.get(0),
                )
                .optional()
                .ctx("changing a web user's password")?;
            let id = id.ok_or_else(|| StoreError::NotFound {
                what: "console user",
                key: format!("{name:?}"),
            })?;
            let ended = tx
                .execute("DELETE FROM web_sessions WHERE user_id = ?1", params![id])
                .ctx("ending a web user's sessions")?;
            Ok(ended as u64)
        })
    }

    /// Removes the account and its sessions. `NotFound` when there is none.
    pub fn web_user_remove(&self, name: &str) -> Result<()> {
        self.write("removing a web user", |tx| {
            let n = tx
                .execute("DELETE FROM web_users WHERE name = ?1", params![name])
                .ctx("removing a web user")?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "console user",
                    key: format!("{name:?}"),
                });
            }
            Ok(())
        })
    }

    /// Stores a new session of `user_id`; `id_hash` is the SHA-256 of the cookie value. Expired
    /// sessions are pruned in the same transaction, so the table stays as small as its live set.
    pub fn web_session_create(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        self.write("creating a web session", |tx| {
            tx.execute(
                "DELETE FROM web_sessions WHERE expires_at <= ?1",
                params![now],
            )
            .ctx("pruning expired web sessions")?;
            tx.execute(
                "INSERT INTO web_sessions (id_hash, user_id, csrf, created_at, last_seen, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                params![id_hash, user_id, csrf, now, expires_at],
            )
            .ctx("inserting a web session")?;
            Ok(())
        })
    }

    /// The live session whose id hashes to `id_hash`, with its account; `None` when unknown or
    /// expired at `now`.
    pub fn web_session(&self, id_hash: &str, now: i64) -> Result<Option<WebSessionRow>> {
        let conn = self.conn();
        conn.prepare_cached(
            "SELECT s.user_id, u.name, u.role, s.csrf, s.last_seen, s.expires_at, s.created_at
             FROM web_sessions s JOIN web_users u ON u.id = s.user_id
             WHERE s.id_hash = ?1 AND s.expires_at > ?2",
        )
        .ctx("reading a web session")?
        .query_row(params![id_hash, now], |r| {
            Ok(WebSessionRow {
                user_id: r.get(0)?,
                user: r.get(1)?,
                role: r.get(2)?,
                csrf: r.get(3)?,
                last_seen: r.get(4)?,
                expires_at: r.get(5)?,
                created_at: r.get(6)?,
            })
        })
        .optional()
        .ctx("reading a web session")
    }

    /// Marks the session used at `now` and moves its idle expiry to `expires_at`.
    pub fn web_session_touch(&self, id_hash: &str, now: i64, expires_at: i64) -> Result<()> {
        self.write("touching a web session", |tx| {
            tx.execute(
                "UPDATE web_sessions SET last_seen = ?2, expires_at = ?3 WHERE id_hash = ?1",
                params![id_hash, now, expires_at],
            )
            .ctx("touching a web session")?;
            Ok(())
        })
    }

    /// Ends one session (logout).
    pub fn web_session_delete(&self, id_hash: &str) -> Result<()> {
        self.write("ending a web session", |tx| {
            tx.execute(
                "DELETE FROM web_sessions WHERE id_hash = ?1",
                params![id_hash],
            )
            .ctx("ending a web session")?;
            Ok(())
        })
    }

    /// Ends every session of `user_id` (logout everywhere); how many there were.
    pub fn web_sessions_delete_user(&self, user_id: i64) -> Result<u64> {
        self.write("ending a web user's sessions", |tx| {
            let n = tx
                .execute(
                    "DELETE FROM web_sessions WHERE user_id = ?1",
                    params![user_id],
                )
                .ctx("ending a web user's sessions")?;
            Ok(n as u64)
        })
    }

    /// When and how `number` opted out, while it is on the suppression list: the time, source
    /// and detail of its latest `opted_out` consent event (one indexed lookup each; the console
    /// and `members_get` show it beside the status).
    pub fn opt_out_record(&self, number: &str) -> Result<Option<(i64, String, Option<String>)>> {
        let conn = self.conn();
        conn.prepare_cached(
            "SELECT c.at, c.source, c.detail FROM consent_log c
             WHERE c.number = ?1 AND c.event = 'opted_out'
               AND EXISTS (SELECT 1 FROM opt_outs o WHERE o.number = ?1)
             ORDER BY c.at DESC, c.id DESC LIMIT 1",
        )
        .ctx("reading an opt-out")?
        .query_row(params![number], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .ctx("reading an opt-out")
    }

    /// Records one change made in the console. The column is written `"user"`: a reserved word
    /// in PostgreSQL, where a bare `user` is the session's role name.
    pub fn web_audit(&self, at: i64, user: &str, action: &str, detail: &str) -> Result<()> {
        self.write("recording a console change", |tx| {
            tx.execute(
                "INSERT INTO web_audit (at, \"user\", action, detail) VALUES (?1, ?2, ?3, ?4)",
                params![at, user, action, detail],
            )
            .ctx("recording a console change")?;
            Ok(())
        })
    }

    /// The latest `limit` console changes, newest first.
    pub fn web_audit_recent(&self, limit: u32) -> Result<Vec<WebAuditRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT at, \"user\", action, detail FROM web_audit ORDER BY id DESC LIMIT ?1",
            )
            .ctx("listing console changes")?;
        st.query_map(params![limit], |r| {
            Ok(WebAuditRow {
                at: r.get(0)?,
                user: r.get(1)?,
                action: r.get(2)?,
                detail: r.get(3)?,
            })
        })
        .ctx("listing console changes")?
        .collect::<crate::store::db::DbResult<Vec<_>>>()
        .ctx("listing console changes")
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Inside as well: clippy exempts test helpers only in a module that carries it.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_end_with_their_user_and_with_a_new_password() {
        let s = fresh();
        let id = s.web_user_add("ann", "owner", "h1", 1_000).unwrap();
        assert!(matches!(
            s.web_user_add("ann", "volunteer", "h2", 1_000),
            Err(StoreError::Conflict(_))
        ));
        s.web_session_create("a", id, "c", 1_000, 2_000).unwrap();
        s.web_session_create("b", id, "c", 1_000, 2_000).unwrap();
        assert_eq!(s.web_session("a", 1_500).unwrap().unwrap().user, "ann");
        assert!(s.web_session("a", 2_000).unwrap().is_none(), "expired");
        s.web_session_touch("a", 1_999, 5_000).unwrap();
        assert!(s.web_session("a", 4_000).unwrap().is_some(), "touched");
        assert_eq!(s.web_users(1_500).unwrap()[0].sessions, 2);
        assert_eq!(s.web_user_set_password("ann", "h3", 1_600).unwrap(), 2);
        assert!(s.web_session("a", 1_700).unwrap().is_none());
        s.web_session_create("c", id, "c", 1_700, 9_000).unwrap();
        s.web_user_remove("ann").unwrap();
        assert!(s.web_session("c", 1_800).unwrap().is_none());
        assert!(matches!(
            s.web_user_remove("ann"),
            Err(StoreError::NotFound { .. })
        ));
        s.web_audit(1, "ann", "send", "+1555").unwrap();
        assert_eq!(s.web_audit_recent(10).unwrap()[0].user, "ann");
    }
}
}
