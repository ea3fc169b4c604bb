//! `webhooks` and `webhook_replay`: what an operator sees of the webhook deliveries and how they
//! re-send one event (docs/admin-protocol.md, docs/http-api.md "Webhooks").
//!
//! Both read and write the store only: the state of a webhook is its durable cursor in the event
//! journal, and a replay is a request row that the webhook's worker (the `hooks` layer, in the
//! daemon) sends out of band, so this layer never touches HTTP. `webhook_replay` waits a
//! little for the worker's answer so the operator sees "delivered (HTTP 200)" or the error.

use std::time::{Duration, Instant};

use super::{CommandError, Context, Result};
use crate::protocol::{WebhookItem, WebhookReplayArgs, WebhookReplayed};
use crate::store;
use crate::time::rfc3339;

/// How long `webhook_replay` waits for the worker before answering "queued".
pub const REPLAY_WAIT: Duration = Duration::from_secs(15);

/// One configured webhook as the commands see it (no secret: no command needs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub name: String,
    pub url: String,
    /// Empty means every event type.
    pub events: Vec<String>,
}

fn configured<'a>(ctx: &'a Context, name: &str) -> Result<&'a WebhookSettings> {
    ctx.settings
        .webhooks
        .iter()
        .find(|w| w.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = ctx
                .settings
                .webhooks
                .iter()
                .map(|w| w.name.as_str())
                .collect();
            CommandError::NotFound(if known.is_empty() {
                format!("no webhook {name:?}: none is configured ([[webhook]] in the config)")
            } else {
                format!("no webhook {name:?} (configured: {})", known.join(", "))
            })
        })
}

/// `webhooks`: every configured webhook, in file order, with its delivery state.
pub fn webhooks(ctx: &Context) -> Result<Vec<WebhookItem>> {
    ctx.settings
        .webhooks
        .iter()
        .map(|w| {
            let key = store::consumer_key("webhook", &w.name);
            let row = ctx.store.consumer(&key)?.unwrap_or_default();
            Ok(WebhookItem {
                name: w.name.clone(),
                url: w.url.clone(),
                events: w.events.clone(),
                backlog: ctx.store.consumer_backlog(&key, &w.events)?,
                last_event: row.last_id,
                attempts: row.attempts,
                next_attempt_at: row.next_attempt_at.map(rfc3339),
                last_success_at: row.last_success_at.map(rfc3339),
                last_error: row.last_error,
                last_error_at: row.last_error_at.map(rfc3339),
                delivered_total: row.delivered_total,
                failed_total: row.failed_total,
            })
        })
        .collect()
}

/// `webhook_replay`: queues the event for the webhook's worker and waits up to
/// [`REPLAY_WAIT`] for the outcome.
pub fn webhook_replay(ctx: &Context, args: &WebhookReplayArgs) -> Result<WebhookReplayed> {
    let w = configured(ctx, &args.name)?;
    let key = store::consumer_key("webhook", &w.name);
    let id = ctx.store.request_replay(&key, args.event, ctx.now())?;
    let deadline = Instant::now() + REPLAY_WAIT;
    loop {
        let r = ctx
            .store
            .replay(id)?
            .ok_or_else(|| CommandError::Internal(format!("replay {id} vanished")))?;
        if r.done_at.is_some() || Instant::now() >= deadline {
            return Ok(WebhookReplayed {
                name: w.name.clone(),
                event: args.event,
                done: r.done_at.is_some(),
                result: r.result,
            });
        }
        // The command runs on the blocking pool (`commands::run`), so a short sleep is fine.
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::commands::Settings;
    use crate::store::Store;

    fn ctx(store: Store) -> Context {
        let settings = Settings {
            modems: vec![],
            community: Default::default(),
            dispatch: Default::default(),
            voice_enabled: false,
            webhooks: vec![WebhookSettings {
                name: "crm".into(),
                url: "https://crm.example.org/hook".into(),
                events: vec!["alert".into()],
            }],
            site: None,
        };
        Context::new(store, Arc::new(settings))
    }

    #[test]
    fn lists_backlog_and_refuses_unknown_names_and_events() {
        let store = Store::open_in_memory().unwrap();
        store.ensure_consumer("webhook:crm", 1).unwrap();
        store.append_event("alert", "{}", 2).unwrap();
        store.append_event("modem_up", "{}", 3).unwrap();
        let c = ctx(store);
        let list = webhooks(&c).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].name.as_str(), list[0].backlog), ("crm", 1));
        let unknown = webhook_replay(
            &c,
            &WebhookReplayArgs {
                name: "nope".into(),
                event: 1,
            },
        );
        assert!(matches!(unknown, Err(CommandError::NotFound(m)) if m.contains("crm")));
        let missing = webhook_replay(
            &c,
            &WebhookReplayArgs {
                name: "crm".into(),
                event: 99,
            },
        );
        assert!(matches!(missing, Err(CommandError::NotFound(_))));
    }
}
