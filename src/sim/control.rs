//! The simulator's control socket: newline-delimited JSON requests on a Unix stream socket, one
//! response line each, in the admin protocol's style (`{"id": 7, "cmd": "sms", …}` →
//! `{"id": 7, "ok": true, "data": …}` or `{"id": 7, "ok": false, "error": {"code", "message"}}`).
//! It owns only the wire format and dispatch; every command maps to one [`SimHandle`] method, so
//! tests can use the same operations without JSON.
//!
//! Robustness: a malformed, oversized or unknown request gets an error response and the
//! connection stays usable; a line longer than `MAX_LINE` is discarded up to its newline.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::faults::Fault;
use super::handle::{PhoneCall, PhoneSms, SimError, SimHandle};

/// Longest accepted request line.
pub const MAX_LINE: usize = 1024 * 1024;

/// One control request (the `cmd` field selects the variant).
#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Paths and per-modem state.
    Status {
        #[serde(default)]
        id: Value,
    },
    /// A phone texts a modem.
    Sms {
        #[serde(default)]
        id: Value,
        #[serde(flatten)]
        sms: PhoneSms,
    },
    /// A phone calls a modem.
    Call {
        #[serde(default)]
        id: Value,
        #[serde(flatten)]
        call: PhoneCall,
    },
    /// A phone hangs up.
    Hangup {
        #[serde(default)]
        id: Value,
        from: String,
    },
    /// Texts the phones received.
    Received {
        #[serde(default)]
        id: Value,
        phone: Option<String>,
    },
    /// Raw SUBMITs the network accepted.
    Submitted {
        #[serde(default)]
        id: Value,
    },
    /// Call records.
    Calls {
        #[serde(default)]
        id: Value,
        phone: Option<String>,
    },
    /// Write what a phone heard in a call to a WAV file.
    SaveAudio {
        #[serde(default)]
        id: Value,
        call_id: u64,
        path: PathBuf,
    },
    /// Inject a fault.
    Fault {
        #[serde(default)]
        id: Value,
        modem: usize,
        #[serde(flatten)]
        fault: Fault,
    },
    /// Messages stored in a modem memory.
    Stored {
        #[serde(default)]
        id: Value,
        modem: usize,
        #[serde(default = "default_mem")]
        mem: String,
    },
    /// Put a raw PDU into a modem's received storage (see [`SimHandle::store_pdu`]).
    StorePdu {
        #[serde(default)]
        id: Value,
        modem: usize,
        hex: String,
        #[serde(default)]
        stat: u8,
        #[serde(default)]
        announce: bool,
    },
    /// Audio timing figures.
    AudioStats {
        #[serde(default)]
        id: Value,
        modem: usize,
    },
    /// Store a file on a modem (SIM800 playback).
    PutFile {
        #[serde(default)]
        id: Value,
        modem: usize,
        name: String,
        path: PathBuf,
    },
    /// TP-ST for generated status reports.
    ReportStatus {
        #[serde(default)]
        id: Value,
        status: u8,
    },
}

fn default_mem() -> String {
    "SM".into()
}

fn error_code(e: &SimError) -> &'static str {
    match e {
        SimError::NoModem(_) => "no_such_modem",
        SimError::NoCall(_) | SimError::NoOpenCall(_) => "no_such_call",
        SimError::CallRefused { .. } => "call_refused",
        SimError::Network(_) => "invalid_text",
        SimError::Wav(_) => "audio_file",
        SimError::Invalid(_) => "invalid_request",
        SimError::Pty(_) | SimError::Io { .. } => "io",
    }
}

fn ok(id: Value, data: Value) -> Value {
    json!({"id": id, "ok": true, "data": data})
}

fn err(id: Value, code: &str, message: String) -> Value {
    json!({"id": id, "ok": false, "error": {"code": code, "message": message}})
}

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Answers one request line.
pub fn handle_line(sim: &SimHandle, line: &str) -> Value {
    let raw: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return err(Value::Null, "bad_json", e.to_string()),
    };
    let id = raw.get("id").cloned().unwrap_or(Value::Null);
    if !raw.is_object() {
        return err(id, "bad_request", "request must be a JSON object".into());
    }
    let req: Request = match serde_json::from_value(raw) {
        Ok(r) => r,
        Err(e) => return err(id, "bad_request", e.to_string()),
    };
    let result: Result<Value, SimError> = match req {
        Request::Status { .. } => Ok(json!({"paths": sim.paths(), "modems": sim.status()})),
        Request::Sms { sms, .. } => sim.phone_sms(&sms).map(|parts| json!({"parts": parts})),
        Request::Call { call, .. } => sim
            .phone_call(&call)
            .map(|call_id| json!({"call_id": call_id})),
        Request::Hangup { from, .. } => sim.phone_hangup(&from).map(|()| Value::Null),
        Request::Received { phone, .. } => Ok(to_value(sim.received(phone.as_deref()))),
        Request::Submitted { .. } => Ok(to_value(sim.submitted())),
        Request::Calls { phone, .. } => Ok(to_value(sim.calls(phone.as_deref()))),
        Request::SaveAudio { call_id, path, .. } => {
            sim.save_heard(call_id, &path).map(|()| Value::Null)
        }
        Request::Fault { modem, fault, .. } => sim.fault(modem, &fault).map(|()| Value::Null),
        Request::Stored { modem, mem, .. } => sim.stored(modem, &mem).map(to_value),
        Request::AudioStats { modem, .. } => sim.audio_stats(modem).map(to_value),
        Request::StorePdu {
            modem,
            hex,
            stat,
            announce,
            ..
        } => crate::pdu::hex_to_bytes(&hex)
            .map_err(|e| SimError::Invalid(format!("pdu hex: {e}")))
            .and_then(|pdu| sim.store_pdu(modem, pdu, stat, announce))
            .map(|index| json!({ "index": index })),
        Request::PutFile {
            modem, name, path, ..
        } => match std::fs::read(&path) {
            Ok(data) => sim.put_file(modem, &name, data).map(|()| Value::Null),
            Err(source) => Err(SimError::Io {
                what: "reading",
                path,
                source,
            }),
        },
        Request::ReportStatus { status, .. } => {
            sim.set_report_status(status);
            Ok(Value::Null)
        }
    };
    match result {
        Ok(data) => ok(id, data),
        Err(e) => err(id, error_code(&e), e.to_string()),
    }
}

/// Accepts connections until cancelled.
pub async fn serve(listener: UnixListener, sim: SimHandle, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let sim = sim.clone();
                    let cancel = cancel.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            r = connection(stream, sim) => if let Err(e) = r {
                                tracing::debug!("control connection: {e}");
                            },
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("control socket accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn connection(stream: UnixStream, sim: SimHandle) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let resp = if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            // Skip the rest of the oversized line.
            let mut sink = Vec::new();
            loop {
                sink.clear();
                let m = (&mut reader)
                    .take(64 * 1024)
                    .read_until(b'\n', &mut sink)
                    .await?;
                if m == 0 || sink.last() == Some(&b'\n') {
                    break;
                }
            }
            err(
                Value::Null,
                "too_large",
                format!("request longer than {MAX_LINE} bytes"),
            )
        } else {
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            handle_line(&sim, line)
        };
        let mut out = resp.to_string().into_bytes();
        out.push(b'\n');
        w.write_all(&out).await?;
    }
}
