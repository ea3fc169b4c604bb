//! Unit tests of the modem state machine, driven byte by byte against a recorder in place of
//! the network, with simulated time stepped in milliseconds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::sim::profile::Identity;
use crate::sim::radio::{CallEvent, Radio};
use crate::sim::wav;

/// Records submissions; answers with a canned status report when `report` is set.
#[derive(Default)]
struct Recorder {
    submits: Vec<(usize, u8, Vec<u8>)>,
    report: Option<Vec<u8>>,
    events: Vec<CallEvent>,
}

impl Radio for Recorder {
    fn submit(
        &mut self,
        modem: usize,
        mr: u8,
        pdu: &[u8],
        _now: i64,
    ) -> Result<Option<Vec<u8>>, String> {
        self.submits.push((modem, mr, pdu.to_vec()));
        Ok(self.report.clone())
    }
    fn call_event(&mut self, _m: usize, _id: u64, e: CallEvent, _now: i64) {
        self.events.push(e);
    }
}

/// SUBMIT "hellohello" to +46708251358, `AT+CMGS=23` (the worked example of dreamfabric's "SMS
/// and the PDU format").
const SUBMIT: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
/// DELIVER "hellohello" from the same source.
const DELIVER: &str = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37";
/// STATUS-REPORT, MR 214, delivered (python-gsmmodem, test_pdu.py).
const REPORT: &str = "0006D60B911326880736F4111011719551401110117195714000";

/// `spec` with no command latency and no boot time, so every answer is out within one step.
fn instant(spec: ModemSpec) -> ModemSpec {
    ModemSpec {
        latency: Latency {
            default: MsRange(0, 0),
            send: MsRange(0, 0),
            read: MsRange(0, 0),
        },
        boot_ms: 0,
        ..spec
    }
}

struct Harness {
    core: ModemCore,
    now: Instant,
    radio: Arc<Mutex<Recorder>>,
}

impl Harness {
    fn with(spec: ModemSpec) -> Harness {
        let radio = Arc::new(Mutex::new(Recorder::default()));
        let shared: SharedRadio = radio.clone();
        let now = Instant::now();
        let core = ModemCore::new(0, spec, shared, 1, now);
        let mut h = Harness { core, now, radio };
        h.advance(300);
        h
    }
    fn new(profile: Profile) -> Harness {
        Harness::with(instant(ModemSpec {
            profile,
            noise_interval_ms: 0,
            ..ModemSpec::default()
        }))
    }
    /// Steps simulated time by 1 ms up to `ms`, collecting output.
    fn advance(&mut self, ms: u64) -> String {
        let mut out = Vec::new();
        for _ in 0..=ms {
            self.core.poll(self.now);
            out.extend(self.core.take_due(self.now));
            self.now += Duration::from_millis(1);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    fn raw(&mut self, bytes: &[u8]) -> String {
        self.core.feed(bytes, self.now);
        self.advance(5)
    }
    fn at(&mut self, line: &str) -> String {
        self.raw(format!("{line}\r").as_bytes())
    }
    fn quiet(profile: Profile) -> Harness {
        let mut h = Harness::new(profile);
        h.at("ATE0");
        h
    }
    fn deliver(&mut self, hex: &str) -> String {
        let pdu = crate::pdu::hex_to_bytes(hex).unwrap();
        self.core.deliver_sms(pdu, self.now);
        self.advance(1)
    }
}

#[test]
fn echo_on_until_ate0_and_back_after_reboot() {
    let mut h = Harness::new(Profile::Generic);
    assert_eq!(h.at("AT"), "AT\r\r\nOK\r\n");
    assert_eq!(h.at("ATE0"), "ATE0\r\r\nOK\r\n");
    assert_eq!(h.at("AT"), "\r\nOK\r\n");
    assert_eq!(h.at("AT+CFUN=1,1"), "\r\nOK\r\n");
    h.advance(10);
    assert_eq!(h.at("AT"), "AT\r\r\nOK\r\n");
}

#[test]
fn cmee_modes() {
    let mut h = Harness::quiet(Profile::Generic);
    assert_eq!(h.at("AT+CPIN=\"1234\""), "\r\nERROR\r\n");
    h.at("AT+CMEE=1");
    assert_eq!(h.at("AT+CPIN=\"1234\""), "\r\n+CME ERROR: 3\r\n");
    assert_eq!(h.at("AT+CMGR=99"), "\r\n+CMS ERROR: 321\r\n");
    h.at("AT+CMEE=2");
    assert_eq!(
        h.at("AT+CPIN=\"1234\""),
        "\r\n+CME ERROR: operation not allowed\r\n"
    );
    assert_eq!(h.at("AT+CMEE?"), "\r\n+CMEE: 2\r\n\r\nOK\r\n");
}

#[test]
fn unknown_commands() {
    let mut h = Harness::quiet(Profile::Generic);
    assert_eq!(h.at("AT+XYZZY"), "\r\nERROR\r\n");
    let mut h = Harness::quiet(Profile::Huawei);
    assert_eq!(h.at("AT+XYZZY"), "\r\nCOMMAND NOT SUPPORT\r\n");
    // Garbage before AT is skipped; lines without AT are ignored.
    assert_eq!(h.at("\x1b\x1aAT"), "\r\nOK\r\n");
    assert_eq!(h.at("hello"), "");
}

#[test]
fn pin_attempts_then_puk() {
    let mut h = Harness::with(instant(ModemSpec {
        pin: Some("1234".into()),
        ..ModemSpec::default()
    }));
    h.at("ATE0");
    h.at("AT+CMEE=1");
    assert_eq!(h.at("AT+CPIN?"), "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
    assert_eq!(h.at("AT+CIMI"), "\r\n+CME ERROR: 11\r\n");
    assert_eq!(h.at("AT+CMGL=4"), "\r\n+CMS ERROR: 311\r\n");
    assert_eq!(h.at("AT+CPIN=\"0000\""), "\r\n+CME ERROR: 16\r\n");
    assert_eq!(h.at("AT+CPINC?"), "\r\n+CPINC: \"SC\",2,10\r\n\r\nOK\r\n");
    h.at("AT+CPIN=\"0000\"");
    h.at("AT+CPIN=\"0000\"");
    assert_eq!(h.at("AT+CPIN?"), "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n");
    assert_eq!(
        h.at("AT+CPIN=\"1234\""),
        "\r\n+CME ERROR: 16\r\n",
        "PIN no longer helps"
    );
    assert_eq!(h.at("AT+CPIN=\"12345678\",\"4321\""), "\r\nOK\r\n");
    assert_eq!(h.at("AT+CPIN?"), "\r\n+CPIN: READY\r\n\r\nOK\r\n");
    assert_eq!(h.at("AT+CIMI"), "\r\n001010001000000\r\n\r\nOK\r\n");
}

#[test]
fn correct_pin_unlocks() {
    let mut h = Harness::with(instant(ModemSpec {
        pin: Some("1234".into()),
        ..ModemSpec::default()
    }));
    h.at("ATE0");
    assert_eq!(h.at("AT+CPIN=\"1234\""), "\r\nOK\r\n");
    assert!(h.at("AT+CSQ").contains("+CSQ: 21,99"));
}

#[test]
fn send_flow_with_prompt_and_modem_reference() {
    let mut h = Harness::quiet(Profile::Generic);
    assert_eq!(h.at("AT+CMGS=23"), "\r\n> ");
    let out = h.raw(format!("{SUBMIT}\x1a").as_bytes());
    let mr0 = h.radio.lock().unwrap().submits[0].1;
    assert_eq!(out, format!("\r\n+CMGS: {mr0}\r\n\r\nOK\r\n"));
    h.at("AT+CMGS=23");
    let out = h.raw(format!("{SUBMIT}\x1a").as_bytes());
    assert_eq!(
        out,
        format!("\r\n+CMGS: {}\r\n\r\nOK\r\n", mr0.wrapping_add(1))
    );
    // The PDU reached the network unchanged.
    assert_eq!(
        crate::pdu::to_hex(&h.radio.lock().unwrap().submits[0].2),
        SUBMIT
    );
}

#[test]
fn reference_wraps_at_256() {
    let mut h = Harness::quiet(Profile::Generic);
    for _ in 0..257 {
        h.at("AT+CMGS=23");
        h.raw(format!("{SUBMIT}\x1a").as_bytes());
    }
    let s = &h.radio.lock().unwrap().submits;
    assert_eq!(s[256].1, s[0].1);
    assert_eq!(s[255].1, s[0].1.wrapping_sub(1));
}

#[test]
fn send_errors() {
    let mut h = Harness::quiet(Profile::Generic);
    h.at("AT+CMEE=1");
    h.at("AT+CMGS=22");
    assert_eq!(
        h.raw(format!("{SUBMIT}\x1a").as_bytes()),
        "\r\n+CMS ERROR: 304\r\n",
        "length mismatch"
    );
    h.at("AT+CMGS=23");
    assert_eq!(h.raw(b"0011ZZ\x1a"), "\r\n+CMS ERROR: 304\r\n", "not hex");
    h.at("AT+CMGS=23");
    assert_eq!(
        h.raw(format!("{SUBMIT}\x1b").as_bytes()),
        "\r\nOK\r\n",
        "ESC cancels"
    );
    assert!(h.radio.lock().unwrap().submits.is_empty());
    h.core.faults.cms_next.push_back(500);
    h.at("AT+CMGS=23");
    assert_eq!(
        h.raw(format!("{SUBMIT}\x1a").as_bytes()),
        "\r\n+CMS ERROR: 500\r\n"
    );
    h.core.set_registered(false, h.now);
    h.at("AT+CMGS=23");
    assert_eq!(
        h.raw(format!("{SUBMIT}\x1a").as_bytes()),
        "\r\n+CMS ERROR: 331\r\n"
    );
    h.at("AT+CMGF=1");
    assert_eq!(h.at("AT+CMGS=\"+1555\""), "\r\n+CMS ERROR: 302\r\n");
}

#[test]
fn prompt_echoes_and_holds_urcs() {
    let mut h = Harness::new(Profile::Generic);
    h.at("AT+CNMI=2,1,0,2,0");
    assert_eq!(h.at("AT+CMGS=23"), "AT+CMGS=23\r\r\n> ");
    // A message arriving while the prompt is open is announced after the result.
    let urc = h.deliver(DELIVER);
    assert_eq!(urc, "");
    let out = h.raw(format!("{SUBMIT}\x1a").as_bytes());
    assert!(out.starts_with(SUBMIT), "{out:?}");
    assert!(out.contains("+CMGS: "));
    assert!(out.contains("+CMTI: \"SM\",1"), "{out:?}");
}

#[test]
fn stored_delivery_read_list_delete() {
    let mut h = Harness::quiet(Profile::Generic);
    h.at("AT+CNMI=2,1,0,2,0");
    assert_eq!(h.deliver(DELIVER), "\r\n+CMTI: \"SM\",1\r\n");
    assert_eq!(
        h.at("AT+CPMS?"),
        "\r\n+CPMS: \"SM\",1,30,\"SM\",1,30,\"SM\",1,30\r\n\r\nOK\r\n"
    );
    assert_eq!(
        h.at("AT+CMGL=0"),
        format!("\r\n+CMGL: 1,0,,28\r\n{DELIVER}\r\n\r\nOK\r\n")
    );
    // Listing flipped it to REC READ.
    assert_eq!(
        h.at("AT+CMGR=1"),
        format!("\r\n+CMGR: 1,,28\r\n{DELIVER}\r\n\r\nOK\r\n")
    );
    assert_eq!(h.at("AT+CMGL=0"), "\r\nOK\r\n");
    assert_eq!(h.at("AT+CMGL=\"ALL\""), "\r\nERROR\r\n");
    assert_eq!(h.at("AT+CMGD=1"), "\r\nOK\r\n");
    assert_eq!(h.at("AT+CMGL=4"), "\r\nOK\r\n");
    h.deliver(DELIVER);
    h.deliver(DELIVER);
    h.at("AT+CMGD=1,4");
    assert_eq!(
        h.at("AT+CPMS?"),
        "\r\n+CPMS: \"SM\",0,30,\"SM\",0,30,\"SM\",0,30\r\n\r\nOK\r\n"
    );
}

#[test]
fn huawei_indexes_from_zero() {
    let mut h = Harness::quiet(Profile::Huawei);
    h.at("AT+CNMI=2,1,0,2,0");
    assert_eq!(h.deliver(DELIVER), "\r\n+CMTI: \"SM\",0\r\n");
    assert!(h.at("AT+CMGR=0").starts_with("\r\n+CMGR: 0,,28"));
}

#[test]
fn full_storage_then_retry_after_delete() {
    let mut h = Harness::with(instant(ModemSpec {
        capacity: 2,
        ..ModemSpec::default()
    }));
    h.at("ATE0");
    h.at("AT+CMEE=1");
    h.at("AT+CNMI=2,1,0,2,0");
    h.deliver(DELIVER);
    h.deliver(DELIVER);
    assert_eq!(h.deliver(DELIVER), "", "no room: the network keeps it");
    assert_eq!(h.at("AT+CMGW=23"), "\r\n> ");
    assert_eq!(
        h.raw(format!("{SUBMIT}\x1a").as_bytes()),
        "\r\n+CMS ERROR: 322\r\n"
    );
    let out = h.at("AT+CMGD=1");
    assert!(out.contains("+CMTI: \"SM\",1"), "{out:?}");
}

#[test]
fn write_then_send_from_storage() {
    let mut h = Harness::quiet(Profile::Generic);
    h.at("AT+CMGW=23");
    assert_eq!(
        h.raw(format!("{SUBMIT}\x1a").as_bytes()),
        "\r\n+CMGW: 1\r\n\r\nOK\r\n"
    );
    let out = h.at("AT+CMSS=1");
    assert!(out.starts_with("\r\n+CMSS: "), "{out:?}");
    assert_eq!(h.radio.lock().unwrap().submits.len(), 1);
}

#[test]
fn direct_delivery_with_ack_and_the_missed_ack_trap() {
    let mut h = Harness::quiet(Profile::Generic);
    h.at("AT+CSMS=1");
    h.at("AT+CMEE=1");
    h.at("AT+CNMI=2,2,0,1,0");
    assert_eq!(
        h.deliver(DELIVER),
        format!("\r\n+CMT: ,28\r\n{DELIVER}\r\n")
    );
    // A second message waits for the ack.
    assert_eq!(h.deliver(DELIVER), "");
    let out = h.at("AT+CNMA");
    assert!(out.starts_with("\r\nOK\r\n"), "{out:?}");
    assert!(
        out.contains("+CMT: ,28"),
        "second one after the ack: {out:?}"
    );
    assert_eq!(h.at("AT+CNMA"), "\r\nOK\r\n", "acks the second");
    assert_eq!(h.at("AT+CNMA"), "\r\n+CMS ERROR: 340\r\n", "nothing to ack");
    // Now miss an ack: after the timeout CNMI mt and ds are 0 and the message is stored.
    h.deliver(DELIVER);
    h.advance(5_100);
    assert_eq!(h.at("AT+CNMI?"), "\r\n+CNMI: 2,0,0,0,0\r\n\r\nOK\r\n");
    assert_eq!(h.core.status().stored_sm, 1);
}

#[test]
fn status_reports_stored_or_direct() {
    let mut h = Harness::quiet(Profile::Generic);
    h.radio.lock().unwrap().report = Some(crate::pdu::hex_to_bytes(REPORT).unwrap());
    h.at("AT+CNMI=2,1,0,2,0");
    h.at("AT+CMGS=23");
    h.raw(format!("{SUBMIT}\x1a").as_bytes());
    let out = h.advance(300);
    assert_eq!(out, "\r\n+CDSI: \"SR\",1\r\n");
    h.at("AT+CPMS=\"SR\"");
    assert_eq!(
        h.at("AT+CMGR=1"),
        format!("\r\n+CMGR: 0,,25\r\n{REPORT}\r\n\r\nOK\r\n")
    );
    h.at("AT+CNMI=2,1,0,1,0");
    h.at("AT+CMGS=23");
    h.raw(format!("{SUBMIT}\x1a").as_bytes());
    assert_eq!(h.advance(300), format!("\r\n+CDS: 25\r\n{REPORT}\r\n"));
}

#[test]
fn chained_commands_one_final() {
    let mut h = Harness::quiet(Profile::Generic);
    assert_eq!(
        h.at("AT+CMGF=0;+CGMI;+CSQ"),
        "\r\ngsmgate\r\n\r\n+CSQ: 21,99\r\n\r\nOK\r\n"
    );
    assert_eq!(h.at("AT+CGMI;+NOPE;+CSQ"), "\r\ngsmgate\r\n\r\nERROR\r\n");
}

#[test]
fn registration_urcs() {
    let mut h = Harness::quiet(Profile::Generic);
    h.at("AT+CREG=2");
    assert_eq!(
        h.at("AT+CREG?"),
        "\r\n+CREG: 2,1,\"1A2B\",\"3C4D\"\r\n\r\nOK\r\n"
    );
    h.core.set_registered(false, h.now);
    assert_eq!(h.advance(1), "\r\n+CREG: 0\r\n");
    assert_eq!(h.at("AT+COPS?"), "\r\n+COPS: 0\r\n\r\nOK\r\n");
    h.at("AT+CREG=1");
    h.core.set_registered(true, h.now);
    assert_eq!(h.advance(1), "\r\n+CREG: 1\r\n");
}

#[test]
fn wavecom_quirks() {
    let mut h = Harness::quiet(Profile::Wavecom);
    assert_eq!(h.at("AT+CPIN?"), "\r\n+CPIN: READY\r\n");
    h.at("AT+CMEE=1");
    assert_eq!(h.at("AT+CFUN=1"), "\r\nOK\r\n");
    assert_eq!(h.at("AT"), "\r\n+CME ERROR: 515\r\n");
    assert_eq!(h.at("AT"), "\r\n+CME ERROR: 515\r\n");
    assert_eq!(h.at("AT"), "\r\nOK\r\n");
    assert_eq!(h.at("AT+CPMS=\"SM\",\"SM\",\"SR\""), "\r\nERROR\r\n");
}

#[test]
fn zte_noise_before_prompt_and_result() {
    let mut h = Harness::quiet(Profile::Zte);
    let p = h.at("AT+CMGS=23");
    assert!(p.starts_with("\r\n+ZPASR: \"UMTS\"\r\n"), "{p:?}");
    assert!(p.ends_with("\r\n> "));
    let r = h.raw(format!("{SUBMIT}\x1a").as_bytes());
    assert!(r.starts_with("\r\n+ZPASR"), "{r:?}");
    assert!(r.contains("+CMGS: "));
    assert_eq!(
        h.at("AT+CSCA?"),
        "\r\nERROR\r\n",
        "SIM busy right after boot"
    );
    h.at("AT+CSMP=17,167,0,0");
    assert_eq!(h.at("AT+CSCA?"), "\r\n+CSCA: \"\",129\r\n\r\nOK\r\n");
}

#[test]
fn zte_csca_busy_after_boot() {
    let mut h = Harness::quiet(Profile::Zte);
    h.at("AT+CMEE=1");
    assert_eq!(h.at("AT+CSCA?"), "\r\n+CME ERROR: 14\r\n");
    assert!(h.at("AT+CSCA?").contains("+CSCA: \"+15550000000\",145"));
}

#[test]
fn quectel_reboot_lines() {
    let mut h = Harness::quiet(Profile::Quectel);
    let out = h.at("AT+CFUN=1,1") + &h.advance(200);
    assert!(out.starts_with("\r\nOK\r\n\r\nRDY\r\n"), "{out:?}");
    assert!(
        out.contains("+QIND: PB DONE") && out.contains("+QIND: SMS DONE"),
        "{out:?}"
    );
    assert_eq!(h.at("AT"), "AT\r\r\nOK\r\n", "echo is back");
}

#[test]
fn simcom_urcs_end_with_cr_cr_lf() {
    let mut h = Harness::quiet(Profile::Simcom);
    h.at("AT+CNMI=2,1,0,2,0");
    assert_eq!(h.deliver(DELIVER), "\r\n+CMTI: \"SM\",1\r\r\n");
}

#[test]
fn huawei_noise_and_curc() {
    let mut h = Harness::with(instant(ModemSpec {
        profile: Profile::Huawei,
        noise_interval_ms: 100,
        ..ModemSpec::default()
    }));
    h.at("ATE0");
    let out = h.advance(350);
    assert!(out.contains("^RSSI:21"), "{out:?}");
    assert!(out.contains("^BOOT:"), "{out:?}");
    h.at("AT^CURC=0");
    assert_eq!(h.advance(300), "");
}

#[test]
fn incoming_call_generic() {
    let mut h = Harness::quiet(Profile::Generic);
    h.at("AT+CLIP=1");
    h.core
        .incoming_call(1, "+15551234567", None, None, h.now)
        .unwrap();
    let out = h.advance(3_100);
    assert_eq!(out.matches("RING").count(), 2, "{out:?}");
    assert!(out.contains("+CLIP: \"+15551234567\",145,,,,0"));
    assert_eq!(
        h.at("AT+CLCC"),
        "\r\n+CLCC: 1,1,4,0,0,\"+15551234567\",145\r\n\r\nOK\r\n"
    );
    assert_eq!(h.at("ATA"), "\r\nOK\r\n");
    assert_eq!(
        h.at("AT+CLCC"),
        "\r\n+CLCC: 1,1,0,0,0,\"+15551234567\",145\r\n\r\nOK\r\n"
    );
    assert_eq!(h.advance(3_100), "", "no more rings once answered");
    assert_eq!(h.at("AT+CHUP"), "\r\nOK\r\n");
    // Each ring is reported to the network side, so a caller knows how many they heard.
    assert_eq!(
        h.radio.lock().unwrap().events,
        vec![
            CallEvent::Ring,
            CallEvent::Ring,
            CallEvent::Answered,
            CallEvent::HungUpByModem
        ]
    );
    assert_eq!(h.at("ATA"), "\r\nNO CARRIER\r\n");
}

#[test]
fn phone_hangs_up_after_answer() {
    let mut h = Harness::quiet(Profile::Generic);
    h.at("AT+CRC=1");
    h.core
        .incoming_call(
            1,
            "+15551234567",
            None,
            Some(Duration::from_millis(500)),
            h.now,
        )
        .unwrap();
    assert!(h.advance(5).contains("+CRING: VOICE"));
    h.at("ATA");
    assert_eq!(h.advance(600), "\r\nNO CARRIER\r\n");
}

#[test]
fn huawei_call_urcs_and_audio() {
    let mut h = Harness::quiet(Profile::Huawei);
    h.core
        .incoming_call(3, "+15551234567", None, None, h.now)
        .unwrap();
    h.advance(1);
    assert_eq!(h.at("AT^DDSETEX=2"), "\r\nERROR\r\n", "no call up yet");
    assert_eq!(h.at("ATA"), "\r\n^CONN:1,0\r\n\r\nOK\r\n");
    assert_eq!(h.core.audio_route(), None);
    assert_eq!(h.at("AT^DDSETEX=2"), "\r\nOK\r\n");
    assert_eq!(h.core.audio_route(), Some(AudioRoute { call_id: 3 }));
    let out = h.at("AT+CHUP");
    assert!(out.contains("^CEND:1,0,29,16"), "{out:?}");
    assert_eq!(h.core.audio_route(), None);
}

#[test]
fn simcom_cpcmreg_only_after_a_while() {
    let mut h = Harness::quiet(Profile::Simcom);
    h.core
        .incoming_call(1, "+15551234567", None, None, h.now)
        .unwrap();
    h.advance(1);
    let out = h.at("ATA");
    assert!(out.contains("VOICE CALL: BEGIN"), "{out:?}");
    assert_eq!(h.at("AT+CPCMREG=1"), "\r\nERROR\r\n");
    h.advance(1_000);
    assert_eq!(h.at("AT+CPCMREG=1"), "\r\nOK\r\n");
    assert!(h.core.audio_route().is_some());
    assert!(h.at("AT+CHUP").contains("VOICE CALL: END: 0000"));
}

#[test]
fn quectel_qpcmv_then_answer() {
    let mut h = Harness::quiet(Profile::Quectel);
    h.at("AT+QINDCFG=\"ccinfo\",1,0");
    h.core
        .incoming_call(1, "+15551234567", None, None, h.now)
        .unwrap();
    assert!(
        h.advance(1)
            .contains("+QIND: \"ccinfo\",1,1,4,0,0,\"+15551234567\",145")
    );
    let out = h.at("AT+QPCMV=0;+QPCMV=1,0;A");
    assert!(out.contains("+QIND: \"ccinfo\",1,1,0,0,0"), "{out:?}");
    assert!(h.core.audio_route().is_some());
    assert_eq!(h.at("AT+QPCMV=1,2"), "\r\nERROR\r\n", "already on");
}

#[test]
fn missed_call_simcom() {
    let mut h = Harness::quiet(Profile::Simcom);
    h.core
        .incoming_call(
            1,
            "+15551234567",
            Some(Duration::from_millis(100)),
            None,
            h.now,
        )
        .unwrap();
    let out = h.advance(200);
    assert!(
        out.contains("RING") && out.contains("MISSED_CALL:"),
        "{out:?}"
    );
}

#[test]
fn identity_commands() {
    let mut h = Harness::quiet(Profile::Quectel);
    let id = Identity::for_index(0);
    assert_eq!(h.at("AT+CGSN"), format!("\r\n{}\r\n\r\nOK\r\n", id.imei));
    assert_eq!(
        h.at("AT+QCCID"),
        format!("\r\n+QCCID: {}\r\n\r\nOK\r\n", id.iccid)
    );
    assert_eq!(
        h.at("AT+CNUM"),
        format!("\r\n+CNUM: \"\",\"{}\",145\r\n\r\nOK\r\n", id.number)
    );
    h.at("AT+CSCS=\"UCS2\"");
    assert_eq!(
        h.at("AT+CSCA?"),
        "\r\n+CSCA: \"002B00310035003500350030003000300030003000300030\",145\r\n\r\nOK\r\n"
    );
}

#[test]
fn every_profile_answers_its_iccid_command_and_cnum() {
    // The command gsmgate's init sends per profile (docs/modems.md, the profile table).
    let cases = [
        (Profile::Quectel, "AT+QCCID"),
        (Profile::Simcom, "AT+CICCID"),
        (Profile::Sim800, "AT+CCID"),
        (Profile::Wavecom, "AT+CCID"),
        (Profile::Huawei, "AT^ICCID?"),
    ];
    let id = Identity::for_index(0);
    for (profile, cmd) in cases {
        let mut h = Harness::quiet(profile);
        let out = h.at(cmd);
        assert!(
            out.contains(&id.iccid) && out.ends_with("OK\r\n"),
            "{profile:?}: {out:?}"
        );
        let cnum = h.at("AT+CNUM");
        assert!(cnum.contains(&id.number), "{profile:?}: {cnum:?}");
    }
}

#[test]
fn split_input_bytes() {
    let mut h = Harness::quiet(Profile::Generic);
    let mut out = String::new();
    for b in b"AT+CGMI\r" {
        out += &h.raw(&[*b]);
    }
    assert_eq!(out, "\r\ngsmgate\r\n\r\nOK\r\n");
}

#[test]
fn stall_ignores_commands() {
    let mut h = Harness::quiet(Profile::Generic);
    h.core.faults.stall = true;
    assert_eq!(h.at("AT"), "");
    h.core.faults.stall = false;
    assert_eq!(h.at("AT"), "\r\nOK\r\n");
}

#[test]
fn stall_after_send_takes_the_message_and_swallows_the_answer() {
    let mut h = Harness::quiet(Profile::Generic);
    h.core.faults.stall_after_send = true;
    assert_eq!(h.at("AT+CMGS=23"), "\r\n> ");
    assert_eq!(h.raw(format!("{SUBMIT}\x1a").as_bytes()), "");
    assert_eq!(h.radio.lock().unwrap().submits.len(), 1);
    assert!(h.core.faults.stall && !h.core.faults.stall_after_send);
    assert_eq!(h.at("AT"), "");
    h.core.faults.stall = false;
    assert_eq!(h.at("AT"), "\r\nOK\r\n");
}

#[test]
fn latency_delays_answer_and_later_input() {
    let mut h = Harness::with(ModemSpec {
        latency: Latency {
            default: MsRange(50, 50),
            send: MsRange(0, 0),
            read: MsRange(0, 0),
        },
        boot_ms: 0,
        ..ModemSpec::default()
    });
    h.at("ATE0");
    h.advance(60);
    h.core.feed(b"AT\rAT+CGMI\r", h.now);
    assert_eq!(h.advance(20), "");
    assert_eq!(h.advance(40), "\r\nOK\r\n");
    assert_eq!(h.advance(60), "\r\ngsmgate\r\n\r\nOK\r\n");
}

/// A PCM WAV of `n` samples at 8 kHz (a ramp), as the daemon uploads it.
fn wav_of(n: usize) -> (Vec<u8>, Vec<i16>) {
    let samples: Vec<i16> = (0..n).map(|i| (i as i16).wrapping_mul(7)).collect();
    (wav::encode(&samples).unwrap(), samples)
}

fn heard(h: &mut Harness) -> Vec<i16> {
    h.core
        .take_played()
        .1
        .into_iter()
        .flat_map(|(_, s)| s)
        .collect()
}

fn answered_call(h: &mut Harness) {
    h.core
        .incoming_call(5, "+15551234567", None, None, h.now)
        .unwrap();
    h.advance(1);
    h.at("ATA");
    h.advance(5);
}

#[test]
fn sim800_file_upload_and_playback() {
    let mut h = Harness::quiet(Profile::Sim800);
    let (wav, samples) = wav_of(1600);
    let (a, b) = wav.split_at(1000);
    assert_eq!(h.at("AT+FSFLSIZE=C:\\User\\1.wav"), "\r\nERROR\r\n");
    assert_eq!(h.at("AT+FSCREATE=C:\\User\\1.wav"), "\r\nOK\r\n");
    assert_eq!(
        h.at(&format!("AT+FSWRITE=C:\\User\\1.wav,0,{},10", a.len())),
        "\r\n> "
    );
    // Raw bytes, counted: whatever they contain does not end them early.
    assert_eq!(h.raw(a), "\r\nOK\r\n");
    assert_eq!(
        h.at(&format!("AT+FSWRITE=\"C:\\User\\1.wav\",1,{},10", b.len())),
        "\r\n> "
    );
    assert_eq!(h.raw(b), "\r\nOK\r\n");
    assert_eq!(
        h.at("AT+FSFLSIZE=C:\\User\\1.wav"),
        format!("\r\n+FSFLSIZE: {}\r\n\r\nOK\r\n", wav.len())
    );
    assert_eq!(h.core.files()[0].uploads, 1);
    assert_eq!(
        h.at("AT+CREC=4,\"C:\\User\\1.wav\",0,90"),
        "\r\nERROR\r\n",
        "no call"
    );
    answered_call(&mut h);
    assert_eq!(h.at("AT+CREC=4,\"C:\\User\\1.wav\",0,90"), "\r\nOK\r\n");
    let (started, mut got): (_, Vec<i16>) = {
        let (f, a) = h.core.take_played();
        (f, a.into_iter().flat_map(|(_, s)| s).collect())
    };
    assert_eq!(started, vec![(5, wav.len())]);
    // 1600 samples = 200 ms, heard in real time; the end URC after that.
    assert_eq!(h.advance(100), "");
    got.extend(heard(&mut h));
    assert!(got.len() >= 700 && got.len() < 1600, "{}", got.len());
    assert_eq!(h.advance(150), "\r\n+CREC: 0\r\n");
    got.extend(heard(&mut h));
    assert_eq!(got, samples);
    assert_eq!(
        h.at("AT+CREC=4,\"C:\\User\\nope.amr\",0,90"),
        "\r\nERROR\r\n"
    );
    assert_eq!(h.at("AT+FSDEL=C:\\User\\1.wav"), "\r\nOK\r\n");
    assert_eq!(h.at("AT+FSDEL=C:\\User\\1.wav"), "\r\nERROR\r\n");
}

#[test]
fn quectel_upload_list_and_play() {
    let mut h = Harness::quiet(Profile::Quectel);
    h.at("AT+CMEE=1");
    let (wav, samples) = wav_of(800);
    assert_eq!(h.at("AT+QFLST=\"UFS:greet.wav\""), "\r\nOK\r\n");
    assert_eq!(
        h.at("AT+QFDEL=\"UFS:greet.wav\""),
        "\r\n+CME ERROR: 405\r\n"
    );
    assert_eq!(
        h.at(&format!("AT+QFUPL=\"UFS:greet.wav\",{},30", wav.len())),
        "\r\nCONNECT\r\n"
    );
    let sum = crate::at::files::quectel_checksum(&wav);
    assert_eq!(
        h.raw(&wav),
        format!("\r\n+QFUPL: {},{sum:x}\r\n\r\nOK\r\n", wav.len())
    );
    assert_eq!(
        h.at("AT+QFLST=\"UFS:greet.wav\""),
        format!("\r\n+QFLST: \"UFS:greet.wav\",{}\r\n\r\nOK\r\n", wav.len())
    );
    assert_eq!(
        h.at(&format!("AT+QFUPL=\"UFS:greet.wav\",{},30", wav.len())),
        "\r\n+CME ERROR: 407\r\n",
        "the file exists"
    );
    answered_call(&mut h);
    assert_eq!(h.at("AT+QPSND=1,\"greet.wav\",0,1,1"), "\r\nOK\r\n");
    let out = h.advance(150);
    assert!(out.ends_with("\r\n+QPSND: 0\r\n"), "{out:?}");
    assert_eq!(heard(&mut h), samples);
    assert_eq!(h.at("AT+QFDEL=\"UFS:greet.wav\""), "\r\nOK\r\n");
}

#[test]
fn simcom_upload_and_play_stopped_by_a_hangup() {
    let mut h = Harness::quiet(Profile::Simcom);
    let (wav, samples) = wav_of(8000);
    assert_eq!(
        h.at(&format!("AT+CFTRANRX=\"C:/greet.wav\",{}", wav.len())),
        "\r\n> "
    );
    assert_eq!(h.raw(&wav), "\r\nOK\r\n");
    assert_eq!(h.at("AT+FSCD=C:"), "\r\nOK\r\n");
    assert_eq!(
        h.at("AT+FSATTRI=greet.wav"),
        format!(
            "\r\n+FSATTRI: {},2024/01/01 00:00:00\r\n\r\nOK\r\n",
            wav.len()
        )
    );
    answered_call(&mut h);
    // OK first, then the URC once playback runs.
    let out = h.at("AT+CCMXPLAY=\"C:/greet.wav\",1,0") + &h.advance(295);
    assert!(
        out.starts_with("\r\nOK\r\n\r\n+AUDIOSTATE: audio play\r"),
        "{out:?}"
    );
    assert!(h.core.phone_hangup(5, h.now));
    // The caller heard about 300 ms of the 1 s file, then nothing more.
    let got = heard(&mut h);
    assert!(got.len() >= 2400 && got.len() < 4000, "{}", got.len());
    assert_eq!(got[..], samples[..got.len()]);
    assert!(!h.advance(1000).contains("audio play stop"));
    assert!(heard(&mut h).is_empty());
    assert_eq!(h.core.files()[0].uploads, 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn never_panics_on_any_input(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..12)) {
        let mut h = Harness::new(Profile::Huawei);
        for c in chunks {
            h.core.feed(&c, h.now);
            h.advance(2);
        }
    }

    #[test]
    fn never_panics_on_at_like_input(lines in proptest::collection::vec("AT[+^]?[A-Z]{0,6}[=?]{0,2}[0-9,\"A-Z]{0,12}", 0..12)) {
        let mut h = Harness::new(Profile::Generic);
        for l in lines {
            h.at(&l);
        }
    }
}

/// docs/simulator.md, "USSD": each profile answers in its form; Huawei also takes requests as hex
/// of packed septets (`AA180C3602` is `*100#`).
#[test]
fn ussd_answers_in_each_profiles_form() {
    let mut h = Harness::quiet(Profile::Generic);
    assert_eq!(h.at("AT+CUSD=1,\"*100#\",15"), "\r\nOK\r\n");
    let out = h.advance(400);
    assert_eq!(
        out,
        format!("\r\n+CUSD: 0,\"{}\",15\r\n", super::ussd::BALANCE)
    );

    let mut h = Harness::quiet(Profile::Simcom);
    h.at("AT+CUSD=1,\"*100#\",15");
    let hex = crate::pdu::to_hex(&crate::pdu::ucs2::encode(super::ussd::BALANCE));
    assert!(h.advance(400).contains(&format!("+CUSD: 0,\"{hex}\",72")));

    let mut h = Harness::quiet(Profile::Huawei);
    h.at("AT+CUSD=1,\"AA180C3602\",15");
    let out = h.advance(400);
    let hex = out
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("no +CUSD string in {out:?}"));
    let b = crate::pdu::hex_to_bytes(hex).unwrap();
    let text = crate::pdu::gsm7::unpack_to_string(&b, 0, b.len() * 8 / 7);
    assert!(text.starts_with(super::ussd::BALANCE), "{text:?}");
    assert!(out.ends_with(",15\r\n"), "{out:?}");
}

#[test]
fn ussd_menu_reply_cancel_and_errors() {
    let mut h = Harness::quiet(Profile::Quectel);
    h.at("AT+CUSD=1,\"*101#\",15");
    assert!(
        h.advance(400)
            .contains(&format!("+CUSD: 1,\"{}\",15", super::ussd::MENU))
    );
    h.at("AT+CUSD=1,\"2\",15");
    assert!(h.advance(400).contains(super::ussd::DATA));
    // The session ended with that answer: a reply now is not supported.
    h.at("AT+CUSD=1,\"1\",15");
    assert!(h.advance(400).contains("+CUSD: 4"));
    h.at("AT+CUSD=1,\"*101#\",15");
    h.advance(400);
    assert_eq!(h.at("AT+CUSD=2"), "\r\nOK\r\n");
    h.at("AT+CUSD=1,\"1\",15");
    assert!(h.advance(400).contains("+CUSD: 4"));
    h.at("AT+CUSD=1,\"*102#\",15");
    assert!(h.advance(400).contains("+CUSD: 2\r\n"));
    h.at("AT+CUSD=1,\"*199#\",15");
    assert!(!h.advance(2000).contains("+CUSD"), "never answered");
}
