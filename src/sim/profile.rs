//! Modem profiles: which real device family a simulated modem imitates, and the identity each
//! simulated modem reports. It owns the per-family facts (names, boot lines, error wording, call
//! URCs) taken from vendor manuals and from the device transcripts and code of python-gsmmodem,
//! asterisk-chan-dongle, ModemManager and Gammu (docs/simulator.md, "Profiles", lists them); the
//! state machine in `modem/` asks the profile instead of matching on vendor names all over the
//! place, so adding a family touches this file first.
//!
//! Identities are deterministic from the modem index so that tests and demos can name a modem by
//! its IMEI/IMSI/ICCID across runs; IMEI and ICCID carry a valid Luhn check digit because real
//! software (and ours) may validate it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The device family a simulated modem imitates (docs/simulator.md, "Profiles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Plain 27.005/27.007 behaviour, no vendor noise.
    #[default]
    Generic,
    /// Huawei E1550/E1752/K3715 class voice sticks.
    Huawei,
    /// SIMCom SIM7600.
    Simcom,
    /// Quectel EC25.
    Quectel,
    /// SIMCom SIM800 (file playback, no PCM over USB).
    Sim800,
    /// Wavecom Multiband 900E/1800.
    Wavecom,
    /// ZTE K3565-Z / Qualcomm M6280.
    Zte,
}

/// A profile name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown modem profile {0:?} (expected generic, huawei, simcom, quectel, sim800, wavecom or zte)"
)]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "generic" => Profile::Generic,
            "huawei" => Profile::Huawei,
            "simcom" | "sim7600" => Profile::Simcom,
            "quectel" | "ec25" => Profile::Quectel,
            "sim800" => Profile::Sim800,
            "wavecom" => Profile::Wavecom,
            "zte" => Profile::Zte,
            _ => return Err(UnknownProfile(s.to_string())),
        })
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Generic => "generic",
            Profile::Huawei => "huawei",
            Profile::Simcom => "simcom",
            Profile::Quectel => "quectel",
            Profile::Sim800 => "sim800",
            Profile::Wavecom => "wavecom",
            Profile::Zte => "zte",
        })
    }
}

impl Profile {
    /// All profiles, for docs and tests.
    pub const ALL: [Profile; 7] = [
        Profile::Generic,
        Profile::Huawei,
        Profile::Simcom,
        Profile::Quectel,
        Profile::Sim800,
        Profile::Wavecom,
        Profile::Zte,
    ];

    /// Whether this family streams call audio as PCM over a second tty (docs/voice.md, "Which
    /// modems can do voice").
    pub fn has_audio_port(self) -> bool {
        matches!(self, Profile::Huawei | Profile::Simcom | Profile::Quectel)
    }

    /// `AT+CGMI` answer.
    pub fn manufacturer(self) -> &'static str {
        match self {
            Profile::Generic => "gsmgate",
            Profile::Huawei => "huawei",
            Profile::Simcom | Profile::Sim800 => "SIMCOM_Ltd",
            Profile::Quectel => "Quectel",
            Profile::Wavecom => "WAVECOM MODEM",
            Profile::Zte => "ZTE INCORPORATED",
        }
    }

    /// `AT+CGMM` answer.
    pub fn model(self) -> &'static str {
        match self {
            Profile::Generic => "SIM-MODEM",
            Profile::Huawei => "E1752",
            Profile::Simcom => "SIMCOM_SIM7600G-H",
            Profile::Quectel => "EC25",
            Profile::Sim800 => "SIM800 R14.18",
            Profile::Wavecom => "MULTIBAND  900E  1800",
            Profile::Zte => "K3565-Z",
        }
    }

    /// `AT+CGMR` answer.
    pub fn revision(self) -> &'static str {
        match self {
            Profile::Generic => "gsmgate-sim 1.0",
            Profile::Huawei => "11.126.16.04.00",
            Profile::Simcom => "LE20B05SIM7600G22",
            Profile::Quectel => "EC25EFAR06A06M4G",
            Profile::Sim800 => "1418B04SIM800C24",
            Profile::Wavecom => "641b09gg.Q2403A 1320676 061804 14:38",
            Profile::Zte => "BD_P673A2V1.0.0B09",
        }
    }

    /// What an unknown or unsupported command answers (Huawei E1752/K3715 say
    /// `COMMAND NOT SUPPORT`, python-gsmmodem's fakemodems).
    pub fn unsupported(self) -> &'static str {
        match self {
            Profile::Huawei => "COMMAND NOT SUPPORT",
            _ => "ERROR",
        }
    }

    /// First SMS storage index (Huawei counts from 0, gammu's `F_SMS_LOCATION_0`).
    pub fn first_index(self) -> usize {
        match self {
            Profile::Huawei => 0,
            _ => 1,
        }
    }

    /// Line ending used for URCs (SIMCom frames URCs with `\r\r\n`, as ModemManager's simtech
    /// plugin parses them).
    pub fn urc_ending(self) -> &'static str {
        match self {
            Profile::Simcom => "\r\r\n",
            _ => "\r\n",
        }
    }

    /// Lines printed right after power-up/reboot, in order (Quectel EC2x AT Commands Manual, §2.22
    /// example; SIM800 as public SIM800C code matches them). Quectel's
    /// `PB DONE`/`SMS DONE` come in either order; `swap` picks the order.
    pub fn boot_lines(self, sim_ready: bool, swap: bool) -> Vec<String> {
        let cpin = if sim_ready {
            "+CPIN: READY"
        } else {
            "+CPIN: SIM PIN"
        };
        let mut v: Vec<String> = match self {
            Profile::Quectel => {
                let mut v = vec![
                    "RDY".to_string(),
                    "+CFUN: 1".into(),
                    cpin.into(),
                    "+QUSIM: 1".into(),
                ];
                if sim_ready {
                    let (a, b) = if swap {
                        ("+QIND: SMS DONE", "+QIND: PB DONE")
                    } else {
                        ("+QIND: PB DONE", "+QIND: SMS DONE")
                    };
                    v.push(a.into());
                    v.push(b.into());
                }
                v
            }
            Profile::Sim800 => {
                let mut v = vec!["RDY".to_string(), "+CFUN: 1".into(), cpin.into()];
                if sim_ready {
                    v.push("Call Ready".into());
                    v.push("SMS Ready".into());
                }
                v
            }
            Profile::Simcom => {
                let mut v = vec!["RDY".to_string(), cpin.into()];
                if sim_ready {
                    v.push("SMS DONE".into());
                    v.push("PB DONE".into());
                }
                v
            }
            Profile::Huawei => vec!["^SIMST:1".to_string()],
            Profile::Generic | Profile::Wavecom | Profile::Zte => Vec::new(),
        };
        v.retain(|l| !l.is_empty());
        v
    }
}

/// Identity of one simulated modem and its SIM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub imei: String,
    pub imsi: String,
    pub iccid: String,
    /// The SIM's own number (`AT+CNUM`), E.164.
    pub number: String,
}

impl Identity {
    /// Deterministic identity for modem `index`: test-network IMSI (MCC 001, MNC 01), a made-up
    /// TAC for the IMEI, and an ICCID with the telecom prefix 89.
    pub fn for_index(index: usize) -> Identity {
        let serial = index % 1_000_000;
        let imei_body = format!("35693803{serial:06}");
        let iccid_body = format!("8900101{:011}", 12_000_000 + index as u64);
        Identity {
            imei: format!("{imei_body}{}", luhn_digit(&imei_body)),
            imsi: format!("00101{:010}", 1_000_000 + index as u64),
            iccid: format!("{iccid_body}{}", luhn_digit(&iccid_body)),
            number: format!("+1555010{:04}", index % 10_000),
        }
    }
}

/// The Luhn check digit for a string of decimal digits (ISO/IEC 7812-1 Annex B).
pub fn luhn_digit(digits: &str) -> u8 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .filter(u8::is_ascii_digit)
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - (sum % 10)) % 10) as u8
}

/// True if the full digit string (check digit last) passes the Luhn test.
pub fn luhn_valid(digits: &str) -> bool {
    match digits.len().checked_sub(1) {
        Some(n) if digits.bytes().all(|b| b.is_ascii_digit()) && n > 0 => {
            digits.as_bytes().get(n).map(|b| b - b'0') == Some(luhn_digit(&digits[..n]))
        }
        _ => false,
    }
}

/// EF_ICCID content as `AT+CRSM=176,12258,0,0,10` returns it: nibble-swapped digits, F-padded
/// (27.007 §8.18).
pub fn iccid_swapped(iccid: &str) -> String {
    let mut digits: Vec<u8> = iccid.bytes().collect();
    if digits.len() % 2 == 1 {
        digits.push(b'F');
    }
    digits
        .chunks(2)
        .flat_map(|c| [c.get(1).copied().unwrap_or(b'F'), c[0]])
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_vectors() {
        // 79927398713 is the textbook Luhn example; 490154203237518 a published example IMEI.
        assert!(luhn_valid("79927398713"));
        assert!(luhn_valid("490154203237518"));
        assert!(!luhn_valid("490154203237519"));
    }

    #[test]
    fn identities_are_distinct_and_valid() {
        let a = Identity::for_index(0);
        let b = Identity::for_index(1);
        assert_ne!(a.imei, b.imei);
        assert_ne!(a.imsi, b.imsi);
        assert_ne!(a.iccid, b.iccid);
        for id in [&a, &b] {
            assert_eq!(id.imei.len(), 15);
            assert_eq!(id.imsi.len(), 15);
            assert_eq!(id.iccid.len(), 19);
            assert!(luhn_valid(&id.imei), "{}", id.imei);
            assert!(luhn_valid(&id.iccid), "{}", id.iccid);
        }
    }

    #[test]
    fn iccid_swap() {
        assert_eq!(iccid_swapped("8901"), "9810");
        assert_eq!(iccid_swapped("891"), "98F1");
    }

    #[test]
    fn profile_names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(p.to_string().parse::<Profile>(), Ok(p));
        }
        assert!("nokia".parse::<Profile>().is_err());
    }
}
