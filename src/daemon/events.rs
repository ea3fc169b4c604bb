//! The daemon's event bus: one tokio broadcast channel of admin [`Event`]s that the inbound
//! pipeline, the modem state changes, the dispatch runner's outcomes and (optionally) warn-level
//! log records feed, and that every admin `watch` subscribes to.
//!
//! A broadcast channel because `watch` subscribers come and go and a slow one must never hold up
//! the gateway: a subscriber that falls more than [`EVENT_CAPACITY`] events behind gets a
//! `lagged` notice from the admin server instead of back-pressure on the publishers. Publishing
//! with no subscriber is normal and not an error.

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::admin::Event;
use crate::dispatch::runner::DispatchEvent;
use crate::modem::ModemState;
use crate::store::WriteHealth;

/// Events kept per subscriber before it counts as lagging.
pub const EVENT_CAPACITY: usize = 1024;

/// A cheap clonable publisher on the daemon's event channel.
#[derive(Clone, Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(EVENT_CAPACITY);
        EventBus { tx }
    }

    /// Publishes an event; without subscribers it is dropped.
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// A new receiver (one per `watch`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// The raw sender, for the log tap.
    pub fn sender(&self) -> broadcast::Sender<Event> {
        self.tx.clone()
    }
}

/// The `modem_state` event for a state change; `out_of_pool` and `suspect` carry their reason as
/// detail.
pub fn modem_state(modem: &str, state: &ModemState) -> Event {
    let detail = match state {
        ModemState::OutOfPool { reason } | ModemState::Suspect { reason } => Some(reason.clone()),
        _ => None,
    };
    Event::ModemState {
        modem: modem.to_string(),
        state: state.name().to_string(),
        detail,
    }
}

/// Maps a runner outcome to the admin event, where there is one. Retries are internal (the
/// message is still queued) and are only logged; an in-doubt send is surfaced as a warning log
/// event because the message is neither sent nor failed until the policy or a person decides.
pub fn from_dispatch(e: DispatchEvent) -> Option<Event> {
    match e {
        DispatchEvent::Sent {
            id,
            to,
            modem,
            parts,
        } => Some(Event::MessageSent {
            id,
            to,
            modem,
            parts,
        }),
        DispatchEvent::Failed { id, to, reason } => Some(Event::MessageFailed { id, to, reason }),
        DispatchEvent::Expired { id, to } => Some(Event::MessageFailed {
            id,
            to,
            reason: "expired: not sent within its time to live".into(),
        }),
        DispatchEvent::InDoubt {
            id,
            to,
            modem,
            reason,
        } => Some(Event::Log {
            level: "warn".into(),
            target: "gsmgate::dispatch".into(),
            message: format!("message {id} to {to} on {modem} is in doubt: {reason}"),
        }),
        DispatchEvent::Retrying {
            id,
            to,
            reason,
            next_attempt_at,
        } => {
            debug!(id, %to, %reason, next_attempt_at, "send will be retried");
            None
        }
    }
}

/// The `alert` event for a change of the state disk's write health (`Store::write_health`).
pub fn storage_alert(h: &WriteHealth) -> Event {
    let alert = match h {
        WriteHealth::Healthy => "state_disk_writable",
        WriteHealth::Full { .. } => "state_disk_full",
        WriteHealth::ReadOnly { .. } => "state_disk_read_only",
        WriteHealth::IoError { .. } => "state_disk_error",
    };
    let message = match h.detail() {
        None => format!("{}: writes work again; sending resumes", h.headline()),
        Some(d) => format!("{}: writes fail ({d}); sending is paused", h.headline()),
    };
    Event::Alert {
        alert: alert.to_string(),
        message,
    }
}

/// Raises an alert (and logs) each time the state disk stops or starts taking writes, until
/// shutdown. A watch, not a poll: the store sets it on the failing write itself.
pub async fn watch_storage(
    mut rx: tokio::sync::watch::Receiver<WriteHealth>,
    bus: EventBus,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
        let h = rx.borrow_and_update().clone();
        if h.is_healthy() {
            tracing::info!("{}: writes work again", h.headline());
        } else {
            tracing::error!(
                detail = h.detail().unwrap_or(""),
                "{}: writes fail",
                h.headline()
            );
        }
        bus.publish(storage_alert(&h));
    }
}

/// Forwards the runner's outcomes to the bus until the runner's sender is dropped or shutdown.
pub async fn forward_dispatch(
    mut rx: mpsc::Receiver<DispatchEvent>,
    bus: EventBus,
    shutdown: CancellationToken,
) {
    loop {
        let e = tokio::select! {
            e = rx.recv() => e,
            _ = shutdown.cancelled() => None,
        };
        let Some(e) = e else { return };
        if let Some(ev) = from_dispatch(e) {
            bus.publish(ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_pool_carries_its_reason() {
        let e = modem_state(
            "m0",
            &ModemState::OutOfPool {
                reason: "wrong PIN".into(),
            },
        );
        assert_eq!(
            e,
            Event::ModemState {
                modem: "m0".into(),
                state: "out_of_pool".into(),
                detail: Some("wrong PIN".into())
            }
        );
        assert!(matches!(
            modem_state("m0", &ModemState::Ready),
            Event::ModemState { detail: None, .. }
        ));
    }

    #[test]
    fn dispatch_outcomes_map_to_watch_events() {
        let sent = from_dispatch(DispatchEvent::Sent {
            id: 1,
            to: "+1".into(),
            modem: "m".into(),
            parts: 2,
        });
        assert!(matches!(
            sent,
            Some(Event::MessageSent {
                id: 1,
                parts: 2,
                ..
            })
        ));
        let retry = from_dispatch(DispatchEvent::Retrying {
            id: 1,
            to: "+1".into(),
            reason: "busy".into(),
            next_attempt_at: 5,
        });
        assert!(retry.is_none());
        let expired = from_dispatch(DispatchEvent::Expired {
            id: 3,
            to: "+1".into(),
        });
        assert!(matches!(expired, Some(Event::MessageFailed { id: 3, .. })));
    }

    #[test]
    fn storage_alerts_name_the_state() {
        let full = storage_alert(&WriteHealth::Full {
            since: 1,
            detail: "database or disk is full".into(),
        });
        match full {
            Event::Alert { alert, message } => {
                assert_eq!(alert, "state_disk_full");
                assert!(message.starts_with("state disk full"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            storage_alert(&WriteHealth::Healthy),
            Event::Alert { alert, .. } if alert == "state_disk_writable"
        ));
    }

    #[tokio::test]
    async fn publishing_without_subscribers_is_fine() {
        let bus = EventBus::new();
        bus.publish(Event::Lagged { missed: 1 });
        let mut rx = bus.subscribe();
        bus.publish(Event::Lagged { missed: 2 });
        assert_eq!(rx.recv().await.unwrap(), Event::Lagged { missed: 2 });
    }
}
