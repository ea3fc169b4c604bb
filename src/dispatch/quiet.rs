//! Quiet hours in the recipient's local time: when a held message may go out.
//!
//! Default 21:00–08:00 (`QuietHours::DEFAULT`, the TCPA window: no solicitation before 8 am or
//! after 9 pm at the called party's location, 47 CFR 64.1200(c)(1)), read as wall-clock time in
//! the recipient's zone; a window with `start > end` wraps over midnight. Messages are
//! *deferred* to the end of the window, never dropped here; only their TTL ([`super::Ttl`]) can
//! end them. Which kinds obey ([`QuietPolicy::applies_to`]): bulk always; replies and compliance
//! texts never, because they answer something the member just sent (a HELP at 23:00 gets its
//! answer at 23:00, as CTIA expects); the leader's one-to-one `direct` messages only if configured
//! (default no: a person chose to text one person now). A broadcast or segment may override the
//! window or switch it off ([`QuietOverride`]).
//!
//! Daylight-saving days are why this works on civil times and converts with the zone's rules
//! rather than adding hours: on a spring-forward night the quiet window is an hour shorter in real
//! time, on a fall-back night an hour longer. When the end of a window names a wall-clock time the
//! zone skips (a gap), the window ends at the transition (the first instant whose wall clock is
//! past it); when it names a time that occurs twice (a fold), at its first occurrence. Wall-clock
//! semantics are kept strictly: a window ending inside a fold is quiet again during the repeated
//! hour, and [`next_sendable`] says so when asked then. Minute precision, like the config.
//!
//! Out-of-range instants (beyond jiff's years −9999..9999) answer `Timestamp::MAX`: hold, never
//! send early.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};

use super::Millis;
use crate::dispatch::settings::{DispatchConfig, QuietHours};
use crate::model::MessageKind;

/// A per-broadcast or per-segment override of the configured quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuietOverride {
    /// Use the configured window.
    #[default]
    Inherit,
    /// No quiet hours for this send (an urgent broadcast).
    Off,
    /// A different window.
    Window(QuietHours),
}

/// Which messages wait for quiet hours to end, and which window applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietPolicy {
    /// `None` = quiet hours disabled.
    pub hours: Option<QuietHours>,
    /// Whether the leader's one-to-one messages obey quiet hours. No config key yet: default no.
    pub direct_obeys: bool,
}

impl QuietPolicy {
    pub fn from_config(cfg: &DispatchConfig) -> Self {
        QuietPolicy {
            hours: cfg.quiet_hours,
            direct_obeys: false,
        }
    }

    /// Whether quiet hours hold messages of this kind at all.
    pub fn applies_to(&self, kind: MessageKind) -> bool {
        match kind {
            MessageKind::Bulk => true,
            MessageKind::Direct => self.direct_obeys,
            MessageKind::Reply | MessageKind::Compliance => false,
        }
    }

    /// The window that holds a message of `kind` under `over`, if any.
    pub fn window_for(&self, kind: MessageKind, over: QuietOverride) -> Option<QuietHours> {
        if !self.applies_to(kind) {
            return None;
        }
        match over {
            QuietOverride::Inherit => self.hours,
            QuietOverride::Off => None,
            QuietOverride::Window(w) => Some(w),
        }
    }

    /// Earliest instant (ms) `>= now_ms` a message of `kind` to a recipient in `tz` may go out.
    pub fn not_before(
        &self,
        kind: MessageKind,
        over: QuietOverride,
        now_ms: Millis,
        tz: &TimeZone,
    ) -> Millis {
        match self.window_for(kind, over) {
            None => now_ms,
            Some(w) => next_sendable_ms(now_ms, tz, &w),
        }
    }
}

fn minutes(hm: (u8, u8)) -> i32 {
    i32::from(hm.0) * 60 + i32::from(hm.1)
}

fn is_empty(q: &QuietHours) -> bool {
    minutes(q.start) == minutes(q.end)
}

fn local_is_quiet(t: Timestamp, tz: &TimeZone, q: &QuietHours) -> bool {
    let dt = tz.to_datetime(t);
    // hour() and minute() are 0..=23 and 0..=59, so the casts cannot lose anything.
    q.contains(dt.hour() as u8, dt.minute() as u8)
}

/// `date` at `hm` local, or `None` out of range.
fn at(date: Date, hm: (u8, u8)) -> Option<DateTime> {
    let h = i8::try_from(hm.0).ok()?;
    let m = i8::try_from(hm.1).ok()?;
    DateTime::new(date.year(), date.month(), date.day(), h, m, 0, 0).ok()
}

/// The first instant after `after` whose local wall-clock time in `tz` is `dt` or later: the
/// transition for a time in a gap; for a time in a fold, its first occurrence after `after`.
fn first_instant_at_or_after(tz: &TimeZone, dt: DateTime, after: Timestamp) -> Option<Timestamp> {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        AmbiguousOffset::Fold {
            before,
            after: later,
        } => {
            let first = before.to_timestamp(dt).ok()?;
            if first > after {
                Some(first)
            } else {
                later.to_timestamp(dt).ok()
            }
        }
        AmbiguousOffset::Gap { before, .. } => {
            // `dt` read with the pre-gap offset lies after the transition; the transition just
            // before it is where the skipped wall-clock range ends.
            let past = before.to_timestamp(dt).ok()?;
            Some(
                tz.preceding(past)
                    .next()
                    .map_or(past, |transition| transition.timestamp()),
            )
        }
    }
}

/// When a message held by `quiet` may go out to a recipient in `tz`: `now` if it is outside the
/// window there, else the end of the window (DST-aware, see the module docs).
pub fn next_sendable(now: Timestamp, tz: &TimeZone, quiet: &QuietHours) -> Timestamp {
    if is_empty(quiet) {
        return now;
    }
    let mut t = now;
    // One step normally suffices; a second only when a fold puts the wall clock back inside.
    for _ in 0..4 {
        if !local_is_quiet(t, tz, quiet) {
            return t;
        }
        let local = tz.to_datetime(t);
        let m = i32::from(local.hour()) * 60 + i32::from(local.minute());
        let wraps = minutes(quiet.start) > minutes(quiet.end);
        let end_date = if wraps && m >= minutes(quiet.start) {
            local.date().tomorrow().ok()
        } else {
            Some(local.date())
        };
        let next = end_date
            .and_then(|d| at(d, quiet.end))
            .and_then(|dt| first_instant_at_or_after(tz, dt, t));
        match next {
            Some(n) if n > t => t = n,
            _ => return Timestamp::MAX,
        }
    }
    t
}

/// The first instant `>= now` at which quiet hours begin in `tz` (`now` itself when inside a
/// window); `None` when the window is empty (`start == end`). With [`next_sendable`] it gives the
/// sendable stretches a schedule simulation needs.
pub fn quiet_starts_after(now: Timestamp, tz: &TimeZone, quiet: &QuietHours) -> Option<Timestamp> {
    if is_empty(quiet) {
        return None;
    }
    let mut t = now;
    // A window that lies wholly inside a DST gap does not happen that day: try the next one.
    for _ in 0..4 {
        if local_is_quiet(t, tz, quiet) {
            return Some(t);
        }
        let local = tz.to_datetime(t);
        let m = i32::from(local.hour()) * 60 + i32::from(local.minute());
        let date = if m < minutes(quiet.start) {
            Some(local.date())
        } else {
            local.date().tomorrow().ok()
        };
        let start = date
            .and_then(|d| at(d, quiet.start))
            .and_then(|dt| first_instant_at_or_after(tz, dt, t));
        match start {
            Some(s) if s > t => t = s,
            _ => return Some(Timestamp::MAX),
        }
    }
    Some(t)
}

/// Milliseconds to a timestamp, saturating at jiff's range.
pub(crate) fn ts(ms: Millis) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// [`next_sendable`] in milliseconds, the store's unit.
pub fn next_sendable_ms(now_ms: Millis, tz: &TimeZone, quiet: &QuietHours) -> Millis {
    let t = next_sendable(ts(now_ms), tz, quiet);
    if t == Timestamp::MAX {
        Millis::MAX
    } else {
        t.as_millisecond().max(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::ZonedDateTime;
    use proptest::prelude::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn z(s: &str) -> Timestamp {
        s.parse::<ZonedDateTime>().unwrap().timestamp()
    }

    fn u(s: &str) -> Timestamp {
        s.parse::<Timestamp>().unwrap()
    }

    const DEFAULT: QuietHours = QuietHours::DEFAULT;

    fn q(start: (u8, u8), end: (u8, u8)) -> QuietHours {
        QuietHours { start, end }
    }

    #[test]
    fn outside_the_window_is_now() {
        let tz = zone("America/Chicago");
        let now = z("2024-06-05T14:30:00-05:00[America/Chicago]");
        assert_eq!(next_sendable(now, &tz, &DEFAULT), now);
        let edge = z("2024-06-05T20:59:59-05:00[America/Chicago]");
        assert_eq!(next_sendable(edge, &tz, &DEFAULT), edge);
        let end = z("2024-06-05T08:00:00-05:00[America/Chicago]");
        assert_eq!(next_sendable(end, &tz, &DEFAULT), end);
    }

    #[test]
    fn evening_and_early_morning_wait_for_eight() {
        let tz = zone("America/Chicago");
        let eight = z("2024-06-06T08:00:00-05:00[America/Chicago]");
        for s in [
            "2024-06-05T21:00:00",
            "2024-06-05T23:59:00",
            "2024-06-06T00:00:00",
            "2024-06-06T07:59:59",
        ] {
            let now = z(&format!("{s}-05:00[America/Chicago]"));
            assert_eq!(next_sendable(now, &tz, &DEFAULT), eight, "{s}");
        }
    }

    #[test]
    fn same_day_window_does_not_wrap() {
        let tz = zone("UTC");
        let w = q((12, 0), (14, 0));
        assert_eq!(
            next_sendable(u("2024-01-01T12:30:00Z"), &tz, &w),
            u("2024-01-01T14:00:00Z")
        );
        assert_eq!(
            next_sendable(u("2024-01-01T15:00:00Z"), &tz, &w),
            u("2024-01-01T15:00:00Z")
        );
        assert_eq!(
            next_sendable(u("2024-01-01T11:00:00Z"), &tz, &w),
            u("2024-01-01T11:00:00Z")
        );
        assert_eq!(
            quiet_starts_after(u("2024-01-01T15:00:00Z"), &tz, &w),
            Some(u("2024-01-02T12:00:00Z"))
        );
        assert_eq!(
            quiet_starts_after(u("2024-01-01T11:00:00Z"), &tz, &w),
            Some(u("2024-01-01T12:00:00Z"))
        );
    }

    #[test]
    fn empty_window_never_holds() {
        let tz = zone("UTC");
        let w = q((9, 0), (9, 0));
        let now = u("2024-01-01T09:00:00Z");
        assert_eq!(next_sendable(now, &tz, &w), now);
        assert_eq!(quiet_starts_after(now, &tz, &w), None);
    }

    #[test]
    fn the_same_instant_is_quiet_in_one_zone_and_not_in_another() {
        let now = u("2024-06-05T20:00:00Z"); // 15:00 Chicago, 22:00 Berlin
        assert_eq!(next_sendable(now, &zone("America/Chicago"), &DEFAULT), now);
        assert_eq!(
            next_sendable(now, &zone("Europe/Berlin"), &DEFAULT),
            u("2024-06-06T06:00:00Z")
        );
    }

    #[test]
    fn chicago_spring_forward_night_is_an_hour_shorter() {
        // 2024-03-10 02:00 CST → 03:00 CDT.
        let tz = zone("America/Chicago");
        let now = z("2024-03-09T23:00:00-06:00[America/Chicago]");
        let end = next_sendable(now, &tz, &DEFAULT);
        assert_eq!(end, u("2024-03-10T13:00:00Z")); // 08:00 CDT
        assert_eq!(end.duration_since(now).as_secs(), 8 * 3600);
    }

    #[test]
    fn chicago_fall_back_night_is_an_hour_longer() {
        // 2024-11-03 02:00 CDT → 01:00 CST.
        let tz = zone("America/Chicago");
        let now = z("2024-11-02T23:00:00-05:00[America/Chicago]");
        let end = next_sendable(now, &tz, &DEFAULT);
        assert_eq!(end, u("2024-11-03T14:00:00Z")); // 08:00 CST
        assert_eq!(end.duration_since(now).as_secs(), 10 * 3600);
        // Inside the repeated hour too.
        let rep = z("2024-11-03T01:30:00-06:00[America/Chicago]");
        assert_eq!(next_sendable(rep, &tz, &DEFAULT), end);
    }

    #[test]
    fn berlin_spring_forward_and_fall_back() {
        let tz = zone("Europe/Berlin");
        // 2024-03-31 02:00 CET → 03:00 CEST.
        let now = z("2024-03-30T22:00:00+01:00[Europe/Berlin]");
        let end = next_sendable(now, &tz, &DEFAULT);
        assert_eq!(end, u("2024-03-31T06:00:00Z"));
        assert_eq!(end.duration_since(now).as_secs(), 9 * 3600);
        // 2024-10-27 03:00 CEST → 02:00 CET.
        let now = z("2024-10-26T22:00:00+02:00[Europe/Berlin]");
        let end = next_sendable(now, &tz, &DEFAULT);
        assert_eq!(end, u("2024-10-27T07:00:00Z"));
        assert_eq!(end.duration_since(now).as_secs(), 11 * 3600);
    }

    #[test]
    fn window_ending_in_a_gap_ends_at_the_transition() {
        let tz = zone("America/Chicago");
        let w = q((22, 0), (2, 30)); // 02:30 does not exist on 2024-03-10
        let now = z("2024-03-10T01:00:00-06:00[America/Chicago]");
        assert_eq!(next_sendable(now, &tz, &w), u("2024-03-10T08:00:00Z")); // 03:00 CDT
        let tz = zone("Europe/Berlin");
        let w = q((23, 0), (2, 30));
        let now = z("2024-03-31T01:00:00+01:00[Europe/Berlin]");
        assert_eq!(next_sendable(now, &tz, &w), u("2024-03-31T01:00:00Z")); // 03:00 CEST
    }

    #[test]
    fn window_ending_in_a_fold_ends_at_the_first_occurrence_and_holds_again_in_the_repeat() {
        let tz = zone("America/Chicago");
        let w = q((22, 0), (1, 30)); // 01:30 happens twice on 2024-11-03
        let now = z("2024-11-03T00:30:00-05:00[America/Chicago]");
        assert_eq!(next_sendable(now, &tz, &w), u("2024-11-03T06:30:00Z")); // 01:30 CDT
        let again = z("2024-11-03T01:10:00-06:00[America/Chicago]");
        assert_eq!(next_sendable(again, &tz, &w), u("2024-11-03T07:30:00Z")); // 01:30 CST
    }

    #[test]
    fn window_starting_in_a_gap_starts_at_the_transition() {
        let tz = zone("America/Chicago");
        let w = q((2, 30), (6, 0));
        let now = z("2024-03-10T00:00:00-06:00[America/Chicago]");
        assert_eq!(
            quiet_starts_after(now, &tz, &w),
            Some(u("2024-03-10T08:00:00Z"))
        );
    }

    #[test]
    fn quiet_starts_after_is_now_inside_and_next_start_outside() {
        let tz = zone("Europe/Berlin");
        let inside = z("2024-06-05T23:00:00+02:00[Europe/Berlin]");
        assert_eq!(quiet_starts_after(inside, &tz, &DEFAULT), Some(inside));
        let day = z("2024-06-05T10:00:00+02:00[Europe/Berlin]");
        assert_eq!(
            quiet_starts_after(day, &tz, &DEFAULT),
            Some(z("2024-06-05T21:00:00+02:00[Europe/Berlin]"))
        );
        let early = z("2024-06-05T08:30:00+02:00[Europe/Berlin]");
        assert_eq!(
            quiet_starts_after(early, &tz, &DEFAULT),
            Some(z("2024-06-05T21:00:00+02:00[Europe/Berlin]"))
        );
    }

    #[test]
    fn policy_holds_bulk_only_by_default_and_honours_overrides() {
        let cfg = DispatchConfig::default();
        let p = QuietPolicy::from_config(&cfg);
        let tz = zone("America/Chicago");
        let late = z("2024-06-05T23:00:00-05:00[America/Chicago]").as_millisecond();
        let eight = z("2024-06-06T08:00:00-05:00[America/Chicago]").as_millisecond();
        assert_eq!(
            p.not_before(MessageKind::Bulk, QuietOverride::Inherit, late, &tz),
            eight
        );
        // A HELP reply at 23:00 goes out at 23:00.
        assert_eq!(
            p.not_before(MessageKind::Compliance, QuietOverride::Inherit, late, &tz),
            late
        );
        assert_eq!(
            p.not_before(MessageKind::Reply, QuietOverride::Inherit, late, &tz),
            late
        );
        assert_eq!(
            p.not_before(MessageKind::Direct, QuietOverride::Inherit, late, &tz),
            late
        );
        let strict = QuietPolicy {
            direct_obeys: true,
            ..p
        };
        assert_eq!(
            strict.not_before(MessageKind::Direct, QuietOverride::Inherit, late, &tz),
            eight
        );
        assert_eq!(
            p.not_before(MessageKind::Bulk, QuietOverride::Off, late, &tz),
            late
        );
        let narrow = QuietOverride::Window(q((22, 0), (23, 30)));
        let half = z("2024-06-05T23:30:00-05:00[America/Chicago]").as_millisecond();
        assert_eq!(p.not_before(MessageKind::Bulk, narrow, late, &tz), half);
        // Replies ignore overrides too.
        assert_eq!(p.window_for(MessageKind::Reply, narrow), None);
        let off = QuietPolicy {
            hours: None,
            direct_obeys: false,
        };
        assert_eq!(
            off.not_before(MessageKind::Bulk, QuietOverride::Inherit, late, &tz),
            late
        );
    }

    #[test]
    fn out_of_range_holds_instead_of_sending() {
        let tz = zone("UTC");
        assert_eq!(next_sendable_ms(Millis::MAX, &tz, &DEFAULT), Millis::MAX);
        let late = Timestamp::MAX;
        // 9999-12-31T23:59:59Z is quiet and has no tomorrow.
        assert_eq!(next_sendable(late, &tz, &DEFAULT), Timestamp::MAX);
    }

    proptest! {
        /// For any instant, zone and window: the answer is not before now, is not quiet, and (to
        /// the minute) no earlier non-quiet instant exists; nothing is dropped (the answer is finite).
        #[test]
        fn next_sendable_is_the_first_non_quiet_instant(
            secs in 1_600_000_000i64..1_800_000_000,
            zone_i in 0usize..5,
            sh in 0u8..24, sm in 0u8..60, eh in 0u8..24, em in 0u8..60,
        ) {
            let zones = ["America/Chicago", "Europe/Berlin", "UTC", "Australia/Lord_Howe", "Asia/Kathmandu"];
            let tz = zone(zones[zone_i]);
            let w = q((sh, sm), (eh, em));
            let now = Timestamp::from_second(secs).unwrap();
            let t = next_sendable(now, &tz, &w);
            prop_assert!(t >= now);
            prop_assert!(t < Timestamp::MAX);
            prop_assert!(!local_is_quiet(t, &tz, &w));
            // Every whole minute strictly between now and t is quiet.
            let mut probe = now;
            while probe < t {
                prop_assert!(local_is_quiet(probe, &tz, &w), "{probe} not quiet before {t}");
                probe = Timestamp::from_second(probe.as_second() - probe.as_second().rem_euclid(60) + 60).unwrap();
            }
            if let Some(s) = quiet_starts_after(now, &tz, &w) {
                prop_assert!(s >= now);
                prop_assert!(local_is_quiet(s, &tz, &w));
            }
        }
    }
}
