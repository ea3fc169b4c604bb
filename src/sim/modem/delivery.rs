//! Mobile-terminated traffic: DELIVER PDUs and status reports arriving from the network, routed
//! per `AT+CNMI` (27.005 §3.4.1) — stored with `+CMTI`/`+CDSI`, or sent directly as `+CMT`/`+CDS`
//! and, with `AT+CSMS=1`, held until `AT+CNMA` acknowledges them. It owns the queue of messages
//! the modem could not take yet and the acknowledgement bookkeeping; it answers no command itself
//! (`AT+CNMA` is parsed in `sms.rs`).
//!
//! Why a queue: the network keeps what the modem cannot take (storage full, booting, not
//! registered, an ack outstanding) and retries, so nothing is lost inside the simulator; a retry
//! runs after the answer of the command that made room, never before its `OK`.

use std::time::Duration;

use tokio::time::Instant;

use super::{Mem, ModemCore, Mt, Stored, Timer, tpdu_len};
use crate::sim::profile::Profile;

impl ModemCore {
    /// A DELIVER PDU (with SMSC field) arrives from the network.
    pub fn deliver_sms(&mut self, pdu: Vec<u8>, now: Instant) {
        self.now = now;
        self.pending_mt.push_back(Mt::Sms(pdu));
        self.try_deliver_pending();
    }

    /// A STATUS-REPORT PDU (with SMSC field) arrives from the network.
    pub fn deliver_report(&mut self, pdu: Vec<u8>, now: Instant) {
        self.now = now;
        self.pending_mt.push_back(Mt::Report(pdu));
        self.try_deliver_pending();
    }

    pub(super) fn can_receive(&self) -> bool {
        self.booting_until.is_none() && self.radio_on()
    }

    pub(super) fn try_deliver_pending(&mut self) {
        while self.awaiting_ack.is_none() && self.can_receive() {
            let Some(mt) = self.pending_mt.pop_front() else {
                break;
            };
            if let Err(mt) = self.route_mt(mt) {
                self.pending_mt.push_front(mt);
                break;
            }
        }
    }

    /// Routes one MT message per CNMI (27.005 §3.4.1). `Err` gives it back for a later retry
    /// (storage full), as the network retries an undeliverable message.
    fn route_mt(&mut self, mt: Mt) -> Result<(), Mt> {
        let [_, mt_mode, _, ds, _] = self.settings.cnmi;
        match &mt {
            Mt::Sms(pdu) => {
                if mt_mode == 2 {
                    let head = format!("+CMT: ,{}", tpdu_len(pdu));
                    let body = crate::pdu::to_hex(pdu);
                    self.urc2(&head, &body);
                    self.expect_ack(mt.clone());
                    return Ok(());
                }
                let m = self.settings.mems[2];
                match self.store(
                    m,
                    Stored {
                        stat: 0,
                        pdu: pdu.clone(),
                    },
                ) {
                    Some(i) => {
                        if mt_mode == 1 || mt_mode == 3 {
                            self.urc(&format!("+CMTI: \"{}\",{i}", m.name()));
                        }
                        Ok(())
                    }
                    None => {
                        if self.spec.profile == Profile::Huawei && !self.memfull_notified {
                            self.urc("^SMMEMFULL: \"SM\"");
                        }
                        self.memfull_notified = true;
                        Err(mt)
                    }
                }
            }
            Mt::Report(pdu) => match ds {
                1 => {
                    let head = format!("+CDS: {}", tpdu_len(pdu));
                    let body = crate::pdu::to_hex(pdu);
                    self.urc2(&head, &body);
                    self.expect_ack(mt.clone());
                    Ok(())
                }
                2 => match self.store(
                    Mem::Sr,
                    Stored {
                        stat: 0,
                        pdu: pdu.clone(),
                    },
                ) {
                    Some(i) => {
                        self.urc(&format!("+CDSI: \"SR\",{i}"));
                        Ok(())
                    }
                    None => Err(mt),
                },
                // ds=0: no status reports routed to the TE; the report is discarded.
                _ => Ok(()),
            },
        }
    }

    /// Pending messages go out after the answer of the running command, not before its OK.
    pub(super) fn retry_after_answer(&mut self) {
        let at = self.busy_until.max(self.now);
        self.timers.push((at, Timer::RetryDelivery));
    }

    fn expect_ack(&mut self, mt: Mt) {
        if self.settings.csms == 1 {
            self.ack_seq += 1;
            let seq = self.ack_seq;
            self.awaiting_ack = Some((seq, mt));
            let at = self.now + Duration::from_millis(self.spec.cnma_timeout_ms);
            self.timers.push((at, Timer::CnmaTimeout(seq)));
        }
    }

    /// No `AT+CNMA` came for message `seq` in time. The trap real modules set: the ME sets CNMI
    /// `<mt>` and `<ds>` to 0 (27.005 §3.4.4, as the Siemens MC55/TC35 AT manuals spell out);
    /// the network redelivers later, now silently stored.
    pub(super) fn cnma_timeout(&mut self, seq: u64) {
        let Some((s, mt)) = self.awaiting_ack.take() else {
            return;
        };
        if s != seq {
            self.awaiting_ack = Some((s, mt));
            return;
        }
        self.settings.cnmi[1] = 0;
        self.settings.cnmi[3] = 0;
        self.pending_mt.push_front(mt);
        self.try_deliver_pending();
    }
}
