//! Logging set-up for the daemon: a `tracing-subscriber` registry with an `EnvFilter` (from
//! `RUST_LOG`, else the config's `[daemon] log`), writing to journald when the daemon runs under
//! systemd and to stderr otherwise, plus a small tap that republishes warn-and-above records as
//! `log` events on the admin `watch` stream.
//!
//! Journald detection follows systemd's own convention: `JOURNAL_STREAM` is set when stderr is
//! connected to the journal; without it, the journal socket existing while stderr is not a
//! terminal is taken as "a service whose output nobody reads". Native journald records keep the
//! level as PRIORITY and the fields as journal fields, where stderr lines under systemd would lose
//! both. If the journald layer cannot be created the daemon falls back to stderr rather than fail.
//!
//! The tap is process-global (a tracing subscriber is), so the daemon registers its event bus in
//! [`publish_to`] once started and clears it at shutdown. Logging in the library is never required:
//! tests that do not call [`init`] still get every event on the bus from the pipeline itself.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event as TracingEvent, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::admin::Event;

/// Where the journal listens for native records.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Errors setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("log filter {filter:?} (from {origin}): {reason}")]
    Filter {
        filter: String,
        origin: &'static str,
        reason: String,
    },
    #[error("a global logger is already installed: {0}")]
    AlreadySet(String),
}

/// The log target of alerts that their code also publishes on the bus itself (so that `watch`
/// shows them without this tap, as in tests); the tap skips it to not show them twice.
pub const ALERT_TARGET: &str = "gsmgate::alert";

static TAP: Mutex<Option<broadcast::Sender<Event>>> = Mutex::new(None);

/// Sets (or clears) where warn-and-above records are republished.
pub fn publish_to(tx: Option<broadcast::Sender<Event>>) {
    let mut slot = TAP.lock().unwrap_or_else(|p| p.into_inner());
    *slot = tx;
}

/// Whether the daemon's output goes to the journal.
pub fn under_journald() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
        || (Path::new(JOURNAL_SOCKET).exists() && !std::io::stderr().is_terminal())
}

/// The filter: `RUST_LOG` when set, else the configured directive.
pub fn filter(configured: &str) -> Result<EnvFilter, LoggingError> {
    let (text, origin) = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => (v, "RUST_LOG"),
        _ => (configured.to_string(), "[daemon] log"),
    };
    EnvFilter::try_new(&text).map_err(|e| LoggingError::Filter {
        filter: text.clone(),
        origin,
        reason: e.to_string(),
    })
}

/// Installs the global subscriber. Call once, before the daemon starts.
pub fn init(configured: &str) -> Result<(), LoggingError> {
    let filter = filter(configured)?;
    let journald = if under_journald() {
        tracing_journald::layer().ok()
    } else {
        None
    };
    let registry = tracing_subscriber::registry().with(filter).with(LogTap);
    let result = match journald {
        Some(j) => registry.with(j).try_init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    // Colour codes only on a terminal: redirected logs stay plain text.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr)
                    .with_target(true),
            )
            .try_init(),
    };
    result.map_err(|e| LoggingError::AlreadySet(e.to_string()))
}

/// The layer that republishes warn/error records as `log` watch events.
pub struct LogTap;

#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// Renders a record as `message key=value …`.
fn render(event: &TracingEvent<'_>) -> String {
    let mut v = MessageVisitor::default();
    event.record(&mut v);
    v.message.push_str(&v.fields);
    v.message
}

impl<S: Subscriber> Layer<S> for LogTap {
    fn on_event(&self, event: &TracingEvent<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // tracing orders levels by verbosity: ERROR < WARN < INFO.
        if *meta.level() > Level::WARN || meta.target() == ALERT_TARGET {
            return;
        }
        let tx = {
            let slot = TAP.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                Some(tx) if tx.receiver_count() > 0 => tx.clone(),
                _ => return,
            }
        };
        let _ = tx.send(Event::Log {
            level: meta.level().as_str().to_ascii_lowercase(),
            target: meta.target().to_string(),
            message: render(event),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_configured_filter_is_a_clear_error() {
        if std::env::var_os("RUST_LOG").is_some() {
            return;
        }
        let err = filter("gsmgate=loud").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("gsmgate=loud"), "{text}");
        assert!(text.contains("[daemon] log"), "{text}");
        assert!(filter("info,gsmgate=debug").is_ok());
    }

    #[test]
    fn tap_republishes_warnings_only() {
        let (tx, mut rx) = broadcast::channel(16);
        let subscriber = tracing_subscriber::registry().with(LogTap);
        publish_to(Some(tx));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not this");
            tracing::warn!(modem = "m0", "port vanished");
        });
        publish_to(None);
        match rx.try_recv().unwrap() {
            Event::Log { level, message, .. } => {
                assert_eq!(level, "warn");
                assert_eq!(message, "port vanished modem=m0");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(rx.try_recv().is_err());
    }
}
