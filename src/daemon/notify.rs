//! systemd notifications (sd_notify(3)): READY=1, STATUS=, WATCHDOG=1 and STOPPING=1.
//!
//! Thin on purpose: sd-notify is a no-op without `NOTIFY_SOCKET`, so the daemon calls these
//! unconditionally and the same code runs under systemd, in a terminal and in tests. A failed
//! notification is logged, never fatal: the gateway is still serving, and systemd will act on a
//! missing READY or watchdog ping by itself.

use sd_notify::NotifyState;
use tracing::{debug, warn};

fn send(state: &[NotifyState<'_>], what: &str) {
    if let Err(e) = sd_notify::notify(state) {
        warn!(error = %e, "sd_notify {what} failed");
    } else {
        debug!("sd_notify {what}");
    }
}

/// The admin socket answers: the gateway is up.
pub fn ready() {
    send(&[NotifyState::Ready], "READY=1");
}

/// One-line summary shown by `systemctl status`.
pub fn status(line: &str) {
    send(&[NotifyState::Status(line)], "STATUS=");
}

/// The main loop is alive and the store answers.
pub fn watchdog() {
    send(&[NotifyState::Watchdog], "WATCHDOG=1");
}

/// Shutdown has begun.
pub fn stopping() {
    send(
        &[NotifyState::Stopping, NotifyState::Status("stopping")],
        "STOPPING=1",
    );
}
