//! Wall-clock time in the units the rest of the crate speaks: unix milliseconds (the store's
//! `*_at` columns, dispatch's `Millis`) and unix seconds (the simulator's clock, segments), and the
//! one RFC 3339 rendering used on the admin wire.
//!
//! It owns nothing else. Pure layers (`dispatch`, `community`) never read the clock: time reaches
//! them as an argument so their tests are exact (docs/architecture.md, "Time"); only the layers that
//! act in the world (daemon wiring, the dispatch runner, voice, the simulator) call [`now_ms`].
//!
//! A clock before 1970 reads as 0 and one past `i64::MAX` ms saturates instead of panicking: a Pi
//! without a real-time clock boots at 1970 until NTP answers, and the gateway must keep working.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// RFC 3339 in UTC for unix milliseconds (`2023-11-14T22:13:20.123Z`); a value outside jiff's
/// range (years beyond ±9999) is shown as the raw number rather than failing a whole listing.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// RFC 3339 in UTC for unix seconds.
pub fn rfc3339_secs(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_secs(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
        assert!((now_secs() - now_ms() / 1000).abs() <= 1);
    }
}
