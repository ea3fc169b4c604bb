//! `gsmgate doctor` against the simulator: the simulator runs in-process on temp-dir ptys, a config
//! points at them, and [`diagnose`] runs the real checks. With no daemon, every modem check is
//! green and the admin socket line is the exact "not running" failure; with an admin server
//! answering `modems` (a small stand-in handler: the daemon itself is not part of this test), the
//! report passes and the modem facts come from it; faults injected through the simulator handle
//! (deregistration, full storage, a stall, no signal, empty SMSC, a SIM PIN) turn the matching
//! lines red, each with a fix.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gsmgate::admin::protocol::{ErrorBody, ErrorCode, Event, ModemInfo, Reply, Request};
use gsmgate::admin::{AccessPolicy, Handler, Peer, bind, serve};
use gsmgate::cli::doctor::{DoctorOptions, Report, Status, diagnose};
use gsmgate::sim::{Fault, ModemSpec, Profile, SimConfig, SimHandle, Simulator};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_millis(700);

struct Setup {
    _dir: tempfile::TempDir,
    config: PathBuf,
    socket: PathBuf,
    sim: SimHandle,
}

/// Modems `a` (generic) and `b` (huawei) on simulated ports, plus the given extra specs as `c`, `d`…
async fn setup(extra: Vec<(ModemSpec, &str)>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(dir.path().join("sim"), 2, Profile::Generic);
    cfg.control_socket = false;
    cfg.modems[1].profile = Profile::Huawei;
    let mut names = vec![("a", "generic", ""), ("b", "huawei", "")];
    let extra_names = ["c", "d", "e"];
    for (i, (spec, toml_extra)) in extra.into_iter().enumerate() {
        let profile = spec.profile.to_string();
        cfg.modems.push(spec);
        names.push((
            extra_names[i],
            Box::leak(profile.into_boxed_str()),
            toml_extra,
        ));
    }
    let sim = Simulator::start(cfg).await.unwrap();
    let paths = sim.paths();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let socket = state.join("admin.sock");
    let mut text = format!(
        "[daemon]\nstate_dir = {:?}\nadmin_socket = {:?}\n",
        state.display().to_string(),
        socket.display().to_string()
    );
    for (i, (name, profile, extra)) in names.iter().enumerate() {
        text.push_str(&format!(
            "\n[[modem]]\nname = \"{name}\"\nport = {:?}\nprofile = \"{profile}\"\n{extra}\n",
            paths.modems[i].at.display().to_string()
        ));
    }
    let config = dir.path().join("gsmgate.toml");
    std::fs::write(&config, text).unwrap();
    Setup {
        _dir: dir,
        config,
        socket,
        sim,
    }
}

async fn doctor(s: &Setup) -> Report {
    diagnose(&DoctorOptions {
        config: s.config.clone(),
        socket: None,
        probe_timeout: TIMEOUT,
    })
    .await
}

fn status(r: &Report, subject: &str, aspect: &str) -> Status {
    r.find(subject, aspect)
        .unwrap_or_else(|| panic!("no {subject}/{aspect} in:\n{}", r.lines().join("\n")))
        .status
}

fn line(r: &Report, subject: &str, aspect: &str) -> String {
    r.find(subject, aspect)
        .unwrap_or_else(|| panic!("no {subject}/{aspect} in:\n{}", r.lines().join("\n")))
        .line()
}

/// Polls the doctor until `cond` holds (faults take effect within a few ms, but are asynchronous).
async fn doctor_until(s: &Setup, what: &str, cond: impl Fn(&Report) -> bool) -> Report {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = doctor(s).await;
        if cond(&r) {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened; last report:\n{}",
            r.lines().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn all_green_except_the_daemon_and_faults_turn_lines_red() {
    let s = setup(vec![]).await;
    let r = doctor(&s).await;
    let text = r.lines().join("\n");
    assert_eq!(status(&r, "config", "file"), Status::Ok, "{text}");
    assert_eq!(status(&r, "state dir", "writable"), Status::Ok, "{text}");
    assert_eq!(
        line(&r, "daemon", "admin socket"),
        format!(
            "[FAIL] daemon: admin socket: not running (no socket at {}); fix: start it with \
             `sudo systemctl start gsmgate` (why it stopped: `journalctl -u gsmgate`), or in a \
             shell: `gsmgate daemon --config {}`",
            s.socket.display(),
            s.config.display()
        )
    );
    for m in ["modem a", "modem b"] {
        for aspect in [
            "port",
            "at",
            "sim",
            "registration",
            "signal",
            "smsc",
            "storage",
        ] {
            assert_eq!(status(&r, m, aspect), Status::Ok, "{m} {aspect}:\n{text}");
        }
    }
    // Huawei has a voice query and the simulated E1752 answers ^CVOICE: 0,8000,16,20.
    assert_eq!(status(&r, "modem b", "voice"), Status::Ok, "{text}");
    assert!(line(&r, "modem b", "voice").contains("8000 Hz"), "{text}");
    assert_eq!(status(&r, "modem a", "voice"), Status::Skip, "{text}");
    // Exactly one failure: the daemon.
    let failed: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(!r.passed());

    // Deregistration on a, storage full on b.
    s.sim.fault(0, &Fault::Deregister).unwrap();
    s.sim.fault(1, &Fault::StorageFull).unwrap();
    let r = doctor_until(&s, "deregistration and full storage", |r| {
        r.find("modem a", "registration")
            .is_some_and(|c| c.status == Status::Fail)
            && r.find("modem b", "storage")
                .is_some_and(|c| c.status == Status::Fail)
    })
    .await;
    let reg = r.find("modem a", "registration").unwrap();
    assert!(reg.detail.contains("not registered"), "{}", reg.line());
    assert!(
        reg.fix.as_deref().unwrap().contains("antenna"),
        "{}",
        reg.line()
    );
    let storage = r.find("modem b", "storage").unwrap();
    assert!(
        storage.detail.contains("30 of 30 used: full"),
        "{}",
        storage.line()
    );
    assert!(storage.fix.as_deref().unwrap().contains("start the daemon"));
    // Untouched checks stay green.
    assert_eq!(status(&r, "modem a", "storage"), Status::Ok);
    assert_eq!(status(&r, "modem b", "registration"), Status::Ok);

    // No signal on b.
    s.sim.fault(1, &Fault::Signal { rssi: 99 }).unwrap();
    let r = doctor_until(&s, "no signal", |r| {
        r.find("modem b", "signal")
            .is_some_and(|c| c.status == Status::Fail)
    })
    .await;
    assert!(line(&r, "modem b", "signal").contains("no signal (rssi 99, unknown); fix: "));

    // A stall on a: no answer to AT, and the rest of its checks are skipped, not guessed.
    s.sim.fault(0, &Fault::Stall { on: true }).unwrap();
    let r = doctor_until(&s, "the stall", |r| {
        r.find("modem a", "at")
            .is_some_and(|c| c.status == Status::Fail)
    })
    .await;
    let at = r.find("modem a", "at").unwrap();
    assert!(at.detail.starts_with("no answer to AT"), "{}", at.line());
    assert!(at.fix.as_deref().unwrap().contains("gsmgate modems scan"));
    for aspect in ["sim", "registration", "signal", "smsc", "voice", "storage"] {
        assert_eq!(status(&r, "modem a", aspect), Status::Skip, "{aspect}");
    }
    s.sim.fault(0, &Fault::Stall { on: false }).unwrap();
    s.sim.fault(0, &Fault::Register).unwrap();
    doctor_until(&s, "recovery after the stall", |r| {
        r.find("modem a", "registration")
            .is_some_and(|c| c.status == Status::Ok)
    })
    .await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn empty_smsc_and_an_unconfigured_pin_are_red_with_fixes() {
    let no_smsc = ModemSpec {
        smsc: None,
        ..ModemSpec::default()
    };
    let pin = ModemSpec {
        pin: Some("4321".into()),
        ..ModemSpec::default()
    };
    let pin_configured = ModemSpec {
        pin: Some("1234".into()),
        ..ModemSpec::default()
    };
    let s = setup(vec![
        (no_smsc, ""),
        (pin, ""),
        (pin_configured, "pin = \"1234\""),
    ])
    .await;
    let r = doctor(&s).await;
    let text = r.lines().join("\n");
    let smsc = r.find("modem c", "smsc").unwrap();
    assert_eq!(smsc.status, Status::Fail, "{text}");
    assert!(smsc.detail.contains("+CMS ERROR: 330"), "{}", smsc.line());
    assert!(
        smsc.fix.as_deref().unwrap().contains("AT+CSCA="),
        "{}",
        smsc.line()
    );
    let sim = r.find("modem d", "sim").unwrap();
    assert_eq!(sim.status, Status::Fail, "{text}");
    assert!(
        sim.fix.as_deref().unwrap().contains("pin = "),
        "{}",
        sim.line()
    );
    assert_eq!(status(&r, "modem d", "registration"), Status::Skip);
    // A configured PIN is fine: the daemon will send it.
    assert_eq!(status(&r, "modem e", "sim"), Status::Ok, "{text}");
    s.sim.shutdown().await;
}

/// Answers `modems` like a daemon whose two modems are ready; only for the protocol side.
struct ReadyPool {
    events: broadcast::Sender<Event>,
    ports: Vec<(String, String)>,
}

impl Handler for ReadyPool {
    async fn handle(&self, request: Request, _peer: &Peer) -> Result<Reply, ErrorBody> {
        match request {
            Request::Modems(_) => Ok(Reply::Modems(
                self.ports
                    .iter()
                    .map(|(name, port)| ModemInfo {
                        name: name.clone(),
                        profile: "generic".into(),
                        port: port.clone(),
                        state: "ready".into(),
                        registration: if name == "b" { "searching" } else { "home" }.into(),
                        signal_dbm: Some(-71),
                        operator: Some("Sim Mobile".into()),
                        iccid: None,
                        imsi: None,
                        imei: None,
                        last_error: None,
                        sent_today: 0,
                        received_today: 0,
                        per_day: Some(1000),
                        waiting: None,
                        paused: None,
                        sim: None,
                        site: None,
                    })
                    .collect(),
            )),
            other => Err(ErrorBody::new(
                ErrorCode::UnknownCommand,
                format!("not in this test: {}", other.name()),
            )),
        }
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

#[tokio::test]
async fn with_a_running_daemon_the_facts_come_from_it() {
    let s = setup(vec![]).await;
    let ports = s
        .sim
        .paths()
        .modems
        .iter()
        .zip(["a", "b"])
        .map(|(m, n)| (n.to_owned(), m.at.display().to_string()))
        .collect();
    let listener = bind(&s.socket, 0o600, None).await.unwrap();
    let handler = Arc::new(ReadyPool {
        events: broadcast::channel(4).0,
        ports,
    });
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        handler,
        AccessPolicy::default(),
        stop.clone(),
    ));

    let r = doctor(&s).await;
    let text = r.lines().join("\n");
    assert_eq!(
        line(&r, "daemon", "admin socket"),
        format!(
            "[ ok ] daemon: admin socket: the daemon answers on {}",
            s.socket.display()
        )
    );
    assert_eq!(status(&r, "modem a", "at"), Status::Ok, "{text}");
    assert_eq!(status(&r, "modem a", "registration"), Status::Ok, "{text}");
    assert_eq!(
        status(&r, "modem b", "registration"),
        Status::Fail,
        "{text}"
    );
    // What the daemon does not report is skipped, never guessed.
    for aspect in ["smsc", "voice", "storage"] {
        let c = r.find("modem a", aspect).unwrap();
        assert_eq!(c.status, Status::Skip, "{text}");
        assert!(c.detail.contains("not reported by the running daemon"));
    }
    stop.cancel();
    server.await.unwrap().unwrap();
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_broken_config_is_one_red_line_with_the_check_config_hint() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[daemon]\nstate_dir = \"/x\"\nbogus = 1\n").unwrap();
    let r = diagnose(&DoctorOptions {
        config: config.clone(),
        socket: Some(dir.path().join("none.sock")),
        probe_timeout: TIMEOUT,
    })
    .await;
    let c = r.find("config", "file").unwrap();
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("bogus"), "{}", c.line());
    assert!(
        c.fix
            .as_deref()
            .unwrap()
            .contains(&format!("gsmgate check-config {}", config.display()))
    );
    assert_eq!(status(&r, "daemon", "admin socket"), Status::Fail);
    assert!(!r.passed());
}
