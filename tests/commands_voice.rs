//! The voice commands (`commands::voice`) on a temporary store and a voice layer with no modems:
//! greeting uploads in chunks (order enforced, one upload at a time, size limits), refusals while
//! voice is disabled, and bad files named as such. Calls and voicemails end to end are covered by
//! tests/daemon_voice.rs.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use gsmgate::commands::{CommandError, Context, voice};
use gsmgate::config::Config;
use gsmgate::protocol::{ErrorBody, ErrorCode, GreetingSetArgs, base64};
use gsmgate::store::Store;
use gsmgate::voice::{self as voice_layer, VoiceSettings};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn context(enabled: bool) -> (tempfile::TempDir, Context) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("db")).expect("open store");
    let (_urc_tx, urc_rx) = mpsc::channel(1);
    let (cb_tx, _cb_rx) = mpsc::channel(1);
    let handle = voice_layer::spawn(
        vec![],
        urc_rx,
        VoiceSettings::default(),
        store.clone(),
        dir.path(),
        cb_tx,
        &TaskTracker::new(),
        CancellationToken::new(),
    )
    .expect("voice layer");
    let mut cfg = Config::embedded_default();
    cfg.voice.enabled = enabled;
    let ctx = Context::new(store, Arc::new(cfg.command_settings())).with_voice(handle);
    (dir, ctx)
}

fn chunk(ctx: &Context, bytes: &[u8], offset: u64, total: u64) -> Result<Option<u64>, ErrorBody> {
    voice::greeting_set(
        ctx,
        &GreetingSetArgs {
            wav_base64: base64::encode(bytes),
            offset: Some(offset),
            total_bytes: Some(total),
        },
    )
    .map(|u| Some(u.received_bytes))
    .map_err(ErrorBody::from)
}

#[tokio::test]
async fn chunks_must_follow_each_other() {
    let (_d, ctx) = context(true);
    assert_eq!(chunk(&ctx, b"abc", 0, 6).expect("first chunk"), Some(3));
    let e = chunk(&ctx, b"x", 5, 6).expect_err("a gap");
    assert_eq!(e.code, ErrorCode::Conflict);
    assert!(e.message.contains("expects offset 3"), "{}", e.message);
    // The last chunk completes "abcdef", which is no WAV: refused as such, upload finished.
    let e = chunk(&ctx, b"def", 3, 6).expect_err("not a wav");
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    assert!(e.message.contains("not a usable greeting"), "{}", e.message);
    // Finished: the next chunk needs a new start.
    let e = chunk(&ctx, b"", 6, 6).expect_err("no upload in progress");
    assert_eq!(e.code, ErrorCode::Conflict);
    let e = chunk(&ctx, b"abc", 0, 2).expect_err("past the total");
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    let e = chunk(&ctx, b"", 0, u64::MAX).expect_err("too big");
    assert!(e.message.contains("total_bytes"), "{}", e.message);
}

#[tokio::test]
async fn greeting_set_refuses_when_disabled_and_bad_files_name_the_problem() {
    let whole = |ctx: &Context, b64: String| {
        voice::greeting_set(
            ctx,
            &GreetingSetArgs {
                wav_base64: b64,
                offset: None,
                total_bytes: None,
            },
        )
    };
    let (_d, off) = context(false);
    let e = whole(&off, base64::encode(b"RIFF")).expect_err("disabled");
    assert!(matches!(e, CommandError::Unavailable(_)), "{e:?}");
    assert!(e.to_string().contains("voice is disabled in [voice]"));
    let (_d, on) = context(true);
    let e = ErrorBody::from(whole(&on, "not base64!".into()).expect_err("bad base64"));
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    assert!(e.message.contains("wav_base64"), "{}", e.message);
    let e = ErrorBody::from(
        whole(&on, base64::encode(b"this is no wav file at all")).expect_err("no wav"),
    );
    assert_eq!(e.code, ErrorCode::InvalidRequest);
    assert!(e.message.contains("not a usable greeting"), "{}", e.message);
}
