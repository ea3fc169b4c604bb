//! Login throttling: failed logins counted per account name and per client address in a sliding
//! window; past the limit a login is refused before its password is checked (429), so guessing
//! is slow and costs the Pi no Argon2 work. In memory, like the HTTP API's token buckets
//! (`http::auth`): a restart forgets the counts, which costs an attacker a restart of the
//! gateway per window — not something they can cause.
//!
//! A successful login clears its name's count (not its address's: one good password must not
//! reset a guessing run from the same place against other names).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins one account name may see per window.
pub const PER_USER: usize = 5;
/// Failed logins one client address may make per window.
pub const PER_ADDRESS: usize = 20;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept before the idle ones are dropped (bounds memory under a flood of names).
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

/// The failure counts.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl LoginThrottle {
    fn keys(user: &str, ip: Option<IpAddr>) -> Vec<(Key, usize)> {
        let mut k = vec![(Key::User(user.to_lowercase()), PER_USER)];
        if let Some(ip) = ip {
            k.push((Key::Address(ip), PER_ADDRESS));
        }
        k
    }

    /// `Err(seconds to wait)` when `user` or `ip` has used up its failures.
    pub fn check(&self, user: &str, ip: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (key, limit) in Self::keys(user, ip) {
            if let Some(q) = map.get_mut(&key) {
                while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                    q.pop_front();
                }
                if q.len() >= limit
                    && let Some(first) = q.front()
                {
                    let wait = WINDOW.saturating_sub(now.duration_since(*first));
                    return Err(wait.as_secs().max(1));
                }
            }
        }
        Ok(())
    }

    /// Counts one failed login.
    pub fn failed(&self, user: &str, ip: Option<IpAddr>, now: Instant) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        for (key, _) in Self::keys(user, ip) {
            map.entry(key).or_default().push_back(now);
        }
    }

    /// A good login: its name's count starts again.
    pub fn succeeded(&self, user: &str) {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.remove(&Key::User(user.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_are_limited_in_a_sliding_window() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..PER_USER {
            assert!(t.check("ann", Some(ip), t0).is_ok());
            t.failed("ann", Some(ip), t0);
        }
        assert!(
            t.check("ANN", None, t0).is_err(),
            "names are case-insensitive"
        );
        assert!(
            t.check("bob", Some(ip), t0).is_ok(),
            "the address has room left"
        );
        assert!(
            t.check("ann", None, t0 + WINDOW).is_ok(),
            "the window slides"
        );
        for i in 0..PER_ADDRESS {
            t.failed(&format!("u{i}"), Some(ip), t0);
        }
        assert!(t.check("zed", Some(ip), t0).is_err());
        t.succeeded("ann");
        assert!(t.check("ann", None, t0).is_ok());
    }
}
