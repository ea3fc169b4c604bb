//! End-to-end use of `gsmgate::at` the way the modem actor drives it: begin a command, write it to
//! a scripted modem, feed the modem's answer in small reads, pull items until the final result (or
//! the prompt, then write the PDU body), and turn the collected Info lines into typed values.
//! The scripted modem has echo on for the first commands and sends URCs at awkward moments.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gsmgate::at::response::{self, PinState};
use gsmgate::at::urc::StorageIndex;
use gsmgate::at::{Command, Digester, FinalResult, Item, Urc};

/// A modem that answers each written line from a script, echoing while `echo` is on.
struct ScriptedModem {
    echo: bool,
    pending: Vec<u8>,
}

const PDU_IN: &str =
    "07917248014000F3240B917247587706F400003110824115248012C8329BFD06C9C373B8B82C97E741F034";
const PDU_OUT: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";

impl ScriptedModem {
    fn write(&mut self, bytes: &[u8]) {
        if self.echo {
            self.pending.extend_from_slice(bytes);
        }
        let answer: String = match bytes {
            b"ATE0\r" => {
                self.echo = false;
                "\r\nOK\r\n".into()
            }
            b"AT+CPIN?\r" => "\r\n+CMTI: \"SM\",-1\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n".into(),
            b"AT+CGSN\r" => "\r\n867962040123456\r\n\r\nOK\r\n".into(),
            b"AT+CSQ\r" => "\r\n+CSQ: 18,99\r\n\r\n^RSSI:18\r\nOK\r\n".into(),
            b"AT+CREG?\r" => "\r\n+CREG: 2,1,9110,7E6\r\n\r\nOK\r\n".into(),
            b"AT+CMGL=4\r" => format!(
                "\r\n+CMGL: 1,0,,35\r\n{PDU_IN}\r\n\r\nRING\r\n+CMGL: 2,1,,35\r\n{PDU_IN}\r\n\r\nOK\r\n"
            ),
            b"AT+CMGS=23\r" => "\r\n+ZPASR: \"UMTS\"\r\n\r\n> ".into(),
            [.., 0x1A] => {
                "\r\n+CMTI: \"SM\",4\r\n\r\n+CMGS: 17\r\n\r\nOK\r\n\r\n+CDSI: \"SR\",2\r\n".into()
            }
            b"AT+CMGD=9\r" => "\r\n+CMS ERROR: 321\r\n".into(),
            _ => "\r\nERROR\r\n".into(),
        };
        self.pending.extend_from_slice(answer.as_bytes());
    }

    /// One read of at most 7 bytes, so every answer arrives split.
    fn read(&mut self) -> Vec<u8> {
        let n = self.pending.len().min(7);
        self.pending.drain(..n).collect()
    }
}

/// What the actor gets back for one command.
struct Outcome {
    info: Vec<String>,
    result: FinalResult,
}

/// The actor's loop for one command; URCs go to `events`.
fn execute(
    d: &mut Digester,
    modem: &mut ScriptedModem,
    cmd: &Command,
    events: &mut Vec<Urc>,
) -> Outcome {
    d.begin(cmd);
    modem.write(cmd.bytes());
    let mut info = Vec::new();
    for _ in 0..10_000 {
        d.feed(&modem.read());
        while let Some(item) = d.next_item() {
            match item {
                Item::Urc(u) => events.push(u),
                Item::Info(line) => info.push(line),
                Item::Prompt => {
                    modem.write(cmd.body().expect("prompt only for commands with a body"))
                }
                Item::Final(result) => return Outcome { info, result },
                Item::Echo(_) | Item::Garbage(_) | Item::Overflow { .. } => {}
            }
        }
    }
    panic!("no final result for {:?}", cmd.text());
}

#[test]
fn actor_flow_init_list_send() {
    let mut modem = ScriptedModem {
        echo: true,
        pending: b"\0\0\r\nRDY\r\n".to_vec(),
    };
    let mut d = Digester::new();
    let mut events = Vec::new();

    let out = execute(&mut d, &mut modem, &Command::ate(false), &mut events);
    assert_eq!(out.result, FinalResult::Ok);
    assert_eq!(events, vec![Urc::Ready], "boot URC before the first answer");

    let out = execute(&mut d, &mut modem, &Command::cpin_query(), &mut events);
    assert_eq!(response::parse_cpin(&out.info[0]), Ok(PinState::Ready));
    assert_eq!(
        events.last(),
        Some(&Urc::NewMessage(StorageIndex {
            storage: "SM".into(),
            index: None
        }))
    );

    let out = execute(&mut d, &mut modem, &Command::cgsn(), &mut events);
    assert_eq!(response::parse_imei(&out.info).unwrap(), "867962040123456");

    let out = execute(&mut d, &mut modem, &Command::csq(), &mut events);
    assert_eq!(out.info.len(), 1);
    assert_eq!(response::parse_csq(&out.info[0]).unwrap().dbm(), Some(-77));
    assert_eq!(events.last(), Some(&Urc::Rssi(18)));

    let out = execute(&mut d, &mut modem, &Command::creg_query(), &mut events);
    let reg = response::parse_creg(&out.info[0]).unwrap();
    assert!(reg.is_registered());
    assert_eq!(reg.lac, Some(0x9110));

    let out = execute(&mut d, &mut modem, &Command::cmgl(4).unwrap(), &mut events);
    assert_eq!(out.result, FinalResult::Ok);
    let listed: Vec<_> = response::parse_cmgl(&out.info)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        listed.iter().map(|m| m.index).collect::<Vec<_>>(),
        vec![Some(1), Some(2)]
    );
    assert!(listed.iter().all(|m| m.pdu == PDU_IN && m.length == 35));
    assert_eq!(
        events.last(),
        Some(&Urc::Ring),
        "RING inside the listing is an event"
    );

    let before = events.len();
    let cmd = Command::cmgs(PDU_OUT).unwrap();
    let out = execute(&mut d, &mut modem, &cmd, &mut events);
    assert_eq!(out.result, FinalResult::Ok);
    assert_eq!(response::parse_cmgs(&out.info[0]), Ok(17));
    assert_eq!(
        events[before..],
        [
            Urc::Zpasr("UMTS".into()),
            Urc::NewMessage(StorageIndex {
                storage: "SM".into(),
                index: Some(4)
            })
        ]
    );

    // The status report URC that followed the OK is still in the buffer: the idle actor drains it.
    let mut idle = Vec::new();
    while !modem.pending.is_empty() {
        d.feed(&modem.read());
        idle.extend(std::iter::from_fn(|| d.next_item()));
    }
    assert_eq!(
        idle,
        vec![Item::Urc(Urc::StatusReportStored(StorageIndex {
            storage: "SR".into(),
            index: Some(2)
        }))]
    );

    let out = execute(&mut d, &mut modem, &Command::cmgd(9), &mut events);
    assert!(out.result.is_error());
}
