//! The settings of webhooks and local hooks, as the `hooks` layer uses them; `config` fills them
//! from `[[webhook]]`, `[[hook]]` and `[hooks]` (config/hooks.rs) and validates them there.
//!
//! Plain values only. The retry policy is not in the file (docs/http-api.md, "Webhooks", gives
//! the fixed schedule) but is a field here so tests and the benchmark can shorten it.

use std::path::PathBuf;
use std::time::Duration;

/// One `[[webhook]]`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Unique among the webhooks; names the durable cursor (`webhook:NAME`).
    pub name: String,
    pub url: String,
    /// Event types delivered; empty means every type.
    pub events: Vec<String>,
    /// The HMAC key. Never logged (the `Debug` below redacts it).
    pub secret: String,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// One `[[hook]]`: a program run once per event, without a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConfig {
    /// Unique among the hooks; names the durable cursor (`hook:NAME`).
    pub name: String,
    pub command: PathBuf,
    pub args: Vec<String>,
    /// Event types that run it; empty means every type.
    pub events: Vec<String>,
    /// Killed (with its process group) when it runs longer.
    pub timeout: Duration,
}

/// When a failed webhook delivery is tried again and when it is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure; doubled after each further one, with jitter.
    pub first: Duration,
    /// Longest delay between two attempts.
    pub cap: Duration,
    /// An event still undelivered this long after it happened is given up after its next
    /// failed attempt.
    pub give_up: Duration,
    /// Per-request timeout (connect, send, response).
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first: Duration::from_secs(2),
            cap: Duration::from_secs(600),
            give_up: Duration::from_secs(24 * 3600),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything the hooks layer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksSettings {
    pub webhooks: Vec<WebhookConfig>,
    pub hooks: Vec<HookConfig>,
    /// Local hook processes running at once, over all hooks (`[hooks] max_concurrent`).
    pub max_concurrent: usize,
    pub retry: RetryPolicy,
    /// How long the journal keeps an event after every consumer has passed it.
    pub retention: Duration,
}

/// Default of `[hooks] max_concurrent`.
pub const DEFAULT_MAX_CONCURRENT: usize = 4;
/// Default timeout of a `[[hook]]`.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a consumed event stays in the journal (for `webhooks replay`).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl Default for HooksSettings {
    fn default() -> Self {
        HooksSettings {
            webhooks: Vec::new(),
            hooks: Vec::new(),
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            retry: RetryPolicy::default(),
            retention: DEFAULT_RETENTION,
        }
    }
}
