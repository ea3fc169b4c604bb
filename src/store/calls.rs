//! Calls and voicemails. A call row is opened when the phone rings and closed when it ends;
//! a voicemail row points at a WAV file under the state directory (the file itself is written
//! by `voice`, never by the store).

use crate::store::db::{OptionalExtension, Row, params};

use super::{Result, SqlContext, Store, StoreError, flag, text_enum};

text_enum!(
    /// How a call ended.
    CallOutcome, "calls.outcome", {
        /// Rang out or the caller hung up before we answered.
        Missed => "missed",
        /// Answered, greeting played, hung up.
        Greeted => "greeted",
        /// Answered and a voicemail was recorded.
        Voicemail => "voicemail",
        /// Refused without answering (e.g. voice disabled).
        Rejected => "rejected",
        /// Something went wrong on our side.
        Failed => "failed",
    }
);

/// One call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallRow {
    pub id: i64,
    pub modem: String,
    /// `None` when the caller id was withheld.
    pub number: Option<String>,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Talk time (answer to end), or ring time for an unanswered call.
    pub duration_ms: Option<i64>,
    /// `None` while the call is going on.
    pub outcome: Option<CallOutcome>,
}

/// One voicemail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VoicemailRow {
    pub id: i64,
    pub call_id: i64,
    pub number: Option<String>,
    pub path: String,
    pub duration_ms: i64,
    pub created_at: i64,
    pub heard: bool,
}

const CALL_COLUMNS: &str =
    "id, modem, number, started_at, answered_at, ended_at, duration_ms, outcome";

fn call_from(r: &Row<'_>) -> crate::store::db::DbResult<CallRow> {
    Ok(CallRow {
        id: r.get(0)?,
        modem: r.get(1)?,
        number: r.get(2)?,
        started_at: r.get(3)?,
        answered_at: r.get(4)?,
        ended_at: r.get(5)?,
        duration_ms: r.get(6)?,
        outcome: r.get(7)?,
    })
}

const VOICEMAIL_COLUMNS: &str =
    "v.id, v.call_id, c.number, v.path, v.duration_ms, v.created_at, v.heard";

fn voicemail_from(r: &Row<'_>) -> crate::store::db::DbResult<VoicemailRow> {
    Ok(VoicemailRow {
        id: r.get(0)?,
        call_id: r.get(1)?,
        number: r.get(2)?,
        path: r.get(3)?,
        duration_ms: r.get(4)?,
        created_at: r.get(5)?,
        heard: flag(r.get(6)?),
    })
}

fn not_found(what: &'static str, id: i64) -> StoreError {
    StoreError::NotFound {
        what,
        key: id.to_string(),
    }
}

impl Store {
    /// A call started ringing. Returns its id.
    pub fn call_started(&self, modem: &str, number: Option<&str>, at: i64) -> Result<i64> {
        self.write("recording a call", |tx| {
            let id: i64 = tx.query_row_cached(
                "INSERT INTO calls (modem, number, started_at) VALUES (?1, ?2, ?3) RETURNING id",
                params![modem, number, at],
                |r| r.get(0),
            )
            .ctx("recording a call")?;
            Ok(id)
        })
    }

    /// The call was answered.
    pub fn call_answered(&self, id: i64, at: i64) -> Result<()> {
        self.write("answering a call", |tx| {
            let n = tx
                .execute(
                    "UPDATE calls SET answered_at = ?2 WHERE id = ?1 AND ended_at IS NULL",
                    params![id, at],
                )
                .ctx("answering a call")?;
            if n == 0 {
                Err(not_found("open call", id))
            } else {
                Ok(())
            }
        })
    }

    /// The call ended; the duration is computed from answer (or start) to `at`.
    pub fn call_ended(&self, id: i64, outcome: CallOutcome, at: i64) -> Result<CallRow> {
        self.write("ending a call", |tx| {
            let n = tx
                .execute(
                    "UPDATE calls SET ended_at = ?2, outcome = ?3,
                                      duration_ms = max(0, ?2 - coalesce(answered_at, started_at))
                     WHERE id = ?1 AND ended_at IS NULL",
                    params![id, at, outcome],
                )
                .ctx("ending a call")?;
            if n == 0 {
                return Err(not_found("open call", id));
            }
            tx.query_row(
                &format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?1"),
                params![id],
                call_from,
            )
            .ctx("ending a call")
        })
    }

    /// Closes calls a crashed run left open (outcome `failed`). Returns how many.
    pub fn close_open_calls(&self, at: i64) -> Result<usize> {
        self.write("closing open calls", |tx| {
            tx.execute(
                "UPDATE calls SET ended_at = max(started_at, ?1), outcome = 'failed',
                                  duration_ms = max(0, ?1 - coalesce(answered_at, started_at))
                 WHERE ended_at IS NULL",
                params![at],
            )
            .ctx("closing open calls")
        })
    }

    /// Recent calls, newest first.
    pub fn calls(&self, limit: u32) -> Result<Vec<CallRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {CALL_COLUMNS} FROM calls ORDER BY started_at DESC, id DESC LIMIT ?1"
            ))
            .ctx("listing calls")?;
        st.query_map(params![limit], call_from)
            .ctx("listing calls")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("listing calls")
    }

    /// Records a voicemail file for a call. Returns its id.
    pub fn add_voicemail(
        &self,
        call_id: i64,
        path: &str,
        duration_ms: i64,
        at: i64,
    ) -> Result<i64> {
        self.write("recording a voicemail", |tx| {
            let exists: bool = tx
                .query_row("SELECT EXISTS (SELECT 1 FROM calls WHERE id = ?1)", params![call_id], |r| r.get(0))
                .ctx("recording a voicemail")?;
            if !exists {
                return Err(not_found("call", call_id));
            }
            let id: i64 = tx.query_row_cached(
                "INSERT INTO voicemails (call_id, path, duration_ms, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
                params![call_id, path, duration_ms, at],
                |r| r.get(0),
            )
            .ctx("recording a voicemail")?;
            Ok(id)
        })
    }

    /// Voicemails, newest first; `unheard_only` limits to those not yet heard.
    pub fn voicemails(&self, unheard_only: bool) -> Result<Vec<VoicemailRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!(
                "SELECT {VOICEMAIL_COLUMNS} FROM voicemails v JOIN calls c ON c.id = v.call_id
                 WHERE (?1 = 0 OR v.heard = 0) ORDER BY v.created_at DESC, v.id DESC"
            ))
            .ctx("listing voicemails")?;
        st.query_map(params![unheard_only], voicemail_from)
            .ctx("listing voicemails")?
            .collect::<crate::store::db::DbResult<_>>()
            .ctx("listing voicemails")
    }

    /// One voicemail.
    pub fn voicemail(&self, id: i64) -> Result<VoicemailRow> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {VOICEMAIL_COLUMNS} FROM voicemails v JOIN calls c ON c.id = v.call_id
                     WHERE v.id = ?1"
                ),
                params![id],
                voicemail_from,
            )
            .optional()
            .ctx("reading a voicemail")?
            .ok_or_else(|| not_found("voicemail", id))
    }

    /// Marks a voicemail heard or unheard.
    pub fn set_voicemail_heard(&self, id: i64, heard: bool) -> Result<()> {
        self.write("marking a voicemail", |tx| {
            let n = tx
                .execute(
                    "UPDATE voicemails SET heard = ?2 WHERE id = ?1",
                    params![id, heard],
                )
                .ctx("marking a voicemail")?;
            if n == 0 {
                Err(not_found("voicemail", id))
            } else {
                Ok(())
            }
        })
    }

    /// Deletes a voicemail row and returns its file path, for the caller to remove the file.
    pub fn delete_voicemail(&self, id: i64) -> Result<String> {
        self.write("deleting a voicemail", |tx| {
            tx.query_row(
                "DELETE FROM voicemails WHERE id = ?1 RETURNING path",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .ctx("deleting a voicemail")?
            .ok_or_else(|| not_found("voicemail", id))
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
    fn call_lifecycle_and_voicemail() {
        let s = fresh();
        let missed = s.call_started("m0", None, 1_000).unwrap();
        let c = s.call_ended(missed, CallOutcome::Missed, 9_000).unwrap();
        assert_eq!(
            (c.duration_ms, c.outcome, c.number),
            (Some(8_000), Some(CallOutcome::Missed), None)
        );
        assert!(
            s.call_ended(missed, CallOutcome::Missed, 9_500).is_err(),
            "already ended"
        );

        let id = s.call_started("m1", Some("+15550001"), 10_000).unwrap();
        s.call_answered(id, 12_000).unwrap();
        let vm = s
            .add_voicemail(id, "voicemail/1.wav", 15_000, 30_000)
            .unwrap();
        let c = s.call_ended(id, CallOutcome::Voicemail, 30_000).unwrap();
        assert_eq!(c.duration_ms, Some(18_000));
        assert_eq!(s.calls(10).unwrap().first().map(|c| c.id), Some(id));

        let v = s.voicemail(vm).unwrap();
        assert_eq!(
            (v.number.as_deref(), v.heard, v.duration_ms),
            (Some("+15550001"), false, 15_000)
        );
        assert_eq!(s.voicemails(true).unwrap().len(), 1);
        s.set_voicemail_heard(vm, true).unwrap();
        assert!(s.voicemails(true).unwrap().is_empty());
        assert_eq!(s.voicemails(false).unwrap().len(), 1);
        assert_eq!(s.delete_voicemail(vm).unwrap(), "voicemail/1.wav");
        assert!(s.voicemail(vm).is_err());
        assert!(s.add_voicemail(999, "x.wav", 1, 1).is_err());
        assert!(s.set_voicemail_heard(vm, true).is_err());
    }

    #[test]
    fn open_calls_are_closed_after_a_crash() {
        let s = fresh();
        let id = s.call_started("m0", Some("+1"), 1_000).unwrap();
        s.call_answered(id, 2_000).unwrap();
        assert_eq!(s.close_open_calls(5_000).unwrap(), 1);
        let c = s.calls(1).unwrap().remove(0);
        assert_eq!(
            (c.outcome, c.duration_ms),
            (Some(CallOutcome::Failed), Some(3_000))
        );
        assert!(s.call_answered(id, 6_000).is_err());
    }
}
}
