//! The voice commands: the call log, voicemails (list, export, delete) and installing a new
//! greeting without a restart.
//!
//! Choices, and why:
//! - `voicemail_export` returns the file's bytes (base64) instead of a path: the client may run as
//!   another user than the daemon and cannot be assumed to read `state_dir`.
//! - `greeting_set` takes the file whole or in chunks, because one admin request is at most
//!   64 KiB and a 10-second greeting is 160 KB; one upload at a time, and an upload left
//!   unfinished for [`UPLOAD_STALE`] is dropped by the next chunk.
//! - Only `greeting_set` refuses (`unavailable`) while voice is disabled; the call log and the
//!   voicemails stay readable.
//! - A voicemail's row is deleted before its file: a failure in between leaves a stray file
//!   (logged), never a row whose file is gone.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::{CommandError, Context, DEFAULT_LIMIT, MAX_LIMIT, Result};
use crate::protocol::{
    CallItem, CallsArgs, GreetingFile, GreetingInstalled, GreetingSetArgs, GreetingUpload,
    VoicemailDeleted, VoicemailFile, VoicemailIdArgs, VoicemailItem, VoicemailListArgs, base64,
};
use crate::store::{self, StoreError};
use crate::time::rfc3339;
use crate::voice::{self, VoiceError, VoiceHandle};

/// An unfinished greeting upload older than this is dropped.
pub const UPLOAD_STALE: Duration = Duration::from_secs(300);
/// Largest voicemail file `voicemail_export` sends (its base64 must fit the client's 64 MiB
/// response limit; `[voice] max_seconds` ≤ 600 makes files of at most 9.6 MB).
const MAX_EXPORT_BYTES: u64 = 40 * 1024 * 1024;

/// The message every voice command that needs voice answers while it is off.
pub const DISABLED: &str = "voice is disabled in [voice]; set enabled = true there and restart \
                            the daemon";

/// The running voice layer as the commands use it, with the greeting upload in progress.
pub(super) struct VoiceLink {
    handle: VoiceHandle,
    upload: Mutex<Option<Upload>>,
}

impl VoiceLink {
    pub(super) fn new(handle: VoiceHandle) -> VoiceLink {
        VoiceLink {
            handle,
            upload: Mutex::new(None),
        }
    }
}

struct Upload {
    total: u64,
    data: Vec<u8>,
    touched: Instant,
}

fn link(ctx: &Context) -> Result<&VoiceLink> {
    ctx.voice
        .as_ref()
        .ok_or_else(|| CommandError::Unavailable("the voice layer is not running".into()))
}

/// A store error of a voice command: a missing row reads `no <what>`.
fn not_found(e: StoreError, what: &str) -> CommandError {
    match e {
        StoreError::NotFound { .. } => CommandError::NotFound(format!("no {what}")),
        other => CommandError::Store(other),
    }
}

fn call_item(c: store::CallRow) -> CallItem {
    CallItem {
        id: c.id,
        modem: c.modem,
        number: c.number,
        started_at: rfc3339(c.started_at),
        answered_at: c.answered_at.map(rfc3339),
        ended_at: c.ended_at.map(rfc3339),
        duration_ms: c.duration_ms,
        outcome: c.outcome.map(|o| o.as_str().to_string()),
    }
}

/// `calls`: the call log, newest first.
pub fn calls(ctx: &Context, args: &CallsArgs) -> Result<Vec<CallItem>> {
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let rows = ctx.store.calls(limit).map_err(|e| not_found(e, "calls"))?;
    Ok(rows.into_iter().map(call_item).collect())
}

/// `voicemail_list`: recorded voicemails, newest first.
pub fn voicemail_list(ctx: &Context, args: &VoicemailListArgs) -> Result<Vec<VoicemailItem>> {
    let rows = ctx
        .store
        .voicemails(args.unheard_only)
        .map_err(|e| not_found(e, "voicemails"))?;
    Ok(rows
        .into_iter()
        .map(|v| VoicemailItem {
            id: v.id,
            call_id: v.call_id,
            number: v.number,
            created_at: rfc3339(v.created_at),
            duration_ms: v.duration_ms,
            heard: v.heard,
            path: v.path,
        })
        .collect())
}

/// `voicemail_export`: one voicemail's WAV, base64; marks it heard.
pub fn voicemail_export(ctx: &Context, args: &VoicemailIdArgs) -> Result<VoicemailFile> {
    let id = args.voicemail;
    let what = format!("voicemail {id}");
    let row = ctx.store.voicemail(id).map_err(|e| not_found(e, &what))?;
    // Held by the database (several sites, docs/scale-out.md): any site can export it.
    if let Some(wav) = ctx
        .store
        .voicemail_audio(id)
        .map_err(|e| not_found(e, &what))?
    {
        if wav.len() as u64 > MAX_EXPORT_BYTES {
            return Err(CommandError::Conflict(format!(
                "voicemail {id} is {} bytes, more than {MAX_EXPORT_BYTES} fit one answer",
                wav.len()
            )));
        }
        ctx.store
            .set_voicemail_heard(id, true)
            .map_err(|e| not_found(e, &what))?;
        return Ok(VoicemailFile {
            id,
            number: row.number,
            created_at: rfc3339(row.created_at),
            duration_ms: row.duration_ms,
            wav_base64: base64::encode(&wav),
        });
    }
    let path = link(ctx)?
        .handle
        .voicemail_path(&row.path)
        .map_err(|e| CommandError::Internal(format!("voicemail {id} has a bad path: {e}")))?;
    let missing = |e: std::io::Error| {
        CommandError::NotFound(format!(
            "the file of voicemail {id} ({}): {e}",
            path.display()
        ))
    };
    let size = std::fs::metadata(&path).map_err(missing)?.len();
    if size > MAX_EXPORT_BYTES {
        return Err(CommandError::Conflict(format!(
            "voicemail {id} is {size} bytes, more than {MAX_EXPORT_BYTES} fit one answer; copy \
             {} directly",
            path.display()
        )));
    }
    let wav = std::fs::read(&path).map_err(missing)?;
    ctx.store
        .set_voicemail_heard(id, true)
        .map_err(|e| not_found(e, &what))?;
    Ok(VoicemailFile {
        id,
        number: row.number,
        created_at: rfc3339(row.created_at),
        duration_ms: row.duration_ms,
        wav_base64: base64::encode(&wav),
    })
}

/// `voicemail_delete`: the row, then the file.
pub fn voicemail_delete(ctx: &Context, args: &VoicemailIdArgs) -> Result<VoicemailDeleted> {
    let id = args.voicemail;
    let handle = &link(ctx)?.handle;
    let stored = ctx
        .store
        .delete_voicemail(id)
        .map_err(|e| not_found(e, &format!("voicemail {id}")))?;
    let file_removed = match handle.voicemail_path(&stored) {
        Ok(path) => match std::fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                warn!(id, path = %path.display(), error = %e, "voicemail row deleted but its file could not be removed");
                false
            }
        },
        Err(e) => {
            warn!(id, error = %e, "voicemail row deleted; its stored path is not in the voicemail folder");
            false
        }
    };
    info!(id, file_removed, "voicemail deleted");
    Ok(VoicemailDeleted { id, file_removed })
}

/// `greeting_get`: the greeting in use; `None` when none is installed or voice is not running
/// (then callers hear none either).
pub fn greeting_get(ctx: &Context) -> Result<Option<GreetingFile>> {
    let Some(link) = ctx.voice.as_ref() else {
        return Ok(None);
    };
    Ok(link
        .handle
        .greeting_wav()
        .map(|(duration_ms, wav)| GreetingFile {
            duration_ms,
            wav_base64: base64::encode(&wav),
        }))
}

/// `greeting_set`: one chunk (or the whole file); installs the greeting once it is complete.
pub fn greeting_set(ctx: &Context, args: &GreetingSetArgs) -> Result<GreetingUpload> {
    if !ctx.settings.voice_enabled {
        return Err(CommandError::Unavailable(DISABLED.into()));
    }
    let link = link(ctx)?;
    let bytes = base64::decode(&args.wav_base64).map_err(|e| {
        CommandError::Invalid(format!("greeting_set: field `wav_base64`: not base64: {e}"))
    })?;
    let whole = match (args.offset, args.total_bytes) {
        (None, None) => Some(bytes),
        (Some(offset), Some(total)) => link.chunk(offset, total, bytes)?,
        _ => {
            return Err(CommandError::Invalid(
                "greeting_set: fields `offset` and `total_bytes` go together (both for a chunk, \
                 neither for a whole file)"
                    .into(),
            ));
        }
    };
    let Some(wav) = whole else {
        let guard = link.upload.lock().unwrap_or_else(|e| e.into_inner());
        let (received, total) = guard
            .as_ref()
            .map(|u| (u.data.len() as u64, u.total))
            .unwrap_or((0, 0));
        return Ok(GreetingUpload {
            received_bytes: received,
            total_bytes: total,
            greeting: None,
        });
    };
    let total = wav.len() as u64;
    let info = link.handle.set_greeting(&wav).map_err(|e| match e {
        VoiceError::Greeting(g) => CommandError::Invalid(format!(
            "greeting_set: the file is not a usable greeting: {g}"
        )),
        other => CommandError::Internal(format!("installing the greeting: {other}")),
    })?;
    let f = info.source;
    Ok(GreetingUpload {
        received_bytes: total,
        total_bytes: total,
        greeting: Some(GreetingInstalled {
            duration_ms: info.duration_ms,
            source: format!(
                "{} Hz, {} ch, {}-bit{}",
                f.sample_rate,
                f.channels,
                f.bits,
                if f.float { " float" } else { "" }
            ),
            converted: info.converted,
            path: info.path.display().to_string(),
        }),
    })
}

impl VoiceLink {
    /// Adds one chunk to the upload; returns the whole file once it is complete.
    fn chunk(&self, offset: u64, total: u64, bytes: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let bad = |m: String| CommandError::Invalid(format!("greeting_set: {m}"));
        if total > voice::greeting::MAX_BYTES as u64 {
            return Err(bad(format!(
                "field `total_bytes`: {total} bytes; a greeting file is at most {} bytes",
                voice::greeting::MAX_BYTES
            )));
        }
        let mut guard = self.upload.lock().unwrap_or_else(|e| e.into_inner());
        if guard
            .as_ref()
            .is_some_and(|u| u.touched.elapsed() > UPLOAD_STALE)
        {
            *guard = None;
        }
        if offset == 0 {
            *guard = Some(Upload {
                total,
                data: Vec::new(),
                touched: Instant::now(),
            });
        }
        let Some(up) = guard.as_mut() else {
            return Err(CommandError::Conflict(
                "greeting_set: no greeting upload in progress; start again with offset 0".into(),
            ));
        };
        if up.total != total || up.data.len() as u64 != offset {
            return Err(CommandError::Conflict(format!(
                "greeting_set: the upload in progress expects offset {} of {} bytes (another \
                 upload may have started); start again with offset 0",
                up.data.len(),
                up.total
            )));
        }
        if offset + bytes.len() as u64 > total {
            *guard = None;
            return Err(bad(format!(
                "chunk at offset {offset} runs past `total_bytes` {total}"
            )));
        }
        up.data.extend_from_slice(&bytes);
        up.touched = Instant::now();
        if up.data.len() as u64 == total {
            Ok(guard.take().map(|u| u.data))
        } else {
            Ok(None)
        }
    }
}
