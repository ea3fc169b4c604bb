//! Which modem sends a message, and when: priorities, sticky sender, failover, home assignment.
//!
//! The pool runner keeps one [`Pool`] (modem states and their limiters) and asks it pure questions:
//! [`Pool::place`] (where and when could this message start?) and [`pick_next`] (this modem is
//! free: which queued message goes next?). It reports what happened with [`Pool::begin_part`],
//! [`Pool::end_part`], [`Pool::begin_message`] and [`Pool::set_ready`]. Nothing here sleeps or
//! reads a clock.
//!
//! Rules, and why:
//! - **Strict priority between classes**: compliance > reply > direct > bulk (the store's
//!   priorities, higher first). When a modem's next slot opens, the best due message takes it, so
//!   a broadcast never starves a reply: with a continuous bulk backlog a reply still goes out at
//!   the first slot that opens after it is queued; bulk only gets what is left. Optionally bulk
//!   leaves `bulk_reserve` slots free in every window ([`PoolConfig::bulk_reserve`]) so a reply
//!   need not even wait for a slot; off by default because it costs bulk throughput.
//! - **Sticky sender**: every text to a member goes through their home modem, so their phone
//!   shows one conversation with one number (PEERS.md §5, FrontlineSMS).
//! - **Failover** only when the home modem has been down for `failover_after_minutes` (never when
//!   unset): a modem that blips during a USB reset should not scatter conversations. After a
//!   failover the home moves when `move_home_on_failover` says so ([`Placement::Send::new_home`]).
//! - **Home assignment** for new or imported members: fewest members first, ties to the lowest
//!   index, so it is balanced and deterministic; with geomatch, a modem whose own number shares the
//!   member's country code (and the first national digits, a proxy for the area code) wins first,
//!   so a local number texts local members.
//! - Limits: a modem's own sliding windows (counting part starts by default, or completions,
//!   [`CountAt`]), the pool-wide cap (always starts: parts on different modems overlap, and a start
//!   is the one instant known before the send), and the per-recipient daily cap (exempt:
//!   compliance texts, which must go out).

use super::limits::{CountAt, RateLimiter, RecipientLimiter, Window};
use super::{DispatchError, MINUTE, MessageKind, Millis, XorShift64, backoff};
use crate::config::{DispatchConfig, ModemConfig};

/// Pool-wide planning settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolConfig {
    /// Fail over when the home modem has been down this long; `None` = never.
    pub failover_after_ms: Option<Millis>,
    pub move_home_on_failover: bool,
    /// Slots per window bulk leaves free for higher-priority traffic (0 = bulk may use all).
    pub bulk_reserve: u32,
    /// Which instant of a part's exchange the per-modem limits count.
    pub count_at: CountAt,
}

impl PoolConfig {
    pub fn from_config(cfg: &DispatchConfig) -> Self {
        PoolConfig {
            failover_after_ms: cfg
                .failover_after_minutes
                .map(|m| Millis::from(m).saturating_mul(MINUTE)),
            move_home_on_failover: cfg.move_home_on_failover,
            bulk_reserve: 0,
            count_at: CountAt::Start,
        }
    }
}

/// One modem as the planner sees it.
#[derive(Debug, Clone)]
pub struct ModemSlot {
    pub name: String,
    /// The SIM's own number (E.164), for geomatch.
    pub number: Option<String>,
    /// Registered, initialised and in the pool.
    pub ready: bool,
    /// When it stopped being ready (for failover); `None` while ready.
    pub down_since: Option<Millis>,
    /// No new part starts before this (a part in flight holds `Millis::MAX`).
    pub busy_until: Millis,
    pub limiter: RateLimiter,
}

impl ModemSlot {
    /// A ready modem with its configured limits, and jitter seeded per modem.
    pub fn from_config(m: &ModemConfig, jitter_ms: u64, seed: u64) -> Self {
        ModemSlot {
            name: m.name.clone(),
            number: m.number.clone(),
            ready: m.enabled,
            down_since: None,
            busy_until: Millis::MIN,
            limiter: RateLimiter::new(&m.limits).with_jitter(jitter_ms, XorShift64::new(seed)),
        }
    }

    pub fn new(name: impl Into<String>, limiter: RateLimiter) -> Self {
        ModemSlot {
            name: name.into(),
            number: None,
            ready: true,
            down_since: None,
            busy_until: Millis::MIN,
            limiter,
        }
    }
}

/// A queued message, as much of it as planning needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: i64,
    pub to: String,
    pub kind: MessageKind,
    /// Higher goes first (the store's `priority`).
    pub priority: i64,
    /// The member's home modem (index into the pool); `None` = any modem.
    pub home: Option<usize>,
    /// Not before this: scheduling, quiet hours ([`super::QuietPolicy::not_before`]), back-off.
    pub not_before: Millis,
    pub expires_at: Option<Millis>,
    /// SMS parts (each counts against the limits).
    pub parts: u32,
}

impl Outgoing {
    /// A one-part message of `kind` with the kind's default priority, due at `not_before`.
    pub fn new(id: i64, to: impl Into<String>, kind: MessageKind, not_before: Millis) -> Self {
        Outgoing {
            id,
            to: to.into(),
            kind,
            priority: kind.default_priority(),
            home: None,
            not_before,
            expires_at: None,
            parts: 1,
        }
    }
}

/// Which modems may carry a message right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Its home modem, which is ready.
    Home(usize),
    /// Any ready modem (no home, or a home the pool does not know).
    Any,
    /// The home has been down long enough: any other ready modem.
    Failover { from: usize, move_home: bool },
    /// The home is down and failover is not (yet) allowed.
    WaitForHome {
        home: usize,
        /// When failover becomes allowed; `None` = never (wait for the home).
        failover_at: Option<Millis>,
    },
}

/// The planner's answer for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Start the first part on `modem` at `at`.
    Send {
        modem: usize,
        at: Millis,
        /// Set when this is a failover away from the home modem.
        failover_from: Option<usize>,
        /// Set when the member's home should become `modem`.
        new_home: Option<usize>,
    },
    /// Nothing can take it now; ask again at `until` (`None` = when a modem's state changes).
    Wait { until: Option<Millis> },
    /// It would start at or after its `expires_at`: expire it instead of sending late.
    Expire,
}

/// The pool's state for planning.
#[derive(Debug, Clone)]
pub struct Pool {
    pub modems: Vec<ModemSlot>,
    /// `dispatch.pool_per_minute`.
    pub pool_limiter: Option<RateLimiter>,
    /// `dispatch.per_recipient_per_day`.
    pub recipients: Option<RecipientLimiter>,
    pub cfg: PoolConfig,
}

impl Pool {
    pub fn new(modems: Vec<ModemSlot>, cfg: PoolConfig) -> Self {
        Pool {
            modems,
            pool_limiter: None,
            recipients: None,
            cfg,
        }
    }

    /// The pool as configured: every `[[modem]]` (disabled ones not ready), the pool and recipient
    /// caps, failover settings. `seed` seeds the per-modem jitter.
    pub fn from_config(modems: &[ModemConfig], cfg: &DispatchConfig, seed: u64) -> Self {
        let slots = modems
            .iter()
            .enumerate()
            .map(|(i, m)| ModemSlot::from_config(m, cfg.jitter_ms, seed ^ (i as u64 + 1)))
            .collect();
        Pool {
            modems: slots,
            pool_limiter: cfg
                .pool_per_minute
                .map(|n| RateLimiter::with_windows(&[Window::per_minute(n)])),
            recipients: cfg.per_recipient_per_day.map(RecipientLimiter::new),
            cfg: PoolConfig::from_config(cfg),
        }
    }

    /// Index of the modem called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.modems.iter().position(|m| m.name == name)
    }

    fn slot_mut(&mut self, modem: usize) -> Result<&mut ModemSlot, DispatchError> {
        let len = self.modems.len();
        self.modems
            .get_mut(modem)
            .ok_or(DispatchError::NoSuchModem { index: modem, len })
    }

    /// A modem became ready (`true`) or stopped being ready (`false`) at `now`.
    pub fn set_ready(
        &mut self,
        modem: usize,
        ready: bool,
        now: Millis,
    ) -> Result<(), DispatchError> {
        let slot = self.slot_mut(modem)?;
        if ready {
            slot.ready = true;
            slot.down_since = None;
        } else if slot.ready || slot.down_since.is_none() {
            slot.ready = false;
            slot.down_since = Some(now);
        }
        Ok(())
    }

    /// A part starts on `modem` at `start`: the modem is busy until [`Pool::end_part`]; the pool
    /// cap (and, counting starts, the modem's windows) count it now.
    pub fn begin_part(&mut self, modem: usize, start: Millis) -> Result<(), DispatchError> {
        let count_at = self.cfg.count_at;
        let slot = self.slot_mut(modem)?;
        slot.busy_until = Millis::MAX;
        if count_at == CountAt::Start {
            slot.limiter.record(start);
        }
        if let Some(p) = &mut self.pool_limiter {
            p.record(start);
        }
        Ok(())
    }

    /// A part on `modem` ended at `done`, accepted or not (either way the network may have seen
    /// it, so it stays counted, as in the store's `send_log`). Jitter is drawn from here.
    pub fn end_part(&mut self, modem: usize, done: Millis) -> Result<(), DispatchError> {
        let count_at = self.cfg.count_at;
        let slot = self.slot_mut(modem)?;
        slot.busy_until = done;
        match count_at {
            CountAt::Completion => slot.limiter.record(done),
            CountAt::Start => slot.limiter.jitter_after(done),
        }
        Ok(())
    }

    /// A message to `to` starts at `at` (per-recipient cap; once per message, not per part).
    pub fn begin_message(&mut self, to: &str, at: Millis) {
        if let Some(r) = &mut self.recipients {
            r.record(to, at);
        }
    }

    /// Which modems may carry `msg` at `now` (sticky sender and failover).
    pub fn route(&self, msg: &Outgoing, now: Millis) -> Route {
        let Some((home, slot)) = msg.home.and_then(|h| self.modems.get(h).map(|s| (h, s))) else {
            return Route::Any;
        };
        if slot.ready {
            return Route::Home(home);
        }
        let since = slot.down_since.unwrap_or(now);
        match self.cfg.failover_after_ms {
            None => Route::WaitForHome {
                home,
                failover_at: None,
            },
            Some(after) if now.saturating_sub(since) >= after => Route::Failover {
                from: home,
                move_home: self.cfg.move_home_on_failover,
            },
            Some(after) => Route::WaitForHome {
                home,
                failover_at: Some(since.saturating_add(after)),
            },
        }
    }

    /// Earliest start `>= now` on `modem` for a message of `kind` with `parts` parts, from the
    /// modem's state and limits and the pool cap; `None` if the modem is not ready or a cap of
    /// zero forbids sending.
    pub fn modem_free_at(
        &self,
        modem: usize,
        now: Millis,
        kind: MessageKind,
        parts: u32,
    ) -> Option<Millis> {
        let slot = self.modems.get(modem)?;
        if !slot.ready || slot.busy_until == Millis::MAX {
            return None;
        }
        let t = now.max(slot.busy_until);
        let reserve = if kind == MessageKind::Bulk {
            self.cfg.bulk_reserve
        } else {
            0
        };
        // A message that fits goes out in one burst; one with more parts than a cap goes part by
        // part, so only its first part is placed.
        let t = slot
            .limiter
            .next_allowed_with(t, parts.max(1), reserve)
            .or_else(|| slot.limiter.next_allowed_with(t, 1, reserve))?;
        match &self.pool_limiter {
            None => Some(t),
            Some(p) => p.next_allowed(t),
        }
    }

    /// Earliest time `>= now` the per-recipient cap allows a message of `kind` to `to`.
    fn recipient_free_at(&self, to: &str, kind: MessageKind, now: Millis) -> Option<Millis> {
        match &self.recipients {
            Some(r) if kind != MessageKind::Compliance => r.next_allowed(to, now),
            _ => Some(now),
        }
    }

    /// Where and when `msg` can start, considering every modem it may use at `now`.
    pub fn place(&self, msg: &Outgoing, now: Millis) -> Placement {
        let due = now.max(msg.not_before);
        if backoff::expired(msg.expires_at, due) {
            return Placement::Expire;
        }
        let Some(due) = self.recipient_free_at(&msg.to, msg.kind, due) else {
            return Placement::Wait { until: None };
        };
        let (candidates, failover_from, new_home): (Vec<usize>, _, _) = match self.route(msg, now) {
            Route::Home(h) => (vec![h], None, false),
            Route::Any => ((0..self.modems.len()).collect(), None, false),
            Route::Failover { from, move_home } => (
                (0..self.modems.len()).filter(|&m| m != from).collect(),
                Some(from),
                move_home,
            ),
            Route::WaitForHome { failover_at, .. } => {
                return Placement::Wait { until: failover_at };
            }
        };
        let best = candidates
            .into_iter()
            .filter_map(|m| {
                self.modem_free_at(m, due, msg.kind, msg.parts)
                    .map(|t| (t, m))
            })
            .min();
        match best {
            None => Placement::Wait { until: None },
            Some((at, _)) if backoff::expired(msg.expires_at, at) => Placement::Expire,
            Some((at, modem)) => Placement::Send {
                modem,
                at,
                failover_from,
                new_home: match (failover_from, new_home) {
                    (Some(_), true) => Some(modem),
                    _ => None,
                },
            },
        }
    }
}

/// `modem` can start a message at `now` or later: which of `queue` goes next, and when?
///
/// Among the messages this modem may carry (sticky/failover routes), each gets its earliest start
/// here; the one with the earliest start wins, ties going to the higher priority, then the older
/// id. Because a slot's start does not depend on which message takes it, a due reply always wins
/// a slot a due bulk message could also take: strict priority, and bulk gets the leftover.
/// Returns the index in `queue` and the start.
pub fn pick_next(
    pool: &Pool,
    modem: usize,
    queue: &[Outgoing],
    now: Millis,
) -> Option<(usize, Millis)> {
    let free = |kind: MessageKind, parts: u32| pool.modem_free_at(modem, now, kind, parts);
    // Slot starts depend only on (kind is bulk, parts); cache the common single-part answers.
    let one_bulk = free(MessageKind::Bulk, 1);
    let one_other = free(MessageKind::Reply, 1);
    // (start, higher priority first, older first) → index.
    type Key = (Millis, std::cmp::Reverse<i64>, i64);
    let mut best: Option<(Key, usize)> = None;
    for (i, msg) in queue.iter().enumerate() {
        let allowed = match pool.route(msg, now) {
            Route::Home(h) => h == modem,
            Route::Any => true,
            Route::Failover { from, .. } => from != modem,
            Route::WaitForHome { .. } => false,
        };
        if !allowed {
            continue;
        }
        let slot = match (msg.parts, msg.kind == MessageKind::Bulk) {
            (0 | 1, true) => one_bulk,
            (0 | 1, false) => one_other,
            (p, _) => free(msg.kind, p),
        };
        let Some(slot) = slot else { continue };
        let Some(start) = pool.recipient_free_at(&msg.to, msg.kind, slot.max(msg.not_before))
        else {
            continue;
        };
        // A later start than the slot (message not yet due) must still respect the limiter; it
        // does, since allowed starts are upward closed.
        let key = (start, std::cmp::Reverse(msg.priority), msg.id);
        if best.as_ref().is_none_or(|(k, _)| key < *k) {
            best = Some((key, i));
        }
    }
    best.map(|((start, _, _), i)| (i, start))
}

/// A modem as a candidate home for members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeCandidate {
    /// The SIM's own number, for geomatch.
    pub number: Option<String>,
    /// Disabled or failed modems get no new members.
    pub eligible: bool,
    /// Members whose home it is now.
    pub members: u64,
}

/// (same country code, common leading national digits up to 3): the geomatch tier.
fn geo_score(member: Option<&phonenumber::PhoneNumber>, modem: Option<&str>) -> (bool, usize) {
    let (Some(member), Some(modem)) =
        (member, modem.and_then(|n| phonenumber::parse(None, n).ok()))
    else {
        return (false, 0);
    };
    if member.code().value() != modem.code().value() {
        return (false, 0);
    }
    let a = member.national().value().to_string();
    let b = modem.national().value().to_string();
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    (true, common.min(3))
}

fn best_home(
    member: Option<&phonenumber::PhoneNumber>,
    modems: &[HomeCandidate],
    geomatch: bool,
) -> Option<usize> {
    modems
        .iter()
        .enumerate()
        .filter(|(_, c)| c.eligible)
        .min_by_key(|(i, c)| {
            let score = if geomatch {
                geo_score(member, c.number.as_deref())
            } else {
                (false, 0)
            };
            (std::cmp::Reverse(score), c.members, *i)
        })
        .map(|(i, _)| i)
}

/// The home modem for a new member: balanced (fewest members, then lowest index); with
/// `geomatch`, modems sharing the member's country code and leading digits first.
pub fn assign_home(member: &str, modems: &[HomeCandidate], geomatch: bool) -> Option<usize> {
    let parsed = if geomatch {
        phonenumber::parse(None, member).ok()
    } else {
        None
    };
    best_home(parsed.as_ref(), modems, geomatch)
}

/// Homes for a batch of imported members, updating `modems[..].members` as it goes so the batch
/// spreads evenly.
pub fn assign_homes(
    members: &[&str],
    modems: &mut [HomeCandidate],
    geomatch: bool,
) -> Vec<Option<usize>> {
    members
        .iter()
        .map(|m| {
            let home = assign_home(m, modems, geomatch);
            if let Some(c) = home.and_then(|h| modems.get_mut(h)) {
                c.members += 1;
            }
            home
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;
    use crate::dispatch::SECOND;
    use proptest::prelude::*;

    fn limiter(per_minute: u32) -> RateLimiter {
        RateLimiter::with_windows(&[Window::per_minute(per_minute)])
    }

    fn pool(n: usize, per_minute: u32, cfg: PoolConfig) -> Pool {
        Pool::new(
            (0..n)
                .map(|i| ModemSlot::new(format!("m{i}"), limiter(per_minute)))
                .collect(),
            cfg,
        )
    }

    fn msg(id: i64, kind: MessageKind, home: Option<usize>, not_before: Millis) -> Outgoing {
        Outgoing {
            home,
            ..Outgoing::new(id, format!("+1555000{id:04}"), kind, not_before)
        }
    }

    #[test]
    fn sticky_sender_uses_the_home_modem_even_when_another_is_freer() {
        let mut p = pool(2, 2, PoolConfig::default());
        for t in [0, 1] {
            p.begin_part(0, t).unwrap();
            p.end_part(0, t).unwrap();
        }
        let m = msg(1, MessageKind::Bulk, Some(0), 0);
        assert_eq!(
            p.place(&m, 2),
            Placement::Send {
                modem: 0,
                at: MINUTE,
                failover_from: None,
                new_home: None
            }
        );
        let any = msg(2, MessageKind::Bulk, None, 0);
        assert!(matches!(
            p.place(&any, 2),
            Placement::Send {
                modem: 1,
                at: 2,
                ..
            }
        ));
        // A home the pool does not know is a soft preference, like the store's modem_pref.
        let stale = msg(3, MessageKind::Bulk, Some(9), 0);
        assert!(matches!(
            p.place(&stale, 2),
            Placement::Send { modem: 1, .. }
        ));
    }

    #[test]
    fn no_failover_when_unset() {
        let mut p = pool(2, 10, PoolConfig::default());
        p.set_ready(0, false, 0).unwrap();
        let m = msg(1, MessageKind::Reply, Some(0), 0);
        assert_eq!(
            p.place(&m, 10 * 24 * 60 * MINUTE),
            Placement::Wait { until: None }
        );
        assert_eq!(
            p.route(&m, 5),
            Route::WaitForHome {
                home: 0,
                failover_at: None
            }
        );
        p.set_ready(0, true, 100).unwrap();
        assert!(matches!(
            p.place(&m, 100),
            Placement::Send {
                modem: 0,
                at: 100,
                ..
            }
        ));
    }

    #[test]
    fn failover_only_after_the_home_was_down_long_enough() {
        let cfg = PoolConfig {
            failover_after_ms: Some(10 * MINUTE),
            ..PoolConfig::default()
        };
        let mut p = pool(3, 10, cfg);
        p.set_ready(0, false, 1_000).unwrap();
        // A second "down" report does not restart the clock.
        p.set_ready(0, false, 5 * MINUTE).unwrap();
        let m = msg(1, MessageKind::Bulk, Some(0), 0);
        assert_eq!(
            p.place(&m, 1_000 + 10 * MINUTE - 1),
            Placement::Wait {
                until: Some(1_000 + 10 * MINUTE)
            }
        );
        assert_eq!(
            p.place(&m, 1_000 + 10 * MINUTE),
            Placement::Send {
                modem: 1,
                at: 1_000 + 10 * MINUTE,
                failover_from: Some(0),
                new_home: None
            }
        );
        p.set_ready(1, false, 0).unwrap();
        assert!(matches!(
            p.place(&m, 20 * MINUTE),
            Placement::Send { modem: 2, .. }
        ));
        p.set_ready(2, false, 0).unwrap();
        assert_eq!(p.place(&m, 20 * MINUTE), Placement::Wait { until: None });
    }

    #[test]
    fn home_moves_on_failover_when_configured() {
        let cfg = PoolConfig {
            failover_after_ms: Some(0),
            move_home_on_failover: true,
            ..PoolConfig::default()
        };
        let mut p = pool(2, 10, cfg);
        p.set_ready(0, false, 0).unwrap();
        let m = msg(1, MessageKind::Direct, Some(0), 0);
        assert_eq!(
            p.place(&m, 0),
            Placement::Send {
                modem: 1,
                at: 0,
                failover_from: Some(0),
                new_home: Some(1)
            }
        );
    }

    #[test]
    fn expires_instead_of_going_out_late() {
        let mut p = pool(1, 1, PoolConfig::default());
        p.begin_part(0, 0).unwrap();
        p.end_part(0, 0).unwrap();
        let mut m = msg(1, MessageKind::Bulk, Some(0), 0);
        m.expires_at = Some(30 * SECOND);
        assert_eq!(p.place(&m, 1), Placement::Expire); // next slot is at 60 s
        m.expires_at = Some(MINUTE + 1);
        assert!(matches!(p.place(&m, 1), Placement::Send { at: MINUTE, .. }));
        m.expires_at = Some(0);
        assert_eq!(p.place(&m, 0), Placement::Expire);
    }

    #[test]
    fn busy_modem_waits_for_the_part_in_flight() {
        let mut p = pool(1, 10, PoolConfig::default());
        p.begin_part(0, 0).unwrap();
        assert_eq!(p.modem_free_at(0, 0, MessageKind::Reply, 1), None);
        p.end_part(0, 3_000).unwrap();
        assert_eq!(p.modem_free_at(0, 0, MessageKind::Reply, 1), Some(3_000));
        assert!(p.set_ready(5, true, 0).is_err());
    }

    #[test]
    fn pool_cap_and_recipient_cap() {
        let mut p = pool(2, 10, PoolConfig::default());
        p.pool_limiter = Some(limiter(1));
        p.recipients = Some(RecipientLimiter::new(1));
        p.begin_part(0, 0).unwrap();
        p.end_part(0, 100).unwrap();
        p.begin_message("+1", 0);
        let other = msg(1, MessageKind::Bulk, Some(1), 0);
        assert!(
            matches!(p.place(&other, 200), Placement::Send { modem: 1, at, .. } if at == MINUTE)
        );
        let mut again = msg(2, MessageKind::Bulk, Some(1), 0);
        again.to = "+1".into();
        assert!(
            matches!(p.place(&again, 200), Placement::Send { at, .. } if at == 24 * 60 * MINUTE)
        );
        // A STOP confirmation is not held by the recipient cap.
        again.kind = MessageKind::Compliance;
        assert!(matches!(p.place(&again, 200), Placement::Send { at, .. } if at == MINUTE));
    }

    #[test]
    fn pick_next_prefers_priority_for_the_same_slot_and_respects_not_before() {
        let p = pool(1, 10, PoolConfig::default());
        let queue = vec![
            msg(1, MessageKind::Bulk, Some(0), 0),
            msg(2, MessageKind::Bulk, Some(0), 0),
            msg(3, MessageKind::Reply, Some(0), 0),
            msg(4, MessageKind::Compliance, Some(0), 5_000),
        ];
        assert_eq!(pick_next(&p, 0, &queue, 0), Some((2, 0)));
        assert_eq!(pick_next(&p, 0, &queue[..2], 0), Some((0, 0)));
        assert_eq!(pick_next(&p, 0, &queue[3..], 0), Some((0, 5_000)));
        // Messages homed elsewhere are not this modem's.
        let other = vec![msg(5, MessageKind::Reply, Some(1), 0)];
        let p2 = pool(2, 10, PoolConfig::default());
        assert_eq!(pick_next(&p2, 0, &other, 0), None);
    }

    /// One modem, 3/min, 2 s per send, 500 bulk messages queued. A reply is queued at 95 s (the
    /// modem is then waiting for its next slot). Returns the start and kind of every send.
    fn bulk_backlog_with_a_reply(count_at: CountAt) -> Vec<(Millis, MessageKind)> {
        let mut p = pool(
            1,
            3,
            PoolConfig {
                count_at,
                ..PoolConfig::default()
            },
        );
        let mut queue: Vec<Outgoing> = (0..500)
            .map(|i| msg(i, MessageKind::Bulk, Some(0), 0))
            .collect();
        let arrival = 95 * SECOND;
        let mut now = 0;
        let mut added = false;
        let mut starts = vec![];
        for _ in 0..20 {
            let (mut i, mut at) = pick_next(&p, 0, &queue, now).unwrap();
            if !added && at >= arrival {
                // The arrival wakes the runner, which plans again.
                queue.push(msg(10_000, MessageKind::Reply, Some(0), arrival));
                added = true;
                (i, at) = pick_next(&p, 0, &queue, arrival.max(now)).unwrap();
            }
            let m = queue.remove(i);
            starts.push((at, m.kind));
            p.begin_part(0, at).unwrap();
            p.end_part(0, at + 2 * SECOND).unwrap();
            now = at + 2 * SECOND;
        }
        starts
    }

    #[test]
    fn continuous_bulk_backlog_never_starves_a_reply() {
        // The first send that starts after the reply arrived is the reply, at the first slot.
        // Counting starts: bursts of 3 at 0/2/4 s and 60/62/64 s; the next slot opens at 120 s.
        // Counting completions: bursts at 0/2/4 s and 62/64/66 s; the next slot opens at 124 s.
        for (count_at, slot) in [
            (CountAt::Start, 120 * SECOND),
            (CountAt::Completion, 124 * SECOND),
        ] {
            let starts = bulk_backlog_with_a_reply(count_at);
            let first_after = starts.iter().find(|(t, _)| *t >= 95 * SECOND).unwrap();
            assert_eq!(
                *first_after,
                (slot, MessageKind::Reply),
                "{count_at:?} {starts:?}"
            );
            assert_eq!(
                starts
                    .iter()
                    .filter(|(_, k)| *k == MessageKind::Reply)
                    .count(),
                1
            );
        }
    }

    #[test]
    fn bulk_reserve_lets_a_reply_go_at_once() {
        let cfg = PoolConfig {
            bulk_reserve: 1,
            ..PoolConfig::default()
        };
        let mut p = pool(1, 3, cfg);
        for t in [0, 2_000] {
            p.begin_part(0, t).unwrap();
            p.end_part(0, t + 1_000).unwrap();
        }
        assert_eq!(
            p.modem_free_at(0, 5_000, MessageKind::Bulk, 1),
            Some(MINUTE)
        );
        assert_eq!(
            p.modem_free_at(0, 5_000, MessageKind::Reply, 1),
            Some(5_000)
        );
    }

    #[test]
    fn multipart_keeps_parts_together_or_goes_part_by_part() {
        let mut p = pool(1, 3, PoolConfig::default());
        p.begin_part(0, 0).unwrap();
        p.end_part(0, 0).unwrap();
        assert_eq!(p.modem_free_at(0, 0, MessageKind::Bulk, 2), Some(0));
        assert_eq!(p.modem_free_at(0, 0, MessageKind::Bulk, 3), Some(MINUTE));
        // More parts than the cap: the first part is placed at the first single slot.
        assert_eq!(p.modem_free_at(0, 0, MessageKind::Bulk, 7), Some(0));
    }

    #[test]
    fn from_config_builds_the_pool() {
        let cfg = crate::config::Config::embedded_default();
        let mut d = cfg.dispatch.clone();
        d.pool_per_minute = Some(5);
        d.per_recipient_per_day = Some(3);
        d.failover_after_minutes = Some(15);
        let p = Pool::from_config(&cfg.modems, &d, 7);
        assert_eq!(p.modems.len(), 2);
        assert_eq!(p.index_of("sim1"), Some(1));
        assert_eq!(p.cfg.failover_after_ms, Some(15 * MINUTE));
        assert!(p.pool_limiter.is_some() && p.recipients.is_some());
        assert_eq!(p.modems[0].limiter.windows().len(), 3);
        let _ = Limits::DEFAULT;
    }

    fn cand(number: Option<&str>, members: u64) -> HomeCandidate {
        HomeCandidate {
            number: number.map(str::to_string),
            eligible: true,
            members,
        }
    }

    #[test]
    fn homes_are_balanced_with_deterministic_ties() {
        let mut modems = vec![cand(None, 2), cand(None, 0), cand(None, 0)];
        let homes = assign_homes(
            &[
                "+15551230001",
                "+15551230002",
                "+15551230003",
                "+15551230004",
            ],
            &mut modems,
            false,
        );
        assert_eq!(homes, vec![Some(1), Some(2), Some(1), Some(2)]);
        assert_eq!(
            modems.iter().map(|c| c.members).collect::<Vec<_>>(),
            vec![2, 2, 2]
        );
        modems[0].eligible = false;
        assert_eq!(assign_home("+15551230005", &modems, false), Some(1));
        let none: Vec<HomeCandidate> = vec![];
        assert_eq!(assign_home("+1", &none, false), None);
    }

    #[test]
    fn geomatch_prefers_same_country_then_area_code() {
        let modems = vec![
            cand(Some("+4915112345678"), 0), // Germany
            cand(Some("+13125550100"), 5),   // Chicago 312
            cand(Some("+12125550100"), 1),   // New York 212
        ];
        assert_eq!(assign_home("+13125550199", &modems, true), Some(1));
        assert_eq!(assign_home("+12125550199", &modems, true), Some(2));
        assert_eq!(assign_home("+4917612345678", &modems, true), Some(0));
        // Another US area code: same country beats Germany; then balance.
        assert_eq!(assign_home("+14155550199", &modems, true), Some(2));
        // Without geomatch, balance only.
        assert_eq!(assign_home("+13125550199", &modems, false), Some(0));
        // An unparsable number still gets a home.
        assert_eq!(assign_home("not a number", &modems, true), Some(0));
    }

    proptest! {
        /// Balanced: after assigning any batch to fresh modems, counts differ by at most one.
        #[test]
        fn assignment_is_balanced(n_modems in 1usize..10, n_members in 0usize..200) {
            let mut modems: Vec<HomeCandidate> = (0..n_modems).map(|_| cand(None, 0)).collect();
            let numbers: Vec<String> = (0..n_members).map(|i| format!("+1555{i:07}")).collect();
            let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
            let homes = assign_homes(&refs, &mut modems, false);
            prop_assert!(homes.iter().all(Option::is_some));
            let max = modems.iter().map(|c| c.members).max().unwrap_or(0);
            let min = modems.iter().map(|c| c.members).min().unwrap_or(0);
            prop_assert!(max - min <= 1);
        }

        /// Whatever the pool state, a placement is never before now or not_before, never on a
        /// modem that is not ready, and on the home modem whenever the home is ready.
        #[test]
        fn placements_are_sane(
            ready in prop::collection::vec(any::<bool>(), 1..5),
            home in prop::option::of(0usize..6),
            not_before in 0i64..100_000,
            now in 0i64..100_000,
            failover in prop::option::of(0i64..50_000),
            kind_i in 0usize..4,
        ) {
            let cfg = PoolConfig { failover_after_ms: failover, ..PoolConfig::default() };
            let mut p = pool(ready.len(), 5, cfg);
            for (i, r) in ready.iter().enumerate() {
                p.set_ready(i, *r, 0).unwrap();
            }
            let m = msg(1, MessageKind::ALL[kind_i], home, not_before);
            match p.place(&m, now) {
                Placement::Send { modem, at, .. } => {
                    prop_assert!(at >= now && at >= not_before);
                    prop_assert!(p.modems[modem].ready);
                    if let Some(h) = home.filter(|&h| h < ready.len() && ready[h]) {
                        prop_assert_eq!(modem, h);
                    }
                }
                Placement::Wait { .. } => {}
                Placement::Expire => prop_assert!(false, "no TTL set"),
            }
        }
    }
}
