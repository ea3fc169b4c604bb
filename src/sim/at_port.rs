//! The AT port of one simulated modem: the task that moves bytes between its pseudo-terminal and
//! its state machine (`modem/`), follows unplug and replug, and hands what the modem played into a
//! call to the network's call record. It owns the pty of a plugged period and nothing else; every
//! decision about what to answer is the state machine's.
//!
//! Why split writes and a 2 ms pause: the `split_writes` fault cuts the output into random small
//! pieces so the daemon's line reassembly is exercised the way a USB serial bridge exercises it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::modem::ModemCore;
use super::network::Network;
use super::pty::{Pty, publish, unpublish};
use super::sync::lock;

/// The task serving one modem's AT port.
pub(super) struct ModemTask {
    pub(super) core: Arc<Mutex<ModemCore>>,
    /// Woken when the control side changed the modem (its deadlines may have moved).
    pub(super) notify: Arc<Notify>,
    pub(super) plugged: watch::Receiver<bool>,
    /// The published path of the AT port.
    pub(super) link: PathBuf,
    pub(super) network: Arc<Mutex<Network>>,
}

impl ModemTask {
    /// Serves the port until the simulator stops, across unplug/replug (a replug reboots).
    pub(super) async fn run(mut self, first: Pty, cancel: CancellationToken) {
        let mut pty = Some(first);
        loop {
            let p = match pty.take() {
                Some(p) => p,
                None => match Pty::open()
                    .and_then(|p| publish(&self.link, p.slave_path()).map(|()| p))
                {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!("replug of {}: {e}", self.link.display());
                        return;
                    }
                },
            };
            let stop = self.serve(&p, &cancel).await;
            unpublish(&self.link);
            drop(p);
            if stop {
                return;
            }
            // Unplugged: wait for the replug, then the modem powers up again.
            while !*self.plugged.borrow() {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = self.plugged.changed() => if r.is_err() { return },
                }
            }
            lock(&self.core).reboot(Instant::now());
        }
    }

    /// Serves one plugged period; returns true when the simulator stops.
    async fn serve(&mut self, pty: &Pty, cancel: &CancellationToken) -> bool {
        let mut buf = vec![0u8; 4096];
        loop {
            let now = Instant::now();
            let (out, split, played) = {
                let mut core = lock(&self.core);
                core.poll(now);
                let out = core.take_due(now);
                let split = core.faults.split_writes;
                let sizes: Vec<usize> = match split {
                    Some(max) if !out.is_empty() => {
                        let mut v = Vec::new();
                        let mut left = out.len();
                        while left > 0 {
                            let n = (core.rng().range(1, max.max(1) as u64) as usize).min(left);
                            v.push(n);
                            left -= n;
                        }
                        v
                    }
                    _ => vec![out.len()],
                };
                (out, sizes, core.take_played())
            };
            let (started, audio) = played;
            if !started.is_empty() || !audio.is_empty() {
                let mut net = lock(&self.network);
                for (id, size) in started {
                    net.file_played(id, size);
                }
                for (id, samples) in audio {
                    net.heard(id, &samples);
                }
            }
            if !out.is_empty() {
                let mut rest: &[u8] = &out;
                let pieces = split.len();
                for n in split {
                    let (chunk, tail) = rest.split_at(n.min(rest.len()));
                    rest = tail;
                    let _ = pty.write_all(chunk, Duration::from_secs(2)).await;
                    if pieces > 1 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            }
            let deadline = lock(&self.core).next_deadline();
            let sleep_to = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = cancel.cancelled() => return true,
                r = self.plugged.changed() => {
                    if r.is_err() { return true; }
                    if !*self.plugged.borrow() { return false; }
                }
                r = pty.read(&mut buf) => match r {
                    Ok(n) if n > 0 => {
                        let data = buf.get(..n).unwrap_or_default();
                        lock(&self.core).feed(data, Instant::now());
                    }
                    // Cannot happen while we hold the slave; avoid a hot loop if it does.
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                },
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep_until(sleep_to) => {}
            }
        }
    }
}
