//! `gsmgate modems scan` against the simulator's pseudo-terminals: in-process through
//! [`scan::scan`] (profiles from `AT+CGMI`, audio ports from the simulator's naming, ptys shown as
//! "pty (no USB device)", a stalled modem listed as silent and not suggested), and once through
//! the real binary against `gsmgate sim`, whose `[[modem]]` output must validate as a config.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gsmgate::cli::scan::{self, ProbeOutcome, ScanOptions};
use gsmgate::config::{Config, Profile as ConfigProfile};
use gsmgate::sim::{Fault, Profile, SimConfig, Simulator};

fn opts(dir: &Path) -> ScanOptions {
    ScanOptions {
        usb_root: None,
        dirs: vec![dir.to_owned()],
        ports: vec![],
        baud: 115_200,
        timeout: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn scan_finds_each_simulated_modem_with_its_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sim");
    let mut cfg = SimConfig::new(&dir, 4, Profile::Generic);
    cfg.control_socket = false;
    cfg.modems[1].profile = Profile::Huawei;
    cfg.modems[2].profile = Profile::Quectel;
    cfg.modems[3].profile = Profile::Sim800;
    let sim = Simulator::start(cfg).await.unwrap();
    let paths = sim.paths();

    let report = scan::scan(&opts(&dir)).await.unwrap();
    let text = scan::render(&report);
    // Four AT ports; audio ports are not probed (they carry PCM).
    assert_eq!(report.ports.len(), 4, "{text}");
    for e in &report.ports {
        assert_eq!(e.hardware(), "pty (no USB device)", "{text}");
        assert!(matches!(e.probe, ProbeOutcome::Answers { .. }), "{text}");
    }
    let profiles: Vec<_> = report.modems.iter().map(|m| m.profile).collect();
    assert_eq!(
        profiles,
        vec![
            ConfigProfile::Generic,
            ConfigProfile::Huawei,
            ConfigProfile::Quectel,
            ConfigProfile::Sim800
        ],
        "{text}"
    );
    let names: Vec<_> = report.modems.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["modem0", "huawei0", "quectel0", "sim800-0"]);
    for (m, p) in report.modems.iter().zip(&paths.modems) {
        assert_eq!(m.port, p.at, "{text}");
        assert_eq!(m.audio_port, p.audio, "{text}");
    }
    // The IMEI the simulator reports is shown with the block.
    assert!(
        text.contains(&format!("IMEI {}", paths.modems[1].imei)),
        "{text}"
    );

    // The printed blocks are a valid configuration.
    let mut toml = String::from("[daemon]\nstate_dir = \"state\"\n");
    for m in &report.modems {
        toml.push('\n');
        toml.push_str(&m.toml(&report));
    }
    let config = Config::from_str(&toml, "scan output").unwrap();
    assert_eq!(config.modems.len(), 4);
    assert_eq!(
        config.modems[1].audio_port.as_ref(),
        paths.modems[1].audio.as_ref()
    );

    // A stalled modem is listed as silent and no block is suggested for it.
    sim.fault(2, &Fault::Stall { on: true }).unwrap();
    let report = scan::scan(&opts(&dir)).await.unwrap();
    let text = scan::render(&report);
    let stalled = report
        .ports
        .iter()
        .find(|e| e.path == paths.modems[2].at)
        .unwrap();
    assert_eq!(stalled.probe, ProbeOutcome::Silent, "{text}");
    assert!(text.contains("silent (no answer to AT)"), "{text}");
    assert_eq!(report.modems.len(), 3, "{text}");
    assert!(
        report
            .modems
            .iter()
            .all(|m| m.profile != ConfigProfile::Quectel)
    );
    sim.shutdown().await;
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_binary_scans_a_separate_gsmgate_sim_and_bare_modems_still_works() {
    let bin = env!("CARGO_BIN_EXE_gsmgate");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sim");
    let _sim = Killed(
        Command::new(bin)
            .args(["sim", "--modems", "2", "--profile", "simcom", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(dir.join("modem1").exists() && dir.join("control.sock").exists()) {
        assert!(Instant::now() < deadline, "gsmgate sim did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new(bin)
        .args(["modems", "scan", "--no-usb", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The simulator process holds its own ptys; that is not "busy".
    assert!(!stdout.contains("held by"), "{stdout}");
    assert!(stdout.contains("name = \"simcom0\""), "{stdout}");
    assert!(stdout.contains("name = \"simcom1\""), "{stdout}");
    let toml = stdout
        .find("\n[[modem]]")
        .map(|i| format!("[daemon]\nstate_dir = \"s\"\n{}", &stdout[i..]))
        .unwrap();
    let config = Config::from_str(&toml, "scan").unwrap();
    assert_eq!(config.modem_names(), vec!["simcom0", "simcom1"]);

    // Bare `gsmgate modems` is still the admin verb: with no daemon it says so and exits 1.
    let out = Command::new(bin)
        .args(["modems", "--socket"])
        .arg(tmp.path().join("none.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("gsmgate daemon is not running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
