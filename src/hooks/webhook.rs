//! One task per `[[webhook]]`: walks the event journal from the webhook's durable cursor and
//! POSTs each event it subscribes to, in order, at least once (docs/http-api.md, "Webhooks").
//!
//! Ordering and at-least-once come from the cursor: it moves past an event only after a 2xx (or
//! after the event was given up), and it lives in the store, so a crash or kill -9 between the
//! POST and the cursor update re-sends that one event after the restart — the receiver drops
//! the duplicate by its id. A non-2xx status, a timeout or a connection error is a failure:
//! the event is tried again after an exponential back-off with jitter (so many gateways behind
//! one receiver that came back do not retry in lockstep), and given up once it is older than
//! the policy's `give_up` (24 h): logged, counted, kept as the last error, then the next event.
//! Redirects are not followed: a POST turned into a GET by a 302 would "succeed" without the
//! receiver ever seeing the event.
//!
//! Replays an operator asked for are sent between two deliveries, out of band (the cursor does
//! not move), signed like any delivery. What this file must not touch: SQL (the store's
//! journal methods), the journal's content (the triggers and `feed.rs` write it).

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::settings::{RetryPolicy, WebhookConfig};
use super::sign;
use crate::dispatch::XorShift64;
use crate::store::{self, JournalEvent, Store};
use crate::time::now_ms;

/// How often an idle worker looks at the journal although no commit woke it (writes by another
/// connection to the same file do not wake it).
pub(super) const IDLE_POLL: Duration = Duration::from_secs(1);

/// The delay before attempt `attempts + 1` (after `attempts` failures, ≥ 1): `first · 2^(n−1)`,
/// capped, then a random point in its upper half.
pub fn backoff(policy: &RetryPolicy, attempts: i64, rng: &mut XorShift64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let first = u64::try_from(policy.first.as_millis()).unwrap_or(u64::MAX);
    let cap = u64::try_from(policy.cap.as_millis()).unwrap_or(u64::MAX);
    let full = first.saturating_mul(1u64 << exp).min(cap);
    let half = full / 2;
    Duration::from_millis(half + rng.up_to(full - half))
}

pub(super) struct Worker {
    pub store: Store,
    pub hook: WebhookConfig,
    pub client: reqwest::Client,
    pub retry: RetryPolicy,
    /// The store's last commit on disk (`Store::watch_durable`): events are handed out only once
    /// on disk, so a change of it is when new ones may be readable.
    pub commits: watch::Receiver<u64>,
    pub shutdown: CancellationToken,
}

/// What one POST came to.
type Attempt = Result<u16, String>;

impl Worker {
    fn key(&self) -> String {
        store::consumer_key("webhook", &self.hook.name)
    }

    pub async fn run(mut self) {
        let key = self.key();
        let mut rng = XorShift64::new(now_ms().unsigned_abs() ^ hash(&key));
        if let Err(e) = self.db(move |s| s.ensure_consumer(&key, now_ms())).await {
            warn!(webhook = %self.hook.name, error = %e, "cannot register the webhook's cursor; not delivering");
            return;
        }
        info!(webhook = %self.hook.name, url = %self.hook.url, "webhook delivery started");
        while !self.shutdown.is_cancelled() {
            if let Err(e) = self.step(&mut rng).await {
                warn!(webhook = %self.hook.name, error = %e, "webhook worker: database error; retrying");
                self.sleep(IDLE_POLL).await;
            }
        }
    }

    /// One turn: pending replays, then the next event if it is due; waits when there is
    /// nothing to do.
    async fn step(&mut self, rng: &mut XorShift64) -> store::Result<()> {
        // Marks the current commit as seen before reading, so a commit after the read wakes us.
        self.commits.borrow_and_update();
        self.replays().await?;
        let key = self.key();
        let types = self.hook.events.clone();
        let (cursor, last, next) = self
            .db(move |s| {
                let cursor = s.ensure_consumer(&key, now_ms())?;
                let last = s.last_event_id()?;
                let next = s
                    .events_after(cursor.last_id, &types, 1)?
                    .into_iter()
                    .next();
                Ok((cursor, last, next))
            })
            .await?;
        let Some(ev) = next else {
            if last > cursor.last_id {
                // Only events this webhook does not subscribe to: step over them so the
                // cursor never holds back pruning.
                let key = self.key();
                self.db(move |s| s.consumer_skip_to(&key, last)).await?;
            }
            self.wait(IDLE_POLL).await;
            return Ok(());
        };
        let now = now_ms();
        if let Some(due) = cursor.next_attempt_at
            && due > now
        {
            self.wait(Duration::from_millis(due.abs_diff(now))).await;
            return Ok(());
        }
        let outcome = tokio::select! {
            r = post(&self.client, &self.hook, &ev, self.retry.request_timeout) => r,
            // The cursor is not moved: the event goes again after the restart.
            _ = self.shutdown.cancelled() => return Ok(()),
        };
        self.record(ev, cursor.attempts, outcome, rng).await
    }

    async fn record(
        &self,
        ev: JournalEvent,
        attempts: i64,
        outcome: Attempt,
        rng: &mut XorShift64,
    ) -> store::Result<()> {
        let key = self.key();
        let name = &self.hook.name;
        let now = now_ms();
        match outcome {
            Ok(status) => {
                debug!(webhook = %name, event = ev.id, status, "event delivered");
                self.db(move |s| s.consumer_delivered(&key, ev.id, now))
                    .await
            }
            Err(error) => {
                let attempts = attempts + 1;
                let age = Duration::from_millis(u64::try_from(now - ev.at).unwrap_or(0));
                if age >= self.retry.give_up {
                    warn!(webhook = %name, event = ev.id, kind = %ev.kind, attempts, %error,
                          "giving up on the event: undelivered for longer than the retry period");
                    let error = format!(
                        "gave up on event {} after {attempts} attempts: {error}",
                        ev.id
                    );
                    self.db(move |s| s.consumer_gave_up(&key, ev.id, &error, now))
                        .await
                } else {
                    let delay = backoff(&self.retry, attempts, rng);
                    let next =
                        now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                    info!(webhook = %name, event = ev.id, attempts, %error,
                          retry_in_ms = delay.as_millis() as u64, "webhook delivery failed; will retry");
                    self.db(move |s| s.consumer_retry(&key, attempts, next, &error, now))
                        .await
                }
            }
        }
    }

    /// Sends the replays an operator asked for, once each, and records the outcome.
    async fn replays(&self) -> store::Result<()> {
        let key = self.key();
        let pending = self.db(move |s| s.pending_replays(&key)).await?;
        for r in pending {
            let event = self.db(move |s| s.event(r.event_id)).await?;
            let result = match event {
                None => "event no longer in the journal".to_string(),
                Some(ev) => {
                    match post(&self.client, &self.hook, &ev, self.retry.request_timeout).await {
                        Ok(status) => format!("delivered (HTTP {status})"),
                        Err(e) => format!("failed: {e}"),
                    }
                }
            };
            info!(webhook = %self.hook.name, event = r.event_id, %result, "replay");
            self.db(move |s| s.finish_replay(r.id, &result, now_ms()))
                .await?;
        }
        Ok(())
    }

    async fn db<T, F>(&self, f: F) -> store::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> store::Result<T> + Send + 'static,
    {
        self.store.call(f).await
    }

    /// Until a commit, `max`, or shutdown.
    async fn wait(&mut self, max: Duration) {
        tokio::select! {
            _ = self.commits.changed() => {}
            _ = tokio::time::sleep(max) => {}
            _ = self.shutdown.cancelled() => {}
        }
    }

    async fn sleep(&self, d: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.shutdown.cancelled() => {}
        }
    }
}

/// One signed POST of `ev` to the webhook. `Ok(status)` only for a 2xx.
pub(super) async fn post(
    client: &reqwest::Client,
    hook: &WebhookConfig,
    ev: &JournalEvent,
    timeout: Duration,
) -> Attempt {
    let body = sign::body(ev);
    let ts = crate::time::now_secs();
    let sig = sign::signature(&hook.secret, ts, &body);
    let res = client
        .post(&hook.url)
        .timeout(timeout)
        .header("Content-Type", "application/json")
        .header(sign::EVENT_ID_HEADER, ev.id.to_string())
        .header(sign::EVENT_TYPE_HEADER, ev.kind.as_str())
        .header(sign::TIMESTAMP_HEADER, ts.to_string())
        .header(sign::SIGNATURE_HEADER, sig)
        .body(body)
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
        Ok(r) => Err(format!("HTTP {}", r.status())),
        Err(e) => Err(error_chain(&e)),
    }
}

/// reqwest's top-level message ("error sending request") hides the cause; the chain names it.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

fn hash(s: &str) -> u64 {
    // FNV-1a: only decorrelates the jitter of two webhooks started in the same millisecond.
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let p = RetryPolicy {
            first: Duration::from_secs(2),
            cap: Duration::from_secs(600),
            ..RetryPolicy::default()
        };
        let mut rng = XorShift64::new(42);
        for attempts in 1..=40 {
            let full = (2_000u64 << (attempts - 1).min(30)).min(600_000);
            for _ in 0..50 {
                let d = backoff(&p, attempts, &mut rng).as_millis() as u64;
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempts}: {d} vs {full}"
                );
            }
        }
        assert!(backoff(&p, 0, &mut rng) <= Duration::from_secs(2));
    }
}
