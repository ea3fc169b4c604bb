//! The modem's own clock: timers (boot, boot lines, Huawei's periodic `^RSSI`/`^BOOT` noise,
//! status reports due after a send, the `AT+CNMA` timeout, delivery retries) and the power cycle
//! that starts them (`AT+CFUN=1,1`, a reboot fault, a replug). Boot lines and vendor noise are
//! emitted here; what the other timers do when they fire belongs to their family (`delivery.rs`).
//!
//! Why a reboot keeps some things: stored messages are on the SIM and files on the flash, and a
//! status report already on its way from the network still arrives; everything else (settings,
//! the SIM lock, an open prompt, a call) is gone, as on a real module.

use std::time::Duration;

use tokio::time::Instant;

use super::{Input, ModemCore, Settings, SimLock, Timer};
use crate::sim::profile::Profile;
use crate::sim::radio::CallEvent;

impl ModemCore {
    pub(super) fn run_timers(&mut self, now: Instant) {
        while let Some(pos) = self
            .timers
            .iter()
            .enumerate()
            .filter(|(_, (t, _))| *t <= now)
            .min_by_key(|(_, (t, _))| *t)
            .map(|(i, _)| i)
        {
            let (_, timer) = self.timers.remove(pos);
            match timer {
                Timer::BootDone => self.boot_done(),
                Timer::BootLine(l) | Timer::Ussd(l) => self.urc(&l),
                Timer::Noise(n) => self.huawei_noise(n, now),
                Timer::StatusReport(pdu) => self.deliver_report(pdu, now),
                Timer::RetryDelivery => self.try_deliver_pending(),
                Timer::CnmaTimeout(seq) => self.cnma_timeout(seq),
            }
        }
    }

    /// Huawei's periodic `^RSSI` (and every third period `^BOOT`, which is not a reboot), unless
    /// `AT^CURC=0` silenced it; the timer keeps running either way.
    fn huawei_noise(&mut self, n: u32, now: Instant) {
        if self.spec.profile != Profile::Huawei || self.spec.noise_interval_ms == 0 {
            return;
        }
        if self.settings.huawei_curc && self.booting_until.is_none() {
            let l = format!("^RSSI:{}", self.rssi);
            self.urc(&l);
            if n % 3 == 2 {
                self.urc("^BOOT:27710117,0,0,0,75");
            }
        }
        let at = now + Duration::from_millis(self.spec.noise_interval_ms);
        self.timers.push((at, Timer::Noise(n.wrapping_add(1))));
    }

    /// Power-cycles the modem at `at`: settings back to defaults, SIM locked again if it has a
    /// PIN, call dropped, boot lines after `boot_ms`. Stored messages survive (they are on the SIM).
    pub fn reboot(&mut self, at: Instant) {
        self.settings = Settings::defaults();
        self.sim = if self.pin.is_some() {
            SimLock::Pin
        } else {
            SimLock::Ready
        };
        self.cfun = 1;
        self.input = Input::Line(Vec::new());
        self.held_urcs.clear();
        self.awaiting_ack = None;
        self.busy_lines = 0;
        self.timers
            .retain(|(_, t)| matches!(t, Timer::StatusReport(_)));
        if let Some(c) = self.call.take() {
            self.report_call(c.id, CallEvent::Dropped);
        }
        let done = at + Duration::from_millis(self.spec.boot_ms);
        self.booting_until = Some(done);
        self.busy_until = done;
        self.timers.push((done, Timer::BootDone));
    }

    fn boot_done(&mut self) {
        self.booting_until = None;
        self.zte_csca_busy = self.spec.profile == Profile::Zte;
        let swap = self.rng.range(0, 1) == 1;
        let lines = self
            .spec
            .profile
            .boot_lines(self.sim == SimLock::Ready, swap);
        for (i, l) in lines.into_iter().enumerate() {
            // The DONE lines come a little later than RDY on real modules.
            let at = self.now + Duration::from_millis(20 * i as u64);
            self.timers.push((at, Timer::BootLine(l)));
        }
        if self.spec.profile == Profile::Huawei && self.spec.noise_interval_ms > 0 {
            let at = self.now + Duration::from_millis(self.spec.noise_interval_ms);
            self.timers.push((at, Timer::Noise(0)));
        }
        self.try_deliver_pending();
    }
}
