//! A tiny seedable pseudo-random source for jitter (send spacing, back-off).
//!
//! Jitter only has to decorrelate senders, not resist an adversary, so xorshift64* (Vigna, "An
//! experimental exploration of Marsaglia's xorshift generators", 2016) is enough and keeps the crate
//! free of a `rand` dependency. Being seeded, every schedule in a test is reproducible; the daemon
//! seeds it from the clock.

/// xorshift64* generator. The state is never zero (a zero seed is replaced), since zero is the one
/// state xorshift cannot leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    pub fn new(seed: u64) -> Self {
        XorShift64 {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..=max` (slightly biased for huge `max`, irrelevant for jitter).
    pub fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounds_hold() {
        let mut a = XorShift64::new(42);
        let mut b = XorShift64::new(42);
        for _ in 0..1000 {
            let (x, y) = (a.up_to(2000), b.up_to(2000));
            assert_eq!(x, y);
            assert!(x <= 2000);
        }
        let mut z = XorShift64::new(0);
        assert_ne!(z.next_u64(), 0);
        assert_eq!(XorShift64::new(7).up_to(0), 0);
        let _ = XorShift64::new(7).up_to(u64::MAX);
    }

    #[test]
    fn spreads_over_the_range() {
        let mut r = XorShift64::new(1);
        let mut buckets = [0u32; 10];
        for _ in 0..10_000 {
            buckets[r.up_to(9) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (800..1200).contains(&n)),
            "{buckets:?}"
        );
    }
}
