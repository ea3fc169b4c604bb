//! Talking to a modem port directly, for the operations verbs (`gsmgate doctor`, `gsmgate modems
//! scan`): who else holds a tty (from `/proc/*/fd`), and a small probe session that writes one AT
//! command at a time and collects its answer with the `at` module's [`Digester`].
//!
//! This is deliberately not the modem actor: the operations verbs only ask read-only questions
//! (`AT`, `AT+CPIN?`, `AT+CREG?`, `AT+CSQ`, `AT+CSCA?`, `AT+CPMS?`, `AT^CVOICE?`, identity) with
//! short timeouts, and must not run the init sequence, which changes modem settings and drains the
//! SIM storage. It must never be pointed at a port the daemon owns: the callers check holders first
//! (the daemon opens its ports exclusively anyway, so an open would fail with EBUSY).
//!
//! The port is opened like the daemon does (tokio-serial, exclusive), so the simulator's
//! pseudo-terminals exercise the same path as a USB tty. URCs and echoes that arrive during a
//! command are dropped: a probe only wants the answer of its own command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{SerialPortBuilderExt, SerialStream};

use crate::at::{Command, Digester, FinalResult, Item};

/// Errors of a probe session.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{path} does not exist")]
    Missing { path: PathBuf },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: tokio_serial::Error,
    },
    #[error("{path}: {command} got no final result within {timeout:?}")]
    Timeout {
        path: PathBuf,
        command: String,
        timeout: Duration,
    },
    #[error("{path}: the device went away ({detail})")]
    Gone { path: PathBuf, detail: String },
    #[error("{path}: write failed: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The answer to one command: its information lines and its final result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub lines: Vec<String>,
    pub result: FinalResult,
}

impl Answer {
    /// The first information line starting with `prefix` (case-insensitive).
    pub fn line(&self, prefix: &str) -> Option<&str> {
        self.lines.iter().map(String::as_str).find(|l| {
            l.get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        })
    }
}

/// One open AT port.
pub struct Probe {
    stream: SerialStream,
    digester: Digester,
    path: PathBuf,
}

impl Probe {
    /// Opens `path` (following symlinks) at `baud`, exclusively, as the daemon would. Needs a tokio
    /// runtime.
    pub fn open(path: &Path, baud: u32) -> Result<Probe, ProbeError> {
        let resolved = std::fs::canonicalize(path).map_err(|_| ProbeError::Missing {
            path: path.to_owned(),
        })?;
        let stream = tokio_serial::new(resolved.to_string_lossy(), baud)
            .open_native_async()
            .map_err(|source| ProbeError::Open {
                path: path.to_owned(),
                source,
            })?;
        let mut digester = Digester::new();
        digester.set_report_echo(false);
        Ok(Probe {
            stream,
            digester,
            path: path.to_owned(),
        })
    }

    /// `AT` until `OK`: a first try, then ESC (which cancels an `AT+CMGS` prompt a previous program
    /// left open without sending anything; docs/modems.md, "Coming up after a crash") and a second
    /// try. Ctrl-Z is not used here because on an open prompt it would send whatever was typed.
    pub async fn sync(&mut self, timeout: Duration) -> Result<(), ProbeError> {
        match self.command(&Command::at(), timeout).await {
            Ok(a) if a.result.is_ok() => return Ok(()),
            Ok(_) | Err(ProbeError::Timeout { .. }) => {}
            Err(e) => return Err(e),
        }
        self.write(b"\x1b\r").await?;
        let a = self.command(&Command::at(), timeout).await?;
        if a.result.is_ok() {
            Ok(())
        } else {
            Err(ProbeError::Timeout {
                path: self.path.clone(),
                command: "AT".into(),
                timeout,
            })
        }
    }

    /// Writes `cmd` and waits up to `timeout` for its final result. Commands with a body (the
    /// `> ` prompt) are not for probes; their prompt would be left open, so they are refused by
    /// answering with the timeout error without writing anything.
    pub async fn command(
        &mut self,
        cmd: &Command,
        timeout: Duration,
    ) -> Result<Answer, ProbeError> {
        let path = self.path.clone();
        let timed_out = || ProbeError::Timeout {
            path: path.clone(),
            command: cmd.echo().to_owned(),
            timeout,
        };
        if cmd.expects_prompt() {
            return Err(timed_out());
        }
        self.digester.begin(cmd);
        self.write(cmd.bytes()).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut lines = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            while let Some(item) = self.digester.next_item() {
                match item {
                    Item::Info(line) => lines.push(line),
                    Item::Final(result) => return Ok(Answer { lines, result }),
                    // URCs, echoes, garbage and prompts are not this command's answer.
                    _ => {}
                }
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await;
            match read {
                Err(_) => {
                    self.digester.end();
                    return Err(timed_out());
                }
                Ok(Ok(0)) => {
                    return Err(ProbeError::Gone {
                        path: self.path.clone(),
                        detail: "end of file".into(),
                    });
                }
                Ok(Ok(n)) => self.digester.feed(buf.get(..n).unwrap_or_default()),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => {
                    return Err(ProbeError::Gone {
                        path: self.path.clone(),
                        detail: e.to_string(),
                    });
                }
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ProbeError> {
        let r = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        }
        .await;
        r.map_err(|source| ProbeError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

/// A process that has a tty open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub pid: u32,
    /// `/proc/PID/comm`, e.g. `ModemManager`.
    pub comm: String,
    /// The command line, arguments joined by spaces.
    pub cmdline: String,
}

/// What a holder is to gsmgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderKind {
    /// ModemManager: probes and holds modem ports; must be kept away.
    ModemManager,
    /// The gsmgate daemon: owning its ports is its job.
    GsmgateDaemon,
    /// `gsmgate sim`: the simulator holds its own pseudo-terminals open.
    GsmgateSim,
    /// Anything else (a terminal program, another SMS daemon).
    Other,
}

impl Holder {
    pub fn kind(&self) -> HolderKind {
        let mut args = self.cmdline.split(' ');
        let exe_is_gsmgate = args
            .next()
            .is_some_and(|a| a.rsplit('/').next() == Some("gsmgate"));
        if self.comm == "ModemManager" {
            HolderKind::ModemManager
        } else if exe_is_gsmgate || self.comm == "gsmgate" {
            // The verb is the first argument that is neither an option nor the value of the one
            // global option that takes a value (`--socket PATH`).
            let mut verb = None;
            while let Some(a) = args.next() {
                if a == "--socket" {
                    args.next();
                } else if !a.starts_with('-') {
                    verb = Some(a);
                    break;
                }
            }
            match verb {
                Some("daemon") => HolderKind::GsmgateDaemon,
                Some("sim") => HolderKind::GsmgateSim,
                _ => HolderKind::Other,
            }
        } else {
            HolderKind::Other
        }
    }

    /// `ModemManager (pid 812)`.
    pub fn describe(&self) -> String {
        format!("{} (pid {})", self.comm, self.pid)
    }
}

/// The processes holding a device, and how many processes could not be inspected (other users'
/// processes are unreadable without root).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Holders {
    pub holders: Vec<Holder>,
    pub unreadable: usize,
}

/// Who has `device` open, looking through `/proc/*/fd`. `device` is resolved first, so a
/// `/dev/serial/by-id` link or a simulator symlink finds the holders of the real node. This
/// process is left out: the in-process simulator of a test holds its own ptys.
pub fn holders(device: &Path) -> Holders {
    let mut out = Holders::default();
    let Ok(target) = std::fs::canonicalize(device) else {
        return out;
    };
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let fds = match std::fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => fds,
            Err(_) => {
                out.unreadable += 1;
                continue;
            }
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == target));
        if holds {
            let read = |name: &str| std::fs::read(entry.path().join(name)).unwrap_or_default();
            let comm = String::from_utf8_lossy(&read("comm")).trim().to_owned();
            let cmdline = read("cmdline")
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            out.holders.push(Holder { pid, comm, cmdline });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(comm: &str, cmdline: &str) -> Holder {
        Holder {
            pid: 1,
            comm: comm.into(),
            cmdline: cmdline.into(),
        }
    }

    #[test]
    fn holder_kinds() {
        assert_eq!(
            h("ModemManager", "/usr/sbin/ModemManager").kind(),
            HolderKind::ModemManager
        );
        assert_eq!(
            h(
                "gsmgate",
                "/usr/bin/gsmgate daemon --config /etc/gsmgate/gsmgate.toml"
            )
            .kind(),
            HolderKind::GsmgateDaemon
        );
        assert_eq!(
            h("gsmgate", "gsmgate --socket x sim --modems 2 --dir /tmp/s").kind(),
            HolderKind::GsmgateSim
        );
        assert_eq!(
            h("minicom", "minicom -D /dev/ttyUSB2").kind(),
            HolderKind::Other
        );
        assert_eq!(h("gsmgate", "gsmgate doctor").kind(), HolderKind::Other);
    }

    #[test]
    fn answer_line_matches_prefix_case_insensitively() {
        let a = Answer {
            lines: vec!["+CSQ: 21,99".into(), "+cpin: READY".into()],
            result: FinalResult::Ok,
        };
        assert_eq!(a.line("+CPIN:"), Some("+cpin: READY"));
        assert_eq!(a.line("+CSQ:"), Some("+CSQ: 21,99"));
        assert_eq!(a.line("+CREG:"), None);
    }

    #[test]
    fn a_file_held_by_another_process_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held");
        std::fs::write(&path, b"x").unwrap();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 3<\"$0\"; read -r _ <&0")
            .arg(&path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let found = loop {
            let hs = holders(&path);
            if hs.holders.iter().any(|h| h.pid == child.id()) {
                break true;
            }
            if std::time::Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert!(found, "the shell holding the file was not found");
        // This process itself is never listed, though it has no fd on the file anyway.
        assert!(
            holders(&path)
                .holders
                .iter()
                .all(|h| h.pid != std::process::id())
        );
    }
}
