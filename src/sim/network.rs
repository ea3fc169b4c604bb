//! The simulated radio network and its subscribers ("phones"). It owns what happens beyond the
//! modems: every SUBMIT a modem sends is decoded here and delivered to the phone it is addressed
//! to (parts reassembled by their concatenation header), status reports are generated when TP-SRR
//! asks for them, texts from phones are encoded as DELIVER parts, and call records keep what a
//! phone heard. It uses `pdu` for all encoding and decoding and knows nothing about AT commands or
//! file descriptors.
//!
//! Why a single lock for the whole network: phones are shared by all modems (a phone may text one
//! modem and be texted by another), and every operation here is short. The lock order is always
//! modem first, then network; the control side never holds the network while locking a modem.

use std::collections::BTreeMap;

use serde::Serialize;

use super::radio::{CallEvent, Radio};
use crate::pdu::reassembly::Part;
use crate::pdu::{
    Address, Body, Direction, Pdu, PduError, Reassembler, StatusReport, Timestamp, Tpdu,
    delivers_for_text,
};

/// How long parts wait for their siblings before the text is recorded as incomplete.
const REASSEMBLY_TIMEOUT_SECS: u64 = 120;

/// Errors of network operations requested by the control side.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("invalid phone number {number:?}: {source}")]
    BadNumber { number: String, source: PduError },
    #[error("cannot encode text from {from}: {source}")]
    Encode { from: String, source: PduError },
    #[error("no call with id {0}")]
    NoCall(u64),
}

/// A text as a phone received it, reassembled from its parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedText {
    /// The receiving phone.
    pub phone: String,
    /// The index of the modem that sent the parts.
    pub modem: Option<usize>,
    /// The sender number as the network saw it (the SIM's own number).
    pub from: String,
    pub text: String,
    pub parts: u8,
    pub complete: bool,
    /// Sequence numbers that never arrived.
    pub missing: Vec<u8>,
    /// Modem-chosen TP-MRs of the parts, in arrival order.
    pub message_references: Vec<u8>,
    pub status_report_requested: bool,
    /// Unix seconds of the first and the last part.
    pub first_part_at: i64,
    pub completed_at: i64,
    /// Alphabet of the parts ("gsm7", "ucs2", "8bit").
    pub alphabet: String,
}

/// One SUBMIT as it arrived at the network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubmittedPart {
    pub modem: usize,
    pub mr: u8,
    pub to: String,
    pub pdu_hex: String,
    pub at: i64,
    pub concat: Option<(u16, u8, u8)>,
    pub status_report_requested: bool,
}

/// A call between a phone and a modem.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub id: u64,
    pub phone: String,
    pub modem: usize,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    /// Rings the modem signalled to its host before the answer (or before the phone gave up).
    pub rings: u32,
    pub audio_on_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// "modem", "phone" or "dropped".
    pub ended_by: Option<String>,
    /// Files the modem played to the caller (SIM800 AT+CREC=4), by size in bytes.
    pub files_played: Vec<usize>,
    /// Milliseconds of audio the phone heard (8 kHz samples / 8).
    pub heard_ms: u64,
    /// What the phone heard (s16 8 kHz mono).
    #[serde(skip)]
    pub heard: Vec<i16>,
    /// What the phone says into the call (s16 8 kHz mono), played from `speech_pos`.
    #[serde(skip)]
    pub speech: Vec<i16>,
    #[serde(skip)]
    pub speech_pos: usize,
}

#[derive(Debug)]
struct Phone {
    reassembler: Reassembler,
    /// Per (sender, reference, total): modem, MRs, SRR, first time, alphabet.
    meta: BTreeMap<(String, u16, u8), PartMeta>,
    received: Vec<ReceivedText>,
}

#[derive(Debug, Clone, Default)]
struct PartMeta {
    modem: Option<usize>,
    mrs: Vec<u8>,
    srr: bool,
    first: i64,
    alphabet: String,
}

impl Phone {
    fn new() -> Phone {
        Phone {
            reassembler: Reassembler::new(REASSEMBLY_TIMEOUT_SECS),
            meta: BTreeMap::new(),
            received: Vec::new(),
        }
    }

    /// Records a text whose parts are all in (or whose wait timed out) with what its parts told
    /// the network on the way; `phone` is this phone's number.
    fn complete(&mut self, phone: &str, a: crate::pdu::Assembled, unix_now: i64) {
        let meta = self
            .meta
            .remove(&(a.sender.clone(), a.reference, a.total))
            .unwrap_or_default();
        self.received.push(record(phone, a, meta, unix_now));
    }
}

/// The simulated network: phones, texts, calls.
#[derive(Debug)]
pub struct Network {
    smsc: String,
    /// Own numbers of the modems, by index (the network's view of who sent a SUBMIT).
    modem_numbers: Vec<String>,
    phones: BTreeMap<String, Phone>,
    submitted: Vec<SubmittedPart>,
    calls: Vec<CallRecord>,
    next_call_id: u64,
    next_concat_ref: u16,
    /// TP-ST put in generated status reports (0 = delivered).
    pub report_status: u8,
}

fn alphabet_name(p: &crate::pdu::Dcs) -> String {
    match p.alphabet() {
        crate::pdu::Alphabet::Gsm7 => "gsm7",
        crate::pdu::Alphabet::EightBit => "8bit",
        crate::pdu::Alphabet::Ucs2 => "ucs2",
    }
    .to_string()
}

impl Network {
    pub fn new(smsc: &str, modem_numbers: Vec<String>) -> Network {
        Network {
            smsc: smsc.to_string(),
            modem_numbers,
            phones: BTreeMap::new(),
            submitted: Vec::new(),
            calls: Vec::new(),
            next_call_id: 1,
            next_concat_ref: 1,
            report_status: 0,
        }
    }

    fn smsc_address(&self) -> Option<Address> {
        Address::international(&self.smsc).ok()
    }

    /// DELIVER PDUs (with SMSC field) carrying `text` from phone `from`.
    pub fn texts_for(
        &mut self,
        from: &str,
        text: &str,
        unix_now: i64,
    ) -> Result<Vec<Vec<u8>>, NetworkError> {
        let addr = Address::parse(from).map_err(|source| NetworkError::BadNumber {
            number: from.into(),
            source,
        })?;
        let reference = self.next_concat_ref;
        // 8-bit references wrap at 255; keep them in 1..=255 so the 8-bit header is used.
        self.next_concat_ref = if self.next_concat_ref >= 255 {
            1
        } else {
            self.next_concat_ref + 1
        };
        let ts = Timestamp::from_unix(unix_now, 0);
        let smsc = self.smsc_address();
        let pdus = delivers_for_text(&addr, text, ts, reference).map_err(|source| {
            NetworkError::Encode {
                from: from.into(),
                source,
            }
        })?;
        Ok(pdus
            .into_iter()
            .map(|mut p| {
                p.smsc = smsc.clone();
                p.encode()
            })
            .collect())
    }

    /// A DELIVER used to fill storage (fault `storage_full`).
    pub fn filler_pdu(&mut self, unix_now: i64) -> Vec<u8> {
        self.texts_for("+15559999999", "storage filler", unix_now)
            .ok()
            .and_then(|v| v.into_iter().next())
            .unwrap_or_default()
    }

    /// Starts a call record; returns its id.
    pub fn new_call(&mut self, phone: &str, modem: usize, unix_now: i64) -> u64 {
        let id = self.next_call_id;
        self.next_call_id += 1;
        self.calls.push(CallRecord {
            id,
            phone: phone.to_string(),
            modem,
            started_at: unix_now,
            answered_at: None,
            rings: 0,
            audio_on_at: None,
            ended_at: None,
            ended_by: None,
            files_played: Vec::new(),
            heard_ms: 0,
            heard: Vec::new(),
            speech: Vec::new(),
            speech_pos: 0,
        });
        id
    }

    pub fn call_mut(&mut self, id: u64) -> Option<&mut CallRecord> {
        self.calls.iter_mut().find(|c| c.id == id)
    }

    pub fn call(&self, id: u64) -> Option<&CallRecord> {
        self.calls.iter().find(|c| c.id == id)
    }

    /// The open call of a phone, if any.
    pub fn open_call_of(&self, phone: &str) -> Option<&CallRecord> {
        self.calls
            .iter()
            .rev()
            .find(|c| c.phone == phone && c.ended_at.is_none())
    }

    pub fn calls(&self, phone: Option<&str>) -> Vec<CallRecord> {
        self.calls
            .iter()
            .filter(|c| phone.is_none_or(|p| c.phone == p))
            .cloned()
            .collect()
    }

    /// Audio the phone heard (from the modem's uplink) is appended.
    pub fn heard(&mut self, id: u64, samples: &[i16]) {
        if let Some(c) = self.call_mut(id) {
            c.heard.extend_from_slice(samples);
            c.heard_ms = c.heard.len() as u64 / 8;
        }
    }

    /// The next `n` samples the phone says (silence when it has nothing more to say).
    pub fn speech(&mut self, id: u64, n: usize) -> Vec<i16> {
        let mut out = vec![0i16; n];
        if let Some(c) = self.call_mut(id) {
            let avail = c.speech.len().saturating_sub(c.speech_pos).min(n);
            if let (Some(dst), Some(src)) = (
                out.get_mut(..avail),
                c.speech.get(c.speech_pos..c.speech_pos + avail),
            ) {
                dst.copy_from_slice(src);
            }
            c.speech_pos += avail;
        }
        out
    }

    /// A stored file started playing into a call (its audio arrives through [`Self::heard`] as it
    /// plays, on the modem's clock).
    pub fn file_played(&mut self, id: u64, size: usize) {
        if let Some(c) = self.call_mut(id) {
            c.files_played.push(size);
        }
    }

    /// Texts received by one phone (or all phones), oldest first. Groups that timed out are
    /// released as incomplete first.
    pub fn received(&mut self, phone: Option<&str>, unix_now: i64) -> Vec<ReceivedText> {
        let names: Vec<String> = self.phones.keys().cloned().collect();
        for name in names {
            self.expire(&name, unix_now);
        }
        let mut out: Vec<ReceivedText> = self
            .phones
            .iter()
            .filter(|(n, _)| phone.is_none_or(|p| p == n.as_str()))
            .flat_map(|(_, p)| p.received.iter().cloned())
            .collect();
        out.sort_by_key(|t| (t.completed_at, t.first_part_at));
        out
    }

    /// Every SUBMIT the network accepted, in order.
    pub fn submitted(&self) -> &[SubmittedPart] {
        &self.submitted
    }

    fn expire(&mut self, phone: &str, unix_now: i64) {
        let Some(p) = self.phones.get_mut(phone) else {
            return;
        };
        for a in p.reassembler.expire(unix_now.max(0) as u64) {
            p.complete(phone, a, unix_now);
        }
    }
}

fn record(phone: &str, a: crate::pdu::Assembled, meta: PartMeta, unix_now: i64) -> ReceivedText {
    ReceivedText {
        phone: phone.to_string(),
        modem: meta.modem,
        from: a.sender,
        text: a.text,
        parts: a.total,
        complete: a.complete,
        missing: a.missing,
        message_references: meta.mrs,
        status_report_requested: meta.srr,
        first_part_at: meta.first,
        completed_at: unix_now,
        alphabet: meta.alphabet,
    }
}

impl Radio for Network {
    fn submit(
        &mut self,
        modem: usize,
        mr: u8,
        pdu: &[u8],
        unix_now: i64,
    ) -> Result<Option<Vec<u8>>, String> {
        let decoded = Pdu::decode(pdu, Direction::FromMobile).map_err(|e| e.to_string())?;
        let Tpdu::Submit(submit) = decoded.tpdu else {
            return Err(format!("expected SMS-SUBMIT, got {}", decoded.tpdu.name()));
        };
        let to = submit.destination.to_string();
        let from = self
            .modem_numbers
            .get(modem)
            .cloned()
            .unwrap_or_else(|| format!("modem{modem}"));
        let concat = submit.user_data.concat();
        self.submitted.push(SubmittedPart {
            modem,
            mr,
            to: to.clone(),
            pdu_hex: crate::pdu::to_hex(pdu),
            at: unix_now,
            concat,
            status_report_requested: submit.status_report_request,
        });
        let text = match &submit.user_data.body {
            Body::Text(t) => t.clone(),
            // Binary bodies are recorded as hex so a test can still see them.
            Body::Data(d) => crate::pdu::to_hex(d),
        };
        let (reference, total, sequence) = concat.unwrap_or((0, 1, 1));
        let phone = self.phones.entry(to.clone()).or_insert_with(Phone::new);
        let key = (from.clone(), reference, total);
        let meta = phone.meta.entry(key.clone()).or_insert_with(|| PartMeta {
            modem: Some(modem),
            mrs: Vec::new(),
            srr: false,
            first: unix_now,
            alphabet: alphabet_name(&submit.dcs),
        });
        meta.mrs.push(mr);
        meta.srr |= submit.status_report_request;
        let part = Part {
            sender: from.clone(),
            reference,
            total,
            sequence,
            text,
        };
        if let Some(done) = phone.reassembler.push(part, unix_now.max(0) as u64) {
            phone.complete(&to, done, unix_now);
        }
        if !submit.status_report_request {
            return Ok(None);
        }
        // 23.040 §9.2.2.3: the report carries the modem's MR and the recipient.
        let ts = Timestamp::from_unix(unix_now, 0);
        let report = Pdu {
            smsc: self.smsc_address(),
            tpdu: Tpdu::StatusReport(StatusReport {
                message_reference: mr,
                recipient: submit.destination.clone(),
                timestamp: ts,
                discharge_time: ts,
                status: self.report_status,
                status_report_qualifier: false,
                more_messages_to_send: false,
                pid: None,
                dcs: None,
                user_data: None,
            }),
        };
        Ok(Some(report.encode()))
    }

    fn call_event(&mut self, _modem: usize, call_id: u64, event: CallEvent, unix_now: i64) {
        let Some(c) = self.call_mut(call_id) else {
            return;
        };
        match event {
            CallEvent::Ring => c.rings += 1,
            CallEvent::Answered => c.answered_at = Some(unix_now),
            CallEvent::AudioOn => {
                c.audio_on_at.get_or_insert(unix_now);
            }
            CallEvent::FilePlayed => {}
            CallEvent::HungUpByModem | CallEvent::HungUpByPhone | CallEvent::Dropped => {
                c.ended_at = Some(unix_now);
                c.ended_by = Some(
                    match event {
                        CallEvent::HungUpByModem => "modem",
                        CallEvent::HungUpByPhone => "phone",
                        _ => "dropped",
                    }
                    .into(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::{SubmitOptions, submits_for_text};

    fn net() -> Network {
        Network::new(
            "+15550000000",
            vec!["+15550100000".into(), "+15550100001".into()],
        )
    }

    #[test]
    fn submit_is_delivered_and_reassembled() {
        let mut n = net();
        let to = Address::parse("+15557654321").unwrap();
        let text = "x".repeat(200);
        let parts = submits_for_text(
            &to,
            &text,
            &SubmitOptions {
                concat_reference: 9,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(parts.len(), 2);
        // Out of order: the second part first.
        assert!(n.submit(1, 7, &parts[1].encode(), 100).unwrap().is_none());
        assert!(n.received(None, 100).is_empty());
        n.submit(1, 8, &parts[0].encode(), 101).unwrap();
        let got = n.received(Some("+15557654321"), 101);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text, text);
        assert_eq!(got[0].modem, Some(1));
        assert_eq!(got[0].from, "+15550100001");
        assert_eq!(got[0].message_references, vec![7, 8]);
        assert!(got[0].complete);
    }

    #[test]
    fn missing_part_expires_incomplete() {
        let mut n = net();
        let to = Address::parse("+15557654321").unwrap();
        let parts = submits_for_text(&to, &"y".repeat(300), &SubmitOptions::default()).unwrap();
        n.submit(0, 1, &parts[0].encode(), 10).unwrap();
        let got = n.received(None, 10 + REASSEMBLY_TIMEOUT_SECS as i64);
        assert_eq!(got.len(), 1);
        assert!(!got[0].complete);
        assert_eq!(got[0].missing, vec![2]);
    }

    #[test]
    fn status_report_carries_modem_mr() {
        let mut n = net();
        let to = Address::parse("+15557654321").unwrap();
        let opts = SubmitOptions {
            status_report: true,
            ..Default::default()
        };
        let p = &submits_for_text(&to, "hi", &opts).unwrap()[0];
        let report = n.submit(0, 201, &p.encode(), 5).unwrap().expect("report");
        let decoded = Pdu::decode(&report, Direction::ToMobile).unwrap();
        let Tpdu::StatusReport(r) = decoded.tpdu else {
            panic!("not a report")
        };
        assert_eq!(r.message_reference, 201);
        assert_eq!(r.recipient.to_string(), "+15557654321");
        assert_eq!(r.status, 0);
    }

    #[test]
    fn deliver_rejected_as_submit() {
        let mut n = net();
        let pdus = n.texts_for("+15551112222", "hello", 0).unwrap();
        assert!(n.submit(0, 1, &pdus[0], 0).is_err());
        let d = Pdu::decode(&pdus[0], Direction::ToMobile).unwrap();
        let Tpdu::Deliver(d) = d.tpdu else {
            panic!("not a deliver")
        };
        assert_eq!(d.text(), Some("hello"));
        assert_eq!(d.originator.to_string(), "+15551112222");
    }

    #[test]
    fn long_unicode_text_is_split() {
        let mut n = net();
        let text = "Grüße 👋 ".repeat(20);
        let pdus = n.texts_for("+15551112222", &text, 0).unwrap();
        assert!(pdus.len() > 1);
    }
}
