//! Files on the modem's flash as each vendor's AT commands handle them: uploads (Quectel
//! `AT+QFUPL`, SIMCom `AT+CFTRANRX`, SIM800 `AT+FSCREATE`/`AT+FSWRITE`), listing and deleting,
//! and playing a stored file into the active call (`AT+QPSND`, `AT+CCMXPLAY`, `AT+CREC=4`). The
//! file table and the playback clock are `sim/files.rs`; this file only parses and answers
//! (docs/simulator.md, "Files on the modem and their playback", has the table per profile).
//!
//! Why uploads are counted bytes: all three vendors take raw bytes with no terminator after the
//! prompt (or `CONNECT`), so the line discipline hands every byte here until the announced size
//! has arrived, whatever the bytes contain.

use super::{Input, ModemCore, Outcome, PromptKind, UploadKind};
use crate::sim::command::{Arg, Command, Form};
use crate::sim::files::{FileInfo, Playback, quectel_name, simcom_path};
use crate::sim::profile::Profile;
use crate::sim::radio::CallEvent;

/// Largest simulated upload (the flash is not infinite; a 300 s greeting is 4.8 MB).
const MAX_UPLOAD: i64 = 8 * 1024 * 1024;

impl ModemCore {
    /// The file and playback commands of the modem's vendor; `None` for any other command.
    pub(super) fn file_command(&mut self, cmd: &Command) -> Option<Outcome> {
        match self.spec.profile {
            Profile::Quectel => self.quectel_file(cmd),
            Profile::Simcom => self.simcom_file(cmd),
            Profile::Sim800 => self.sim800_file(cmd),
            _ => None,
        }
    }

    /// Quectel UFS: `AT+QFUPL`, `AT+QFLST`, `AT+QFDEL`, `AT+QPSND` (Quectel UGxx FILE AT Commands
    /// Manual; EC2x AT Commands Manual §12.18).
    fn quectel_file(&mut self, cmd: &Command) -> Option<Outcome> {
        let args = cmd.args();
        let a = |i: usize| args.get(i).and_then(Arg::int);
        let o = match (cmd.name.as_str(), &cmd.form) {
            ("+QFLST", Form::Set) => {
                let Some(n) = args.first().and_then(Arg::text) else {
                    return Some(Outcome::Error);
                };
                let name = quectel_name(n);
                Outcome::Ok(
                    self.files
                        .get(&name)
                        .map(|f| format!("+QFLST: \"UFS:{}\",{}", f.name, f.data.len()))
                        .into_iter()
                        .collect(),
                )
            }
            ("+QFDEL", Form::Set) => {
                match args.first().and_then(Arg::text) {
                    Some(n) if self.files.delete(&quectel_name(n)) => Outcome::Ok(vec![]),
                    // 405: file not found (Quectel FILE AT Commands Manual, error codes).
                    _ => Outcome::Cme(405),
                }
            }
            ("+QFUPL", Form::Set) => {
                let Some(n) = args.first().and_then(Arg::text) else {
                    return Some(Outcome::Error);
                };
                let name = quectel_name(n);
                if self.files.get(&name).is_some() {
                    // 407: file already exists (ibid.).
                    return Some(Outcome::Cme(407));
                }
                match a(1).unwrap_or(10240) {
                    size @ 1..=MAX_UPLOAD => Outcome::Prompt(PromptKind::Upload {
                        file: name,
                        size: size as usize,
                        how: UploadKind::Qfupl,
                    }),
                    _ => Outcome::Cme(400),
                }
            }
            ("+QPSND", Form::Set) => match a(0) {
                Some(1) => match args.get(1).and_then(Arg::text) {
                    Some(n) => self.play(&quectel_name(n), "+QPSND: 0", None),
                    None => Outcome::Error,
                },
                Some(0) => self.stop_playback(None),
                _ => Outcome::Error,
            },
            _ => return None,
        };
        Some(o)
    }

    /// SIMCom: `AT+FSCD`, `AT+FSATTRI`, `AT+FSDEL`, `AT+CFTRANRX`, `AT+CCMXPLAY`/`AT+CCMXSTOP`
    /// (SIMCom A76XX Audio Application Note).
    fn simcom_file(&mut self, cmd: &Command) -> Option<Outcome> {
        let args = cmd.args();
        let a = |i: usize| args.get(i).and_then(Arg::int);
        let o = match (cmd.name.as_str(), &cmd.form) {
            ("+FSCD", Form::Set) => match args.first().and_then(Arg::text) {
                Some(d) if d.eq_ignore_ascii_case("C:") || d.eq_ignore_ascii_case("C:/") => {
                    self.simcom_cwd = "C:".into();
                    Outcome::Ok(vec![])
                }
                _ => Outcome::Error,
            },
            ("+FSATTRI", Form::Set) => {
                let path = args
                    .first()
                    .and_then(Arg::text)
                    .map(|n| simcom_path(&self.simcom_cwd, n));
                match path.and_then(|p| self.files.get(&p)) {
                    Some(f) => Outcome::Ok(vec![format!(
                        "+FSATTRI: {},2024/01/01 00:00:00",
                        f.data.len()
                    )]),
                    None => Outcome::Error,
                }
            }
            ("+FSDEL", Form::Set) => {
                let path = args
                    .first()
                    .and_then(Arg::text)
                    .map(|n| simcom_path(&self.simcom_cwd, n));
                match path {
                    Some(p) if self.files.delete(&p) => Outcome::Ok(vec![]),
                    _ => Outcome::Error,
                }
            }
            ("+CFTRANRX", Form::Set) => match (args.first().and_then(Arg::text), a(1)) {
                (Some(path), Some(size @ 1..=MAX_UPLOAD)) if path.contains(':') => {
                    Outcome::Prompt(PromptKind::Upload {
                        file: simcom_path(&self.simcom_cwd, path),
                        size: size as usize,
                        how: UploadKind::Cftranrx,
                    })
                }
                _ => Outcome::Error,
            },
            ("+CCMXPLAY", Form::Set) => {
                match args.first().and_then(Arg::text) {
                    // play_path 1 = to the remote party.
                    Some(path) if a(1) == Some(1) => self.play(
                        &simcom_path(&self.simcom_cwd, path),
                        "+AUDIOSTATE: audio play stop",
                        Some("+AUDIOSTATE: audio play"),
                    ),
                    _ => Outcome::Error,
                }
            }
            ("+CCMXSTOP", Form::Exec) => self.stop_playback(Some("+AUDIOSTATE: audio play stop")),
            _ => return None,
        };
        Some(o)
    }

    /// SIM800: `AT+FSCREATE`, `AT+FSWRITE`, `AT+FSFLSIZE`, `AT+FSDEL`, `AT+CREC` (SIMCom SIM800
    /// Series AT Command Manual V1.09).
    fn sim800_file(&mut self, cmd: &Command) -> Option<Outcome> {
        let args = cmd.args();
        let a = |i: usize| args.get(i).and_then(Arg::int);
        let o = match (cmd.name.as_str(), &cmd.form) {
            ("+CREC", Form::Set) => self.crec(&args),
            ("+FSCREATE", Form::Set) => {
                let Some(f) = args.first().and_then(Arg::text) else {
                    return Some(Outcome::Error);
                };
                // Creating an existing file keeps it (the upload overwrites with mode 0).
                self.files.create(f);
                Outcome::Ok(vec![])
            }
            ("+FSWRITE", Form::Set) => {
                let Some(f) = args.first().and_then(Arg::text) else {
                    return Some(Outcome::Error);
                };
                if self.files.get(f).is_none() {
                    return Some(Outcome::Error);
                }
                match (a(1), a(2)) {
                    (Some(mode @ 0..=1), Some(size @ 1..=10240)) => {
                        Outcome::Prompt(PromptKind::Upload {
                            file: f.to_string(),
                            size: size as usize,
                            how: UploadKind::FsWrite { append: mode == 1 },
                        })
                    }
                    _ => Outcome::Error,
                }
            }
            ("+FSFLSIZE", Form::Set) => {
                match args
                    .first()
                    .and_then(Arg::text)
                    .and_then(|f| self.files.get(f))
                {
                    Some(f) => Outcome::Ok(vec![format!("+FSFLSIZE: {}", f.data.len())]),
                    None => Outcome::Error,
                }
            }
            ("+FSDEL", Form::Set) => match args.first().and_then(Arg::text) {
                Some(f) if self.files.delete(f) => Outcome::Ok(vec![]),
                _ => Outcome::Error,
            },
            _ => return None,
        };
        Some(o)
    }

    /// The last byte of an upload arrived: store it and answer per command.
    pub(super) fn finish_upload(&mut self) {
        let Input::Prompt {
            kind: PromptKind::Upload { file, how, .. },
            data,
        } = std::mem::replace(&mut self.input, Input::Line(Vec::new()))
        else {
            return;
        };
        let mut bytes = Vec::new();
        match how {
            UploadKind::FsWrite { append } => {
                let ok = self.files.write(&file, append, &data);
                bytes.extend(self.final_bytes(if ok { "OK" } else { "ERROR" }));
            }
            UploadKind::Cftranrx => {
                self.files.put(&file, data);
                bytes.extend(self.final_bytes("OK"));
            }
            UploadKind::Qfupl => {
                let sum = crate::at::files::quectel_checksum(&data);
                let line = format!("+QFUPL: {},{sum:x}", data.len());
                self.files.put(&file, data);
                bytes.extend(self.info_bytes(&[line]));
                bytes.extend(self.final_bytes("OK"));
            }
        }
        self.schedule_out(self.now, bytes);
        self.flush_held_urcs();
    }

    /// SIM800 `AT+CREC=4,"<file>",<channel>,<volume>`: play a stored file to the caller, `+CREC: 0`
    /// at its end; `AT+CREC=5` stops (SIMCom SIM800 Series AT Command Manual V1.09, p.337).
    fn crec(&mut self, args: &[Arg]) -> Outcome {
        match args.first().and_then(Arg::int) {
            Some(4) => match args.get(1).and_then(Arg::text) {
                Some(name) => {
                    let name = name.to_owned();
                    self.play(&name, "+CREC: 0", None)
                }
                None => Outcome::Error,
            },
            Some(5) => self.stop_playback(None),
            _ => Outcome::Error,
        }
    }

    /// Starts playing a stored file into the active call; `end` is the URC at its end, `start` one
    /// sent once it runs. ERROR without an active call, a file of that name, or a decodable WAV.
    fn play(&mut self, name: &str, end: &'static str, start: Option<&'static str>) -> Outcome {
        let now = self.now;
        let Some(file) = self.files.get(name) else {
            return Outcome::Error;
        };
        let size = file.data.len();
        let Some(c) = self.call.as_mut().filter(|c| c.active) else {
            return Outcome::Error;
        };
        let Some(mut p) = Playback::start(c.id, &file.data, now, end) else {
            return Outcome::Error;
        };
        p.start_urc = start;
        let id = c.id;
        c.playback = Some(p);
        self.played_files.push((id, size));
        self.report_call(id, CallEvent::FilePlayed);
        Outcome::Ok(vec![])
    }

    /// Stops a playback (what played so far was heard); `urc` is sent if one was running.
    fn stop_playback(&mut self, urc: Option<&'static str>) -> Outcome {
        let now = self.now;
        let Some(mut p) = self.call.as_mut().and_then(|c| c.playback.take()) else {
            return Outcome::Ok(vec![]);
        };
        let samples = p.advance(now);
        if !samples.is_empty() {
            self.played_audio.push((p.call_id, samples));
        }
        if let Some(u) = urc {
            self.urc(u);
        }
        Outcome::Ok(vec![])
    }

    /// Playbacks started (call id, file size) and audio played (call id, samples) since the last
    /// call; taken by the pty task to record what the phone heard.
    #[allow(clippy::type_complexity)]
    pub fn take_played(&mut self) -> (Vec<(u64, usize)>, Vec<(u64, Vec<i16>)>) {
        (
            std::mem::take(&mut self.played_files),
            std::mem::take(&mut self.played_audio),
        )
    }

    /// The files on the flash.
    pub fn files(&self) -> Vec<FileInfo> {
        self.files.list()
    }

    /// Stores a file on the modem's flash (a playback source), as an upload would.
    pub fn put_file(&mut self, name: &str, data: Vec<u8>) {
        self.files.put(name, data);
    }
}
