//! Reassembly of concatenated inbound SMS (23.040 §9.2.3.24.1), above the codec.
//!
//! Pure: the caller passes the current time in (any monotonic count of seconds). Parts may arrive
//! in any order and more than once; a repeated sequence number is ignored (the first copy wins),
//! because networks and modems do redeliver. Parts are grouped by (sender, reference, total),
//! following chan_dongle's smsdb key (docs/pdu.md, "Reassembly"). A group that has not completed
//! `timeout` seconds after its first part arrived is released by [`Reassembler::expire`] as
//! incomplete, with the numbers of the missing parts (chan_dongle keeps parts 600 s, `csmsttl`).
//!
//! Memory is bounded: at most `max_groups` groups are pending, each at most 255 parts of at most
//! one SMS worth of text. When a part would open a group beyond the cap, the oldest pending group
//! is evicted and returned from that `push` as incomplete, so nothing is dropped silently.
//!
//! A part whose concatenation IE is invalid (total or sequence 0, sequence above total) is, as
//! 23.040 §9.2.3.24.1 asks, treated as a message on its own.

use std::collections::HashMap;

use super::types::Deliver;

/// Default cap on pending groups: with 255 parts of ~640 octets at worst, ≈ 21 MB.
pub const DEFAULT_MAX_GROUPS: usize = 128;

/// One inbound part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The sender as displayed (`Address` `Display`).
    pub sender: String,
    pub reference: u16,
    pub total: u8,
    pub sequence: u8,
    pub text: String,
}

impl Part {
    /// The part a DELIVER carries: its concatenation info (or 1 of 1) and text. Binary bodies give
    /// `None`: they are not text to join.
    pub fn from_deliver(d: &Deliver) -> Option<Part> {
        let (reference, total, sequence) = d.concat().unwrap_or((0, 1, 1));
        Some(Part {
            sender: d.originator.to_string(),
            reference,
            total,
            sequence,
            text: d.text()?.to_string(),
        })
    }
}

/// A released message: complete, or incomplete after the timeout or an eviction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    pub sender: String,
    pub reference: u16,
    pub total: u8,
    /// The parts that arrived, in sequence order, joined.
    pub text: String,
    pub complete: bool,
    /// Sequence numbers that never arrived (empty when complete).
    pub missing: Vec<u8>,
    /// When the first part arrived (the caller's clock).
    pub first_seen: u64,
}

#[derive(Debug)]
struct Group {
    parts: Vec<Option<String>>,
    received: usize,
    first_seen: u64,
}

type Key = (String, u16, u8);

/// Collects parts until a message is whole or its time is up.
#[derive(Debug)]
pub struct Reassembler {
    timeout: u64,
    max_groups: usize,
    groups: HashMap<Key, Group>,
}

impl Reassembler {
    /// A reassembler releasing incomplete groups `timeout_secs` after their first part.
    pub fn new(timeout_secs: u64) -> Reassembler {
        Reassembler::with_capacity(timeout_secs, DEFAULT_MAX_GROUPS)
    }

    /// As [`Reassembler::new`] with a cap on pending groups (at least 1).
    pub fn with_capacity(timeout_secs: u64, max_groups: usize) -> Reassembler {
        Reassembler {
            timeout: timeout_secs,
            max_groups: max_groups.max(1),
            groups: HashMap::new(),
        }
    }

    /// Groups waiting for parts.
    pub fn pending(&self) -> usize {
        self.groups.len()
    }

    /// Adds a part. Returns the message it completes, a single-part message at once, or the oldest
    /// group evicted to make room (incomplete); `None` otherwise.
    pub fn push(&mut self, part: Part, now: u64) -> Option<Assembled> {
        if part.total <= 1 || part.sequence == 0 || part.sequence > part.total {
            return Some(Assembled {
                sender: part.sender,
                reference: part.reference,
                total: 1,
                text: part.text,
                complete: true,
                missing: Vec::new(),
                first_seen: now,
            });
        }
        let key = (part.sender, part.reference, part.total);
        let idx = usize::from(part.sequence - 1);
        let mut evicted = None;
        if !self.groups.contains_key(&key) && self.groups.len() >= self.max_groups {
            evicted = self.evict_oldest();
        }
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            parts: vec![None; usize::from(part.total)],
            received: 0,
            first_seen: now,
        });
        if let Some(slot @ None) = group.parts.get_mut(idx) {
            *slot = Some(part.text);
            group.received += 1;
        }
        if group.received == group.parts.len() {
            return self.groups.remove(&key).map(|g| release(key, g));
        }
        evicted
    }

    /// Releases, as incomplete, every group whose first part is at least `timeout` old.
    pub fn expire(&mut self, now: u64) -> Vec<Assembled> {
        let due: Vec<Key> = self
            .groups
            .iter()
            .filter(|(_, g)| now.saturating_sub(g.first_seen) >= self.timeout)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out: Vec<Assembled> = due
            .into_iter()
            .filter_map(|k| self.groups.remove(&k).map(|g| release(k, g)))
            .collect();
        out.sort_by_key(|a| a.first_seen);
        out
    }

    fn evict_oldest(&mut self) -> Option<Assembled> {
        let key = self
            .groups
            .iter()
            .min_by_key(|(_, g)| g.first_seen)
            .map(|(k, _)| k.clone())?;
        self.groups.remove(&key).map(|g| release(key, g))
    }
}

fn release((sender, reference, total): Key, g: Group) -> Assembled {
    let missing: Vec<u8> = g
        .parts
        .iter()
        .enumerate()
        .filter(|(_, p)| p.is_none())
        .map(|(i, _)| (i + 1) as u8)
        .collect();
    Assembled {
        sender,
        reference,
        total,
        text: g.parts.into_iter().flatten().collect(),
        complete: missing.is_empty(),
        missing,
        first_seen: g.first_seen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(seq: u8, total: u8, text: &str) -> Part {
        Part {
            sender: "+15551234567".into(),
            reference: 7,
            total,
            sequence: seq,
            text: text.into(),
        }
    }

    #[test]
    fn any_order_with_duplicates() {
        let mut r = Reassembler::new(600);
        assert_eq!(r.push(part(3, 3, "c"), 0), None);
        assert_eq!(r.push(part(1, 3, "a"), 1), None);
        assert_eq!(r.push(part(1, 3, "X"), 2), None, "duplicate ignored");
        let done = r.push(part(2, 3, "b"), 3).unwrap();
        assert_eq!(
            (done.text.as_str(), done.complete, done.missing.len()),
            ("abc", true, 0)
        );
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn timeout_releases_incomplete_with_missing_numbers() {
        let mut r = Reassembler::new(600);
        r.push(part(2, 4, "b"), 100);
        assert!(r.expire(699).is_empty());
        let out = r.expire(700);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (
                out[0].text.as_str(),
                out[0].complete,
                out[0].missing.clone()
            ),
            ("b", false, vec![1, 3, 4])
        );
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn key_includes_sender_reference_and_total() {
        let mut r = Reassembler::new(600);
        r.push(part(1, 2, "a"), 0);
        r.push(
            Part {
                total: 3,
                ..part(2, 3, "b")
            },
            0,
        );
        r.push(
            Part {
                sender: "other".into(),
                ..part(2, 2, "b")
            },
            0,
        );
        r.push(
            Part {
                reference: 8,
                ..part(2, 2, "b")
            },
            0,
        );
        assert_eq!(r.pending(), 4);
    }

    #[test]
    fn cap_evicts_oldest_and_returns_it() {
        let mut r = Reassembler::with_capacity(600, 2);
        r.push(
            Part {
                reference: 1,
                ..part(1, 2, "a")
            },
            10,
        );
        r.push(
            Part {
                reference: 2,
                ..part(1, 2, "b")
            },
            20,
        );
        let ev = r
            .push(
                Part {
                    reference: 3,
                    ..part(1, 2, "c")
                },
                30,
            )
            .unwrap();
        assert_eq!(
            (ev.reference, ev.complete, ev.missing.clone()),
            (1, false, vec![2])
        );
        assert_eq!(r.pending(), 2);
    }

    #[test]
    fn invalid_concat_info_is_a_single_message() {
        let mut r = Reassembler::new(600);
        assert!(r.push(part(0, 2, "a"), 0).unwrap().complete);
        assert!(r.push(part(3, 2, "a"), 0).unwrap().complete);
        assert_eq!(r.push(part(1, 1, "solo"), 0).unwrap().text, "solo");
    }
}
