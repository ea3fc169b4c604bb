//! Framing tests: every case of docs/at-protocol.md, "Framing", each fed whole, one byte at a time
//! and split at every possible point, plus properties over arbitrary bytes and chunkings.

use super::*;
use crate::at::final_result::{CallEnd, ErrorCode};
use crate::at::response::PinState;
use crate::at::urc::StorageIndex;
use proptest::prelude::*;

fn drain(d: &mut Digester) -> Vec<Item> {
    std::iter::from_fn(|| d.next_item()).collect()
}

fn fresh(cmd: Option<&Command>) -> Digester {
    let mut d = Digester::new();
    if let Some(c) = cmd {
        d.begin(c);
    }
    d
}

/// Feeds `bytes` in the given chunk lengths (the last chunk takes the rest), draining after each.
fn chunked(cmd: Option<&Command>, bytes: &[u8], cuts: &[usize]) -> Vec<Item> {
    let mut d = fresh(cmd);
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        let end = cut.clamp(start, bytes.len());
        d.feed(&bytes[start..end]);
        out.extend(drain(&mut d));
        start = end;
    }
    d.feed(&bytes[start..]);
    out.extend(drain(&mut d));
    out
}

/// Asserts the same items whole, byte by byte, and for every single split point.
fn check(cmd: Option<&Command>, bytes: &[u8], expected: &[Item]) {
    assert_eq!(chunked(cmd, bytes, &[]), expected, "whole");
    let every: Vec<usize> = (1..bytes.len()).collect();
    assert_eq!(chunked(cmd, bytes, &every), expected, "byte by byte");
    for i in 0..=bytes.len() {
        assert_eq!(chunked(cmd, bytes, &[i]), expected, "split at {i}");
    }
}

fn info(s: &str) -> Item {
    Item::Info(s.into())
}
fn urc(u: Urc) -> Item {
    Item::Urc(u)
}
fn ok() -> Item {
    Item::Final(FinalResult::Ok)
}
fn at_index(storage: &str, index: u32) -> StorageIndex {
    StorageIndex {
        storage: storage.into(),
        index: Some(index),
    }
}

const PDU: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";

#[test]
fn echo_on_gammu_hex_log() {
    // gammu/gammu#4: 41 54 2B 43 47 4D 49 0D 0D 0A 68 75 … (docs/at-protocol.md, "Framing").
    let bytes = b"AT+CGMI\r\r\nhuawei\r\n\r\nOK\r\n";
    check(
        Some(&Command::cgmi()),
        bytes,
        &[Item::Echo("AT+CGMI".into()), info("huawei"), ok()],
    );
}

#[test]
fn echo_off_and_dropped_echo() {
    check(
        Some(&Command::cgmi()),
        b"\r\nhuawei\r\n\r\nOK\r\n",
        &[info("huawei"), ok()],
    );
    let mut d = fresh(Some(&Command::cgmi()));
    d.set_report_echo(false);
    d.feed(b"AT+CGMI\r\r\nhuawei\r\n\r\nOK\r\n");
    assert_eq!(drain(&mut d), vec![info("huawei"), ok()]);
}

#[test]
fn prompt_without_newline() {
    let cmd = Command::cmgs(PDU).unwrap();
    check(Some(&cmd), b"\r\n> ", &[Item::Prompt]);
    check(
        Some(&cmd),
        b"AT+CMGS=23\r\r\n> ",
        &[Item::Echo("AT+CMGS=23".into()), Item::Prompt],
    );
    // PGM's fake-modem form `> \r\n` is accepted too.
    check(Some(&cmd), b"\r\n> \r\n", &[Item::Prompt]);
    // A lone '>' at the end of a read waits for the rest.
    let mut d = fresh(Some(&cmd));
    d.feed(b"\r\n>");
    assert_eq!(d.next_item(), None);
    d.feed(b" ");
    assert_eq!(d.next_item(), Some(Item::Prompt));
}

#[test]
fn prompt_only_when_expected() {
    // Gammu accepts `> ` only in edit mode: for any other command it stays unread.
    let mut d = fresh(Some(&Command::csq()));
    d.feed(b"\r\n> ");
    assert_eq!(d.next_item(), None);
    assert!(d.buffered() > 0);
}

/// The composite script of docs/at-protocol.md, "Framing", with the echo when `echo`.
fn composite_modem_bytes(echo: bool) -> Vec<u8> {
    let mut v = Vec::new();
    if echo {
        v.extend_from_slice(b"AT+CMGS=23\r");
    }
    v.extend_from_slice(b"\r\n+ZPASR: \"UMTS\"\r\n");
    v.extend_from_slice(b"\r\n> ");
    if echo {
        v.extend_from_slice(PDU.as_bytes());
        v.push(0x1A);
    }
    v.extend_from_slice(b"\r\n+CMTI: \"SM\",4\r\n");
    v.extend_from_slice(b"\r\n+CMGS: 17\r\n\r\nOK\r\n");
    v.extend_from_slice(b"\r\n^RSSI:18\r\n");
    v.extend_from_slice(b"\r\n+CDSI: \"SR\",2\r\n");
    v
}

fn composite_expected(echo: bool) -> Vec<Item> {
    let mut v = Vec::new();
    if echo {
        v.push(Item::Echo("AT+CMGS=23".into()));
    }
    v.push(urc(Urc::Zpasr("UMTS".into())));
    v.push(Item::Prompt);
    if echo {
        v.push(Item::Echo(format!("{PDU}\u{1a}")));
    }
    v.extend([
        urc(Urc::NewMessage(at_index("SM", 4))),
        info("+CMGS: 17"),
        ok(),
        urc(Urc::Rssi(18)),
        urc(Urc::StatusReportStored(at_index("SR", 2))),
    ]);
    v
}

#[test]
fn composite_script_echo_off() {
    let cmd = Command::cmgs(PDU).unwrap();
    check(
        Some(&cmd),
        &composite_modem_bytes(false),
        &composite_expected(false),
    );
}

#[test]
fn composite_script_echo_on() {
    let cmd = Command::cmgs(PDU).unwrap();
    check(
        Some(&cmd),
        &composite_modem_bytes(true),
        &composite_expected(true),
    );
}

#[test]
fn zte_urcs_around_prompt_and_result() {
    // [PGM test_modem]: +ZDONR/+ZPASR before `> ` and again before `+CMGS`.
    let cmd = Command::cmgs(PDU).unwrap();
    let z = "+ZDONR: \"METEOR\",272,3,\"CS_ONLY\",\"ROAM_OFF\"";
    let bytes = format!(
        "\r\n{z}\r\n\r\n+ZPASR: \"UMTS\"\r\n\r\n> \r\n{z}\r\n\r\n+ZPASR: \"UMTS\"\r\n\r\n+CMGS: 5\r\n\r\nOK\r\n"
    );
    let zd = urc(Urc::Zdonr(z.trim_start_matches("+ZDONR: ").into()));
    let zp = urc(Urc::Zpasr("UMTS".into()));
    check(
        Some(&cmd),
        bytes.as_bytes(),
        &[
            zd.clone(),
            zp.clone(),
            Item::Prompt,
            zd,
            zp,
            info("+CMGS: 5"),
            ok(),
        ],
    );
}

#[test]
fn urc_between_echo_and_ok_is_classified_by_prefix() {
    let bytes = b"AT+CSQ\r\r\n+CMTI: \"SM\",3\r\n\r\n+CSQ: 18,99\r\n\r\nRING\r\n\r\nOK\r\n";
    check(
        Some(&Command::csq()),
        bytes,
        &[
            Item::Echo("AT+CSQ".into()),
            urc(Urc::NewMessage(at_index("SM", 3))),
            info("+CSQ: 18,99"),
            urc(Urc::Ring),
            ok(),
        ],
    );
}

#[test]
fn cmgl_listing_with_pdu_lines_and_interleaved_urc() {
    let p1 =
        "07917248014000F3240B917247587706F400003110824115248012C8329BFD06C9C373B8B82C97E741F034";
    let bytes = format!(
        "\r\n+CMGL: 0,1,,35\r\n{p1}\r\n\r\n^RSSI:20\r\n+CMGL: 1,0,,23\r\n{PDU}\r\n\r\nOK\r\n"
    );
    let cmd = Command::cmgl(4).unwrap();
    check(
        Some(&cmd),
        bytes.as_bytes(),
        &[
            info("+CMGL: 0,1,,35"),
            info(p1),
            urc(Urc::Rssi(20)),
            info("+CMGL: 1,0,,23"),
            info(PDU),
            ok(),
        ],
    );
}

#[test]
fn cmgr_zte_empty_stat() {
    let pdu = "0006D60B911326880736F4111011719551401110117195714000";
    let bytes = format!("\r\n+CMGR: ,,27\r\n{pdu}\r\n\r\nOK\r\n");
    check(
        Some(&Command::cmgr(3)),
        bytes.as_bytes(),
        &[info("+CMGR: ,,27"), info(pdu), ok()],
    );
}

#[test]
fn crcrlf_line_endings() {
    // SIMCom \r\r\n around +CRING/+RXDTMF; Huawei `^MODE: 2\r\r\n` [MM; PGM].
    let bytes = b"\r\n+CRING: VOICE\r\r\n\r\n+RXDTMF: 8\r\r\n^MODE: 2\r\r\n";
    check(
        None,
        bytes,
        &[
            urc(Urc::CRing("VOICE".into())),
            urc(Urc::Dtmf('8')),
            urc(Urc::Mode {
                mode: 2,
                submode: None,
            }),
        ],
    );
}

#[test]
fn leading_nuls_and_garbage() {
    check(Some(&Command::at()), b"\0\0\0\r\nOK\r\n", &[ok()]);
    check(
        Some(&Command::at()),
        b"\xff\xfe\x01junk\r\nOK\r\n",
        &[Item::Garbage(b"\xff\xfe\x01junk".to_vec()), ok()],
    );
    check(
        None,
        b"\x13\x11noise\r\nRING\r\n",
        &[Item::Garbage(b"\x13\x11noise".to_vec()), urc(Urc::Ring)],
    );
}

#[test]
fn non_standard_finals() {
    // Huawei E1752/K3715 [PGM fakemodems].
    check(
        Some(&Command::cusd_like()),
        b"\r\nCOMMAND NOT SUPPORT\r\n",
        &[Item::Final(FinalResult::CommandNotSupport)],
    );
    // Wavecom `+CPIN: READY` without OK.
    check(
        Some(&Command::cpin_query_no_ok()),
        b"\r\n+CPIN: READY\r\n",
        &[info("+CPIN: READY"), ok()],
    );
    // A standard modem with the standard command.
    check(
        Some(&Command::cpin_query()),
        b"\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n",
        &[info("+CPIN: SIM PIN"), ok()],
    );
    check(
        Some(&Command::cmee(1).unwrap()),
        b"\r\n+CME ERROR: 515\r\n",
        &[Item::Final(FinalResult::CmeError(ErrorCode::Numeric(515)))],
    );
    // chan_dongle's glued `ERROR+CNUM:`.
    check(
        Some(&Command::cnum()),
        b"\r\nERROR+CNUM: \"\",\"\",145\r\n",
        &[
            Item::Final(FinalResult::Error),
            urc(Urc::Unknown("+CNUM: \"\",\"\",145".into())),
        ],
    );
}

impl Command {
    /// A command with no declared answer, standing in for `AT+CUSD=1` in the Huawei test.
    fn cusd_like() -> Command {
        Command::cvhu0()
    }
}

#[test]
fn call_end_codes_depend_on_the_command() {
    check(
        Some(&Command::ata()),
        b"\r\nNO CARRIER\r\n",
        &[Item::Final(FinalResult::CallEnd(CallEnd::NoCarrier))],
    );
    check(
        Some(&Command::atd("123").unwrap()),
        b"\r\nBUSY\r\n",
        &[Item::Final(FinalResult::CallEnd(CallEnd::Busy))],
    );
    check(
        Some(&Command::csq()),
        b"\r\nNO CARRIER\r\n\r\nOK\r\n",
        &[urc(Urc::CallEnded(CallEnd::NoCarrier)), ok()],
    );
    check(
        None,
        b"\r\nNO ANSWER\r\n",
        &[urc(Urc::CallEnded(CallEnd::NoAnswer))],
    );
}

#[test]
fn declared_prefix_is_info_known_urc_otherwise() {
    let bytes = b"\r\n+CREG: 2,1,9110,7E6\r\n\r\nOK\r\n\r\n+CREG: 5\r\n";
    let items = chunked(Some(&Command::creg_query()), bytes, &[]);
    assert_eq!(items[..2], [info("+CREG: 2,1,9110,7E6"), ok()]);
    assert!(matches!(&items[2], Item::Urc(Urc::Registration(r)) if r.stat == 5 && r.n.is_none()));
    // Boot `+CPIN: READY` with nothing in flight is a URC.
    check(
        None,
        b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n",
        &[
            urc(Urc::Ready),
            urc(Urc::Cfun(1)),
            urc(Urc::Cpin(PinState::Ready)),
        ],
    );
}

#[test]
fn bare_answers() {
    check(
        Some(&Command::cgsn()),
        b"AT+CGSN\r\r\n867962040123456\r\n\r\nRING\r\n\r\nOK\r\n",
        &[
            Item::Echo("AT+CGSN".into()),
            info("867962040123456"),
            urc(Urc::Ring),
            ok(),
        ],
    );
    // Without a bare-answer command the same digits are an unknown URC.
    check(
        None,
        b"\r\n867962040123456\r\n",
        &[urc(Urc::Unknown("867962040123456".into()))],
    );
}

#[test]
fn two_line_urcs() {
    let p = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37";
    check(
        None,
        format!("\r\n+CMT: ,36\r\n{p}\r\n").as_bytes(),
        &[urc(Urc::Deliver {
            alpha: None,
            length: 36,
            pdu: p.into(),
        })],
    );
    let sr = "0006D60B911326880736F4111011719551401110117195714000";
    check(
        Some(&Command::csq()),
        format!("\r\n+CDS: 25\r\n{sr}\r\n\r\n+CSQ: 9,0\r\n\r\nOK\r\n").as_bytes(),
        &[
            urc(Urc::StatusReport {
                length: 25,
                pdu: sr.into(),
            }),
            info("+CSQ: 9,0"),
            ok(),
        ],
    );
    // A header whose PDU line never came: the header alone, then the next line as usual.
    check(
        None,
        b"\r\n+CMT: ,36\r\nRING\r\n",
        &[urc(Urc::Unknown("+CMT: ,36".into())), urc(Urc::Ring)],
    );
}

#[test]
fn stray_final_without_command() {
    check(None, b"\r\nOK\r\n", &[ok()]);
}

#[test]
fn overflow_is_bounded_and_recovers() {
    let mut long = vec![b'A'; MAX_LINE + 10];
    long.extend_from_slice(b"\r\nOK\r\n");
    let expected = [
        Item::Overflow {
            dropped: MAX_LINE + 11,
        },
        ok(),
    ];
    assert_eq!(chunked(Some(&Command::at()), &long, &[]), expected);
    let cuts: Vec<usize> = (1..long.len()).step_by(97).collect();
    assert_eq!(chunked(Some(&Command::at()), &long, &cuts), expected);
    // A babbling port never makes the buffer grow past the cap plus one read.
    let mut d = Digester::new();
    for _ in 0..1000 {
        d.feed(&[b'x'; 512]);
        assert_eq!(d.next_item(), None);
        assert!(d.buffered() <= MAX_LINE + 512);
    }
    d.feed(b"\r\nRING\r\n");
    assert!(matches!(d.next_item(), Some(Item::Overflow { dropped }) if dropped == 512_001));
    assert_eq!(d.next_item(), Some(urc(Urc::Ring)));
}

#[test]
fn raw_bytes_after_connect() {
    let mut d = fresh(Some(&Command::at()));
    let payload = b"\r\nOK\r\n\x00\xffbinary";
    let mut bytes = b"\r\nCONNECT\r\n".to_vec();
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(b"\r\n+QFDWL: 16,613e\r\n\r\nOK\r\n");
    d.feed(&bytes);
    assert_eq!(d.next_item(), Some(Item::Final(FinalResult::Connect(None))));
    assert!(
        d.in_flight(),
        "CONNECT keeps the command in flight for the data phase"
    );
    assert_eq!(d.take_raw(payload.len()), payload.to_vec());
    assert_eq!(
        d.next_item(),
        Some(urc(Urc::Unknown("+QFDWL: 16,613e".into())))
    );
    assert_eq!(d.next_item(), Some(ok()));
    assert!(!d.in_flight());
    assert_eq!(d.take_raw(10), Vec::<u8>::new());
}

#[test]
fn final_ends_the_command() {
    let mut d = fresh(Some(&Command::cgsn()));
    d.feed(b"\r\nOK\r\n\r\n12345678901234\r\n");
    assert_eq!(d.next_item(), Some(ok()));
    assert!(!d.in_flight());
    assert_eq!(
        d.next_item(),
        Some(urc(Urc::Unknown("12345678901234".into())))
    );
}

#[test]
fn find_newline_matches_naive_search() {
    for len in 0..40 {
        for at in 0..=len {
            let mut v = vec![b'a'; len];
            if at < len {
                v[at] = b'\n';
            }
            assert_eq!(find_newline(&v), v.iter().position(|&b| b == b'\n'));
        }
    }
    assert_eq!(find_newline(b"\x8a\x0b\x8a\x0a"), Some(3));
}

/// Pieces a realistic transcript is made of, including odd framing.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![
        b"\r\nOK\r\n".to_vec(),
        b"\r\nERROR\r\n".to_vec(),
        b"\r\n+CME ERROR: 10\r\n".to_vec(),
        b"\r\n> ".to_vec(),
        b"\r\n+CMTI: \"SM\",3\r\n".to_vec(),
        b"\r\n+CMGL: 1,0,,23\r\n".to_vec(),
        format!("{PDU}\r\n").into_bytes(),
        format!("{PDU}\x1a").into_bytes(),
        b"\r\n+CMT: ,23\r\n".to_vec(),
        b"\r\n+CSQ: 18,99\r\n".to_vec(),
        b"\r\nRING\r\r\n".to_vec(),
        b"\r\nNO CARRIER\r\n".to_vec(),
        b"\0\0".to_vec(),
        b"\r".to_vec(),
        b"\n".to_vec(),
        b">".to_vec(),
        b" ".to_vec(),
        b"AT+CMGS=23\r".to_vec(),
        b"\r\n+CREG: 1,\"00C3\",\"0000D2A1\",7\r\n".to_vec(),
        b"\r\nERROR+CNUM: 1\r\n".to_vec(),
        b"\xff\xfe".to_vec(),
        vec![b'Z'; 40],
    ])
}

fn any_command() -> impl Strategy<Value = Option<Command>> {
    prop::sample::select(vec![
        None,
        Some(Command::cmgs(PDU).unwrap()),
        Some(Command::cmgl(4).unwrap()),
        Some(Command::cgsn()),
        Some(Command::ata()),
        Some(Command::cpin_query_no_ok()),
        Some(Command::creg_query()),
    ])
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(
        cmd in any_command(),
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(0usize..600, 0..20),
        cap in 16usize..200,
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut d = Digester::with_max_line(cap);
        if let Some(c) = &cmd { d.begin(c); }
        let mut start = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            let end = cut.clamp(start, bytes.len());
            d.feed(&bytes[start..end]);
            while d.next_item().is_some() {}
            prop_assert!(d.buffered() <= cap + (end - start) + 1);
            start = end;
        }
    }

    #[test]
    fn chunking_does_not_change_items(
        cmd in any_command(),
        pieces in prop::collection::vec(piece(), 0..30),
        raw in prop::collection::vec(any::<u8>(), 0..40),
        cuts in prop::collection::vec(0usize..2000, 0..30),
    ) {
        let mut bytes: Vec<u8> = pieces.concat();
        bytes.extend_from_slice(&raw);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let whole = chunked(cmd.as_ref(), &bytes, &[]);
        prop_assert_eq!(&chunked(cmd.as_ref(), &bytes, &cuts), &whole);
        let every: Vec<usize> = (1..bytes.len()).collect();
        prop_assert_eq!(&chunked(cmd.as_ref(), &bytes, &every), &whole);
    }

    #[test]
    fn chunking_invariant_with_small_cap(
        bytes in prop::collection::vec(prop::sample::select(vec![b'a', b'\r', b'\n', b'>', b' ', 0u8]), 0..300),
        cuts in prop::collection::vec(0usize..300, 0..30),
    ) {
        let cmd = Command::cmgs(PDU).unwrap();
        let run = |cuts: &[usize]| {
            let mut d = Digester::with_max_line(16);
            d.begin(&cmd);
            let mut out = Vec::new();
            let mut start = 0;
            for &cut in cuts.iter().chain([bytes.len()].iter()) {
                let end = cut.clamp(start, bytes.len());
                d.feed(&bytes[start..end]);
                out.extend(drain(&mut d));
                start = end;
            }
            out
        };
        let mut cuts = cuts;
        cuts.sort_unstable();
        prop_assert_eq!(run(&cuts), run(&[]));
    }
}

#[test]
fn connect_is_the_prompt_of_an_upload() {
    // Quectel AT+QFUPL: CONNECT opens the data phase; the size and checksum follow the data.
    let cmd = Command::qfupl("UFS:greet.wav", b"abcd", 30).unwrap();
    check(Some(&cmd), b"\r\nCONNECT\r\n", &[Item::Prompt]);
    let mut d = fresh(Some(&cmd));
    d.feed(b"\r\nCONNECT\r\n");
    assert_eq!(drain(&mut d), vec![Item::Prompt]);
    d.feed(b"\r\n+QFUPL: 4,c2c4\r\n\r\nOK\r\n");
    assert_eq!(
        drain(&mut d),
        vec![info("+QFUPL: 4,c2c4"), Item::Final(FinalResult::Ok)]
    );
    // Other commands keep CONNECT as a final result.
    let plain = Command::at();
    check(
        Some(&plain),
        b"\r\nCONNECT\r\n",
        &[Item::Final(FinalResult::Connect(None))],
    );
}
