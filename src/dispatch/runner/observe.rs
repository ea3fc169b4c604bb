//! What the send loops tell an observer (the daemon's metrics, `crate::metrics`) as they work:
//! claims, outcomes with the time from claim to the modem's OK, and how long the rate limiter
//! held a message that was ready to go.
//!
//! Owns the observation vocabulary and nothing else: the runner calls
//! [`SendObserver::observe`] at the points where it already decides, and the observer must return
//! at once (count, never block or await). Must not touch: the store, the modems, the decisions.
//!
//! Why a hook and not more fields on [`super::DispatchEvent`]: those events are `watch`
//! notifications, sent with `try_send` and dropped when the channel is full, and they leave out
//! what a metric needs (the modem of a failure, the claim instant, limiter waits). A synchronous
//! call cannot be dropped, and it keeps the event shapes that other consumers match on
//! unchanged. The observer is set in [`super::RunnerConfig::observer`] before the loops start, so
//! no send can happen unobserved.

use std::time::Duration;

/// One thing a send loop saw, for the modem it drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// A row was claimed; the loop works on it until [`Observation::Settled`].
    Claimed,
    /// The loop is done with the claimed row (whatever the outcome, also a hand-back).
    Settled,
    /// Every part was accepted by the modem; `since_claim` runs from the claim to the modem's OK
    /// of the last part (limiter waits between parts included).
    Sent { parts: u32, since_claim: Duration },
    /// Failed for good.
    Failed,
    /// Its time to live ended before it could go out.
    Expired,
    /// The submit may or may not have reached the network (the in-doubt policy decides).
    InDoubt,
    /// The modem could not send it; it is queued again (back-off, or the modem is held).
    Retried,
    /// Handed back unsent until later: quiet hours or the per-recipient cap.
    Deferred,
    /// A message that was due waited this long for the limiter (per-modem windows or the pool
    /// cap) before its claim or before one of its parts.
    LimiterWait(Duration),
}

/// Receives the send loops' observations. Called from the loops themselves: must be cheap and
/// must not block.
pub trait SendObserver: Send + Sync + std::fmt::Debug {
    fn observe(&self, modem: &str, what: Observation);
}
