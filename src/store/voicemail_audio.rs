//! Voicemail audio kept in the database (`voicemails.audio`, migration 0015), so that every site
//! sharing a PostgreSQL database can play a voicemail whichever site took the call
//! (docs/scale-out.md). On a single Pi (SQLite) the audio stays a file in the state directory
//! and the column stays empty: a few MB of WAV per voicemail would only grow the database and its
//! backups. It must not touch the files: the voice layer writes them, the commands read them.

use crate::store::db::{OptionalExtension, params};
use crate::store::{Result, SqlContext, Store, StoreError};

impl Store {
    /// Stores the WAV bytes of voicemail `id`.
    pub fn set_voicemail_audio(&self, id: i64, wav: &[u8]) -> Result<()> {
        const OP: &str = "storing a voicemail's audio";
        self.write(OP, |tx| {
            let n = tx
                .exec_cached(
                    "UPDATE voicemails SET audio = ?2 WHERE id = ?1",
                    params![id, wav],
                )
                .ctx(OP)?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "voicemail",
                    key: id.to_string(),
                });
            }
            Ok(())
        })
    }

    /// The WAV bytes of voicemail `id` when the database holds them (`None`: a file).
    pub fn voicemail_audio(&self, id: i64) -> Result<Option<Vec<u8>>> {
        const OP: &str = "reading a voicemail's audio";
        let audio: Option<Option<Vec<u8>>> = self
            .conn()
            .query_row_cached(
                "SELECT audio FROM voicemails WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .ctx(OP)?;
        match audio {
            None => Err(StoreError::NotFound {
                what: "voicemail",
                key: id.to_string(),
            }),
            Some(a) => Ok(a),
        }
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
mod tests {

    #[test]
    fn audio_round_trips_byte_for_byte() {
        let s = fresh();
        let call = s.call_started("m0", Some("+15550001"), 1_000).unwrap();
        let id = s.add_voicemail(call, "voicemail/1.wav", 2_000, 3_000).unwrap();
        assert_eq!(s.voicemail_audio(id).unwrap(), None);
        let wav: Vec<u8> = (0..=255u8).cycle().take(40_000).collect();
        s.set_voicemail_audio(id, &wav).unwrap();
        assert_eq!(s.voicemail_audio(id).unwrap(), Some(wav));
        assert!(s.voicemail_audio(id + 1).is_err());
        assert!(s.set_voicemail_audio(id + 1, b"x").is_err());
    }
}
}
