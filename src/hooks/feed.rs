//! Appends the events that are not stored facts to the journal: a modem going down or coming up
//! (from the daemon's `modem_state` events) and alerts. The stored facts (messages, members,
//! calls, broadcasts) are journaled by the store's triggers, in the transaction of the fact.
//!
//! A modem is *up* when it is `ready`, *down* when it is `vanished`, `out_of_pool`, `disabled`
//! or `recovering`; `initializing` and `suspect` are passing states and change nothing. Only a
//! change is journaled, so a flapping log of the same state is one event. Each start of the
//! daemon reports every modem that comes up (`modem_up`) — a receiver learns the pool is back.
//! These events ride the in-memory bus: a state change during a crash is not journaled (the next
//! start's `modem_up` says where things stand), which is why they are not stored facts.

use std::collections::HashMap;

use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::protocol::Event;
use crate::store::Store;
use crate::time::now_ms;

/// Whether a modem state counts as up (`Some(true)`), down (`Some(false)`) or neither.
pub fn up_or_down(state: &str) -> Option<bool> {
    match state {
        "ready" => Some(true),
        "vanished" | "out_of_pool" | "disabled" | "recovering" => Some(false),
        _ => None,
    }
}

/// The journal event (type and data) a bus event becomes, if any; `up` remembers each modem.
pub fn journal_entry(
    event: &Event,
    up: &mut HashMap<String, bool>,
) -> Option<(&'static str, serde_json::Value)> {
    match event {
        Event::ModemState {
            modem,
            state,
            detail,
        } => {
            let now_up = up_or_down(state)?;
            // At start every modem is `vanished` or `recovering` until its port opens: not
            // down, only not up yet. Left unknown, a modem that then comes up is `modem_up` and
            // one that never does is `modem_down` when it leaves the pool, so a restart does not
            // raise a false `modem_down` per modem.
            if !now_up
                && !up.contains_key(modem)
                && matches!(state.as_str(), "vanished" | "recovering")
            {
                return None;
            }
            if up.insert(modem.clone(), now_up) == Some(now_up) {
                return None;
            }
            let kind = if now_up { "modem_up" } else { "modem_down" };
            Some((
                kind,
                json!({"modem": modem, "state": state, "detail": detail}),
            ))
        }
        Event::Alert { alert, message } => {
            Some(("alert", json!({"alert": alert, "message": message})))
        }
        _ => None,
    }
}

/// Until shutdown: journals what [`journal_entry`] selects from the bus.
pub async fn run(store: Store, mut rx: broadcast::Receiver<Event>, shutdown: CancellationToken) {
    let mut up = HashMap::new();
    loop {
        let event = tokio::select! {
            e = rx.recv() => e,
            _ = shutdown.cancelled() => return,
        };
        let event = match event {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "event journal fell behind the event bus; modem/alert events were lost"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some((kind, data)) = journal_entry(&event, &mut up) else {
            continue;
        };
        let data = data.to_string();
        if let Err(e) = store
            .call(move |s| s.append_event(kind, &data, now_ms()))
            .await
        {
            warn!(kind, error = %e, "cannot journal an event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(modem: &str, state: &str) -> Event {
        Event::ModemState {
            modem: modem.into(),
            state: state.into(),
            detail: None,
        }
    }

    #[test]
    fn only_up_down_changes_are_journaled() {
        let mut up = HashMap::new();
        let kinds: Vec<Option<&str>> = [
            state("a", "initializing"),
            state("a", "ready"),
            state("a", "suspect"),
            state("a", "ready"),
            state("a", "vanished"),
            state("a", "out_of_pool"),
            state("b", "ready"),
            state("a", "ready"),
            // A modem first seen not yet opened: nothing, then up; or nothing, then down.
            state("c", "vanished"),
            state("c", "ready"),
            state("d", "recovering"),
            state("d", "out_of_pool"),
        ]
        .iter()
        .map(|e| journal_entry(e, &mut up).map(|(k, _)| k))
        .collect();
        assert_eq!(
            kinds,
            [
                None,
                Some("modem_up"),
                None,
                None,
                Some("modem_down"),
                None,
                Some("modem_up"),
                Some("modem_up"),
                None,
                Some("modem_up"),
                None,
                Some("modem_down")
            ]
        );
        let alert = Event::Alert {
            alert: "state_disk_full".into(),
            message: "m".into(),
        };
        assert_eq!(
            journal_entry(&alert, &mut up).map(|(k, _)| k),
            Some("alert")
        );
    }
}
