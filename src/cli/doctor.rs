//! `gsmgate doctor [--config FILE]`: checks a real installation and prints one line per check, with
//! a fix for every failure. Exit 0 when nothing failed (warnings and skipped checks do not fail),
//! 1 otherwise; `--json` prints the same report as JSON.
//!
//! Checks, in order: the config file is valid; the state directory is writable; the daemon answers
//! on the admin socket; then for each configured modem: its port exists and no other process holds
//! it (ModemManager is named specifically: it is the usual culprit), it answers `AT`, the SIM is
//! ready, the modem is registered, the signal, the SMSC, voice capability where the profile has a
//! query for it (Huawei `^CVOICE`), and free SIM storage.
//!
//! Where the facts come from: when the daemon is running it owns the ports (exclusively), so the
//! modem facts come from its `modems` answer and the checks it does not report (SMSC, voice,
//! storage) are shown as skipped rather than guessed. When it is not running, each port is opened
//! directly and asked read-only questions through [`super::probe`]: doctor never runs the init
//! sequence, never changes settings, and never reads or deletes stored messages.
//!
//! The checks are a library function ([`diagnose`]) so tests run them in-process against the
//! simulator, with faults injected, and assert the exact lines.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::client::Connection;
use super::output::{plural, print_json};
use super::probe::{self, Answer, HolderKind, Probe, ProbeError};
use super::runtime::run_current_thread;
use crate::admin::protocol::{ModemInfo, StorageStatus};
use crate::admin::{Client, ClientError};
use crate::at::AtError;
use crate::at::response::{self, PinState};
use crate::at::{Command, ErrorCode, FinalResult};
use crate::config::{Config, ConfigError, ModemConfig, Profile};

mod disk;

/// Where the package installs the configuration.
pub const PACKAGED_CONFIG: &str = "/etc/gsmgate/gsmgate.toml";
/// Default time to wait for each probe answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Arguments of `gsmgate doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The configuration to check (and whose ports, state dir and socket to use).
    #[arg(long, value_name = "FILE", default_value = PACKAGED_CONFIG)]
    pub config: PathBuf,
    /// Seconds to wait for each modem answer when probing ports directly.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub timeout: f64,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but deserves attention (weak signal, storage nearly full); does not fail doctor.
    Warn,
    Fail,
    /// Not checked, with the reason in the detail (the modem did not answer, the daemon owns it).
    Skip,
}

impl Status {
    fn tag(self) -> &'static str {
        match self {
            Status::Ok => "[ ok ]",
            Status::Warn => "[warn]",
            Status::Fail => "[FAIL]",
            Status::Skip => "[skip]",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked: `config`, `state dir`, `daemon`, or `modem NAME`.
    pub subject: String,
    /// Which aspect: `file`, `writable`, `admin socket`, `port`, `at`, `sim`, `registration`,
    /// `signal`, `smsc`, `voice`, `storage`, `simulator`.
    pub aspect: String,
    pub status: Status,
    pub detail: String,
    /// How to fix it; present on every failure.
    pub fix: Option<String>,
}

impl Check {
    fn new(subject: &str, aspect: &str, status: Status, detail: impl Into<String>) -> Check {
        Check {
            subject: subject.to_owned(),
            aspect: aspect.to_owned(),
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    fn ok(subject: &str, aspect: &str, detail: impl Into<String>) -> Check {
        Check::new(subject, aspect, Status::Ok, detail)
    }

    fn skip(subject: &str, aspect: &str, detail: impl Into<String>) -> Check {
        Check::new(subject, aspect, Status::Skip, detail)
    }

    fn warn(
        subject: &str,
        aspect: &str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::with_fix(Status::Warn, subject, aspect, detail, fix)
    }

    fn fail(
        subject: &str,
        aspect: &str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::with_fix(Status::Fail, subject, aspect, detail, fix)
    }

    fn with_fix(
        status: Status,
        subject: &str,
        aspect: &str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            fix: Some(fix.into()),
            ..Check::new(subject, aspect, status, detail)
        }
    }

    /// The printed line: `[FAIL] modem sim0: registration: not registered (searching); fix: …`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} {}: {}: {}",
            self.status.tag(),
            self.subject,
            self.aspect,
            self.detail
        );
        if let Some(fix) = &self.fix {
            s.push_str("; fix: ");
            s.push_str(fix);
        }
        s
    }
}

/// Every check, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// No check failed (warnings and skips allowed).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    /// The check for `subject` and `aspect`, if it ran.
    pub fn find(&self, subject: &str, aspect: &str) -> Option<&Check> {
        self.checks
            .iter()
            .find(|c| c.subject == subject && c.aspect == aspect)
    }

    /// All lines, one per check.
    pub fn lines(&self) -> Vec<String> {
        self.checks.iter().map(Check::line).collect()
    }

    fn push(&mut self, c: Check) {
        self.checks.push(c);
    }
}

/// What to diagnose.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    pub config: PathBuf,
    /// Use this admin socket instead of the config's `admin_socket`.
    pub socket: Option<PathBuf>,
    /// Time to wait for each modem answer.
    pub probe_timeout: Duration,
}

/// Run `gsmgate doctor`.
pub fn run(args: DoctorArgs, conn: Connection) -> ExitCode {
    let probe_timeout = if args.timeout.is_finite() && args.timeout > 0.0 {
        Duration::from_secs_f64(args.timeout.min(600.0))
    } else {
        eprintln!("error: --timeout must be a positive number of seconds");
        return ExitCode::from(super::EXIT_USAGE);
    };
    let opts = DoctorOptions {
        config: args.config,
        socket: conn.socket,
        probe_timeout,
    };
    let report = match run_current_thread(diagnose(&opts)) {
        Ok(report) => report,
        Err(code) => return code,
    };
    if conn.json {
        if let Err(e) = print_json(&report) {
            eprintln!("error: {e:#}");
        }
    } else {
        for line in report.lines() {
            println!("{line}");
        }
        let failed = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        if failed == 0 {
            println!("all checks passed");
        } else {
            println!("{failed} check{} failed", plural(failed as u64));
        }
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILURE)
    }
}

/// Run every check and collect the report.
pub async fn diagnose(opts: &DoctorOptions) -> Report {
    let mut report = Report::default();
    let file = opts.config.display().to_string();
    let config = match Config::from_file(&opts.config) {
        Ok(c) => {
            let names = c.modem_names();
            report.push(Check::ok(
                "config",
                "file",
                format!(
                    "{file} is valid ({} modem{}: {})",
                    names.len(),
                    plural(names.len() as u64),
                    names.join(", ")
                ),
            ));
            c
        }
        Err(e) => {
            report.push(config_failure(&file, &e));
            let socket = opts
                .socket
                .clone()
                .unwrap_or_else(|| PathBuf::from(crate::admin::client::SYSTEM_SOCKET));
            report.push(daemon_check(&socket, &file).await.check);
            return report;
        }
    };

    report.push(state_dir_check(&config.daemon.state_dir));
    if let Some(c) = disk::free_space_check(&config.daemon.state_dir) {
        report.push(c);
    }
    if config.simulator.enabled {
        report.push(Check::warn(
            "config",
            "simulator",
            format!(
                "[simulator] is enabled: modems under {} are simulated, no real texts are sent",
                config.simulator.dir.display()
            ),
            format!(
                "for real modems set `enabled = false` in [simulator] of {file} and list them as \
                 [[modem]] tables (`gsmgate modems scan` prints them)"
            ),
        ));
    }

    let socket = opts
        .socket
        .clone()
        .unwrap_or_else(|| config.daemon.admin_socket.clone());
    let answer = daemon_check(&socket, &file).await;
    report.push(answer.check);
    let daemon_modems = answer.modems;
    if daemon_modems.is_some() {
        report.push(disk::daemon_writes_check(answer.storage.as_ref()));
    }

    for modem in &config.modems {
        let subject = format!("modem {}", modem.name);
        if !modem.enabled {
            report.push(Check::skip(
                &subject,
                "port",
                "disabled in the config (`enabled = false`)",
            ));
            continue;
        }
        let simulated = config.simulator.enabled && modem.port.starts_with(&config.simulator.dir);
        let port = port_check(&subject, modem, simulated);
        let port_ok = port.check.status != Status::Fail;
        let held_by_daemon = port.held_by_daemon;
        let held_by_other = port.held_by_other;
        report.push(port.check);
        match &daemon_modems {
            Some(infos)
                if held_by_daemon || !port_ok || infos.iter().any(|i| i.name == modem.name) =>
            {
                match infos.iter().find(|i| i.name == modem.name) {
                    Some(info) => daemon_modem_checks(&mut report, &subject, info),
                    None => report.push(Check::fail(
                        &subject,
                        "at",
                        "the running daemon does not know this modem (the config changed since it \
                         started?)",
                        "restart the daemon: `sudo systemctl restart gsmgate`",
                    )),
                }
            }
            _ if !port_ok => {
                report.push(Check::skip(
                    &subject,
                    "at",
                    "not probed: the port is missing",
                ));
            }
            _ if held_by_other => {
                report.push(Check::skip(
                    &subject,
                    "at",
                    "not probed: another process holds the port",
                ));
            }
            _ => probe_modem(&mut report, &subject, modem, opts.probe_timeout).await,
        }
    }
    report
}

fn config_failure(file: &str, e: &ConfigError) -> Check {
    let detail = match e {
        ConfigError::Invalid { issues } => {
            let first = issues.first().map(ToString::to_string).unwrap_or_default();
            if issues.len() > 1 {
                format!("{first} (and {} more)", issues.len() - 1)
            } else {
                first
            }
        }
        other => other.to_string(),
    };
    Check::fail(
        "config",
        "file",
        detail,
        format!(
            "edit {file}; `gsmgate check-config {file}` lists every problem with its line \
             (config/gsmgate.toml documents every key)"
        ),
    )
}

fn state_dir_check(dir: &Path) -> Check {
    let subject = "state dir";
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Check::fail(
                subject,
                "writable",
                format!("{shown} does not exist"),
                format!(
                    "start the service once (`sudo systemctl start gsmgate`: its StateDirectory= \
                     creates it) or `sudo systemd-tmpfiles --create gsmgate.conf`; for a hand-made \
                     config `mkdir -p {shown}`"
                ),
            );
        }
        Err(e) => {
            return Check::fail(
                subject,
                "writable",
                format!("cannot inspect {shown}: {e}"),
                "run `sudo gsmgate doctor`: the directory belongs to the gsmgate user",
            );
        }
        Ok(m) if !m.is_dir() => {
            return Check::fail(
                subject,
                "writable",
                format!("{shown} is not a directory"),
                "move the file away or point [daemon] state_dir elsewhere",
            );
        }
        Ok(_) => {}
    }
    let probe = dir.join(format!(".gsmgate-doctor-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Check::ok(subject, "writable", format!("{shown} is writable"))
        }
        Err(e) => Check::fail(
            subject,
            "writable",
            format!(
                "{shown} is not writable by uid {}: {e}",
                nix::unistd::geteuid()
            ),
            format!(
                "run `sudo gsmgate doctor` (the service writes as user gsmgate); if the service \
                 cannot write either: `sudo chown -R gsmgate:gsmgate {shown}`"
            ),
        ),
    }
}

/// What [`daemon_check`] learnt.
struct DaemonAnswer {
    check: Check,
    modems: Option<Vec<ModemInfo>>,
    /// The daemon's own view of its writes (`status.storage`), when it reports one.
    storage: Option<StorageStatus>,
}

/// Pings the daemon; on success also fetches its modems and whether its writes succeed.
async fn daemon_check(socket: &Path, file: &str) -> DaemonAnswer {
    let (check, modems, storage) = daemon_check_inner(socket, file).await;
    DaemonAnswer {
        check,
        modems,
        storage,
    }
}

async fn daemon_check_inner(
    socket: &Path,
    file: &str,
) -> (Check, Option<Vec<ModemInfo>>, Option<StorageStatus>) {
    let subject = "daemon";
    let aspect = "admin socket";
    let start_fix = format!(
        "start it with `sudo systemctl start gsmgate` (why it stopped: `journalctl -u gsmgate`), \
         or in a shell: `gsmgate daemon --config {file}`"
    );
    let shown = socket.display();
    let attempt = async {
        let mut client = Client::connect(socket).await?;
        client.ping().await?;
        let modems = client.modems().await;
        let storage = client.status().await.ok().and_then(|s| s.storage);
        Ok::<_, ClientError>((modems, storage))
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok((Ok(modems), storage))) => (
            Check::ok(subject, aspect, format!("the daemon answers on {shown}")),
            Some(modems),
            storage,
        ),
        Ok(Ok((Err(e), _))) => (
            Check::warn(
                subject,
                aspect,
                format!("the daemon answers on {shown} but not to `modems`: {e}"),
                "update gsmgate (the CLI and the daemon should be the same version)",
            ),
            None,
            None,
        ),
        Ok(Err(ClientError::NotRunning { .. })) => (
            Check::fail(
                subject,
                aspect,
                format!("not running (no socket at {shown})"),
                start_fix,
            ),
            None,
            None,
        ),
        Ok(Err(ClientError::PermissionDenied { .. })) => (
            Check::fail(
                subject,
                aspect,
                format!("permission denied on {shown}"),
                "run `sudo gsmgate doctor`, or join the socket's group: `sudo usermod -aG gsmgate \
                 $USER` and log in again",
            ),
            None,
            None,
        ),
        // The daemon runs but refused us (not allowed, or its connections are all taken): its
        // own words, not "not answering".
        Ok(Err(ClientError::Server(e))) => {
            let fix = if e.code == crate::admin::ErrorCode::PermissionDenied {
                "run `sudo gsmgate doctor`, or ask the administrator to add your user to \
                 [daemon] admin_allow_users (or its group to admin_allow_groups)"
            } else {
                "try again in a minute; if it persists, see which processes hold connections to \
                 the socket (`sudo ss -xp | grep gsmgate`) and the daemon log \
                 (`journalctl -u gsmgate`)"
            };
            (
                Check::fail(
                    subject,
                    aspect,
                    format!("the daemon on {shown} refused: {e}"),
                    fix,
                ),
                None,
                None,
            )
        }
        Ok(Err(e)) => (
            Check::fail(
                subject,
                aspect,
                format!("not answering on {shown}: {e}"),
                start_fix,
            ),
            None,
            None,
        ),
        Err(_) => (
            Check::fail(
                subject,
                aspect,
                format!("no answer on {shown} within 5 s"),
                "the daemon hangs: `sudo systemctl restart gsmgate` and report its journal",
            ),
            None,
            None,
        ),
    }
}

struct PortCheck {
    check: Check,
    held_by_daemon: bool,
    held_by_other: bool,
}

fn port_check(subject: &str, modem: &ModemConfig, simulated: bool) -> PortCheck {
    let shown = modem.port.display();
    let Ok(resolved) = std::fs::canonicalize(&modem.port) else {
        let fix = if simulated {
            "this port belongs to the built-in simulator, which creates it while the daemon runs: \
             start the daemon"
                .to_owned()
        } else {
            "plug the modem in (through a powered hub) and run `gsmgate modems scan` to find its \
             port, then set `port` of this modem; a Huawei stick still in CD-ROM mode needs \
             usb_modeswitch (docs/raspberry-pi.md)"
                .to_owned()
        };
        return PortCheck {
            check: Check::fail(subject, "port", format!("{shown} does not exist"), fix),
            held_by_daemon: false,
            held_by_other: false,
        };
    };
    let found = probe::holders(&resolved);
    let mut daemon = false;
    let mut others = Vec::new();
    let mut modem_manager = None;
    for h in &found.holders {
        match h.kind() {
            HolderKind::GsmgateDaemon => daemon = true,
            HolderKind::GsmgateSim => {}
            HolderKind::ModemManager => modem_manager = Some(h.describe()),
            HolderKind::Other => others.push(h.describe()),
        }
    }
    let at = if resolved == modem.port {
        format!("{shown}")
    } else {
        format!("{shown} -> {}", resolved.display())
    };
    let check = if let Some(mm) = modem_manager {
        Check::fail(
            subject,
            "port",
            format!("{at} is held by {mm}"),
            "keep ModemManager away: `sudo systemctl disable --now ModemManager` (or rely on the \
             package's udev rule, which tags known modems ID_MM_DEVICE_IGNORE, then replug)",
        )
    } else if !others.is_empty() {
        Check::fail(
            subject,
            "port",
            format!("{at} is held by {}", others.join(", ")),
            "close that program (a terminal, another SMS daemon); only gsmgate may use the port",
        )
    } else if daemon {
        Check::ok(
            subject,
            "port",
            format!("{at} (held by the gsmgate daemon)"),
        )
    } else if found.unreadable > 0 && !nix::unistd::geteuid().is_root() {
        Check::ok(
            subject,
            "port",
            format!(
                "{at} exists (other users' processes not inspected: run with sudo to see them)"
            ),
        )
    } else {
        Check::ok(subject, "port", format!("{at} exists and is free"))
    };
    PortCheck {
        held_by_other: check.status == Status::Fail,
        check,
        held_by_daemon: daemon,
    }
}

/// The checks answered by the daemon's `modems` entry.
fn daemon_modem_checks(report: &mut Report, subject: &str, info: &ModemInfo) {
    let why = info
        .last_error
        .as_deref()
        .map(|e| format!(" (last error: {e})"))
        .unwrap_or_default();
    let ready = info.state == "ready";
    report.push(match info.state.as_str() {
        "ready" => Check::ok(subject, "at", "answers (the daemon reports it ready)"),
        "initializing" | "recovering" => Check::warn(
            subject,
            "at",
            format!("the daemon reports it {}{why}", info.state),
            "wait a minute and run doctor again; if it stays so, check power and the port",
        ),
        "disabled" => Check::skip(subject, "at", "disabled in the daemon"),
        other => Check::fail(
            subject,
            "at",
            format!("the daemon reports it {other}{why}"),
            "see `journalctl -u gsmgate` for this modem; replug it or power-cycle the hub, then \
             `sudo systemctl restart gsmgate`",
        ),
    });
    if ready {
        report.push(Check::ok(
            subject,
            "sim",
            "ready (the daemon's init passed the PIN step)",
        ));
        report.push(registration_check(subject, &info.registration, None));
        report.push(signal_check(subject, info.signal_dbm.map(|d| (d, None))));
    } else {
        for aspect in ["sim", "registration", "signal"] {
            report.push(Check::skip(
                subject,
                aspect,
                "unknown until the modem is ready",
            ));
        }
    }
    for aspect in ["smsc", "voice", "storage"] {
        report.push(Check::skip(
            subject,
            aspect,
            "not reported by the running daemon (stop it to let doctor probe the port)",
        ));
    }
}

fn registration_check(subject: &str, state: &str, stat: Option<u8>) -> Check {
    let code = stat
        .map(|s| format!(" (+CREG stat {s})"))
        .unwrap_or_default();
    match state {
        "home" => Check::ok(
            subject,
            "registration",
            format!("registered, home network{code}"),
        ),
        "roaming" => Check::ok(
            subject,
            "registration",
            format!("registered, roaming{code}"),
        ),
        "denied" => Check::fail(
            subject,
            "registration",
            format!("registration denied{code}"),
            "the network refuses the SIM: check that it is activated and paid for, try it in a \
             phone; 2G/3G-only sticks fail where those networks are switched off",
        ),
        "searching" => Check::fail(
            subject,
            "registration",
            format!("not registered, searching{code}"),
            "wait a minute; if it stays so: fit the antenna, move the modem (USB extension cable), \
             check coverage for the modem's bands",
        ),
        other => Check::fail(
            subject,
            "registration",
            format!("not registered ({other}){code}"),
            "check the SIM in a phone (activated, not blocked), the antenna and coverage; \
             `AT+COPS=0` restores automatic operator selection",
        ),
    }
}

/// `signal` from dBm (and the raw rssi when probed).
fn signal_check(subject: &str, dbm: Option<(i32, Option<u8>)>) -> Check {
    match dbm {
        None => Check::fail(
            subject,
            "signal",
            "no signal (rssi 99, unknown)",
            "fit or reseat the antenna, move the modem away from the Pi and other modems",
        ),
        Some((d, rssi)) => {
            let raw = rssi.map(|r| format!(" (rssi {r})")).unwrap_or_default();
            if d < -95 {
                Check::warn(
                    subject,
                    "signal",
                    format!("weak: {d} dBm{raw}"),
                    "sends may fail with CMS 512/513: improve the antenna or position",
                )
            } else {
                Check::ok(subject, "signal", format!("{d} dBm{raw}"))
            }
        }
    }
}

fn reg_name(stat: u8) -> &'static str {
    match stat {
        0 => "not searching",
        1 | 6 => "home",
        2 => "searching",
        3 => "denied",
        5 | 7 => "roaming",
        _ => "unknown",
    }
}

fn code(c: &ErrorCode) -> String {
    match c {
        ErrorCode::Numeric(n) => n.to_string(),
        ErrorCode::Text(t) => t.clone(),
    }
}

fn describe_final(r: &FinalResult) -> String {
    match r {
        FinalResult::Ok => "OK".into(),
        FinalResult::Error => "ERROR".into(),
        FinalResult::CommandNotSupport => "COMMAND NOT SUPPORT".into(),
        FinalResult::CmeError(c) => format!("+CME ERROR: {}", code(c)),
        FinalResult::CmsError(c) => format!("+CMS ERROR: {}", code(c)),
        other => format!("{other:?}"),
    }
}

/// Probes one modem directly and pushes its checks: open and `AT`, then one read-only question
/// per aspect. A step that makes the later ones meaningless (no answer, SIM not ready) marks
/// them skipped, so every modem reports the same aspects.
async fn probe_modem(report: &mut Report, subject: &str, modem: &ModemConfig, timeout: Duration) {
    const LATER: [&str; 6] = ["sim", "registration", "signal", "smsc", "voice", "storage"];
    let skip_rest = |report: &mut Report, from: usize, why: &str| {
        for aspect in LATER.iter().skip(from) {
            report.push(Check::skip(subject, aspect, why.to_owned()));
        }
    };
    let mut p = match open_port(subject, modem, timeout).await {
        Ok(p) => p,
        Err((check, why)) => {
            report.push(check);
            skip_rest(report, 0, why);
            return;
        }
    };
    report.push(Check::ok(
        subject,
        "at",
        format!("answers AT on {}", modem.port.display()),
    ));

    // Wavecom sends `+CPIN: READY` without a final `OK` (docs/modems.md, "Quirks gsmgate handles").
    let cpin = if modem.profile == Profile::Wavecom {
        Command::cpin_query_no_ok()
    } else {
        Command::cpin_query()
    };
    let (sim, sim_ready) = sim_check(
        subject,
        modem.pin.is_some(),
        p.command(&cpin, timeout).await,
    );
    report.push(sim);
    if !sim_ready {
        skip_rest(report, 1, "the SIM is not ready");
        return;
    }
    let creg = p.command(&Command::creg_query(), timeout).await;
    report.push(probed_registration(subject, creg));
    let csq = p.command(&Command::csq(), timeout).await;
    report.push(probed_signal(subject, csq));
    let csca = p.command(&Command::csca_query(), timeout).await;
    report.push(probed_smsc(subject, csca));
    // Only Huawei has a voice capability query, `AT^CVOICE?` (docs/modems.md, "The families").
    report.push(if modem.profile == Profile::Huawei {
        let cvoice = p.command(&Command::cvoice_query(), timeout).await;
        probed_voice(subject, cvoice)
    } else {
        Check::skip(
            subject,
            "voice",
            format!("no capability query for profile {}", modem.profile),
        )
    });
    let cpms = p.command(&Command::cpms_query(), timeout).await;
    report.push(probed_storage(subject, cpms));
}

/// Opens the port and gets an `OK` to `AT`; on failure, the `at` check and why the rest is
/// skipped.
async fn open_port(
    subject: &str,
    modem: &ModemConfig,
    timeout: Duration,
) -> Result<Probe, (Check, &'static str)> {
    let mut p = match Probe::open(&modem.port, modem.baud) {
        Ok(p) => p,
        Err(e) => {
            let fix = match &e {
                ProbeError::Open { source, .. }
                    if source.kind == tokio_serial::ErrorKind::Io(ErrorKind::PermissionDenied) =>
                {
                    "run `sudo gsmgate doctor`; the service reaches the port through group dialout \
                     (the package's udev rule sets it)"
                }
                _ => {
                    "another program may hold the port exclusively (TIOCEXCL): close it, or replug \
                      the modem"
                }
            };
            let check = Check::fail(subject, "at", e.to_string(), fix);
            return Err((check, "the port could not be opened"));
        }
    };
    if let Err(e) = p.sync(timeout).await {
        let check = Check::fail(
            subject,
            "at",
            format!("no answer to AT: {e}"),
            "wrong port? NMEA and DIAG interfaces stay silent: `gsmgate modems scan` shows which \
             port answers; a hung modem needs a replug or a power cycle of its hub (weak power is \
             the usual cause)",
        );
        return Err((check, "the modem does not answer AT"));
    }
    Ok(p)
}

/// What a probe step learnt: the `prefix` line parsed (`None` when the modem left it out or it
/// does not parse) with the command's final result, or the `aspect` failure to report when the
/// modem stopped answering.
fn parsed<T>(
    subject: &str,
    aspect: &str,
    answer: Result<Answer, ProbeError>,
    prefix: &str,
    parse: impl Fn(&str) -> Result<T, AtError>,
) -> Result<(Option<T>, FinalResult), Check> {
    match answer {
        Ok(a) => Ok((a.line(prefix).and_then(|l| parse(l).ok()), a.result)),
        Err(e) => Err(Check::fail(
            subject,
            aspect,
            e.to_string(),
            "replug the modem",
        )),
    }
}

/// The failure of a step whose answer lacked its information line.
fn no_answer(subject: &str, aspect: &str, what: &str, result: &FinalResult, fix: &str) -> Check {
    let detail = format!("no {what} answer ({})", describe_final(result));
    Check::fail(subject, aspect, detail, fix)
}

/// `sim` from the `AT+CPIN?` answer, and whether the SIM is ready for the later questions (a
/// SIM waiting for its configured PIN is fine for doctor but cannot answer them yet).
fn sim_check(
    subject: &str,
    pin_configured: bool,
    answer: Result<Answer, ProbeError>,
) -> (Check, bool) {
    let not_ready = |detail: String, fix: &str| (Check::fail(subject, "sim", detail, fix), false);
    let a = match answer {
        Ok(a) => a,
        Err(e) => return not_ready(e.to_string(), "the modem stopped answering: replug it"),
    };
    match a.line("+CPIN:").map(response::parse_cpin) {
        Some(Ok(PinState::Ready)) => (Check::ok(subject, "sim", "ready (+CPIN: READY)"), true),
        Some(Ok(PinState::SimPin)) if pin_configured => (
            Check::ok(
                subject,
                "sim",
                "asks for its PIN; the configured `pin` will be sent by the daemon",
            ),
            false,
        ),
        Some(Ok(PinState::SimPin)) => not_ready(
            "the SIM asks for a PIN and none is configured".into(),
            "set `pin = \"NNNN\"` in this [[modem]] table, or remove the PIN with a phone",
        ),
        Some(Ok(PinState::SimPuk)) => not_ready(
            "the SIM is PUK-locked (too many wrong PINs)".into(),
            "unlock it with the PUK in a phone; gsmgate never tries PUKs",
        ),
        Some(Ok(other)) => not_ready(format!("not ready: {other:?}"), "check the SIM in a phone"),
        Some(Err(e)) => not_ready(e.to_string(), "check the SIM in a phone"),
        None => {
            // +CME ERROR: 10 is "SIM not inserted" (3GPP TS 27.007 §9.2.1).
            let fix = if a.result == FinalResult::CmeError(ErrorCode::Numeric(10)) {
                "insert a SIM (power the modem off first)"
            } else {
                "insert or reseat the SIM (power the modem off first); check it in a phone"
            };
            let detail = format!("no SIM status: {}", describe_final(&a.result));
            not_ready(detail, fix)
        }
    }
}

/// `registration` from the `AT+CREG?` answer.
fn probed_registration(subject: &str, answer: Result<Answer, ProbeError>) -> Check {
    match parsed(
        subject,
        "registration",
        answer,
        "+CREG:",
        response::parse_creg,
    ) {
        Err(check) => check,
        Ok((Some(r), _)) => registration_check(subject, reg_name(r.stat), Some(r.stat)),
        Ok((None, result)) => no_answer(
            subject,
            "registration",
            "+CREG",
            &result,
            "check the SIM and antenna; see `journalctl -u gsmgate` once the daemon runs",
        ),
    }
}

/// `signal` from the `AT+CSQ` answer.
fn probed_signal(subject: &str, answer: Result<Answer, ProbeError>) -> Check {
    match parsed(subject, "signal", answer, "+CSQ:", response::parse_csq) {
        Err(check) => check,
        Ok((Some(csq), _)) => signal_check(subject, csq.dbm().map(|d| (d, Some(csq.rssi)))),
        Ok((None, result)) => no_answer(subject, "signal", "+CSQ", &result, "replug the modem"),
    }
}

/// `smsc` from the `AT+CSCA?` answer.
fn probed_smsc(subject: &str, answer: Result<Answer, ProbeError>) -> Check {
    const FIX: &str = "ask your carrier for its SMS centre number and store it: \
                       `AT+CSCA=\"+NNNN\",145` (or put the SIM in a phone, which usually restores it)";
    match parsed(subject, "smsc", answer, "+CSCA:", response::parse_csca) {
        Err(check) => check,
        Ok((Some(c), _)) if !c.number.is_empty() => {
            Check::ok(subject, "smsc", format!("set: {}", c.number))
        }
        // 330 is "SMSC address unknown" (3GPP TS 27.005 §3.2.5).
        Ok((Some(_), _)) => Check::fail(
            subject,
            "smsc",
            "empty: every send would fail with +CMS ERROR: 330",
            FIX,
        ),
        Ok((None, result)) => no_answer(subject, "smsc", "+CSCA", &result, FIX),
    }
}

/// `voice` from the Huawei `AT^CVOICE?` answer.
fn probed_voice(subject: &str, answer: Result<Answer, ProbeError>) -> Check {
    match parsed(subject, "voice", answer, "^CVOICE:", response::parse_cvoice) {
        Err(check) => check,
        Ok((Some(v), _)) if v.enabled => Check::ok(
            subject,
            "voice",
            format!(
                "supported (^CVOICE: {} Hz, {} bit, {} ms frames)",
                v.sample_rate, v.bits, v.period_ms
            ),
        ),
        Ok((_, result)) => Check::fail(
            subject,
            "voice",
            format!(
                "this firmware has no voice (^CVOICE answered {})",
                describe_final(&result)
            ),
            "calls cannot be answered with this stick: flash a voice-enabled firmware, use \
             another modem for calls, or set [voice] enabled = false",
        ),
    }
}

/// `storage` from the `AT+CPMS?` answer: the last memory listed is where received texts go.
fn probed_storage(subject: &str, answer: Result<Answer, ProbeError>) -> Check {
    match parsed(subject, "storage", answer, "+CPMS:", response::parse_cpms) {
        Err(check) => check,
        Ok((Some(mems), _)) => match mems.last() {
            Some(m) => storage_check(subject, m.name.as_deref(), m.used, m.total),
            None => Check::warn(
                subject,
                "storage",
                "the modem reports no SMS storage",
                "this modem may not store received texts: try another profile or model",
            ),
        },
        Ok((None, result)) => no_answer(
            subject,
            "storage",
            "+CPMS",
            &result,
            "check the SIM; without storage no text can be received",
        ),
    }
}

fn storage_check(subject: &str, name: Option<&str>, used: u32, total: u32) -> Check {
    let mem = name.map(|n| format!("{n} ")).unwrap_or_default();
    let detail = format!("{mem}{used} of {total} used");
    if total == 0 || used >= total {
        Check::fail(
            subject,
            "storage",
            format!("{detail}: full, new texts cannot be received"),
            "start the daemon: it stores and then deletes every message on the SIM (the slots \
             free up as it drains them)",
        )
    } else if used * 5 >= total * 4 {
        Check::warn(
            subject,
            "storage",
            format!("{detail}: nearly full"),
            "start the daemon, which drains the SIM storage",
        )
    } else {
        Check::ok(
            subject,
            "storage",
            format!("{detail} ({} free)", total - used),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_tag_and_fix() {
        let c = Check::fail("modem a", "smsc", "empty", "set it");
        assert_eq!(c.line(), "[FAIL] modem a: smsc: empty; fix: set it");
        let c = Check::ok("config", "file", "x is valid");
        assert_eq!(c.line(), "[ ok ] config: file: x is valid");
    }

    #[test]
    fn storage_thresholds() {
        assert_eq!(storage_check("m", Some("SM"), 1, 30).status, Status::Ok);
        assert_eq!(storage_check("m", Some("SM"), 24, 30).status, Status::Warn);
        assert_eq!(storage_check("m", Some("SM"), 30, 30).status, Status::Fail);
        assert_eq!(storage_check("m", None, 0, 0).status, Status::Fail);
        assert!(storage_check("m", None, 30, 30).fix.is_some());
    }

    #[test]
    fn signal_thresholds() {
        assert_eq!(signal_check("m", None).status, Status::Fail);
        assert_eq!(
            signal_check("m", Some((-101, Some(6)))).status,
            Status::Warn
        );
        assert_eq!(signal_check("m", Some((-71, Some(21)))).status, Status::Ok);
    }

    #[test]
    fn registration_states_map_to_outcomes() {
        assert_eq!(registration_check("m", "home", Some(1)).status, Status::Ok);
        assert_eq!(registration_check("m", "roaming", None).status, Status::Ok);
        for bad in ["searching", "denied", "not searching", "unknown"] {
            let c = registration_check("m", bad, None);
            assert_eq!(c.status, Status::Fail, "{bad}");
            assert!(c.fix.is_some());
        }
    }

    fn answer(line: Option<&str>, result: FinalResult) -> Result<Answer, ProbeError> {
        Ok(Answer {
            lines: line.map(str::to_owned).into_iter().collect(),
            result,
        })
    }

    #[test]
    fn sim_states_decide_whether_probing_goes_on() {
        let ready = sim_check("m", false, answer(Some("+CPIN: READY"), FinalResult::Ok));
        assert_eq!((ready.0.status, ready.1), (Status::Ok, true));
        let pin = || answer(Some("+CPIN: SIM PIN"), FinalResult::Ok);
        let waits = sim_check("m", true, pin());
        assert_eq!((waits.0.status, waits.1), (Status::Ok, false));
        let refused = sim_check("m", false, pin());
        assert_eq!((refused.0.status, refused.1), (Status::Fail, false));
        let absent = sim_check(
            "m",
            false,
            answer(None, FinalResult::CmeError(ErrorCode::Numeric(10))),
        );
        assert_eq!(absent.0.detail, "no SIM status: +CME ERROR: 10");
        assert_eq!(
            absent.0.fix.as_deref(),
            Some("insert a SIM (power the modem off first)")
        );
        let gone = Err(ProbeError::Gone {
            path: "/dev/x".into(),
            detail: "EIO".into(),
        });
        let gone = sim_check("m", false, gone);
        assert_eq!(
            gone.0.fix.as_deref(),
            Some("the modem stopped answering: replug it")
        );
    }

    #[test]
    fn a_step_without_an_answer_fails_with_replug() {
        let gone = || {
            Err(ProbeError::Gone {
                path: "/dev/x".into(),
                detail: "EIO".into(),
            })
        };
        for (aspect, c) in [
            ("registration", probed_registration("m", gone())),
            ("signal", probed_signal("m", gone())),
            ("smsc", probed_smsc("m", gone())),
            ("voice", probed_voice("m", gone())),
            ("storage", probed_storage("m", gone())),
        ] {
            assert_eq!(c.aspect, aspect);
            assert_eq!(c.status, Status::Fail);
            assert_eq!(c.fix.as_deref(), Some("replug the modem"));
        }
        let empty = probed_smsc("m", answer(Some("+CSCA: \"\",129"), FinalResult::Ok));
        assert_eq!(
            empty.detail,
            "empty: every send would fail with +CMS ERROR: 330"
        );
    }

    #[test]
    fn report_passes_only_without_failures() {
        let mut r = Report::default();
        r.push(Check::ok("a", "b", "c"));
        r.push(Check::warn("a", "d", "e", "f"));
        r.push(Check::skip("a", "g", "h"));
        assert!(r.passed());
        r.push(Check::fail("a", "i", "j", "k"));
        assert!(!r.passed());
        assert_eq!(r.find("a", "i").map(|c| c.status), Some(Status::Fail));
    }
}
