//! USSD (3GPP TS 27.007 §7.15, `AT+CUSD`) and the network's small menu behind it, answered per
//! profile in the forms real modems use (docs/simulator.md, "USSD"): Huawei as hex of packed
//! GSM 7-bit septets with `<dcs>` 15 (and it takes requests in that form too; plain text is
//! accepted as well), SIMCom as UCS-2 hex with `<dcs>` 72 (TS 23.038 §5, 0x48), every other
//! profile as plain text with `<dcs>` 15. It must not reach into the SMS state.
//!
//! The menu: `*100#` answers the balance and ends the session; `*101#` opens a menu
//! (`+CUSD: 1`) whose reply `1` answers the balance and `2` the data left; `*102#` is ended by the
//! network (`+CUSD: 2`); `*199#` is accepted and never answered (a network that times out on
//! us); anything else is not supported. The balance text can be changed per modem
//! (`SimHandle::set_ussd_balance`) so a test can let the credit run low (`+CUSD: 4`). A reply without an open menu is
//! `+CUSD: 4`. The answer comes as a URC [`NETWORK_DELAY`] after the `OK`.

use std::time::Duration;

use super::{ModemCore, Outcome, Timer};
use crate::pdu::{gsm7, hex_to_bytes, to_hex, ucs2};
use crate::sim::command::{Arg, Command, Form};
use crate::sim::profile::Profile;

/// How long the network takes to answer a USSD request.
const NETWORK_DELAY: Duration = Duration::from_millis(300);

/// The answer to `*100#` and to the menu's `1`.
pub const BALANCE: &str = "Balance: 12.34 EUR, valid until 31.12.2026";
/// The menu `*101#` opens.
pub const MENU: &str = "Menu: 1 Balance, 2 Data";
/// The answer to the menu's `2`.
pub const DATA: &str = "Data left: 500 MB";

impl ModemCore {
    /// What `*100#` answers from now on (tests of the balance check and its threshold).
    pub fn set_ussd_balance(&mut self, text: &str) {
        self.ussd_balance = Some(text.to_owned());
    }

    pub(super) fn ussd_command(&mut self, cmd: &Command) -> Option<Outcome> {
        if cmd.name != "+CUSD" {
            return None;
        }
        let args = cmd.args();
        let o = match cmd.form {
            Form::Test => Outcome::Ok(vec!["+CUSD: (0-2)".into()]),
            Form::Read => Outcome::Ok(vec!["+CUSD: 1".into()]),
            Form::Exec => Outcome::Ok(vec![]),
            Form::Set => match args.first().and_then(Arg::int) {
                Some(2) => {
                    self.ussd_menu = false;
                    Outcome::Ok(vec![])
                }
                Some(0 | 1) => match args.get(1).and_then(Arg::text) {
                    None => Outcome::Ok(vec![]),
                    Some(_) if !self.radio_on() => Outcome::Cme(30),
                    Some(s) => {
                        self.ussd_requests += 1;
                        let request = self.ussd_request_text(s);
                        self.ussd_network(&request);
                        Outcome::Ok(vec![])
                    }
                },
                _ => Outcome::Cme(4),
            },
        };
        Some(o)
    }

    /// The request as text: Huawei's packed hex unpacked, anything else as typed.
    fn ussd_request_text(&self, s: &str) -> String {
        if self.spec.profile == Profile::Huawei
            && let Ok(b) = hex_to_bytes(s)
        {
            let septets = gsm7::unpack(&b, 0, b.len() * 8 / 7);
            let mut text = gsm7::septets_to_string(&septets);
            if septets.len().is_multiple_of(8) && text.ends_with(['\r', '@']) {
                text.pop();
            }
            return text;
        }
        s.to_owned()
    }

    /// What the network answers, scheduled as a URC.
    fn ussd_network(&mut self, request: &str) {
        let menu = std::mem::replace(&mut self.ussd_menu, false);
        let balance = self
            .ussd_balance
            .clone()
            .unwrap_or_else(|| BALANCE.to_owned());
        let (m, text) = match (menu, request) {
            (true, "1") => (0, Some(balance.as_str())),
            (true, "2") => (0, Some(DATA)),
            (true, _) => (0, Some("Invalid choice")),
            (false, "*100#") => (0, Some(balance.as_str())),
            (false, "*101#") => {
                self.ussd_menu = true;
                (1, Some(MENU))
            }
            (false, "*102#") => (2, None),
            (false, "*199#") => return,
            (false, _) => (4, None),
        };
        let line = match text {
            None => format!("+CUSD: {m}"),
            Some(t) => {
                let (s, dcs) = self.ussd_form(t);
                format!("+CUSD: {m},\"{s}\",{dcs}")
            }
        };
        let at = self.now + NETWORK_DELAY;
        self.timers.push((at, Timer::Ussd(line)));
    }

    /// `<str>` and `<dcs>` of an answer in this profile's form.
    fn ussd_form(&self, text: &str) -> (String, u8) {
        match self.spec.profile {
            Profile::Huawei => {
                let mut septets = Vec::new();
                let _ = gsm7::text_to_septets(text, true, &mut septets);
                if septets.len() % 8 == 7 {
                    septets.push(0x0D);
                }
                let mut packed = Vec::new();
                gsm7::pack(&septets, 0, &mut packed);
                (to_hex(&packed), 15)
            }
            Profile::Simcom => (to_hex(&ucs2::encode(text)), 72),
            _ => (text.to_owned(), 15),
        }
    }
}
