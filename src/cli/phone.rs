//! `gsmgate phone …`: play a member's phone against a simulated pool. It speaks the simulator's
//! control protocol (docs/simulator.md) on `DIR/control.sock`, so a newcomer running the embedded
//! default can text the gateway, read what came back and call it, all without hardware.
//!
//! This is a thin client: the simulator does the radio side (PDUs, parts, status reports). The
//! default socket is the embedded default's, `./gsmgate-state/sim/control.sock`, next to the
//! daemon's admin socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::Connection;
use super::output::plural;
use super::phone_call::CallRequest;

/// The embedded default's simulator control socket.
pub const DEFAULT_CONTROL: &str = "gsmgate-state/sim/control.sock";

#[derive(Debug, Args)]
pub struct PhoneArgs {
    /// The simulator's control socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONTROL)]
    pub control: PathBuf,
    #[command(subcommand)]
    pub command: PhoneCommand,
}

#[derive(Debug, Subcommand)]
pub enum PhoneCommand {
    /// Text the gateway from a simulated phone.
    Text {
        /// The phone's number.
        #[arg(long)]
        from: String,
        /// Which simulated modem (SIM) the text is sent to.
        #[arg(long, default_value_t = 0)]
        modem: usize,
        /// The message.
        text: String,
    },
    /// Show what a simulated phone has received from the gateway.
    Inbox {
        /// The phone's number.
        number: String,
        /// Wait up to this many seconds until at least this many messages have arrived.
        #[arg(long, value_name = "N")]
        wait_for: Option<usize>,
        /// How long --wait-for waits, in seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Call the gateway from a simulated phone and report what the caller experienced: rings,
    /// the greeting heard, voicemail, who hung up, the text after; saves what was heard as a WAV.
    Call {
        /// The phone's number.
        #[arg(long)]
        from: String,
        /// Which simulated modem is called.
        #[arg(long, default_value_t = 0)]
        modem: usize,
        /// The caller hangs up this many seconds after the answer (if the gateway has not).
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Where to write what the caller heard (WAV, 8 kHz mono 16-bit); default: call-ID.wav
        /// next to the control socket.
        #[arg(long, value_name = "FILE")]
        save: Option<PathBuf>,
        /// A WAV the caller speaks into the call (to leave a voicemail).
        #[arg(long, value_name = "FILE")]
        say: Option<PathBuf>,
        /// Seconds of silence after the answer before --say starts (past the greeting and beep).
        #[arg(long, value_name = "SECONDS", default_value_t = 6.0)]
        say_after: f64,
        /// How long to wait for the text the gateway sends after the call, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        text_timeout: u64,
    },
}

pub fn run(args: PhoneArgs, conn: Connection) -> ExitCode {
    match run_inner(args, &conn) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(super::EXIT_FAILURE)
        }
    }
}

fn run_inner(args: PhoneArgs, conn: &Connection) -> Result<(), String> {
    let mut control = Control::connect(&args.control)?;
    match args.command {
        PhoneCommand::Text { from, modem, text } => {
            let data = control
                .request(json!({"cmd": "sms", "from": from, "modem": modem, "text": text}))?;
            let parts = data.get("parts").and_then(Value::as_u64).unwrap_or(1);
            println!(
                "sent from {from} to modem {modem} ({parts} part{})",
                plural(parts)
            );
        }
        PhoneCommand::Inbox {
            number,
            wait_for,
            timeout,
        } => {
            let deadline = Instant::now() + Duration::from_secs(timeout);
            let texts = loop {
                let data = control.request(json!({"cmd": "received", "phone": number}))?;
                let texts = data.as_array().cloned().unwrap_or_default();
                match wait_for {
                    Some(n) if texts.len() < n && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(250));
                    }
                    Some(n) if texts.len() < n => {
                        print_texts(&texts);
                        return Err(format!(
                            "{number} received {} of the {n} messages waited for within {timeout} s",
                            texts.len()
                        ));
                    }
                    _ => break texts,
                }
            };
            print_texts(&texts);
        }
        PhoneCommand::Call {
            from,
            modem,
            seconds,
            save,
            say,
            say_after,
            text_timeout,
        } => {
            let req = CallRequest {
                from,
                modem,
                seconds,
                save,
                say,
                say_after,
                text_timeout,
            };
            super::phone_call::call(&mut control, &req, conn)?;
        }
    }
    Ok(())
}

fn print_texts(texts: &[Value]) {
    if texts.is_empty() {
        println!("(nothing received)");
    }
    for t in texts {
        let from = t.get("from").and_then(Value::as_str).unwrap_or("?");
        let text = t.get("text").and_then(Value::as_str).unwrap_or("");
        let incomplete = t.get("complete").and_then(Value::as_bool) == Some(false);
        println!(
            "from {from}: {text}{}",
            if incomplete { " [incomplete]" } else { "" }
        );
    }
}

/// One connection to the control socket; requests are answered in order.
pub(super) struct Control {
    /// The socket's path (`phone call` saves next to it).
    pub(super) path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Control {
    fn connect(path: &Path) -> Result<Control, String> {
        let stream = UnixStream::connect(path).map_err(|e| {
            format!(
                "no simulator at {} ({e}). Start the embedded default with `gsmgate daemon` \
                 (it runs a simulated pool), or `gsmgate sim --dir DIR` and pass --control \
                 DIR/control.sock",
                path.display()
            )
        })?;
        let writer = stream
            .try_clone()
            .map_err(|e| format!("control socket: {e}"))?;
        Ok(Control {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
        })
    }

    pub(super) fn request(&mut self, mut req: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        req["id"] = json!(id);
        let mut line = req.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| format!("control socket: {e}"))?;
        let mut answer = String::new();
        self.reader
            .read_line(&mut answer)
            .map_err(|e| format!("control socket: {e}"))?;
        if answer.is_empty() {
            return Err("the simulator closed the connection".into());
        }
        let v: Value = serde_json::from_str(&answer)
            .map_err(|e| format!("unreadable answer from the simulator: {e}"))?;
        if v.get("ok").and_then(Value::as_bool) == Some(true) {
            Ok(v.get("data").cloned().unwrap_or(Value::Null))
        } else {
            let msg = v
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            Err(format!("simulator: {msg}"))
        }
    }
}
