//! Everything that reaches the actor unasked: URCs, and the follow-up work they cause. A new
//! message (`+CMTI`) or stored status report (`+CDSI`) becomes a read (`AT+CMGR`), an event with an
//! ack, and after that ack a delete (`AT+CMGD`); a direct delivery (`+CMT`/`+CDS`) becomes an event
//! and, with direct delivery on, an `AT+CNMA`; the storage drain (`AT+CMGL=4` in `SM`, then `SR`)
//! finds what a lost URC left behind. Registration and signal URCs update the status.
//!
//! It owns the follow-up queue ([`Work`]), the set of stored messages awaiting an ack, and the ack
//! futures. It must not decide when work runs (the serve loop orders it against requests) nor
//! decide what a message means (the layer above): a message leaves the SIM only after the layer
//! above has acked it, and a message it did not ack stays there to be found again.
//!
//! Non-obvious choices:
//! - An index leaves the pending set *before* its `AT+CMGD` is written: the modem reuses a freed
//!   slot at once and often announces the next report in the same read as the delete's `OK`
//!   (docs/modems.md, "Stored status reports"); that report must be read, not taken for the one
//!   being deleted.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::ModemActor;
use super::exec::ExecError;
use super::stored::{Kind, classify};
use crate::at::{Command, Urc, response};
use crate::modem::events::ModemEvent;
use crate::modem::status::{ModemState, Registration, rssi_dbm};
use crate::pdu;

/// Internal follow-up work, served between requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Work {
    /// Read a stored message (`report`: from the status-report storage) and publish it.
    Read {
        storage: String,
        index: u32,
        report: bool,
    },
    /// Delete an acked stored message.
    Delete { storage: String, index: u32 },
    /// Acknowledge a direct `+CMT`/`+CDS` (`AT+CNMA`), positively or not.
    Cnma { ok: bool },
    /// List and publish everything stored (`AT+CMGL=4`).
    Drain,
}

impl Work {
    /// Housekeeping that may wait behind a queued request: a status report is delivery news,
    /// not a message; a delete only frees a slot of something already stored above; the drain
    /// is a safety net. Reading an inbound text (a reply may be due) and `AT+CNMA` (the network
    /// times out) never wait.
    pub(super) fn can_wait(&self) -> bool {
        match self {
            Work::Read { report, .. } => *report,
            Work::Delete { .. } | Work::Drain => true,
            Work::Cnma { .. } => false,
        }
    }
}

#[derive(Debug)]
enum AckTarget {
    Stored { storage: String, index: u32 },
    Direct,
}

/// An ack future's outcome: whether the layer above acked the published message.
pub(super) struct AckDone {
    target: AckTarget,
    acked: bool,
}

pub(super) type AckFuture = Pin<Box<dyn Future<Output = AckDone> + Send>>;

/// Storage names as used in `AT+CPMS`: quotes stripped, upper case; a numeric `<mem>` (`+CMTI:
/// 0,111`, in chan_dongle's parser tests) names no memory we can select, so it means "where new
/// messages go" (`mem3`).
fn storage_name(raw: &str) -> String {
    let s = raw.trim().trim_matches('"').to_ascii_uppercase();
    if s.is_empty() || s.chars().all(|c| c.is_ascii_digit()) {
        "SM".to_owned()
    } else {
        s
    }
}

/// Decodes the hex of a PDU line.
pub(super) fn pdu_bytes(hex: &str) -> Option<Vec<u8>> {
    pdu::hex_to_bytes(hex.trim()).ok()
}

impl ModemActor {
    pub(super) fn on_urc(&mut self, urc: Urc) {
        match urc {
            Urc::NewMessage(si) => match si.index {
                Some(index) => {
                    self.forget_foreign(&storage_name(&si.storage), index);
                    self.queue_read(storage_name(&si.storage), index, false)
                }
                None => debug!(storage = %si.storage, "+CMTI with invalid index ignored"),
            },
            Urc::StatusReportStored(si) => match si.index {
                Some(index) => {
                    self.forget_foreign(&storage_name(&si.storage), index);
                    self.queue_read(storage_name(&si.storage), index, true)
                }
                None => debug!(storage = %si.storage, "+CDSI with invalid index ignored"),
            },
            Urc::Deliver { pdu, .. } => self.on_direct_deliver(&pdu),
            Urc::StatusReport { pdu, .. } => {
                match pdu_bytes(&pdu) {
                    Some(bytes) => self.publish_report("direct".into(), None, bytes, None),
                    None => warn!(%pdu, "undecodable +CDS PDU line"),
                }
                if self.cfg.init.direct_delivery {
                    self.work.push_back(Work::Cnma { ok: true });
                }
            }
            Urc::Registration(r) => {
                let reg = Registration::from_stat(r.stat);
                self.status.send_modify(|s| s.registration = Some(reg));
                self.publish(ModemEvent::Urc {
                    modem: self.name.clone(),
                    urc: Urc::Registration(r),
                });
            }
            Urc::Rssi(rssi) | Urc::QuectelCsq { rssi, .. } => {
                self.status.send_modify(|s| {
                    s.rssi = Some(rssi);
                    s.dbm = rssi_dbm(rssi);
                });
            }
            Urc::SmsMemoryFull(mem) => {
                warn!(%mem, "modem reports SMS storage full");
                self.publish(ModemEvent::Alert {
                    modem: self.name.clone(),
                    reason: format!("SMS storage full {mem}"),
                });
                self.queue_drain();
            }
            Urc::Ussd { status, text, dcs } if self.ussd_answer(status, text.as_deref(), dcs) => {}
            u if u.is_boot_marker() => {
                if self.state() == ModemState::Ready {
                    warn!(?u, "modem announced a reboot; re-running init");
                    self.reboot_seen = true;
                }
            }
            other => self.publish(ModemEvent::Urc {
                modem: self.name.clone(),
                urc: other,
            }),
        }
    }

    /// Queues a storage drain unless one is queued already.
    pub(super) fn queue_drain(&mut self) {
        if !self.work.contains(&Work::Drain) {
            self.work.push_back(Work::Drain);
        }
    }

    fn queue_read(&mut self, storage: String, index: u32, report: bool) {
        let w = Work::Read {
            storage: storage.clone(),
            index,
            report,
        };
        if self.pending.contains(&(storage, index)) || self.work.contains(&w) {
            return;
        }
        self.work.push_back(w);
    }

    fn on_direct_deliver(&mut self, hex: &str) {
        let Some(bytes) = pdu_bytes(hex) else {
            warn!(%hex, "undecodable +CMT PDU line");
            if self.cfg.init.direct_delivery {
                self.work.push_back(Work::Cnma { ok: false });
            }
            return;
        };
        let (ack, rx) = oneshot::channel();
        self.acks.push(Box::pin(async move {
            AckDone {
                target: AckTarget::Direct,
                acked: rx.await.is_ok(),
            }
        }));
        self.status.send_modify(|s| s.received += 1);
        let iccid = self.sim_iccid();
        self.publish(ModemEvent::Sms {
            modem: self.name.clone(),
            storage: "direct".into(),
            index: None,
            pdu: bytes,
            ack,
            iccid,
        });
    }

    /// The ICCID this init read (`None` until it has), for the events of what the SIM received.
    fn sim_iccid(&self) -> Option<String> {
        self.status.borrow().identity.iccid.clone()
    }

    /// Publishes a status report, decoding MR, recipient and status with `pdu`.
    fn publish_report(
        &mut self,
        storage: String,
        index: Option<u32>,
        bytes: Vec<u8>,
        ack: Option<oneshot::Sender<()>>,
    ) {
        let (mr, recipient, status) = match pdu::Pdu::decode(&bytes, pdu::Direction::ToMobile) {
            Ok(pdu::Pdu {
                tpdu: pdu::Tpdu::StatusReport(r),
                ..
            }) => (
                Some(r.message_reference),
                Some(r.recipient.to_string()),
                Some(r.status),
            ),
            Ok(other) => {
                warn!(?other, "status report slot held another TPDU type");
                (None, None, None)
            }
            Err(e) => {
                warn!(error = %e, "undecodable status report");
                (None, None, None)
            }
        };
        let iccid = self.sim_iccid();
        self.publish(ModemEvent::StatusReport {
            modem: self.name.clone(),
            storage,
            index,
            mr,
            recipient,
            status,
            pdu: bytes,
            ack,
            iccid,
        });
    }

    /// Publishes a stored message (or report) with an ack that triggers its deletion.
    fn publish_stored(&mut self, storage: String, index: u32, bytes: Vec<u8>, report: bool) {
        let (ack, rx) = oneshot::channel();
        let target = AckTarget::Stored {
            storage: storage.clone(),
            index,
        };
        self.pending.insert((storage.clone(), index));
        self.acks.push(Box::pin(async move {
            AckDone {
                target,
                acked: rx.await.is_ok(),
            }
        }));
        if report {
            self.publish_report(storage, Some(index), bytes, Some(ack));
        } else {
            self.status.send_modify(|s| s.received += 1);
            let iccid = self.sim_iccid();
            self.publish(ModemEvent::Sms {
                modem: self.name.clone(),
                storage,
                index: Some(index),
                pdu: bytes,
                ack,
                iccid,
            });
        }
    }

    pub(super) fn on_ack(&mut self, done: AckDone) {
        match (done.target, done.acked) {
            (AckTarget::Stored { storage, index }, true) => {
                self.work.push_back(Work::Delete { storage, index });
            }
            (AckTarget::Stored { storage, index }, false) => {
                warn!(%storage, index, "inbound message not acknowledged; left on the SIM");
                self.pending.remove(&(storage, index));
            }
            (AckTarget::Direct, ok) => {
                if self.cfg.init.direct_delivery {
                    self.work.push_back(Work::Cnma { ok });
                } else if !ok {
                    warn!(
                        "directly delivered message not stored by the layer above (modem acked it already)"
                    );
                }
            }
        }
    }

    /// Runs one item of follow-up work.
    pub(super) async fn do_work(&mut self, w: Work) -> Result<(), ExecError> {
        match w {
            // Whether a `+CDSI` announced it only ordered the work (`can_wait`): the TP-MTI of what
            // is read says what the record is.
            Work::Read { storage, index, .. } => self.read_stored(storage, index).await,
            Work::Delete { storage, index } => self.delete_stored(storage, index).await,
            Work::Cnma { ok } => self.cnma(ok).await,
            Work::Drain => self.drain().await,
        }
    }

    /// Selects `storage` for reading and deleting (`AT+CPMS=<mem1>`), if not already selected.
    async fn select_storage(&mut self, storage: &str) -> Result<bool, ExecError> {
        if self.mem1.as_deref() == Some(storage) {
            return Ok(true);
        }
        let cmd = match Command::cpms(storage, "SM", "SM") {
            Ok(c) => c,
            Err(e) => {
                warn!(%storage, error = %e, "storage name not usable");
                return Ok(false);
            }
        };
        let a = self.simple(cmd).await?;
        if a.result.is_ok() {
            self.mem1 = Some(storage.to_owned());
            Ok(true)
        } else {
            warn!(%storage, result = ?a.result, "cannot select storage");
            Ok(false)
        }
    }

    /// `AT+CMGR` of one announced slot, published with an ack (3GPP TS 27.005 §3.4.3).
    async fn read_stored(&mut self, storage: String, index: u32) -> Result<(), ExecError> {
        if self.pending.contains(&(storage.clone(), index))
            || !self.select_storage(&storage).await?
        {
            return Ok(());
        }
        let a = self.simple(Command::cmgr(index)).await?;
        if !a.result.is_ok() {
            warn!(%storage, index, result = ?a.result, "cannot read stored message");
            return Ok(());
        }
        match response::parse_cmgr(&a.lines) {
            Ok(sms) => match classify(sms.stat, &sms.pdu) {
                Kind::Sms(bytes) => self.publish_stored(storage, index, bytes, false),
                Kind::Report(bytes) => self.publish_stored(storage, index, bytes, true),
                Kind::Foreign(why) => self.note_foreign(&storage, index, &sms.pdu, why),
            },
            // An empty slot answers OK with no +CMGR line.
            Err(e) => debug!(%storage, index, error = %e, "no message in slot"),
        }
        Ok(())
    }

    /// `AT+CMGD` of an acked slot (3GPP TS 27.005 §3.5.4).
    async fn delete_stored(&mut self, storage: String, index: u32) -> Result<(), ExecError> {
        if !self.select_storage(&storage).await? {
            self.pending.remove(&(storage, index));
            return Ok(());
        }
        // The slot stops being ours the moment the modem executes the delete: a message stored
        // there from then on is announced with the same index (`+CDSI: "SR",<i>`), often in the
        // same read as this `OK`, and must be read, not taken for the one we are deleting. So the
        // index leaves `pending` before the command is written.
        self.pending.remove(&(storage.clone(), index));
        let a = self.simple(Command::cmgd(index)).await?;
        if a.result.is_ok() {
            debug!(%storage, index, "stored message deleted after ack");
        } else {
            warn!(%storage, index, result = ?a.result, "delete failed");
        }
        Ok(())
    }

    /// Acknowledges a direct delivery (`AT+CNMA=0`, 3GPP TS 27.005 §3.4.4), or restores direct
    /// delivery after a message the layer above did not take.
    async fn cnma(&mut self, ok: bool) -> Result<(), ExecError> {
        if ok {
            let a = self.simple(Command::cnma_pdu()).await?;
            if !a.result.is_ok() {
                warn!(result = ?a.result, "AT+CNMA refused");
            }
            return Ok(());
        }
        // Without our ack the network retries later (RP-ERROR) and the ME resets CNMI <mt>/<ds> to
        // 0 (3GPP TS 27.005 §3.4.4; same text in the Siemens MC55/TC35 AT manuals, AT+CNMA):
        // restore direct delivery right away.
        warn!("direct message not stored above: not acknowledged, network will resend");
        if let Ok(cmd) = Command::cnmi(2, 2, 0, 1, 0) {
            let a = self.simple(cmd).await?;
            if !a.result.is_ok() {
                warn!(result = ?a.result, "restoring AT+CNMI failed");
            }
        }
        Ok(())
    }

    /// `AT+CMGL=4` in `SM`, then in `SR`: publishes every stored received message and status
    /// report not already awaiting an ack (3GPP TS 27.005 §3.4.2). The `SR` pass is the safety net
    /// for reports whose `+CDSI` was lost (or arrived while no daemon listened): without it they
    /// would sit in `SR` for ever, and a full `SR` loses every later report. Modems that refuse
    /// `AT+CPMS="SR"` (Wavecom, docs/modems.md) store reports in `SM`, which the first pass covers;
    /// the refusal is remembered so the drain does not ask again.
    pub(super) async fn drain(&mut self) -> Result<(), ExecError> {
        let mut count = self.drain_storage("SM").await?;
        if self.sr_listable {
            if self.select_storage("SR").await? {
                count += self.drain_storage("SR").await?;
            } else {
                debug!("SR storage not selectable: reports are only looked for in SM");
                self.sr_listable = false;
            }
        }
        if count > 0 {
            info!(count, "stored messages published from the storage drain");
        }
        Ok(())
    }

    /// Lists one storage with `AT+CMGL=4` and publishes what is not pending; returns how many.
    async fn drain_storage(&mut self, storage: &str) -> Result<usize, ExecError> {
        if !self.select_storage(storage).await? {
            return Ok(0);
        }
        let Ok(cmd) = Command::cmgl(4) else {
            return Ok(0);
        };
        let a = self.simple(cmd).await?;
        if !a.result.is_ok() {
            warn!(%storage, result = ?a.result, "AT+CMGL=4 failed");
            return Ok(0);
        }
        let mut count = 0;
        for entry in response::parse_cmgl(&a.lines) {
            let sms = match entry {
                Ok(sms) => sms,
                Err(e) => {
                    warn!(%storage, error = %e, "unreadable CMGL entry");
                    continue;
                }
            };
            let Some(index) = sms.index else { continue };
            if self.pending.contains(&(storage.to_owned(), index))
                || self.known_foreign(storage, index, &sms.pdu)
            {
                continue;
            }
            // Outgoing copies (STO UNSENT / STO SENT) and other foreign records are left on the
            // SIM and skipped from now on (`stored`, docs/modems.md).
            match classify(sms.stat, &sms.pdu) {
                Kind::Sms(bytes) => self.publish_stored(storage.to_owned(), index, bytes, false),
                Kind::Report(bytes) => self.publish_stored(storage.to_owned(), index, bytes, true),
                Kind::Foreign(why) => {
                    self.note_foreign(storage, index, &sms.pdu, why);
                    continue;
                }
            }
            count += 1;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names() {
        assert_eq!(storage_name("\"SM\""), "SM");
        assert_eq!(storage_name("sr"), "SR");
        assert_eq!(storage_name("0"), "SM");
        assert_eq!(storage_name(""), "SM");
    }

    #[test]
    fn only_housekeeping_waits_behind_requests() {
        let read = |report| Work::Read {
            storage: "SR".into(),
            index: 1,
            report,
        };
        assert!(read(true).can_wait());
        assert!(!read(false).can_wait(), "an inbound text may need a reply");
        assert!(
            Work::Delete {
                storage: "SM".into(),
                index: 1
            }
            .can_wait()
        );
        assert!(Work::Drain.can_wait());
        assert!(!Work::Cnma { ok: true }.can_wait(), "the network times out");
    }
}
