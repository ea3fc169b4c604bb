//! PDU encode and decode rates on one core (plain timing loop, `harness = false`).
//!
//! Run with `cargo bench --bench pdu_codec`. Each workload is timed in several rounds and the
//! median rate is printed, because a shared 2-core machine is noisy; the target is ≥ 2 million
//! decodes per second for a typical inbound SMS-DELIVER.

// Test code: a failed setup may panic with unwrap/expect; that is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use gsmgate::pdu::{Address, Direction, Pdu, SubmitOptions, gsm7, hex_to_bytes, submits_for_text};

/// Runs `f` in rounds of about 200 ms; returns the median operations per second.
fn rate(mut f: impl FnMut()) -> f64 {
    // Calibrate the batch size to roughly 200 ms.
    let mut batch = 1_000u64;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        if t.elapsed() > Duration::from_millis(50) {
            break;
        }
        batch *= 4;
    }
    batch *= 4;
    let mut rates: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            batch as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(|a, b| a.total_cmp(b));
    rates[rates.len() / 2]
}

fn report(name: &str, r: f64) {
    println!("{name:<48} {:>10.2} M/s  ({:>6.0} ns/op)", r / 1e6, 1e9 / r);
}

fn main() {
    // docs/pdu.md vectors 3 (7-bit DELIVER, 49 chars), 6 (UCS-2 + UDH, alphanumeric OA), 2
    // (SUBMIT).
    let deliver7 = hex_to_bytes("07915892000000F0040B915892214365F700007040213252242331493A283D0795C3F33C88FE06C9CB6132885EC6D341EDF27C1E3E97E7207B3A0C0A5241E377BB1D7693E72E").unwrap();
    let deliver_ucs2 = hex_to_bytes("07919762020033F1400DD0CDF2396C7EBB010008415072411084618C0500035602010053004D005300200063006F00640065003A00200034003800350036002C00200063006F006E006600690072006D006100740069006F006E0020006F00660020006100730073006F00630069006100740069006F006E0020006200650074007700650065006E0020006100630063006F0075006E007400200061006E00640020004D00650067").unwrap();
    let submit = hex_to_bytes("0011000B916407281553F80000AA0AE8329BFD4697D9EC37").unwrap();
    let report_pdu = hex_to_bytes("0006D60B911326880736F4111011719551401110117195714000").unwrap();

    println!("pdu_codec: one core, median of 7 rounds");
    let d7 = rate(|| {
        black_box(Pdu::decode(black_box(&deliver7), Direction::ToMobile).ok());
    });
    report("decode DELIVER gsm7 49 chars", d7);
    report(
        "decode DELIVER ucs2 + UDH 67 chars",
        rate(|| {
            black_box(Pdu::decode(black_box(&deliver_ucs2), Direction::ToMobile).ok());
        }),
    );
    report(
        "decode SUBMIT gsm7 10 chars",
        rate(|| {
            black_box(Pdu::decode(black_box(&submit), Direction::FromMobile).ok());
        }),
    );
    report(
        "decode STATUS-REPORT",
        rate(|| {
            black_box(Pdu::decode(black_box(&report_pdu), Direction::ToMobile).ok());
        }),
    );

    let ud7 = &deliver7[deliver7.len() - 43..];
    report(
        "  of which: unpack 49 septets to String",
        rate(|| {
            black_box(gsm7::unpack_to_string(black_box(ud7), 0, 49));
        }),
    );
    report(
        "  baseline: push 49 chars into a new String",
        rate(|| {
            let mut s = String::with_capacity(64);
            for c in black_box("It is easy to read text messages via AT commands.").chars() {
                s.push(c);
            }
            black_box(s);
        }),
    );
    report(
        "  of which: one small String allocation",
        rate(|| {
            black_box(String::from(black_box("27838890001")));
        }),
    );

    let to = Address::parse("+15551234567").unwrap();
    let opts = SubmitOptions::default();
    let pdu = Pdu::decode(&deliver7, Direction::ToMobile).unwrap();
    report(
        "encode DELIVER gsm7 49 chars",
        rate(|| {
            black_box(black_box(&pdu).encode());
        }),
    );
    let one = submits_for_text(
        &to,
        "It is easy to read text messages via AT commands.",
        &opts,
    )
    .unwrap();
    report(
        "encode SUBMIT gsm7 49 chars",
        rate(|| {
            black_box(black_box(&one[0]).encode());
        }),
    );
    let long = "Hello from the community gateway! ".repeat(12);
    report(
        "segment+encode 3-part gsm7 text (per text)",
        rate(|| {
            for p in submits_for_text(&to, black_box(&long), &opts).unwrap() {
                black_box(p.encode());
            }
        }),
    );
    let target = 2e6;
    println!(
        "decode target 2.00 M/s: {}",
        if d7 >= target { "met" } else { "NOT met" }
    );
}
