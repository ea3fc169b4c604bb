//! `activity` (docs/admin-protocol.md): members joined and opted out, messages received and SMS
//! sent per UTC day over the last days, and the latest alerts of the event journal worded for a
//! person — the web console's dashboard reads it, so does any `read`-scope client.
//!
//! What it owns: the day range (UTC midnights, today included) and the one-line wording of each
//! alert kind. What it must not touch: SQL (the store's `activity_daily`, `recent_events`), HTML.
//! Why UTC days and not the gateway's zone: the console's chart already labelled UTC days, and a
//! UTC day is the same for every client reading the API. Why the wording lives here: the journal
//! keeps each event's facts as JSON for webhooks; a person wants one sentence, the same in the
//! console, the CLI and the API.

use serde_json::Value;

use super::{CommandError, Context, Result};
use crate::modem::short_iccid;
use crate::protocol::{ActivityArgs, ActivityData, ActivityDay, AlertItem};
use crate::store::JournalEvent;
use crate::time::rfc3339;

const DAY_MS: i64 = 86_400_000;
const DEFAULT_DAYS: u32 = 14;
const MAX_DAYS: u32 = 92;
const DEFAULT_ALERTS: u32 = 10;
const MAX_ALERTS: u32 = 100;
/// The journal's event types a person is alerted by.
pub const ALERT_KINDS: &[&str] = &["alert", "low_balance", "sim_changed", "modem_down"];

/// `activity`.
pub fn activity(ctx: &Context, args: &ActivityArgs) -> Result<ActivityData> {
    let days = args.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(CommandError::Invalid(format!(
            "days must be 1 to {MAX_DAYS}, not {days}"
        )));
    }
    let alerts = args.alerts.unwrap_or(DEFAULT_ALERTS);
    if alerts > MAX_ALERTS {
        return Err(CommandError::Invalid(format!(
            "alerts must be 0 to {MAX_ALERTS}, not {alerts}"
        )));
    }
    let now = ctx.now();
    let today = now - now.rem_euclid(DAY_MS);
    let from = today - i64::from(days - 1) * DAY_MS;
    let a = ctx.store.activity_daily(from, days)?;
    let days = (0..days as usize)
        .map(|i| ActivityDay {
            day: rfc3339(from + i as i64 * DAY_MS).chars().take(10).collect(),
            joined: a.joined.get(i).copied().unwrap_or(0),
            opted_out: a.opted_out.get(i).copied().unwrap_or(0),
            received: a.received.get(i).copied().unwrap_or(0),
            sent: a.sent.get(i).copied().unwrap_or(0),
        })
        .collect();
    let alerts = ctx
        .store
        .recent_events(ALERT_KINDS, alerts)?
        .iter()
        .map(alert_item)
        .collect();
    Ok(ActivityData { days, alerts })
}

fn alert_item(e: &JournalEvent) -> AlertItem {
    let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    AlertItem {
        id: e.id,
        at: rfc3339(e.at),
        kind: e.kind.clone(),
        message: alert_message(&e.kind, &data),
    }
}

/// One sentence for a journal event's data (docs/http-api.md, "Webhooks", lists the fields);
/// missing fields read as empty rather than failing, since old journal rows may lack newer ones.
pub fn alert_message(kind: &str, data: &Value) -> String {
    let s = |k: &str| match &data[k] {
        Value::String(v) => v.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    match kind {
        "alert" => {
            let (name, message) = (s("alert"), s("message"));
            if message.is_empty() { name } else { message }
        }
        "low_balance" => format!(
            "{}: balance {} is below {}",
            s("modem"),
            s("balance"),
            s("threshold")
        ),
        "sim_changed" => {
            let was = s("previous_iccid");
            let was = if was.is_empty() {
                "none before".to_string()
            } else {
                format!("was {}", short_iccid(&was))
            };
            format!(
                "{}: a different SIM, {} ({was})",
                s("modem"),
                short_iccid(&s("iccid"))
            )
        }
        "modem_down" => {
            let detail = s("detail");
            if detail.is_empty() {
                format!("{} is {}", s("modem"), s("state"))
            } else {
                format!("{} is {}: {detail}", s("modem"), s("state"))
            }
        }
        _ => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_alert_kind_reads_as_one_sentence() {
        assert_eq!(
            alert_message(
                "alert",
                &json!({"alert": "backup_failed", "message": "backup failed: no dir"})
            ),
            "backup failed: no dir"
        );
        assert_eq!(
            alert_message("alert", &json!({"alert": "x"})),
            "x",
            "the name when there is no message"
        );
        assert_eq!(
            alert_message(
                "low_balance",
                &json!({"modem": "sim0", "balance": 3.1, "threshold": 5.0})
            ),
            "sim0: balance 3.1 is below 5.0"
        );
        assert_eq!(
            alert_message(
                "sim_changed",
                &json!({"modem": "sim0", "iccid": "8944100000000000123", "previous_iccid": null})
            ),
            "sim0: a different SIM, …000123 (none before)"
        );
        assert_eq!(
            alert_message(
                "modem_down",
                &json!({"modem": "sim1", "state": "vanished", "detail": "unplugged"})
            ),
            "sim1 is vanished: unplugged"
        );
        // Bad data never panics.
        assert_eq!(alert_message("modem_down", &Value::Null), " is ");
    }
}
