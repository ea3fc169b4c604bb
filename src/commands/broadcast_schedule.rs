//! When each copy of a broadcast is due: one instant for everyone (`at` in RFC 3339, or now), or
//! a time of day in each member's own zone (`--at 19:00 --local`). Owns parsing the time of day
//! and finding its next occurrence in a zone; it must not decide quiet hours (dispatch holds a
//! due copy until they end) nor touch the store.
//!
//! Why "next occurrence at or after now": a broadcast queued at 20:00 for "19:00 local" reaches
//! members whose 19:00 has already passed tomorrow at 19:00, never "late today" — a member in a
//! zone where it is already evening would otherwise get the text at once, which is what `--local`
//! exists to avoid. A 19:00 that a daylight-saving change skips or repeats resolves as jiff's
//! `compatible` rule does (the later instant for a gap, the earlier for a fold).

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{CommandError, Result};

/// A wall-clock time of day (`19:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub hour: i8,
    pub minute: i8,
}

/// Parses `HH:MM` (or `H:MM`), 24-hour clock.
pub fn parse_local_time(raw: &str) -> Result<LocalTime> {
    let bad = || {
        CommandError::Invalid(format!(
            "at: {raw:?} is not a time of day such as 19:00 (with local, at is the time in each \
             member's zone)"
        ))
    };
    let (h, m) = raw.trim().split_once(':').ok_or_else(bad)?;
    let ok = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(h) || m.len() != 2 || !ok(m) {
        return Err(bad());
    }
    let hour: i8 = h.parse().map_err(|_| bad())?;
    let minute: i8 = m.parse().map_err(|_| bad())?;
    if !(0..=23).contains(&hour) || !(0..=59).contains(&minute) {
        return Err(bad());
    }
    Ok(LocalTime { hour, minute })
}

/// The first instant (unix ms) `>= now_ms` whose wall-clock time in `tz` is `t`: today's when it
/// has not passed there, else tomorrow's. `now_ms` itself when the clock is off the calendar.
pub fn next_local(now_ms: i64, tz: &TimeZone, t: LocalTime) -> i64 {
    let Ok(now) = Timestamp::from_millisecond(now_ms) else {
        return now_ms;
    };
    let today = tz.to_datetime(now).date();
    for day in [Some(today), today.tomorrow().ok()].into_iter().flatten() {
        let at = day.at(t.hour, t.minute, 0, 0);
        if let Ok(z) = tz.to_ambiguous_timestamp(at).compatible() {
            let ms = z.as_millisecond();
            if ms >= now_ms {
                return ms;
            }
        }
    }
    now_ms
}

/// When a copy is due, per member zone name (`None` = the default zone); each zone's time is
/// computed once, so a 100,000-member broadcast calls the tz database once per zone.
pub struct Due {
    now: i64,
    mode: Mode,
}

enum Mode {
    /// Everyone at this instant.
    At(i64),
    /// At this time of day in each zone.
    Local {
        time: LocalTime,
        default: Option<i64>,
        by_zone: HashMap<String, i64>,
    },
}

impl Due {
    pub fn at(start: i64, now: i64) -> Due {
        Due {
            now,
            mode: Mode::At(start),
        }
    }

    pub fn local(time: LocalTime, now: i64) -> Due {
        Due {
            now,
            mode: Mode::Local {
                time,
                default: None,
                by_zone: HashMap::new(),
            },
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self.mode, Mode::Local { .. })
    }

    /// The due instant of a copy to a member in `zone`; `tz` resolves a zone name (unknown
    /// names resolve to the default zone, as dispatch does).
    pub fn of(&mut self, zone: Option<&str>, tz: impl FnOnce(Option<&str>) -> TimeZone) -> i64 {
        let now = self.now;
        let Mode::Local {
            time,
            default,
            by_zone,
        } = &mut self.mode
        else {
            let Mode::At(t) = self.mode else {
                return now;
            };
            return t;
        };
        let cached = match zone {
            None => *default,
            Some(z) => by_zone.get(z).copied(),
        };
        if let Some(t) = cached {
            return t;
        }
        let t = next_local(now, &tz(zone), *time);
        match zone {
            None => *default = Some(t),
            Some(z) => {
                by_zone.insert(z.to_string(), t);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn ms(rfc: &str) -> i64 {
        rfc.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn times_of_day_parse_and_nonsense_is_refused() {
        assert_eq!(
            parse_local_time("19:00").ok(),
            Some(LocalTime {
                hour: 19,
                minute: 0
            })
        );
        assert_eq!(
            parse_local_time("7:05").ok(),
            Some(LocalTime { hour: 7, minute: 5 })
        );
        for bad in [
            "",
            "19",
            "24:00",
            "19:60",
            "19:0",
            "-1:00",
            "19:00Z",
            "ab:cd",
            "2026-03-01T19:00Z",
        ] {
            assert!(parse_local_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_next_local_time_is_today_unless_it_has_passed_there() {
        let seven = LocalTime {
            hour: 19,
            minute: 0,
        };
        let now = ms("2026-03-01T18:00:00Z");
        // UTC: 19:00 is still ahead today.
        assert_eq!(
            next_local(now, &TimeZone::UTC, seven),
            ms("2026-03-01T19:00:00Z")
        );
        // Chicago (13:00 there, UTC-6): 19:00 today there = 01:00 UTC tomorrow.
        assert_eq!(
            next_local(now, &tz("America/Chicago"), seven),
            ms("2026-03-02T01:00:00Z")
        );
        // Tokyo (03:00 on the 2nd there): 19:00 on the 2nd = 10:00 UTC on the 2nd.
        assert_eq!(
            next_local(now, &tz("Asia/Tokyo"), seven),
            ms("2026-03-02T10:00:00Z")
        );
        // Berlin (19:00 there, exactly now): due now; a minute later it is tomorrow's.
        assert_eq!(next_local(now, &tz("Europe/Berlin"), seven), now);
        assert_eq!(
            next_local(now + 60_000, &tz("Europe/Berlin"), seven),
            ms("2026-03-02T18:00:00Z")
        );
    }

    #[test]
    fn due_times_are_cached_per_zone() {
        let mut calls = 0;
        let now = ms("2026-03-01T18:00:00Z");
        let mut d = Due::local(
            LocalTime {
                hour: 19,
                minute: 0,
            },
            now,
        );
        for _ in 0..3 {
            d.of(Some("Asia/Tokyo"), |_| {
                calls += 1;
                tz("Asia/Tokyo")
            });
        }
        assert_eq!(calls, 1);
        assert_eq!(
            Due::at(5, now).of(Some("Asia/Tokyo"), |_| unreachable!()),
            5
        );
    }
}
