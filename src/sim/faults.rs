//! Fault injection: the faults a test or demo can switch on per modem, the per-modem fault state
//! the state machine consults, and the small deterministic random source used for rates, latency
//! and split writes. It owns no I/O: `pty.rs` acts on unplug/replug/split writes, `modem.rs` on the
//! rest.
//!
//! The random source is a seeded SplitMix64 rather than a crate: a run with the same seed and the
//! same input produces the same faults, which keeps failing tests reproducible.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// A fault to inject into one modem (control command `fault`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Fail sends (`AT+CMGS`/`AT+CMSS`) with `+CMS ERROR: <code>`: the next `count` sends, or a
    /// fraction `rate` (0.0–1.0) of all sends until cleared. Neither given means the next send.
    CmsError {
        code: u16,
        count: Option<u32>,
        rate: Option<f64>,
    },
    /// Stop injecting send errors.
    ClearCmsError,
    /// Write bytes that are not AT protocol: the given hex, or `count` random bytes.
    Garbage {
        hex: Option<String>,
        count: Option<usize>,
    },
    /// Write every response in random small chunks (1–`max_chunk` bytes) with short pauses.
    SplitWrites { on: bool, max_chunk: Option<usize> },
    /// The modem stops answering commands (URCs continue, like a hung Huawei E1550).
    /// `on: false` also cancels a pending [`Fault::StallAfterSend`].
    Stall { on: bool },
    /// The next `AT+CMGS` goes through (the network takes the message), then the modem stalls
    /// before its `+CMGS: <mr>` answer comes out: the answer is swallowed, as in the stall
    /// issue #14 reports. Ended by `stall` with `on: false`.
    StallAfterSend,
    /// The tty goes away: symlink removed, pseudo-terminal closed.
    Unplug,
    /// A new pseudo-terminal appears behind the same symlink; the modem boots.
    Replug,
    /// The modem reboots: echo and defaults come back, followed by the profile's boot lines.
    Reboot,
    /// Fill the SIM message storage to capacity.
    StorageFull,
    /// Lose the network: `+CREG: 0`, sends fail with `+CMS ERROR: 331`.
    Deregister,
    /// Register again (home network).
    Register,
    /// Set the signal quality reported by `AT+CSQ` (0–31, 99 unknown).
    Signal { rssi: u8 },
}

/// A seeded SplitMix64 generator (Steele, Lea, Flood 2014); not for cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi` (returns `lo` if `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Per-modem fault switches consulted by the state machine and the pty task.
#[derive(Debug, Clone, Default)]
pub struct FaultState {
    /// Error codes for the next sends, consumed front first.
    pub cms_next: VecDeque<u16>,
    /// Fail this fraction of sends with this code.
    pub cms_rate: Option<(u16, f64)>,
    /// Split writes into chunks of at most this many bytes.
    pub split_writes: Option<usize>,
    pub stall: bool,
    /// Stall right after the next send is handed to the network, swallowing its answer.
    pub stall_after_send: bool,
}

impl FaultState {
    /// The error a send must fail with now, if any (consumes one queued error).
    pub fn send_error(&mut self, rng: &mut Rng) -> Option<u16> {
        if let Some(code) = self.cms_next.pop_front() {
            return Some(code);
        }
        match self.cms_rate {
            Some((code, rate)) if rng.unit() < rate => Some(code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let x = a.range(3, 9);
            assert_eq!(x, b.range(3, 9));
            assert!((3..=9).contains(&x));
            let u = a.unit();
            b.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(Rng::new(1).range(5, 5), 5);
    }

    #[test]
    fn queued_errors_come_first_then_rate() {
        let mut f = FaultState::default();
        let mut rng = Rng::new(1);
        f.cms_next.extend([500, 332]);
        assert_eq!(f.send_error(&mut rng), Some(500));
        assert_eq!(f.send_error(&mut rng), Some(332));
        assert_eq!(f.send_error(&mut rng), None);
        f.cms_rate = Some((42, 1.0));
        assert_eq!(f.send_error(&mut rng), Some(42));
        f.cms_rate = Some((42, 0.0));
        assert_eq!(f.send_error(&mut rng), None);
    }

    #[test]
    fn fault_json_shape() {
        let f: Fault =
            serde_json::from_str(r#"{"kind":"cms_error","code":500,"count":2}"#).unwrap();
        assert_eq!(
            f,
            Fault::CmsError {
                code: 500,
                count: Some(2),
                rate: None
            }
        );
        let f: Fault = serde_json::from_str(r#"{"kind":"unplug"}"#).unwrap();
        assert_eq!(f, Fault::Unplug);
        let f: Fault = serde_json::from_str(r#"{"kind":"stall_after_send"}"#).unwrap();
        assert_eq!(f, Fault::StallAfterSend);
    }
}
