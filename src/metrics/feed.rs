//! What feeds the in-memory metrics: the dispatch runner's observations (sent, failed, the
//! claim → OK latency, limiter waits, …) through [`SendObserver`], and the daemon's event bus
//! (whole messages received, status reports) through [`Metrics::follow_events`].
//!
//! Owns the mapping from those to counter increments; must not touch the store, the modems or
//! the bus's other subscribers. The observer runs inside the send loops: it only bumps atomics
//! (a family's lookup takes a read lock that a scrape holds for microseconds), never waits.

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::Metrics;
use super::families::{ModemLabel, ReportLabel};
use crate::dispatch::runner::{Observation, SendObserver};
use crate::protocol::Event;

impl SendObserver for Metrics {
    fn observe(&self, modem: &str, what: Observation) {
        let f = &self.inner.families;
        let l = ModemLabel::new(modem);
        match what {
            Observation::Claimed => {
                f.sending.get_or_create(&l).inc();
            }
            Observation::Settled => {
                f.sending.get_or_create(&l).dec();
            }
            Observation::Sent { parts, since_claim } => {
                f.sent.get_or_create(&l).inc();
                f.parts_sent.get_or_create(&l).inc_by(u64::from(parts));
                f.send_latency
                    .get_or_create(&l)
                    .observe(since_claim.as_secs_f64());
            }
            Observation::Failed => {
                f.failed.get_or_create(&l).inc();
            }
            // Most expiries happen inside the claim query, which the runner never sees: a
            // counter of the few it does see would read as "nothing expires". None is kept.
            Observation::Expired => {}
            Observation::InDoubt => {
                f.in_doubt.get_or_create(&l).inc();
            }
            Observation::Retried => {
                f.retries.get_or_create(&l).inc();
            }
            Observation::Deferred => {
                f.deferred.get_or_create(&l).inc();
            }
            Observation::LimiterWait(d) => {
                f.limiter_wait.get_or_create(&l).observe(d.as_secs_f64());
            }
        }
    }
}

impl Metrics {
    /// Counts one bus event (the ones a metric is made of; the rest are ignored).
    pub(crate) fn count_event(&self, e: &Event) {
        let f = &self.inner.families;
        match e {
            Event::MessageIn { modem, .. } => {
                f.received.get_or_create(&ModemLabel::new(modem)).inc();
            }
            Event::DeliveryReport { status, .. } => {
                f.delivery_reports
                    .get_or_create(&ReportLabel {
                        status: status.clone(),
                    })
                    .inc();
            }
            _ => {}
        }
    }

    /// Counts the bus's events until shutdown or until the bus is gone. Subscribe (`rx`) before
    /// the publishers start, or their first events are not counted.
    pub async fn follow_events(
        self,
        mut rx: broadcast::Receiver<Event>,
        shutdown: CancellationToken,
    ) {
        loop {
            let e = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = rx.recv() => e,
            };
            match e {
                Ok(e) => self.count_event(&e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(
                        missed = n,
                        "metrics fell behind the event bus; counters undercount"
                    );
                    self.inner.families.events_missed.inc_by(n);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
