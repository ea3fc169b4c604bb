//! AT digest throughput over a realistic mixed transcript: `cargo bench --bench at_digest`.
//!
//! The transcript cycles through what a busy gateway modem sends: a `+CMGL` listing with PDU lines,
//! `+CSQ`/`+CREG` answers, an `AT+CMGS` exchange with its prompt, and URC noise (`^RSSI`, `+CMTI`,
//! `RING`/`+CLIP`, `+CREG`) interleaved. Each command is declared with `begin` as the modem actor
//! would, and bytes arrive in 512-byte reads. A plain timing loop (no criterion harness) prints
//! MB/s; the median of several runs is reported because the build machine is small and shared.

use std::time::Instant;

use gsmgate::at::{Command, Digester};

const PDU1: &str = "07917248014000F3240B917247587706F400003110824115248012C8329BFD06C9C373B8B82C97E741F034";
const PDU2: &str = "07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E";
const SUBMIT: &str = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";

/// One cycle of the transcript: (command in flight, modem bytes while it waits).
fn cycle() -> Vec<(Command, Vec<u8>)> {
    let mut cmgl = String::new();
    for i in 0..10 {
        let pdu = if i % 2 == 0 { PDU1 } else { PDU2 };
        cmgl.push_str(&format!("\r\n+CMGL: {i},1,,{}\r\n{pdu}\r\n", pdu.len() / 2 - 8));
        if i == 4 {
            cmgl.push_str("\r\n^RSSI:18\r\n");
        }
    }
    cmgl.push_str("\r\nOK\r\n");
    vec![
        (Command::cmgl(4).expect("valid stat"), cmgl.into_bytes()),
        (Command::csq(), b"\r\n+CSQ: 18,99\r\n\r\nOK\r\n".to_vec()),
        (Command::creg_query(), b"\r\n+CREG: 2,1,\"00C3\",\"0000D2A1\",7\r\n\r\nOK\r\n".to_vec()),
        (
            Command::cmgs(SUBMIT).expect("valid PDU"),
            b"\r\n+ZPASR: \"UMTS\"\r\n\r\n> \r\n+CMTI: \"SM\",4\r\n\r\n+CMGS: 17\r\n\r\nOK\r\n".to_vec(),
        ),
        (Command::cops_query(), b"\r\n+COPS: 0,0,\"CHINA MOBILE\",7\r\n\r\nOK\r\n".to_vec()),
        (
            Command::at(),
            b"\r\nRING\r\n\r\n+CLIP: \"+27821234567\",145,,,,0\r\n\r\n^RSSI:17\r\n\r\n+CREG: 1,\"00C3\",\"0000D2A1\",7\r\n\r\nOK\r\n"
                .to_vec(),
        ),
        (Command::cgsn(), b"\r\n867962040123456\r\n\r\nOK\r\n".to_vec()),
    ]
}

fn run(script: &[(Command, Vec<u8>)], d: &mut Digester) -> usize {
    let mut items = 0;
    for (cmd, bytes) in script {
        d.begin(cmd);
        for read in bytes.chunks(512) {
            d.feed(read);
            while let Some(item) = d.next_item() {
                std::hint::black_box(&item);
                items += 1;
            }
        }
    }
    items
}

fn main() {
    let one = cycle();
    let script: Vec<(Command, Vec<u8>)> = (0..200).flat_map(|_| one.clone()).collect();
    let bytes: usize = script.iter().map(|(_, b)| b.len()).sum();
    let mut d = Digester::new();
    let items = run(&script, &mut d); // warm-up
    let mut rates = Vec::new();
    for _ in 0..15 {
        let start = Instant::now();
        let mut n = 0;
        for _ in 0..5 {
            n += run(&script, &mut d);
        }
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(n);
        rates.push((5 * bytes) as f64 / secs / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "at_digest: transcript {bytes} bytes, {items} items per pass; median {median:.0} MB/s (min {:.0}, max {:.0}) over {} runs",
        rates[0],
        rates[rates.len() - 1],
        rates.len()
    );
    println!("at_digest: {:.1} M items/s", median * 1e6 * items as f64 / bytes as f64 / 1e6);
}
