//! `[[webhook]]`, `[[hook]]` and `[hooks]`: their serde mirror and their validation into the
//! hooks layer's settings (`hooks::HooksSettings`), docs/configuration.md "Webhooks and hooks".
//!
//! Kept apart from `raw.rs`/`validate.rs` so the rules of this one feature read in one place.
//! Rules worth knowing: a webhook's secret is required and at least [`MIN_SECRET_LEN`]
//! characters (a receiver that cannot verify is the complaint users have about unsigned
//! callbacks); a plain `http://` URL is allowed only to a loopback host unless the table says
//! `allow_plaintext = true` (the signature proves origin, not secrecy: texts and numbers would
//! cross the network readable); names are unique because they name the durable cursors, so
//! renaming a webhook starts it afresh at the end of the journal.

use serde::{Deserialize, Serialize};

use super::validate::Checker;
use crate::hooks::EVENT_TYPES;
use crate::hooks::settings::{
    DEFAULT_HOOK_TIMEOUT, DEFAULT_MAX_CONCURRENT, DEFAULT_RETENTION, HookConfig, HooksSettings,
    RetryPolicy, WebhookConfig,
};

/// Shortest accepted webhook secret.
pub const MIN_SECRET_LEN: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    pub name: Option<String>,
    pub url: String,
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
    pub allow_plaintext: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHook {
    pub name: Option<String>,
    pub command: String,
    pub args: Option<Vec<String>>,
    pub events: Option<Vec<String>>,
    pub timeout_secs: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHooks {
    pub max_concurrent: Option<u32>,
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl Checker<'_> {
    pub(super) fn hooks(
        &mut self,
        webhooks: Vec<RawWebhook>,
        hooks: Vec<RawHook>,
        table: RawHooks,
    ) -> HooksSettings {
        let webhooks: Vec<WebhookConfig> = webhooks
            .into_iter()
            .enumerate()
            .map(|(i, w)| self.webhook(i, w))
            .collect();
        let hooks: Vec<HookConfig> = hooks
            .into_iter()
            .enumerate()
            .map(|(i, h)| self.hook(i, h))
            .collect();
        self.unique("webhook", webhooks.iter().map(|w| w.name.as_str()));
        self.unique("hook", hooks.iter().map(|h| h.name.as_str()));
        let max_concurrent = self.ranged(
            "hooks.max_concurrent",
            table.max_concurrent,
            DEFAULT_MAX_CONCURRENT as u32,
            1,
            64,
        );
        HooksSettings {
            webhooks,
            hooks,
            max_concurrent: max_concurrent as usize,
            retry: RetryPolicy::default(),
            retention: DEFAULT_RETENTION,
        }
    }

    fn webhook(&mut self, i: usize, raw: RawWebhook) -> WebhookConfig {
        let key = |k: &str| format!("webhook[{i}].{k}");
        let mut default_name = format!("webhook{i}");
        match url::Url::parse(&raw.url) {
            Err(e) => self.fail(&key("url"), format!("not a URL ({e}): {:?}", raw.url)),
            Ok(u) => {
                if let Some(host) = u.host() {
                    default_name = host.to_string().replace([':', '[', ']'], "_");
                }
                match u.scheme() {
                    "https" => {}
                    "http" => {
                        let local = u.host().as_ref().is_some_and(is_loopback);
                        if !local && raw.allow_plaintext != Some(true) {
                            self.fail(
                                &key("url"),
                                "plain http:// to a host other than loopback sends texts and \
                                 numbers readable on the network: use https://, or set \
                                 allow_plaintext = true",
                            );
                        }
                    }
                    other => self.fail(
                        &key("url"),
                        format!("scheme must be https or http, got {other:?}"),
                    ),
                }
            }
        }
        let name = raw.name.unwrap_or(default_name);
        if !valid_name(&name) {
            self.fail(
                &key("name"),
                format!("must be 1–64 letters, digits, '-', '_' or '.', got {name:?}"),
            );
        }
        let secret = raw.secret.unwrap_or_default();
        if secret.chars().count() < MIN_SECRET_LEN {
            self.fail(
                &key("secret"),
                format!(
                    "required, at least {MIN_SECRET_LEN} characters (e.g. `openssl rand -hex 32`)"
                ),
            );
        }
        let events = self.events(&key("events"), raw.events);
        WebhookConfig {
            name,
            url: raw.url,
            events,
            secret,
        }
    }

    fn hook(&mut self, i: usize, raw: RawHook) -> HookConfig {
        let key = |k: &str| format!("hook[{i}].{k}");
        let command = self.path(&key("command"), &raw.command);
        let name = raw.name.unwrap_or_else(|| {
            command
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("hook{i}"))
        });
        if !valid_name(&name) {
            self.fail(
                &key("name"),
                format!("must be 1–64 letters, digits, '-', '_' or '.', got {name:?}"),
            );
        }
        let args = raw.args.unwrap_or_default();
        if args.iter().any(|a| a.contains('\0')) {
            self.fail(&key("args"), "must not contain a NUL byte");
        }
        let timeout = self.ranged(
            &key("timeout_secs"),
            raw.timeout_secs,
            DEFAULT_HOOK_TIMEOUT.as_secs() as u32,
            1,
            3600,
        );
        HookConfig {
            name,
            command,
            args,
            events: self.events(&key("events"), raw.events),
            timeout: std::time::Duration::from_secs(u64::from(timeout)),
        }
    }

    /// A list of known event types; absent means every type.
    fn events(&mut self, key: &str, raw: Option<Vec<String>>) -> Vec<String> {
        let Some(list) = raw else {
            return Vec::new();
        };
        if list.is_empty() {
            self.fail(key, "must not be empty (leave the key out for every event)");
        }
        for e in &list {
            if !EVENT_TYPES.contains(&e.as_str()) {
                self.fail(
                    key,
                    format!("unknown event {e:?} (known: {})", EVENT_TYPES.join(", ")),
                );
            }
        }
        list
    }

    fn unique<'n>(&mut self, table: &str, names: impl Iterator<Item = &'n str>) {
        let mut seen = std::collections::BTreeSet::new();
        for (i, n) in names.enumerate() {
            if !seen.insert(n) {
                self.fail(
                    &format!("{table}[{i}].name"),
                    format!("name {n:?} is used twice (set a distinct name = \"…\")"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[daemon]\nstate_dir = \"/tmp/x\"\n[simulator]\nenabled = true\n";

    fn load(extra: &str) -> Result<Config, String> {
        Config::from_str(&format!("{BASE}{extra}"), "t.toml").map_err(|e| e.to_string())
    }

    const SECRET: &str = "0123456789abcdef0123";

    #[test]
    fn a_webhook_gets_defaults_and_a_name_from_its_host() {
        let c = load(&format!(
            "[[webhook]]\nurl = \"https://crm.example.org/in\"\nsecret = \"{SECRET}\"\n"
        ))
        .unwrap();
        let w = &c.hooks.webhooks[0];
        assert_eq!((w.name.as_str(), w.events.len()), ("crm.example.org", 0));
        assert_eq!(c.hooks.max_concurrent, 4);
        assert_eq!(
            c.command_settings().webhooks[0].url,
            "https://crm.example.org/in"
        );
        assert!(!format!("{w:?}").contains(SECRET), "the secret is redacted");
    }

    #[test]
    fn plain_http_is_for_loopback_unless_allowed() {
        for url in [
            "http://127.0.0.1:9000/x",
            "http://localhost/x",
            "http://[::1]:80/",
        ] {
            load(&format!(
                "[[webhook]]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n"
            ))
            .unwrap();
        }
        let e = load(&format!(
            "[[webhook]]\nurl = \"http://crm.example.org/x\"\nsecret = \"{SECRET}\"\n"
        ))
        .unwrap_err();
        assert!(
            e.contains("webhook[0].url") && e.contains("allow_plaintext"),
            "{e}"
        );
        load(&format!(
            "[[webhook]]\nurl = \"http://10.0.0.5/x\"\nsecret = \"{SECRET}\"\nallow_plaintext = true\n"
        ))
        .unwrap();
        let e = load(&format!(
            "[[webhook]]\nurl = \"ftp://h/x\"\nsecret = \"{SECRET}\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("scheme"), "{e}");
        let e = load(&format!(
            "[[webhook]]\nurl = \"not a url\"\nsecret = \"{SECRET}\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("not a URL"), "{e}");
    }

    #[test]
    fn secret_events_and_names_are_checked() {
        let e = load("[[webhook]]\nurl = \"https://h/x\"\n").unwrap_err();
        assert!(e.contains("webhook[0].secret") && e.contains("16"), "{e}");
        let e = load("[[webhook]]\nurl = \"https://h/x\"\nsecret = \"short\"\n").unwrap_err();
        assert!(e.contains("webhook[0].secret"), "{e}");
        let e = load(&format!(
            "[[webhook]]\nurl = \"https://h/x\"\nsecret = \"{SECRET}\"\nevents = [\"message_recieved\"]\n"
        ))
        .unwrap_err();
        assert!(e.contains("unknown event \"message_recieved\""), "{e}");
        let e = load(&format!(
            "[[webhook]]\nurl = \"https://h/x\"\nsecret = \"{SECRET}\"\nevents = []\n"
        ))
        .unwrap_err();
        assert!(e.contains("must not be empty"), "{e}");
        let e = load(&format!(
            "[[webhook]]\nurl = \"https://h/x\"\nsecret = \"{SECRET}\"\n\
             [[webhook]]\nurl = \"https://h/y\"\nsecret = \"{SECRET}\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("webhook[1].name") && e.contains("twice"), "{e}");
        // The SIM upkeep's event types (docs/modems.md) are subscribable like any other.
        load(&format!(
            "[[webhook]]\nurl = \"https://h/x\"\nsecret = \"{SECRET}\"\nevents = [\"low_balance\", \"sim_changed\"]\n"
        ))
        .unwrap();
    }

    #[test]
    fn hooks_get_a_name_a_timeout_and_a_concurrency_limit() {
        let c = load(
            "[[hook]]\ncommand = \"/usr/local/bin/on-sms\"\nargs = [\"--quiet\"]\n\
             events = [\"message_received\"]\n[hooks]\nmax_concurrent = 2\n",
        )
        .unwrap();
        let h = &c.hooks.hooks[0];
        assert_eq!(h.name, "on-sms");
        assert_eq!(h.timeout, std::time::Duration::from_secs(30));
        assert_eq!(c.hooks.max_concurrent, 2);
        let e = load("[[hook]]\ncommand = \"/bin/x\"\ntimeout_secs = 0\n").unwrap_err();
        assert!(e.contains("hook[0].timeout_secs"), "{e}");
        let e = load("[hooks]\nmax_concurrent = 0\n").unwrap_err();
        assert!(e.contains("hooks.max_concurrent"), "{e}");
        let e =
            load("[[hook]]\ncommand = \"/bin/x\"\n[[hook]]\ncommand = \"/sbin/x\"\n").unwrap_err();
        assert!(e.contains("hook[1].name"), "{e}");
    }
}
