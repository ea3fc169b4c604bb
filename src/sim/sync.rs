//! The one lock helper the simulator's tasks share. It owns nothing but the poison policy, so the
//! modem state, the network and the audio figures are all locked the same way.
//!
//! Why recover from poison instead of propagating it: the state behind each mutex stays usable
//! after a panicking holder, and a simulator must not cascade one bug into every later call (the
//! tests that embed it would all fail on the first one).

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
