//! `gsmgate modems [scan]`: bare `gsmgate modems` lists the running daemon's modems (see
//! [`super::client`]); `gsmgate modems scan` finds modems that are plugged in but not configured.
//!
//! Scan lists the USB serial ttys (`/sys/class/tty/*/device`, walked up to the USB interface for
//! `bInterfaceNumber` and to the USB device for `idVendor:idProduct`), with their stable names
//! from `/dev/serial/by-path`, `/dev/serial/by-id` and the package's `/dev/gsmgate/by-path`, probes
//! each free one with `AT` (ports held by another process are skipped, never disturbed), asks the
//! ones that answer who they are (`AT+CGMI`, `AT+CGMM`, `AT+CGSN`), and prints a ready `[[modem]]`
//! block per modem. `--dir` and `--port` add paths to probe: that is how a modem on a Pi's GPIO
//! UART (`/dev/serial0`) is found, and how the simulator's pseudo-terminals are scanned in tests
//! (a pty has no USB parent and is shown as "pty (no USB device)").
//!
//! One modem exposes several ttys and more than one may answer AT (Quectel if02 and if03). Ports are
//! grouped into one modem by USB device, or by IMEI when there is no USB parent, and the AT port is
//! chosen from the known interface layouts in docs/modems.md, "The families" (for example SIMCom
//! 1e0e:9001 AT on if02, audio on if04), else the lowest interface that answered. The profile is guessed from
//! the USB vendor (12d1 huawei, 1e0e simcom, 2c7c quectel), else from the `AT+CGMI` answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::client::Connection;
use super::output::{plural, print_json};
use super::probe::{self, HolderKind, Probe};
use super::runtime::run_current_thread;
use crate::at::Command;
use crate::at::response;
use crate::config::Profile;

/// `gsmgate modems [scan]`.
#[derive(Debug, Args)]
pub struct ModemsArgs {
    #[command(subcommand)]
    pub command: Option<ModemsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ModemsCommand {
    /// Find serial ports that answer AT (USB ttys, plus --dir/--port paths) and print a ready
    /// [[modem]] block for each modem found.
    Scan(ScanArgs),
}

/// Arguments of `gsmgate modems scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Also probe every port in this directory (e.g. the simulator's DIR); repeatable.
    #[arg(long, value_name = "DIR")]
    pub dir: Vec<PathBuf>,
    /// Also probe this port (e.g. /dev/serial0 for a modem HAT on the GPIO UART); repeatable.
    #[arg(long, value_name = "PATH")]
    pub port: Vec<PathBuf>,
    /// Do not list /sys/class/tty; probe only the --dir and --port paths.
    #[arg(long)]
    pub no_usb: bool,
    /// Serial rate for the probes.
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// Seconds to wait for each answer (silent ports cost about twice this).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub timeout: f64,
}

/// What to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// List `/sys/class/tty` (under this root, normally `/`).
    pub usb_root: Option<PathBuf>,
    pub dirs: Vec<PathBuf>,
    pub ports: Vec<PathBuf>,
    pub baud: u32,
    pub timeout: Duration,
}

/// The USB side of a tty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbInfo {
    /// `idVendor`, four lowercase hex digits.
    pub vendor: String,
    /// `idProduct`.
    pub product: String,
    /// `bInterfaceNumber` of the interface the tty belongs to.
    pub interface: Option<u8>,
    pub manufacturer: Option<String>,
    pub product_name: Option<String>,
    pub serial: Option<String>,
    /// The sysfs directory of the USB device (groups the ttys of one modem).
    pub device: PathBuf,
}

/// How a probe went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ProbeOutcome {
    Answers {
        manufacturer: Option<String>,
        model: Option<String>,
        imei: Option<String>,
    },
    /// No `OK` to `AT`: NMEA, DIAG or audio interface, or a hung modem.
    Silent,
    /// Held by another process; not probed.
    Busy { by: String },
    /// Could not be opened or went away.
    Failed { error: String },
}

/// One serial port found.
#[derive(Debug, Clone, Serialize)]
pub struct PortEntry {
    /// The path as given (`--dir`/`--port`) or the device node (`/dev/ttyUSB2`).
    pub path: PathBuf,
    /// The device node the path resolves to.
    pub device: PathBuf,
    pub usb: Option<UsbInfo>,
    /// Stable names pointing at the device: /dev/gsmgate/by-path, /dev/serial/by-path, by-id.
    pub links: Vec<PathBuf>,
    pub probe: ProbeOutcome,
}

impl PortEntry {
    /// The name to put in the config: the most stable one known.
    pub fn config_path(&self) -> &Path {
        let pick = |dir: &str| self.links.iter().find(|l| l.starts_with(dir));
        pick("/dev/gsmgate/by-path")
            .or_else(|| pick("/dev/serial/by-path"))
            .or_else(|| pick("/dev/serial/by-id"))
            .map(PathBuf::as_path)
            .unwrap_or(&self.path)
    }

    /// `12d1:1001 if02`, or `pty (no USB device)`.
    pub fn hardware(&self) -> String {
        match &self.usb {
            Some(u) => {
                let mut s = format!("{}:{}", u.vendor, u.product);
                if let Some(i) = u.interface {
                    s.push_str(&format!(" if{i:02}"));
                }
                for t in [&u.manufacturer, &u.product_name].into_iter().flatten() {
                    s.push(' ');
                    s.push_str(t);
                }
                s
            }
            None if is_pty(&self.device) => "pty (no USB device)".into(),
            None => "no USB device".into(),
        }
    }
}

/// One modem found, as a `[[modem]]` suggestion.
#[derive(Debug, Clone, Serialize)]
pub struct FoundModem {
    pub name: String,
    pub port: PathBuf,
    pub audio_port: Option<PathBuf>,
    pub profile: Profile,
    /// Index into [`ScanReport::ports`] of the chosen AT port.
    pub entry: usize,
}

impl FoundModem {
    /// The TOML block, with a comment line saying what the modem is.
    pub fn toml(&self, report: &ScanReport) -> String {
        let mut s = String::new();
        if let Some(e) = report.ports.get(self.entry) {
            let mut what = vec![e.hardware()];
            if let ProbeOutcome::Answers {
                manufacturer,
                model,
                imei,
            } = &e.probe
            {
                let name: Vec<&str> = [manufacturer, model]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                if !name.is_empty() {
                    what.push(name.join(" "));
                }
                if let Some(i) = imei {
                    what.push(format!("IMEI {i}"));
                }
            }
            s.push_str(&format!("# {}\n", what.join(", ")));
        }
        s.push_str("[[modem]]\n");
        s.push_str(&format!("name = {}\n", toml_str(&self.name)));
        s.push_str(&format!(
            "port = {}\n",
            toml_str(&self.port.to_string_lossy())
        ));
        if let Some(a) = &self.audio_port {
            s.push_str(&format!(
                "audio_port = {}\n",
                toml_str(&a.to_string_lossy())
            ));
        }
        s.push_str(&format!("profile = {}\n", toml_str(self.profile.as_str())));
        s.push_str("# pin = \"1234\"   # only if the SIM asks for one\n");
        s
    }
}

fn toml_str(s: &str) -> String {
    // A TOML basic string: serde_json's escaping of quotes, backslashes and controls is the same.
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
}

/// The result of a scan.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub ports: Vec<PortEntry>,
    pub modems: Vec<FoundModem>,
}

fn is_pty(dev: &Path) -> bool {
    dev.starts_with("/dev/pts") || dev == Path::new("/dev/ptmx")
}

/// Run `gsmgate modems scan`.
pub fn run(args: ScanArgs, conn: Connection) -> ExitCode {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        eprintln!("error: --timeout must be a positive number of seconds");
        return ExitCode::from(super::EXIT_USAGE);
    }
    let opts = ScanOptions {
        usb_root: (!args.no_usb).then(|| PathBuf::from("/")),
        dirs: args.dir,
        ports: args.port,
        baud: args.baud,
        timeout: Duration::from_secs_f64(args.timeout.min(60.0)),
    };
    let report = match run_current_thread(scan(&opts)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_FAILURE);
        }
        Err(code) => return code,
    };
    if conn.json {
        if let Err(e) = print_json(&report) {
            eprintln!("error: {e:#}");
        }
    } else {
        print!("{}", render(&report));
    }
    if report.modems.is_empty() {
        ExitCode::from(super::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// The human-readable listing plus the TOML blocks.
pub fn render(report: &ScanReport) -> String {
    let mut s = String::new();
    if report.ports.is_empty() {
        s.push_str(
            "No USB serial ports found. Is the modem plugged in (through a powered hub)? A Huawei \
             stick that shows up as a CD-ROM needs usb_modeswitch; a HiLink stick has no serial \
             port at all (see docs/raspberry-pi.md).\n",
        );
        return s;
    }
    s.push_str(&format!(
        "{} serial port{}:\n",
        report.ports.len(),
        plural(report.ports.len() as u64)
    ));
    for e in &report.ports {
        let shown = if e.path == e.device {
            e.path.display().to_string()
        } else {
            format!("{} -> {}", e.path.display(), e.device.display())
        };
        let outcome = match &e.probe {
            ProbeOutcome::Answers { .. } => "answers AT".to_owned(),
            ProbeOutcome::Silent => "silent (no answer to AT)".to_owned(),
            ProbeOutcome::Busy { by } => format!("skipped: held by {by}"),
            ProbeOutcome::Failed { error } => format!("error: {error}"),
        };
        s.push_str(&format!("  {shown}  [{}]  {outcome}\n", e.hardware()));
        for l in &e.links {
            s.push_str(&format!("      {}\n", l.display()));
        }
    }
    s.push('\n');
    if report.modems.is_empty() {
        s.push_str(
            "No modem answered AT. Ports held by another process were skipped (ModemManager? \
             `sudo systemctl disable --now ModemManager`); a stopped gsmgate daemon frees its own.\n",
        );
        return s;
    }
    s.push_str(&format!(
        "# {} modem{} found. Paste into /etc/gsmgate/gsmgate.toml (replacing the example \
         [[modem]]),\n# then `sudo systemctl restart gsmgate` and `sudo gsmgate doctor`.\n",
        report.modems.len(),
        plural(report.modems.len() as u64)
    ));
    for m in &report.modems {
        s.push('\n');
        s.push_str(&m.toml(report));
    }
    s
}

/// Errors of the scan itself (individual ports never fail the scan).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Lists, probes and groups.
pub async fn scan(opts: &ScanOptions) -> Result<ScanReport, ScanError> {
    // (path as given, device node, usb)
    let mut found: Vec<(PathBuf, PathBuf, Option<UsbInfo>)> = Vec::new();
    if let Some(root) = &opts.usb_root {
        for (dev, usb) in usb_ttys(root) {
            found.push((dev.clone(), dev, Some(usb)));
        }
    }
    let mut extra = opts.ports.clone();
    for dir in &opts.dirs {
        let entries = std::fs::read_dir(dir).map_err(|source| ScanError::Dir {
            path: dir.clone(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                // The simulator's audio ports carry PCM, not AT; probing would write into a call.
                p.extension().is_none_or(|x| x != "audio") && is_char_device(p)
            })
            .collect();
        paths.sort();
        extra.extend(paths);
    }
    for p in extra {
        let Ok(dev) = std::fs::canonicalize(&p) else {
            found.push((p.clone(), p, None));
            continue;
        };
        if found.iter().any(|(_, d, _)| *d == dev) {
            continue;
        }
        let usb = dev
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| usb_info(&Path::new("/sys/class/tty").join(n).join("device")));
        found.push((p, dev, usb));
    }

    let links = stable_links();
    let probes = found
        .iter()
        .map(|(path, dev, _)| probe_port(path, dev, opts));
    let outcomes = futures_util::future::join_all(probes).await;
    let ports: Vec<PortEntry> = found
        .into_iter()
        .zip(outcomes)
        .map(|((path, device, usb), probe)| PortEntry {
            links: links.get(&device).cloned().unwrap_or_default(),
            path,
            device,
            usb,
            probe,
        })
        .collect();
    let modems = group(&ports);
    Ok(ScanReport { ports, modems })
}

fn is_char_device(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

async fn probe_port(path: &Path, dev: &Path, opts: &ScanOptions) -> ProbeOutcome {
    let held = probe::holders(dev);
    if let Some(h) = held
        .holders
        .iter()
        .find(|h| h.kind() != HolderKind::GsmgateSim)
    {
        let by = match h.kind() {
            HolderKind::GsmgateDaemon => format!("the gsmgate daemon, pid {}", h.pid),
            _ => h.describe(),
        };
        return ProbeOutcome::Busy { by };
    }
    let mut p = match Probe::open(path, opts.baud) {
        Ok(p) => p,
        Err(e) => {
            return ProbeOutcome::Failed {
                error: e.to_string(),
            };
        }
    };
    if p.sync(opts.timeout).await.is_err() {
        return ProbeOutcome::Silent;
    }
    let mut ask = async |cmd: Command| -> Option<Vec<String>> {
        let a = p.command(&cmd, opts.timeout).await.ok()?;
        a.result.is_ok().then_some(a.lines)
    };
    let first = |lines: Option<Vec<String>>| {
        lines.and_then(|l| {
            l.into_iter()
                .map(|x| x.trim().to_owned())
                .find(|x| !x.is_empty())
        })
    };
    let manufacturer = first(ask(Command::cgmi()).await);
    let model = first(ask(Command::cgmm()).await);
    let imei = ask(Command::cgsn())
        .await
        .and_then(|l| response::parse_imei(&l).ok());
    ProbeOutcome::Answers {
        manufacturer,
        model,
        imei,
    }
}

/// USB serial ttys under `root` (normally `/`): `sys/class/tty/*` whose `device` leads to a USB
/// interface, as (`/dev/NAME`, USB facts).
pub fn usb_ttys(root: &Path) -> Vec<(PathBuf, UsbInfo)> {
    let class = root.join("sys/class/tty");
    let Ok(entries) = std::fs::read_dir(&class) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, UsbInfo)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let usb = usb_info(&e.path().join("device"))?;
            Some((PathBuf::from("/dev").join(name), usb))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Walks up from a tty's `device` link: the first directory with `bInterfaceNumber` is its USB
/// interface, the first with `idVendor` its USB device. `None` when there is no USB device
/// (platform UARTs, virtual consoles, ptys).
pub fn usb_info(device_link: &Path) -> Option<UsbInfo> {
    let start = std::fs::canonicalize(device_link).ok()?;
    let read = |dir: &Path, name: &str| {
        std::fs::read_to_string(dir.join(name))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let mut interface = None;
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        if interface.is_none() {
            interface = read(d, "bInterfaceNumber").and_then(|s| u8::from_str_radix(&s, 16).ok());
        }
        if let Some(vendor) = read(d, "idVendor") {
            return Some(UsbInfo {
                vendor: vendor.to_ascii_lowercase(),
                product: read(d, "idProduct")?.to_ascii_lowercase(),
                interface,
                manufacturer: read(d, "manufacturer"),
                product_name: read(d, "product"),
                serial: read(d, "serial"),
                device: d.to_owned(),
            });
        }
        if d == Path::new("/sys/devices") || d.parent().is_none() {
            break;
        }
        dir = d.parent();
    }
    None
}

/// Stable names by target node: /dev/gsmgate/by-path, /dev/serial/by-path, /dev/serial/by-id.
fn stable_links() -> BTreeMap<PathBuf, Vec<PathBuf>> {
    let mut map: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for dir in [
        "/dev/gsmgate/by-path",
        "/dev/serial/by-path",
        "/dev/serial/by-id",
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut links: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        links.sort();
        for l in links {
            if let Ok(target) = std::fs::canonicalize(&l) {
                map.entry(target).or_default().push(l);
            }
        }
    }
    map
}

/// `(AT interface, audio interface)` of known USB compositions, as in docs/modems.md, "The
/// families": the Huawei layouts are chan_dongle's device discovery table, the Quectel and SIMCom
/// ones ModemManager's port-type udev rules; the EC25's audio port is its NMEA port, which
/// `AT+QPCMV=1,0` switches to PCM.
pub fn known_layout(vendor: &str, product: &str) -> Option<(u8, Option<u8>)> {
    Some(match (vendor, product) {
        ("12d1", "1001") => (2, Some(1)),
        ("12d1", "140c") => (3, Some(2)),
        ("12d1", "1436") => (4, Some(3)),
        ("12d1", "1506") => (3, Some(2)),
        ("12d1", "14ac") => (4, Some(3)),
        ("1e0e", "9001") => (2, Some(4)),
        ("1e0e", "9011") => (4, None),
        ("2c7c", "0125") => (2, Some(1)),
        _ => return None,
    })
}

/// The profile for a modem: by USB vendor, else by its `AT+CGMI`/`AT+CGMM` answers.
pub fn guess_profile(
    usb: Option<&UsbInfo>,
    manufacturer: Option<&str>,
    model: Option<&str>,
) -> Profile {
    match usb.map(|u| u.vendor.as_str()) {
        Some("12d1") => return Profile::Huawei,
        Some("1e0e") => return Profile::Simcom,
        Some("2c7c") => return Profile::Quectel,
        _ => {}
    }
    let m = manufacturer.unwrap_or_default().to_ascii_lowercase();
    let model = model.unwrap_or_default().to_ascii_lowercase();
    if m.contains("huawei") {
        Profile::Huawei
    } else if m.contains("simcom") {
        if model.contains("sim800") {
            Profile::Sim800
        } else {
            Profile::Simcom
        }
    } else if m.contains("quectel") {
        Profile::Quectel
    } else if m.contains("wavecom") {
        Profile::Wavecom
    } else if m.contains("zte") {
        Profile::Zte
    } else {
        Profile::Generic
    }
}

/// Groups answering ports into modems and picks each modem's AT and audio port.
fn group(ports: &[PortEntry]) -> Vec<FoundModem> {
    // Group key, in order of first appearance.
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, e) in ports.iter().enumerate() {
        let ProbeOutcome::Answers { imei, .. } = &e.probe else {
            continue;
        };
        let key = match (&e.usb, imei) {
            (Some(u), _) => format!("usb:{}", u.device.display()),
            (None, Some(imei)) => format!("imei:{imei}"),
            (None, None) => format!("dev:{}", e.device.display()),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    let mut counters: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (_, members) in groups {
        let Some(&first) = members.first() else {
            continue;
        };
        let Some(e0) = ports.get(first) else {
            continue;
        };
        let layout = e0
            .usb
            .as_ref()
            .and_then(|u| known_layout(&u.vendor, &u.product));
        let iface = |i: &usize| ports.get(*i).and_then(|e| e.usb.as_ref()?.interface);
        let chosen = layout
            .and_then(|(at, _)| members.iter().find(|i| iface(i) == Some(at)).copied())
            .or_else(|| {
                members
                    .iter()
                    .min_by_key(|i| iface(i).unwrap_or(u8::MAX))
                    .copied()
            })
            .unwrap_or(first);
        let Some(e) = ports.get(chosen) else {
            continue;
        };
        let (manufacturer, model) = match &e.probe {
            ProbeOutcome::Answers {
                manufacturer,
                model,
                ..
            } => (manufacturer.as_deref(), model.as_deref()),
            _ => (None, None),
        };
        let profile = guess_profile(e.usb.as_ref(), manufacturer, model);
        let audio_port = match (&e.usb, layout) {
            (Some(u), Some((_, Some(audio_if)))) => ports
                .iter()
                .find(|p| {
                    p.usb
                        .as_ref()
                        .is_some_and(|pu| pu.device == u.device && pu.interface == Some(audio_if))
                })
                .map(|p| p.config_path().to_owned()),
            // The simulator's naming: the audio pty of DIR/modemN is DIR/modemN.audio.
            (None, _) => {
                let mut name = e.path.as_os_str().to_owned();
                name.push(".audio");
                let candidate = PathBuf::from(name);
                candidate.exists().then_some(candidate)
            }
            _ => None,
        };
        let base = match profile {
            Profile::Generic => "modem",
            other => other.as_str(),
        };
        let n = counters.entry(base).or_insert(0);
        // `sim800` + 0 would read as "sim8000".
        let sep = if base.ends_with(|c: char| c.is_ascii_digit()) {
            "-"
        } else {
            ""
        };
        let name = format!("{base}{sep}{n}");
        *n += 1;
        out.push(FoundModem {
            name,
            port: e.config_path().to_owned(),
            audio_port,
            profile,
            entry: chosen,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake sysfs: root/sys/devices/.../1-1.2 (USB device) / 1-1.2:1.2 (interface) / ttyUSB2,
    /// and root/sys/class/tty/ttyUSB2/device -> that port directory.
    fn fake_sysfs(root: &Path, vendor: &str, product: &str, iface: u8, tty: &str) {
        let dev = root.join(format!("sys/devices/platform/usb1/1-1.{iface}"));
        let intf = dev.join(format!("1-1.{iface}:1.{iface}"));
        let port = intf.join(tty);
        std::fs::create_dir_all(&port).unwrap();
        std::fs::write(dev.join("idVendor"), format!("{vendor}\n")).unwrap();
        std::fs::write(dev.join("idProduct"), format!("{product}\n")).unwrap();
        std::fs::write(dev.join("manufacturer"), "HUAWEI Technology\n").unwrap();
        std::fs::write(intf.join("bInterfaceNumber"), format!("{iface:02x}\n")).unwrap();
        let class = root.join("sys/class/tty").join(tty);
        std::fs::create_dir_all(&class).unwrap();
        std::os::unix::fs::symlink(&port, class.join("device")).unwrap();
    }

    #[test]
    fn sysfs_walk_finds_vendor_product_and_interface() {
        let root = tempfile::tempdir().unwrap();
        fake_sysfs(root.path(), "12D1", "1001", 2, "ttyUSB2");
        // A console without a USB parent is not listed.
        std::fs::create_dir_all(root.path().join("sys/class/tty/tty0")).unwrap();
        let found = usb_ttys(root.path());
        assert_eq!(found.len(), 1);
        let (dev, usb) = &found[0];
        assert_eq!(dev, Path::new("/dev/ttyUSB2"));
        assert_eq!(usb.vendor, "12d1");
        assert_eq!(usb.product, "1001");
        assert_eq!(usb.interface, Some(2));
        assert_eq!(usb.manufacturer.as_deref(), Some("HUAWEI Technology"));
    }

    #[test]
    fn profiles_from_vendor_then_manufacturer() {
        let usb = |v: &str| UsbInfo {
            vendor: v.into(),
            product: "0000".into(),
            interface: None,
            manufacturer: None,
            product_name: None,
            serial: None,
            device: PathBuf::from("/x"),
        };
        assert_eq!(
            guess_profile(Some(&usb("12d1")), None, None),
            Profile::Huawei
        );
        assert_eq!(
            guess_profile(Some(&usb("1e0e")), None, None),
            Profile::Simcom
        );
        assert_eq!(
            guess_profile(Some(&usb("2c7c")), None, None),
            Profile::Quectel
        );
        assert_eq!(guess_profile(None, Some("huawei"), None), Profile::Huawei);
        assert_eq!(
            guess_profile(None, Some("SIMCOM_Ltd"), Some("SIM800 R14.18")),
            Profile::Sim800
        );
        assert_eq!(
            guess_profile(None, Some("SIMCOM_Ltd"), Some("SIMCOM_SIM7600G-H")),
            Profile::Simcom
        );
        assert_eq!(guess_profile(None, Some("gsmgate"), None), Profile::Generic);
        assert_eq!(
            guess_profile(Some(&usb("0403")), None, None),
            Profile::Generic
        );
    }

    fn entry(iface: u8, answers: bool) -> PortEntry {
        PortEntry {
            path: PathBuf::from(format!("/dev/ttyUSB{iface}")),
            device: PathBuf::from(format!("/dev/ttyUSB{iface}")),
            usb: Some(UsbInfo {
                vendor: "1e0e".into(),
                product: "9001".into(),
                interface: Some(iface),
                manufacturer: None,
                product_name: None,
                serial: None,
                device: PathBuf::from("/sys/devices/usb1/1-1.2"),
            }),
            links: vec![PathBuf::from(format!(
                "/dev/gsmgate/by-path/platform-usb-0:1.2:1.0-if{iface:02}"
            ))],
            probe: if answers {
                ProbeOutcome::Answers {
                    manufacturer: Some("SIMCOM_Ltd".into()),
                    model: Some("SIMCOM_SIM7600G-H".into()),
                    imei: Some("490154203237518".into()),
                }
            } else {
                ProbeOutcome::Silent
            },
        }
    }

    #[test]
    fn one_modem_per_usb_device_with_the_known_at_and_audio_interfaces() {
        let ports = vec![
            entry(0, false),
            entry(1, false),
            entry(2, true),
            entry(3, true),
            entry(4, false),
        ];
        let modems = group(&ports);
        assert_eq!(modems.len(), 1);
        let m = &modems[0];
        assert_eq!(m.name, "simcom0");
        assert_eq!(m.profile, Profile::Simcom);
        assert_eq!(
            m.port,
            Path::new("/dev/gsmgate/by-path/platform-usb-0:1.2:1.0-if02")
        );
        assert_eq!(
            m.audio_port.as_deref(),
            Some(Path::new(
                "/dev/gsmgate/by-path/platform-usb-0:1.2:1.0-if04"
            ))
        );
        let report = ScanReport {
            ports,
            modems: modems.clone(),
        };
        let toml = m.toml(&report);
        assert!(toml.contains("[[modem]]\nname = \"simcom0\"\n"), "{toml}");
        assert!(toml.contains("IMEI 490154203237518"), "{toml}");
    }

    #[test]
    fn toml_blocks_parse_as_config() {
        let ports = vec![entry(2, true)];
        let modems = group(&ports);
        let report = ScanReport { ports, modems };
        let mut text = String::from("[daemon]\nstate_dir = \"/tmp/x\"\n");
        for m in &report.modems {
            text.push_str(&m.toml(&report));
        }
        let config = crate::config::Config::from_str(&text, "scan").unwrap();
        assert_eq!(config.modem_names(), vec!["simcom0"]);
    }
}
