//! What a record in the modem's received storage is, and the rule for the ones that are neither an
//! SMS-DELIVER nor an SMS-STATUS-REPORT ("foreign" records): an SMS-SUBMIT (a draft or sent copy a
//! phone left on the SIM), a record whose `<stat>` says STO UNSENT / STO SENT, a PDU line that is
//! not hex. Used by `inbound` for `AT+CMGR` and `AT+CMGL` alike; it owns the set of foreign slots
//! already reported and must not decide what a message means (that is the layer above's).
//!
//! The rule (docs/modems.md, "Foreign records in received storage"): a foreign record is **left on
//! the SIM and skipped by its slot** — logged once and raised once as an alert (it holds a storage
//! slot for good), never published, never deleted, never read again while the slot holds the same
//! PDU. Deleting was rejected because such a record was put there by someone else (a phone that had
//! the SIM before) and is not ours to destroy; publishing it would store a non-message as inbound.
//! A new `+CMTI`/`+CDSI` for the slot means it was freed and reused: the slot is forgotten and read
//! again. The TP-MTI decides (3GPP TS 23.040 §9.2.3.1): 00 DELIVER, 10 STATUS-REPORT, 11 reserved,
//! which a receiving MS handles as DELIVER; 01 is the foreign one. A PDU too short to show its
//! TP-MTI is published as a message, so the layer above keeps it flagged with its raw hex.

use tracing::warn;

use super::ModemActor;
use crate::modem::events::ModemEvent;

/// What a stored record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    Sms(Vec<u8>),
    Report(Vec<u8>),
    Foreign(&'static str),
}

/// Classifies one stored record from its `<stat>` and PDU line.
pub(super) fn classify(stat: Option<u8>, hex: &str) -> Kind {
    if matches!(stat, Some(2 | 3)) {
        return Kind::Foreign("an outgoing copy (STO UNSENT / STO SENT)");
    }
    let Some(bytes) = super::inbound::pdu_bytes(hex) else {
        return Kind::Foreign("not hex");
    };
    let smsc_len = usize::from(bytes.first().copied().unwrap_or(0));
    match bytes.get(1 + smsc_len).map(|fo| fo & 0x03) {
        Some(0b10) => Kind::Report(bytes),
        Some(0b01) => Kind::Foreign("an SMS-SUBMIT, not a received message"),
        _ => Kind::Sms(bytes),
    }
}

impl ModemActor {
    /// Whether `(storage, index)` holds the foreign record `hex` that was reported already.
    pub(super) fn known_foreign(&self, storage: &str, index: u32, hex: &str) -> bool {
        self.foreign
            .get(&(storage.to_owned(), index))
            .is_some_and(|h| h == hex.trim())
    }

    /// A slot was announced anew: whatever foreign record it held is gone.
    pub(super) fn forget_foreign(&mut self, storage: &str, index: u32) {
        self.foreign.remove(&(storage.to_owned(), index));
    }

    /// Logs and raises a foreign record once, and remembers its slot so it is skipped from now on.
    pub(super) fn note_foreign(&mut self, storage: &str, index: u32, hex: &str, why: &str) {
        if self.known_foreign(storage, index, hex) {
            return;
        }
        warn!(%storage, index, pdu = %hex.trim(), "stored record is {why}; left on the SIM and skipped");
        self.foreign
            .insert((storage.to_owned(), index), hex.trim().to_owned());
        self.publish(ModemEvent::Alert {
            modem: self.name.clone(),
            reason: format!(
                "record {storage} {index} in received storage is {why}; left on the SIM (it holds a slot)"
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tp_mti_decides() {
        // docs/pdu.md vectors: 1 (DELIVER), 9 (STATUS-REPORT), 2 (SUBMIT).
        let deliver = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37";
        assert!(matches!(classify(Some(0), deliver), Kind::Sms(_)));
        let report = "0006D60B911326880736F4111011719551401110117195714000";
        assert!(matches!(classify(None, report), Kind::Report(_)));
        let submit = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
        assert!(matches!(classify(Some(1), submit), Kind::Foreign(_)));
        assert!(matches!(classify(Some(3), deliver), Kind::Foreign(_)));
        assert!(matches!(classify(Some(0), "zz"), Kind::Foreign(_)));
        // Reserved TP-MTI 11 is handled as a DELIVER (23.040 §9.2.3.1); too short goes up.
        assert!(matches!(classify(Some(0), "0007"), Kind::Sms(_)));
        assert!(matches!(classify(Some(0), "05"), Kind::Sms(_)));
    }
}
