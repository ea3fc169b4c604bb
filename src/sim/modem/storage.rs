//! The SIM's message memories (`SM`, `ME`, `SR`) and the commands that select, list, read and
//! delete what they hold (`AT+CPMS`, `AT+CMGL`, `AT+CMGR`, `AT+CMGD`), plus the control side's
//! view of them (fill to capacity, list). Indexes are external (Huawei counts from 0, the others
//! from 1); slots are the vector positions behind them. How a new message gets into a memory
//! (per `AT+CNMI`) is `delivery.rs`, not this file.
//!
//! Why listing and reading change state: they flip REC UNREAD to REC READ (27.005 §3.4.2), and a
//! delete frees room that a message the network is holding back can take at once, so it retries
//! delivery after the answer.

use super::{Mem, ModemCore, Outcome, Stored};
use crate::sim::command::{Arg, Command, Form};
use crate::sim::profile::Profile;

impl ModemCore {
    pub(super) fn mem(&mut self, m: Mem) -> &mut Vec<Option<Stored>> {
        match m {
            Mem::Sm => &mut self.sm,
            Mem::Me => &mut self.me,
            Mem::Sr => &mut self.sr,
        }
    }

    fn mem_ref(&self, m: Mem) -> &Vec<Option<Stored>> {
        match m {
            Mem::Sm => &self.sm,
            Mem::Me => &self.me,
            Mem::Sr => &self.sr,
        }
    }

    pub(super) fn used(&self, m: Mem) -> usize {
        self.mem_ref(m).iter().filter(|s| s.is_some()).count()
    }

    pub(super) fn index_range(&self) -> String {
        let first = self.spec.profile.first_index();
        format!("{}-{}", first, first + self.spec.capacity.saturating_sub(1))
    }

    /// Stores a PDU in memory `m`; returns its external index.
    pub(super) fn store(&mut self, m: Mem, s: Stored) -> Option<usize> {
        let first = self.spec.profile.first_index();
        let slots = self.mem(m);
        let slot = slots.iter().position(Option::is_none)?;
        if let Some(x) = slots.get_mut(slot) {
            *x = Some(s);
        }
        Some(slot + first)
    }

    pub(super) fn slot_of(&self, index: i64) -> Option<usize> {
        let first = self.spec.profile.first_index() as i64;
        usize::try_from(index - first)
            .ok()
            .filter(|s| *s < self.spec.capacity)
    }

    pub(super) fn cpms(&mut self, cmd: &Command, args: &[Arg]) -> Outcome {
        match cmd.form {
            Form::Test => Outcome::Ok(vec![if self.spec.profile == Profile::Wavecom {
                "+CPMS: ((\"SM\"),(\"SM\"),(\"SM\"))".into()
            } else {
                "+CPMS: (\"SM\",\"ME\",\"SR\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")".into()
            }]),
            Form::Read => {
                let parts: Vec<String> = self
                    .settings
                    .mems
                    .iter()
                    .map(|m| format!("\"{}\",{},{}", m.name(), self.used(*m), self.spec.capacity))
                    .collect();
                Outcome::Ok(vec![format!("+CPMS: {}", parts.join(","))])
            }
            Form::Exec => Outcome::Cms(302),
            Form::Set => {
                let mut mems = self.settings.mems;
                for (i, arg) in args.iter().take(3).enumerate() {
                    let Some(t) = arg.text() else { continue };
                    let Some(m) = Mem::parse(t) else {
                        return Outcome::Cms(302);
                    };
                    if m == Mem::Sr && (self.spec.profile == Profile::Wavecom || i > 0) {
                        // Wavecom rejects "SR" (python-gsmmodem's fakemodems); SR is read-only
                        // elsewhere.
                        return Outcome::Error;
                    }
                    if let Some(slot) = mems.get_mut(i) {
                        *slot = m;
                    }
                }
                self.settings.mems = mems;
                let parts: Vec<String> = mems
                    .iter()
                    .map(|m| format!("{},{}", self.used(*m), self.spec.capacity))
                    .collect();
                Outcome::Ok(vec![format!("+CPMS: {}", parts.join(","))])
            }
        }
    }

    pub(super) fn cmgl(&mut self, args: &[Arg]) -> Outcome {
        if self.settings.cmgf != 0 {
            return Outcome::Cms(302);
        }
        let stat = match args.first() {
            None | Some(Arg::Empty) => 0,
            // `AT+CMGL="ALL"` is text-mode syntax: ERROR in PDU mode (python-gsmmodem,
            // test_modem.py).
            Some(Arg::Str(_)) => return Outcome::Cms(302),
            Some(a) => match a.int() {
                Some(s @ 0..=4) => s as u8,
                _ => return Outcome::Cms(302),
            },
        };
        let m = self.settings.mems[0];
        let first = self.spec.profile.first_index();
        let mut lines = Vec::new();
        for (i, slot) in self.mem(m).iter_mut().enumerate() {
            if let Some(s) = slot
                && (stat == 4 || s.stat == stat)
            {
                lines.push(format!("+CMGL: {},{},,{}", i + first, s.stat, s.tpdu_len()));
                lines.push(crate::pdu::to_hex(&s.pdu));
                // Listing flips REC UNREAD to REC READ (27.005 §3.4.2).
                if s.stat == 0 {
                    s.stat = 1;
                }
            }
        }
        Outcome::Ok(lines)
    }

    pub(super) fn cmgr(&mut self, index: Option<i64>) -> Outcome {
        if self.settings.cmgf != 0 {
            return Outcome::Cms(302);
        }
        let m = self.settings.mems[0];
        let Some(slot) = index.and_then(|i| self.slot_of(i)) else {
            return Outcome::Cms(321);
        };
        match self.mem(m).get_mut(slot) {
            Some(Some(s)) => {
                let lines = vec![
                    format!("+CMGR: {},,{}", s.stat, s.tpdu_len()),
                    crate::pdu::to_hex(&s.pdu),
                ];
                if s.stat == 0 {
                    s.stat = 1;
                }
                Outcome::Ok(lines)
            }
            _ => Outcome::Cms(321),
        }
    }

    pub(super) fn cmgd(&mut self, index: Option<i64>, flag: Option<i64>) -> Outcome {
        let m = self.settings.mems[0];
        let flag = flag.unwrap_or(0);
        if flag == 0 {
            let Some(slot) = index.and_then(|i| self.slot_of(i)) else {
                return Outcome::Cms(321);
            };
            if let Some(x) = self.mem(m).get_mut(slot) {
                *x = None;
            }
        } else {
            let keep = |s: &Stored| match flag {
                1 => s.stat != 1,
                2 => s.stat != 1 && s.stat != 3,
                3 => s.stat == 0,
                _ => false,
            };
            if !(1..=4).contains(&flag) {
                return Outcome::Cms(302);
            }
            for x in self.mem(m).iter_mut() {
                if x.as_ref().is_some_and(|s| !keep(s)) {
                    *x = None;
                }
            }
        }
        self.memfull_notified = false;
        self.retry_after_answer();
        Outcome::Ok(vec![])
    }

    /// Fills every free slot of the receive memory with read copies of `filler`.
    pub fn fill_storage(&mut self, filler: &[u8]) {
        let m = self.settings.mems[2];
        for slot in self.mem(m).iter_mut().filter(|s| s.is_none()) {
            *slot = Some(Stored {
                stat: 1,
                pdu: filler.to_vec(),
            });
        }
    }

    /// Writes a raw record into the memory new messages go to, without a URC, as an earlier owner
    /// of the SIM could have left it; returns its index (`None` when full).
    pub fn put_stored(&mut self, pdu: Vec<u8>, stat: u8) -> Option<usize> {
        let m = self.settings.mems[2];
        self.store(m, Stored { stat, pdu })
    }

    /// A status report written into the modem's own report memory (`SR`) unread and with no URC:
    /// one that reached the SIM while nobody read the port. `SR` belongs to the modem, so it
    /// stays when another SIM goes in (`insert_sim`). The index, or `None` when `SR` is full.
    pub fn put_report(&mut self, pdu: Vec<u8>) -> Option<usize> {
        self.store(Mem::Sr, Stored { stat: 0, pdu })
    }

    /// Messages currently stored in a memory ("SM", "ME", "SR"), as (index, stat, pdu).
    pub fn stored(&self, mem: &str) -> Vec<(usize, u8, Vec<u8>)> {
        let Some(m) = Mem::parse(mem) else {
            return Vec::new();
        };
        let first = self.spec.profile.first_index();
        self.mem_ref(m)
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i + first, s.stat, s.pdu.clone())))
            .collect()
    }
}
