//! API tokens and idempotency keys of the HTTP API: the rows behind `gsmgate tokens` and the
//! `Idempotency-Key` header (docs/http-api.md).
//!
//! Only SQL lives here. The store never sees a token's secret: callers hand it the SHA-256 hash
//! (hex), which is what is stored and what a presented token is looked up by, so neither a database
//! copy nor a backup leaks a usable credential. Scopes are plain words (`read`, `send`, `admin`)
//! checked by the table's CHECK constraint; what a scope allows is the command layer's business.
//!
//! Idempotency is a reservation: [`Store::idempotency_begin`] inserts the key as `pending` in its
//! own committed transaction before the command runs, so two concurrent requests with one key
//! cannot both run (the primary key refuses the second), and a crash after the command leaves the
//! key `pending` rather than free — a retry is then told the outcome is unknown instead of sending
//! twice.

use crate::store::db::{OptionalExtension, params};

use super::{Result, SqlContext, Store, StoreError};

/// One API token as listed (never its secret, not even its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub scope: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A live token found by its hash: what authentication needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMatch {
    pub id: i64,
    pub name: String,
    pub scope: String,
    /// The stored hash, for the caller's constant-time comparison.
    pub secret_hash: String,
}

/// What reserving an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key was free and is now reserved: run the command, then [`Store::idempotency_finish`].
    Reserved,
    /// A request with this key and the same content already finished: answer with its response.
    Done { status: u16, body: String },
    /// A request with this key is running, or was interrupted by a crash before it finished.
    Pending { since: i64 },
    /// The key was used for a different request.
    Mismatch,
}

impl Store {
    /// Stores a new token. Fails with [`StoreError::Conflict`] when an active token has the name.
    pub fn create_token(
        &self,
        name: &str,
        scope: &str,
        secret_hash: &str,
        now: i64,
    ) -> Result<TokenRow> {
        self.write("creating an API token", |tx| {
            let taken: Option<i64> = tx
                .query_row(
                    "SELECT id FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL",
                    params![name],
                    |r| r.get(0),
                )
                .optional()
                .ctx("checking a token name")?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a token named {name:?} already exists; revoke it first or pick another name"
                )));
            }
            let id: i64 = tx
                .query_row_cached(
                    "INSERT INTO api_tokens (name, scope, secret_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4) RETURNING id",
                    params![name, scope, secret_hash, now],
                    |r| r.get(0),
                )
                .ctx("inserting an API token")?;
            Ok(TokenRow {
                id,
                name: name.to_string(),
                scope: scope.to_string(),
                created_at: now,
                last_used_at: None,
                revoked_at: None,
            })
        })
    }

    /// Every token, active ones first, newest first.
    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT id, name, scope, created_at, last_used_at, revoked_at FROM api_tokens
                 ORDER BY revoked_at IS NOT NULL, id DESC",
            )
            .ctx("listing API tokens")?;
        st.query_map(params![], |r| {
            Ok(TokenRow {
                id: r.get(0)?,
                name: r.get(1)?,
                scope: r.get(2)?,
                created_at: r.get(3)?,
                last_used_at: r.get(4)?,
                revoked_at: r.get(5)?,
            })
        })
        .ctx("listing API tokens")?
        .collect::<crate::store::db::DbResult<Vec<_>>>()
        .ctx("listing API tokens")
    }

    /// Revokes the active token called `name`; `NotFound` when there is none.
    pub fn revoke_token(&self, name: &str, now: i64) -> Result<TokenRow> {
        self.write("revoking an API token", |tx| {
            let row = tx
                .query_row(
                    "UPDATE api_tokens SET revoked_at = ?2
                     WHERE name = ?1 AND revoked_at IS NULL
                     RETURNING id, name, scope, created_at, last_used_at, revoked_at",
                    params![name, now],
                    |r| {
                        Ok(TokenRow {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            scope: r.get(2)?,
                            created_at: r.get(3)?,
                            last_used_at: r.get(4)?,
                            revoked_at: r.get(5)?,
                        })
                    },
                )
                .optional()
                .ctx("revoking an API token")?;
            row.ok_or_else(|| StoreError::NotFound {
                what: "active token",
                key: format!("{name:?}"),
            })
        })
    }

    /// The active token whose secret hashes to `secret_hash`.
    pub fn token_by_hash(&self, secret_hash: &str) -> Result<Option<TokenMatch>> {
        let conn = self.conn();
        conn.prepare_cached(
            "SELECT id, name, scope, secret_hash FROM api_tokens
             WHERE secret_hash = ?1 AND revoked_at IS NULL",
        )
        .ctx("looking up an API token")?
        .query_row(params![secret_hash], |r| {
            Ok(TokenMatch {
                id: r.get(0)?,
                name: r.get(1)?,
                scope: r.get(2)?,
                secret_hash: r.get(3)?,
            })
        })
        .optional()
        .ctx("looking up an API token")
    }

    /// Records that a token was used (the HTTP layer calls this at most once a minute per token,
    /// so a busy client does not cost an fsync per request).
    pub fn touch_token(&self, id: i64, now: i64) -> Result<()> {
        self.write("recording a token's use", |tx| {
            tx.execute(
                "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
                params![id, now],
            )
            .ctx("recording a token's use")?;
            Ok(())
        })
    }

    /// Reserves `key` for `token`'s request with content hash `request_hash`, or reports what an
    /// earlier request with that key left. Keys older than `prune_before` are deleted first.
    pub fn idempotency_begin(
        &self,
        token: &str,
        key: &str,
        request_hash: &str,
        now: i64,
        prune_before: i64,
    ) -> Result<IdempotencyBegin> {
        self.write("reserving an idempotency key", |tx| {
            tx.execute(
                "DELETE FROM idempotency_keys WHERE created_at < ?1",
                params![prune_before],
            )
            .ctx("pruning idempotency keys")?;
            // (request_hash, state, status, body, created_at)
            type KeyRow = (String, String, Option<i64>, Option<String>, i64);
            let found: Option<KeyRow> = tx
                .query_row(
                    "SELECT request_hash, state, status, body, created_at FROM idempotency_keys
                     WHERE token = ?1 AND key = ?2",
                    params![token, key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
                .ctx("reading an idempotency key")?;
            match found {
                None => {
                    tx.execute(
                        "INSERT INTO idempotency_keys (token, key, request_hash, state, created_at)
                         VALUES (?1, ?2, ?3, 'pending', ?4)",
                        params![token, key, request_hash, now],
                    )
                    .ctx("reserving an idempotency key")?;
                    Ok(IdempotencyBegin::Reserved)
                }
                Some((hash, _, _, _, _)) if hash != request_hash => Ok(IdempotencyBegin::Mismatch),
                Some((_, state, Some(status), Some(body), _)) if state == "done" => {
                    Ok(IdempotencyBegin::Done {
                        status: u16::try_from(status).unwrap_or(500),
                        body,
                    })
                }
                Some((_, _, _, _, since)) => Ok(IdempotencyBegin::Pending { since }),
            }
        })
    }

    /// Saves the response of the request that reserved `key`.
    pub fn idempotency_finish(
        &self,
        token: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<()> {
        self.write("saving an idempotent response", |tx| {
            tx.execute(
                "UPDATE idempotency_keys SET state = 'done', status = ?3, body = ?4
                 WHERE token = ?1 AND key = ?2",
                params![token, key, i64::from(status), body],
            )
            .ctx("saving an idempotent response")?;
            Ok(())
        })
    }

    /// Frees a key whose request failed before it changed anything (a refusal), so the client
    /// may retry with the same key after fixing the request.
    pub fn idempotency_release(&self, token: &str, key: &str) -> Result<()> {
        self.write("releasing an idempotency key", |tx| {
            tx.execute(
                "DELETE FROM idempotency_keys WHERE token = ?1 AND key = ?2 AND state = 'pending'",
                params![token, key],
            )
            .ctx("releasing an idempotency key")?;
            Ok(())
        })
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Inside as well: clippy exempts test helpers only in a module that carries it.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_created_listed_found_and_revoked() {
        let s = fresh();
        let t = s.create_token("crm", "send", "aa", 1).unwrap();
        assert!(matches!(
            s.create_token("crm", "read", "bb", 2),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.token_by_hash("aa").unwrap().unwrap().name, "crm");
        assert!(s.token_by_hash("bb").unwrap().is_none());
        s.revoke_token("crm", 3).unwrap();
        assert!(
            s.token_by_hash("aa").unwrap().is_none(),
            "revoked tokens never match"
        );
        assert!(matches!(
            s.revoke_token("crm", 4),
            Err(StoreError::NotFound { .. })
        ));
        // The name is free again; the revoked row stays listed.
        s.create_token("crm", "read", "cc", 5).unwrap();
        let all = s.tokens().unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].revoked_at.is_none() && all[1].id == t.id);
        s.touch_token(all[0].id, 9).unwrap();
        assert_eq!(s.tokens().unwrap()[0].last_used_at, Some(9));
    }

    #[test]
    fn the_scope_column_refuses_unknown_words() {
        let s = fresh();
        assert!(s.create_token("x", "root", "aa", 1).is_err());
    }

    #[test]
    fn an_idempotency_key_runs_once_and_replays_its_response() {
        let s = fresh();
        let begin = |hash: &str, now| s.idempotency_begin("crm", "k1", hash, now, 0).unwrap();
        assert_eq!(begin("h", 1), IdempotencyBegin::Reserved);
        assert_eq!(begin("h", 2), IdempotencyBegin::Pending { since: 1 });
        assert_eq!(begin("other", 2), IdempotencyBegin::Mismatch);
        s.idempotency_finish("crm", "k1", 202, "{\"id\":7}")
            .unwrap();
        assert_eq!(
            begin("h", 3),
            IdempotencyBegin::Done {
                status: 202,
                body: "{\"id\":7}".into()
            }
        );
        // Keys are per token.
        assert_eq!(
            s.idempotency_begin("other-token", "k1", "h", 3, 0).unwrap(),
            IdempotencyBegin::Reserved
        );
        // A released (refused) reservation frees the key; a done one is not released.
        s.idempotency_release("crm", "k1").unwrap();
        assert!(matches!(begin("h", 4), IdempotencyBegin::Done { .. }));
        s.idempotency_release("other-token", "k1").unwrap();
        assert_eq!(
            s.idempotency_begin("other-token", "k1", "h", 5, 0).unwrap(),
            IdempotencyBegin::Reserved
        );
        // Old keys are pruned.
        assert_eq!(
            s.idempotency_begin("crm", "k1", "new", 100, 50).unwrap(),
            IdempotencyBegin::Reserved
        );
    }
}
}
