//! End-to-end tests of the simulator through its pseudo-terminals, opened with tokio-serial the
//! way the daemon opens a real modem. Every wait polls with a deadline; nothing sleeps a fixed
//! time to let something happen.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use gsmgate::pdu::{Address, Direction, Pdu, SubmitOptions, Tpdu, submits_for_text};
use gsmgate::sim::{Fault, PhoneCall, PhoneSms, Profile, SimConfig, SimHandle, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_serial::{SerialPortBuilderExt, SerialStream};

const DEADLINE: Duration = Duration::from_secs(10);

struct Port {
    s: SerialStream,
    buf: Vec<u8>,
}

impl Port {
    fn open(path: &Path) -> Port {
        let s = tokio_serial::new(path.to_string_lossy(), 115_200)
            .open_native_async()
            .expect("open pty");
        Port { s, buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// Reads until the received text contains `needle`; returns everything up to and including
    /// it and keeps the rest.
    async fn expect(&mut self, needle: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            if let Some(pos) = text.find(needle) {
                let cut = pos + needle.len();
                self.buf = text.as_bytes()[cut..].to_vec();
                return text[..cut].to_string();
            }
            let mut chunk = [0u8; 1024];
            match tokio::time::timeout_at(end, self.s.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Ok(_)) => panic!("port closed while waiting for {needle:?}; got {text:?}"),
                Ok(Err(e)) => panic!("read error {e} while waiting for {needle:?}; got {text:?}"),
                Err(_) => panic!("timed out waiting for {needle:?}; got {text:?}"),
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r").as_bytes()).await;
        self.expect_final().await
    }

    async fn expect_final(&mut self) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            let mut offset = 0;
            for line in text.split_inclusive('\n') {
                offset += line.len();
                let l = line.trim();
                let fin = l == "OK"
                    || l == "ERROR"
                    || l == "NO CARRIER"
                    || l == "COMMAND NOT SUPPORT"
                    || l.starts_with("+CMS ERROR:")
                    || l.starts_with("+CME ERROR:");
                if fin && line.ends_with('\n') {
                    self.buf = text.as_bytes()[offset..].to_vec();
                    return text[..offset].to_string();
                }
            }
            let mut chunk = [0u8; 1024];
            match tokio::time::timeout_at(end, self.s.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                other => panic!("no final result ({other:?}); got {text:?}"),
            }
        }
    }

    /// Opens the port of a modem that has finished booting, switches echo off and numeric
    /// errors on.
    async fn ready(path: &Path) -> Port {
        let mut p = Port::open(path);
        p.cmd("ATE0").await;
        p.cmd("AT+CMEE=1").await;
        p
    }
}

/// Waits until no modem is booting.
async fn booted(sim: &SimHandle) {
    poll(|| sim.status().iter().all(|m| !m.booting).then_some(())).await;
}

async fn start(n: usize, profile: Profile) -> (tempfile::TempDir, SimHandle) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(dir.path(), n, profile);
    for m in &mut cfg.modems {
        m.boot_ms = 50;
        m.status_report_delay_ms = 50;
    }
    let sim = Simulator::start(cfg).await.unwrap();
    booted(&sim).await;
    (dir, sim)
}

async fn poll<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "condition not met before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends one SUBMIT through AT+CMGS and returns the +CMGS reference.
async fn send_pdu(p: &mut Port, pdu: &Pdu) -> u8 {
    p.send(format!("AT+CMGS={}\r", pdu.tpdu_len()).as_bytes())
        .await;
    p.expect("\r\n> ").await;
    p.send(format!("{}\x1a", pdu.to_hex()).as_bytes()).await;
    let out = p.expect_final().await;
    let line = out
        .lines()
        .find(|l| l.starts_with("+CMGS: "))
        .unwrap_or_else(|| panic!("no +CMGS in {out:?}"));
    line["+CMGS: ".len()..].trim().parse().unwrap()
}

#[tokio::test]
async fn identity_and_paths() {
    let (_d, sim) = start(2, Profile::Generic).await;
    let paths = sim.paths();
    assert_eq!(paths.modems.len(), 2);
    assert_ne!(paths.modems[0].imei, paths.modems[1].imei);
    let mut p = Port::ready(&paths.modems[1].at).await;
    assert!(p.cmd("AT+CGSN").await.contains(&paths.modems[1].imei));
    assert!(p.cmd("AT+CIMI").await.contains(&paths.modems[1].imsi));
    let at = paths.modems[0].at.clone();
    sim.shutdown().await;
    assert!(!at.exists(), "symlink removed on shutdown");
}

#[tokio::test]
async fn sent_text_reaches_the_phone_with_modem_reference() {
    let (_d, sim) = start(1, Profile::Generic).await;
    let mut p = Port::ready(&sim.paths().modems[0].at).await;
    let to = Address::parse("+15557654321").unwrap();
    let text = "Long text: ".to_string() + &"0123456789".repeat(20) + " ünïcödé 👋";
    let parts = submits_for_text(
        &to,
        &text,
        &SubmitOptions {
            concat_reference: 77,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(parts.len() > 1);
    let mut mrs = Vec::new();
    for part in &parts {
        mrs.push(send_pdu(&mut p, part).await);
    }
    assert_eq!(
        mrs[1],
        mrs[0].wrapping_add(1),
        "the modem numbers its own references"
    );
    let got = poll(|| sim.received(Some("+15557654321")).into_iter().next()).await;
    assert_eq!(got.text, text);
    assert_eq!(got.modem, Some(0));
    assert_eq!(got.message_references, mrs);
    assert!(got.complete);
}

#[tokio::test]
async fn inbound_long_text_out_of_order_with_late_part() {
    let (_d, sim) = start(1, Profile::Generic).await;
    let mut p = Port::ready(&sim.paths().modems[0].at).await;
    p.cmd("AT+CNMI=2,1,0,2,0").await;
    let text = "A phone writes a long message. ".repeat(12);
    let parts = sim
        .phone_sms(&PhoneSms {
            from: "+15551230000".into(),
            modem: 0,
            text: text.clone(),
            out_of_order: true,
            late_part: Some(2),
            late_ms: 300,
        })
        .unwrap();
    assert!(parts >= 3);
    for _ in 0..parts {
        p.expect("+CMTI: \"SM\",").await;
        p.expect("\r\n").await;
    }
    let list = p.cmd("AT+CMGL=4").await;
    let mut pieces: Vec<(u8, String)> = Vec::new();
    for line in list
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('+') && *l != "OK")
    {
        let pdu = Pdu::decode_hex(line, Direction::ToMobile).unwrap();
        let Tpdu::Deliver(d) = pdu.tpdu else {
            panic!("not a deliver")
        };
        assert_eq!(d.originator.to_string(), "+15551230000");
        let (_, _, seq) = d.concat().unwrap();
        pieces.push((seq, d.text().unwrap().to_string()));
    }
    assert_eq!(pieces.len(), parts);
    assert_eq!(
        pieces.last().map(|x| x.0),
        Some(2),
        "the late part is stored last"
    );
    pieces.sort();
    assert_eq!(pieces.into_iter().map(|x| x.1).collect::<String>(), text);
    p.cmd("AT+CMGD=1,4").await;
    assert!(p.cmd("AT+CPMS?").await.contains("+CPMS: \"SM\",0,30"));
}

#[tokio::test]
async fn status_report_stored_and_matched_by_reference() {
    let (_d, sim) = start(1, Profile::Generic).await;
    let mut p = Port::ready(&sim.paths().modems[0].at).await;
    p.cmd("AT+CNMI=2,1,0,2,0").await;
    let to = Address::parse("+15557654321").unwrap();
    let pdu = &submits_for_text(
        &to,
        "report me",
        &SubmitOptions {
            status_report: true,
            ..Default::default()
        },
    )
    .unwrap()[0];
    let mr = send_pdu(&mut p, pdu).await;
    let urc = p.expect("\r\n").await + &p.expect("\r\n").await;
    assert!(urc.contains("+CDSI: \"SR\",1"), "{urc:?}");
    p.cmd("AT+CPMS=\"SR\"").await;
    let out = p.cmd("AT+CMGR=1").await;
    let hex = out.lines().find(|l| l.starts_with("07")).unwrap();
    let Tpdu::StatusReport(r) = Pdu::decode_hex(hex, Direction::ToMobile).unwrap().tpdu else {
        panic!()
    };
    assert_eq!(r.message_reference, mr);
    assert_eq!(r.recipient.to_string(), "+15557654321");
}

#[tokio::test]
async fn send_faults_and_deregistration() {
    let (_d, sim) = start(1, Profile::Generic).await;
    let mut p = Port::ready(&sim.paths().modems[0].at).await;
    p.cmd("AT+CREG=1").await;
    let to = Address::parse("+15557654321").unwrap();
    let pdu = &submits_for_text(&to, "x", &SubmitOptions::default()).unwrap()[0];
    sim.fault(
        0,
        &Fault::CmsError {
            code: 500,
            count: Some(2),
            rate: None,
        },
    )
    .unwrap();
    for _ in 0..2 {
        p.send(format!("AT+CMGS={}\r", pdu.tpdu_len()).as_bytes())
            .await;
        p.expect("> ").await;
        p.send(format!("{}\x1a", pdu.to_hex()).as_bytes()).await;
        assert!(p.expect_final().await.contains("+CMS ERROR: 500"));
    }
    send_pdu(&mut p, pdu).await;
    sim.fault(0, &Fault::Deregister).unwrap();
    p.expect("+CREG: 0").await;
    p.send(format!("AT+CMGS={}\r", pdu.tpdu_len()).as_bytes())
        .await;
    p.expect("> ").await;
    p.send(format!("{}\x1a", pdu.to_hex()).as_bytes()).await;
    assert!(p.expect_final().await.contains("+CMS ERROR: 331"));
    sim.fault(0, &Fault::Register).unwrap();
    p.expect("+CREG: 1").await;
}

#[tokio::test]
async fn storage_full_fault() {
    let (_d, sim) = start(1, Profile::Generic).await;
    let mut p = Port::ready(&sim.paths().modems[0].at).await;
    sim.fault(0, &Fault::StorageFull).unwrap();
    assert!(p.cmd("AT+CPMS?").await.contains("\"SM\",30,30"));
    p.send(b"AT+CMGW=23\r").await;
    p.expect("> ").await;
    p.send(b"0011000B916407281553F80000AA0AE8329BFD4697D9EC37\x1a")
        .await;
    assert!(p.expect_final().await.contains("+CMS ERROR: 322"));
}

#[tokio::test]
async fn daemon_reopen_unplug_and_replug() {
    let (_d, sim) = start(1, Profile::Quectel).await;
    let at = sim.paths().modems[0].at.clone();
    {
        let mut p = Port::ready(&at).await;
        p.cmd("AT").await;
    }
    // Closing and reopening the port is harmless.
    let mut p = Port::ready(&at).await;
    sim.fault(0, &Fault::Unplug).unwrap();
    poll(|| (!at.exists()).then_some(())).await;
    let mut chunk = [0u8; 64];
    let end = Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(end, p.s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => continue,
            Err(_) => panic!("read did not report the unplug"),
        }
    }
    sim.fault(0, &Fault::Replug).unwrap();
    poll(|| at.exists().then_some(())).await;
    drop(p);
    // A replugged modem boots and answers again. (Its `RDY` is not awaited here: opening the
    // port may come after the simulator wrote it, and a reader of a real tty would miss it too;
    // the simulator's own tests pin `RDY` after a reboot.)
    booted(&sim).await;
    let mut p = Port::ready(&at).await;
    assert!(p.cmd("AT+CGMI").await.contains("Quectel"));
}

#[tokio::test]
async fn split_writes_garbage_and_stall() {
    let (_d, sim) = start(1, Profile::Generic).await;
    let mut p = Port::ready(&sim.paths().modems[0].at).await;
    sim.fault(
        0,
        &Fault::SplitWrites {
            on: true,
            max_chunk: Some(2),
        },
    )
    .unwrap();
    assert!(p.cmd("ATI").await.contains("IMEI: "));
    sim.fault(
        0,
        &Fault::SplitWrites {
            on: false,
            max_chunk: None,
        },
    )
    .unwrap();
    sim.fault(
        0,
        &Fault::Garbage {
            hex: Some("00FF7E".into()),
            count: None,
        },
    )
    .unwrap();
    p.expect("\u{7e}").await;
    sim.fault(0, &Fault::Stall { on: true }).unwrap();
    p.send(b"AT\r").await;
    let mut chunk = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), p.s.read(&mut chunk))
            .await
            .is_err(),
        "stalled modem answered"
    );
    sim.fault(0, &Fault::Stall { on: false }).unwrap();
    assert!(p.cmd("AT").await.contains("OK"));
}

#[tokio::test]
async fn huawei_call_with_pcm_audio() {
    let (d, sim) = start(1, Profile::Huawei).await;
    let paths = sim.paths();
    let audio_path = paths.modems[0]
        .audio
        .clone()
        .expect("huawei has an audio port");
    let wav = d.path().join("speech.wav");
    let tone: Vec<i16> = (0..8000)
        .map(|i| ((i as f32 * 0.3).sin() * 8000.0) as i16)
        .collect();
    gsmgate::sim::wav::write(&wav, &tone).unwrap();
    let mut p = Port::ready(&paths.modems[0].at).await;
    p.cmd("AT+CLIP=1").await;
    let id = sim
        .phone_call(&PhoneCall {
            from: "+15551112222".into(),
            modem: 0,
            speak_wav: Some(wav),
            ..Default::default()
        })
        .unwrap();
    p.expect("RING").await;
    p.expect("+CLIP: \"+15551112222\",145").await;
    let out = p.cmd("ATA").await;
    assert!(out.contains("OK"), "{out:?}");
    p.cmd("AT^DDSETEX=2").await;
    let mut audio = Port::open(&audio_path);
    // The daemon's side: 20 ms frames of a constant pattern for half a second.
    let frame: Vec<u8> = (0..160i16).flat_map(|_| 1000i16.to_le_bytes()).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut received = 0usize;
    let mut chunk = [0u8; 4096];
    for _ in 0..25 {
        tick.tick().await;
        audio.s.write_all(&frame).await.unwrap();
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(1), audio.s.read(&mut chunk)).await
        {
            received += n;
        }
    }
    assert!(
        received >= 320 * 10,
        "modem audio reached the daemon: {received} bytes"
    );
    let stats = sim.audio_stats(0).unwrap().unwrap();
    assert!(stats.frames_in >= 10, "{stats:?}");
    assert!(p.cmd("AT+CHUP").await.contains("OK"));
    let call = poll(|| {
        sim.calls(None)
            .into_iter()
            .find(|c| c.id == id && c.ended_at.is_some())
    })
    .await;
    assert_eq!(call.ended_by.as_deref(), Some("modem"));
    let heard = sim.heard(id).unwrap();
    assert!(
        heard.iter().filter(|s| **s == 1000).count() >= 1600,
        "phone heard the daemon's audio"
    );
    let out = d.path().join("heard.wav");
    sim.save_heard(id, &out).unwrap();
    assert!(gsmgate::sim::wav::read(&out).unwrap().len() >= 1600);
}

#[tokio::test]
async fn control_socket_round_trip() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let (_d, sim) = start(1, Profile::Generic).await;
    let sock = sim.paths().control.unwrap();
    let stream = tokio::net::UnixStream::connect(&sock).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut ask = async |req: &str| -> serde_json::Value {
        w.write_all(format!("{req}\n").as_bytes()).await.unwrap();
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let v = ask(r#"{"id":1,"cmd":"sms","from":"+15551234567","modem":0,"text":"hi"}"#).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["data"]["parts"], 1);
    let v = ask(r#"{"id":2,"cmd":"stored","modem":0}"#).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    let v = ask(r#"{"id":3,"cmd":"fault","modem":5,"kind":"reboot"}"#).await;
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "no_such_modem");
    let v = ask("{nope").await;
    assert_eq!(v["error"]["code"], "bad_json");
    let v = ask(r#"{"id":4,"cmd":"status"}"#).await;
    assert_eq!(v["id"], 4);
    assert_eq!(v["data"]["modems"][0]["stored_sm"], 1);
}
