//! Command builders: every AT line the daemon writes, as a [`Command`] value that also tells the
//! digester how to classify the answer.
//!
//! Owns the command text and its answer contract (expected `+XXX:` prefixes, bare-line answers,
//! prompt, call-command semantics) and the timeout class of each command. It writes nothing: the
//! modem actor writes `bytes()` and later `body()`. Builders that take outside values (a PIN, a
//! number, a PDU) validate them so that no quote, CR, LF or `;` can end the AT line early or smuggle
//! a second command in — message text never reaches this layer at all (PDU mode only;
//! README.md, "Guarantees").

use std::time::Duration;

use super::AtError;

/// Ctrl-Z: ends the PDU after the `> ` prompt and sends it (27.005 §3.5.1).
pub const CTRL_Z: u8 = 0x1A;
/// ESC: cancels a `> ` prompt without sending (27.005 §3.5.1; answered with `OK` [QEC §9.8]).
pub const ESC: u8 = 0x1B;
/// What to write to close a prompt left open: ESC, then Ctrl-Z for firmware that ignores ESC [GAM
/// at-sms.c; SMT smsd.c] (docs/at-protocol.md, "Initialisation" step 1 and "Recovery").
pub const CANCEL_PROMPT: &[u8] = b"\x1b\x1a\r";

/// Timeout class of a command. Defaults: the gsmgate column of docs/at-protocol.md, "Timeouts".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// Any quick command: 5 s (CD, SMT).
    Plain,
    /// `AT+CPIN?` / entering a PIN: 15 s (PGM).
    Pin,
    /// `AT+CFUN=…`: 15 s ([QEC §2.22] maximum).
    Cfun,
    /// `AT+CMGL`: 60 s (SMT).
    ListSms,
    /// `AT+CMGS=<len>` until the `> ` prompt: 10 s (SMT, the longest of the peers).
    SmsPrompt,
    /// PDU + Ctrl-Z until `+CMGS`/error: 120 s ([QEC §9.8] maximum, "determined by network").
    SmsResult,
    /// `ATD…;`: 120 s (SMT).
    Dial,
    /// `ATA`: 20 s. Not in the table; connecting takes a few seconds, and `NO CARRIER` if the caller
    /// already hung up comes quickly (docs/at-protocol.md, "Calls").
    Answer,
}

impl CommandKind {
    /// The default timeout of this class.
    pub const fn timeout(self) -> Duration {
        Duration::from_secs(match self {
            CommandKind::Plain => 5,
            CommandKind::Pin => 15,
            CommandKind::Cfun => 15,
            CommandKind::ListSms => 60,
            CommandKind::SmsPrompt => 10,
            CommandKind::SmsResult => 120,
            CommandKind::Dial => 120,
            CommandKind::Answer => 20,
        })
    }
}

/// One AT command line and the contract of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    text: String,
    body: Option<Vec<u8>>,
    kind: CommandKind,
    prefixes: &'static [&'static str],
    bare_answer: bool,
    info_is_final: bool,
    call: bool,
    /// The body goes after `CONNECT` instead of `> ` (Quectel `AT+QFUPL`).
    connect_prompt: bool,
}

/// Characters that would end or split an AT line, or are not plain ASCII.
fn check_param(command: &'static str, value: &str) -> Result<(), AtError> {
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, '"' | ';' | '\r' | '\n') || c.is_control() || !c.is_ascii())
    {
        return Err(AtError::InvalidArgument {
            command,
            reason: format!("character {c:?} not allowed in {value:?}"),
        });
    }
    Ok(())
}

fn bounded(command: &'static str, what: &str, v: u32, max: u32) -> Result<(), AtError> {
    if v > max {
        return Err(AtError::InvalidArgument {
            command,
            reason: format!("{what} {v} is above {max}"),
        });
    }
    Ok(())
}

impl Command {
    fn new(text: impl Into<String>) -> Self {
        let mut text = text.into();
        text.push('\r');
        Command {
            text,
            body: None,
            kind: CommandKind::Plain,
            prefixes: &[],
            bare_answer: false,
            info_is_final: false,
            call: false,
            connect_prompt: false,
        }
    }

    fn expect(mut self, prefixes: &'static [&'static str]) -> Self {
        self.prefixes = prefixes;
        self
    }

    fn kind_(mut self, kind: CommandKind) -> Self {
        self.kind = kind;
        self
    }

    fn bare(mut self) -> Self {
        self.bare_answer = true;
        self
    }

    // ----- accessors -----

    /// The line to write, including the trailing `\r`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The line to write as bytes.
    pub fn bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The echo the modem sends back with `ATE1`: the text without its `\r`.
    pub fn echo(&self) -> &str {
        self.text.trim_end_matches('\r')
    }

    /// What to write after the `> ` prompt (PDU hex + Ctrl-Z); `None` if no prompt is expected.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// Whether the command waits for a `> ` prompt (or `CONNECT`, see [`Self::prompt_is_connect`]).
    pub fn expects_prompt(&self) -> bool {
        self.body.is_some()
    }

    /// Whether its prompt is the `CONNECT` result code rather than `> ` (Quectel `AT+QFUPL`: the
    /// data phase starts after `CONNECT`, and `+QFUPL:`/`OK` follow the data).
    pub fn prompt_is_connect(&self) -> bool {
        self.connect_prompt
    }

    /// The `+XXX:` prefixes whose lines are this command's information response.
    pub fn prefixes(&self) -> &'static [&'static str] {
        self.prefixes
    }

    /// Whether unprefixed lines (IMEI digits, manufacturer name) are the answer.
    pub fn bare_answer(&self) -> bool {
        self.bare_answer
    }

    /// Whether an information line ends the command (Wavecom `+CPIN: READY` without `OK`).
    pub fn info_is_final(&self) -> bool {
        self.info_is_final
    }

    /// Whether `NO CARRIER`/`BUSY`/`NO ANSWER`/`NO DIALTONE` are final results for it (ATD, ATA).
    pub fn is_call(&self) -> bool {
        self.call
    }

    /// Its timeout class.
    pub fn kind(&self) -> CommandKind {
        self.kind
    }

    /// Timeout until the first awaited item (the prompt for `AT+CMGS`, else the final result).
    pub fn timeout(&self) -> Duration {
        self.kind.timeout()
    }

    /// Timeout after the body was written (only meaningful when a prompt is expected).
    pub fn body_timeout(&self) -> Duration {
        CommandKind::SmsResult.timeout()
    }

    // ----- basic -----

    /// `AT` — ping / sync.
    pub fn at() -> Self {
        Command::new("AT")
    }
    /// `ATZ` — restore the stored profile (V.250 §6.1.1).
    pub fn atz() -> Self {
        Command::new("ATZ")
    }
    /// `ATE0` / `ATE1` — echo off / on (V.250 §6.2.4).
    pub fn ate(on: bool) -> Self {
        Command::new(if on { "ATE1" } else { "ATE0" })
    }
    /// `AT+CMEE=<n>` — 0 plain ERROR, 1 numeric, 2 verbose (27.007 §9.1).
    pub fn cmee(n: u8) -> Result<Self, AtError> {
        bounded("AT+CMEE", "mode", n.into(), 2)?;
        Ok(Command::new(format!("AT+CMEE={n}")))
    }

    // ----- SIM / equipment -----

    /// `AT+CPIN?` (27.007 §8.3).
    pub fn cpin_query() -> Self {
        Command::new("AT+CPIN?")
            .expect(&["+CPIN:"])
            .kind_(CommandKind::Pin)
    }
    /// `AT+CPIN?` for modems that send `+CPIN: READY` without `OK` (Wavecom, Gammu `F_CPIN_NO_OK`):
    /// the `+CPIN:` line itself ends the command.
    pub fn cpin_query_no_ok() -> Self {
        let mut c = Command::cpin_query();
        c.info_is_final = true;
        c
    }
    /// `AT+CPIN="<pin>"` (27.007 §8.3). The PIN must be 4 to 8 digits.
    pub fn cpin_enter(pin: &str) -> Result<Self, AtError> {
        check_param("AT+CPIN", pin)?;
        if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AtError::InvalidArgument {
                command: "AT+CPIN",
                reason: "PIN must be 4 to 8 digits".into(),
            });
        }
        Ok(Command::new(format!("AT+CPIN=\"{pin}\"")).kind_(CommandKind::Pin))
    }
    /// Quectel `AT+QPINC?` — remaining PIN/PUK attempts [QEC ch.5].
    pub fn qpinc() -> Self {
        Command::new("AT+QPINC?").expect(&["+QPINC:"])
    }
    /// Huawei `AT^CPIN?` — remaining PIN/PUK attempts.
    pub fn huawei_cpin() -> Self {
        Command::new("AT^CPIN?")
            .expect(&["^CPIN:"])
            .kind_(CommandKind::Pin)
    }
    /// `AT+CFUN?` (27.007 §8.2).
    pub fn cfun_query() -> Self {
        Command::new("AT+CFUN?").expect(&["+CFUN:"])
    }
    /// `AT+CFUN=<fun>` (0 minimum, 1 full, 4 flight mode).
    pub fn cfun(fun: u8) -> Result<Self, AtError> {
        bounded("AT+CFUN", "fun", fun.into(), 127)?;
        Ok(Command::new(format!("AT+CFUN={fun}")).kind_(CommandKind::Cfun))
    }
    /// `AT+CFUN=1,1` — full functionality with a module reset (docs/at-protocol.md, "Recovery",
    /// step 2).
    pub fn cfun_reset() -> Self {
        Command::new("AT+CFUN=1,1").kind_(CommandKind::Cfun)
    }
    /// `AT+CGMI` manufacturer (27.007 §5.1).
    pub fn cgmi() -> Self {
        Command::new("AT+CGMI").expect(&["+CGMI:"]).bare()
    }
    /// `AT+CGMM` model (27.007 §5.2).
    pub fn cgmm() -> Self {
        Command::new("AT+CGMM").expect(&["+CGMM:"]).bare()
    }
    /// `AT+CGMR` revision (27.007 §5.3).
    pub fn cgmr() -> Self {
        Command::new("AT+CGMR").expect(&["+CGMR:"]).bare()
    }
    /// `AT+CGSN` IMEI (27.007 §5.4).
    pub fn cgsn() -> Self {
        Command::new("AT+CGSN").expect(&["+CGSN:"]).bare()
    }
    /// `AT+CIMI` IMSI (27.007 §5.6).
    pub fn cimi() -> Self {
        Command::new("AT+CIMI").expect(&["+CIMI:"]).bare()
    }
    /// Quectel `AT+QCCID` \[CQR].
    pub fn qccid() -> Self {
        Command::new("AT+QCCID").expect(&["+QCCID:"]).bare()
    }
    /// SIMCom `AT+CCID` \[CQR].
    pub fn ccid() -> Self {
        Command::new("AT+CCID")
            .expect(&["+CCID:", "+ICCID:"])
            .bare()
    }
    /// SIMCom `AT+CICCID` \[CQR].
    pub fn ciccid() -> Self {
        Command::new("AT+CICCID")
            .expect(&["+ICCID:", "+CICCID:"])
            .bare()
    }
    /// Huawei `AT^ICCID?` (in E1752 CLAC \[PGM]).
    pub fn huawei_iccid() -> Self {
        Command::new("AT^ICCID?").expect(&["^ICCID:"]).bare()
    }
    /// Generic `AT+CRSM=176,12258,0,0,10` — READ BINARY of EF_ICCID 0x2FE2 (27.007 §8.18).
    pub fn crsm_iccid() -> Self {
        Command::new("AT+CRSM=176,12258,0,0,10").expect(&["+CRSM:"])
    }

    // ----- vendor setup -----

    /// Huawei `AT^CVOICE?` — voice capability [CD, MM].
    pub fn cvoice_query() -> Self {
        Command::new("AT^CVOICE?").expect(&["^CVOICE:"])
    }
    /// Huawei `AT^CURC=0` — silence periodic Huawei URCs [GAM atgen.c].
    pub fn huawei_curc_off() -> Self {
        Command::new("AT^CURC=0")
    }
    /// Huawei `AT^DDSETEX=2` — route call audio to the voice port \[CD].
    pub fn ddsetex() -> Self {
        Command::new("AT^DDSETEX=2")
    }
    /// Quectel `AT+QINDCFG="<what>",<on>,0` (e.g. `"ccinfo"`, `"csq"`, `"act"`, `"ring"`) \[CQR].
    pub fn qindcfg(what: &str, on: bool) -> Result<Self, AtError> {
        check_param("AT+QINDCFG", what)?;
        if what.is_empty() || !what.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(AtError::InvalidArgument {
                command: "AT+QINDCFG",
                reason: format!("bad indication {what:?}"),
            });
        }
        Ok(Command::new(format!(
            "AT+QINDCFG=\"{what}\",{},0",
            u8::from(on)
        )))
    }
    /// Quectel `AT+QURCCFG="urcport","usbat"` — URCs on the USB AT port [QEC ch.2].
    pub fn qurccfg_usbat() -> Self {
        Command::new("AT+QURCCFG=\"urcport\",\"usbat\"")
    }
    /// Quectel `AT+QTONEDET=<0|1>` — modem-side DTMF detection \[CQR].
    pub fn qtonedet(on: bool) -> Self {
        Command::new(format!("AT+QTONEDET={}", u8::from(on)))
    }
    /// SIMCom `AT+DDET=<0|1>` — DTMF detection \[CQR].
    pub fn ddet(on: bool) -> Self {
        Command::new(format!("AT+DDET={}", u8::from(on)))
    }

    // ----- SMS setup -----

    /// `AT+CMGF=0` — PDU mode (27.005 §3.2.3). Text mode is never used.
    pub fn cmgf_pdu() -> Self {
        Command::new("AT+CMGF=0")
    }
    /// `AT+CSCS="GSM"` (27.007 §5.5).
    pub fn cscs_gsm() -> Self {
        Command::new("AT+CSCS=\"GSM\"")
    }
    /// `AT+CSCA?` (27.005 §3.3.1).
    pub fn csca_query() -> Self {
        Command::new("AT+CSCA?").expect(&["+CSCA:"])
    }
    /// `AT+CPMS=?` (27.005 §3.2.2).
    pub fn cpms_test() -> Self {
        Command::new("AT+CPMS=?").expect(&["+CPMS:"])
    }
    /// `AT+CPMS?` (27.005 §3.2.2).
    pub fn cpms_query() -> Self {
        Command::new("AT+CPMS?").expect(&["+CPMS:"])
    }
    /// `AT+CPMS="<mem1>","<mem2>","<mem3>"` (27.005 §3.2.2); names are two letters (`SM`, `ME`, `MT`, `SR`).
    pub fn cpms(mem1: &str, mem2: &str, mem3: &str) -> Result<Self, AtError> {
        for m in [mem1, mem2, mem3] {
            if m.len() != 2 || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(AtError::InvalidArgument {
                    command: "AT+CPMS",
                    reason: format!("bad storage {m:?}"),
                });
            }
        }
        Ok(Command::new(format!("AT+CPMS=\"{mem1}\",\"{mem2}\",\"{mem3}\"")).expect(&["+CPMS:"]))
    }
    /// `AT+CSMS=<service>` (27.005 §3.2.1): 0 = the modem acks MT SMS itself.
    pub fn csms(service: u8) -> Result<Self, AtError> {
        bounded("AT+CSMS", "service", service.into(), 128)?;
        Ok(Command::new(format!("AT+CSMS={service}")).expect(&["+CSMS:"]))
    }
    /// `AT+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>` (27.005 §3.4.1); recommended `2,1,0,2,0`
    /// (docs/at-protocol.md, "Initialisation" step 14).
    pub fn cnmi(mode: u8, mt: u8, bm: u8, ds: u8, bfr: u8) -> Result<Self, AtError> {
        for (what, v, max) in [
            ("mode", mode, 3),
            ("mt", mt, 3),
            ("bm", bm, 3),
            ("ds", ds, 2),
            ("bfr", bfr, 1),
        ] {
            bounded("AT+CNMI", what, v.into(), max)?;
        }
        Ok(Command::new(format!("AT+CNMI={mode},{mt},{bm},{ds},{bfr}")))
    }
    /// `AT+CNMA` — acknowledge a `+CMT`/`+CDS` (27.005 §3.4.4).
    pub fn cnma() -> Self {
        Command::new("AT+CNMA")
    }
    /// `AT+CNMA=0` — the PDU-mode acknowledgement (27.005 §3.4.4).
    pub fn cnma_pdu() -> Self {
        Command::new("AT+CNMA=0")
    }
    /// `AT+CMMS=<n>` — keep the relay link open between sends (27.005 §3.5.6).
    pub fn cmms(n: u8) -> Result<Self, AtError> {
        bounded("AT+CMMS", "n", n.into(), 2)?;
        Ok(Command::new(format!("AT+CMMS={n}")))
    }

    // ----- SMS storage -----

    /// `AT+CMGL=<stat>` (27.005 §3.4.2, PDU mode: 0 unread … 4 all).
    pub fn cmgl(stat: u8) -> Result<Self, AtError> {
        bounded("AT+CMGL", "stat", stat.into(), 4)?;
        Ok(Command::new(format!("AT+CMGL={stat}"))
            .expect(&["+CMGL:"])
            .kind_(CommandKind::ListSms))
    }
    /// `AT+CMGR=<index>` (27.005 §3.4.3).
    pub fn cmgr(index: u32) -> Self {
        Command::new(format!("AT+CMGR={index}")).expect(&["+CMGR:"])
    }
    /// `AT+CMGD=<index>` (27.005 §3.5.4).
    pub fn cmgd(index: u32) -> Self {
        Command::new(format!("AT+CMGD={index}"))
    }
    /// `AT+CMGD=1,4` — delete every stored message.
    pub fn cmgd_all() -> Self {
        Command::new("AT+CMGD=1,4")
    }

    /// `AT+CMGS=<length>` with its PDU body (27.005 §3.5.1, PDU mode). `pdu_hex` includes the SMSC
    /// field (`00` = the modem's stored SMSC); `<length>` counts the TPDU octets after it
    /// (docs/at-protocol.md, "Sending": `0011000B…` of 24 octets → `AT+CMGS=23`). The body is the
    /// hex plus Ctrl-Z.
    pub fn cmgs(pdu_hex: &str) -> Result<Self, AtError> {
        let bad = |reason: &str| AtError::InvalidArgument {
            command: "AT+CMGS",
            reason: reason.into(),
        };
        if pdu_hex.is_empty()
            || !pdu_hex.len().is_multiple_of(2)
            || !pdu_hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad("PDU must be an even number of hex digits"));
        }
        let octets = pdu_hex.len() / 2;
        let smsc_len = pdu_hex
            .get(..2)
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .ok_or_else(|| bad("no SMSC field"))?;
        let tpdu_len = octets
            .checked_sub(1 + smsc_len)
            .filter(|&n| n > 0)
            .ok_or_else(|| bad("SMSC field longer than the PDU"))?;
        // 23.040: a TPDU is at most 164 octets; longer cannot be a valid SMS-SUBMIT.
        if tpdu_len > 164 {
            return Err(bad("TPDU longer than 164 octets"));
        }
        let mut body = Vec::with_capacity(pdu_hex.len() + 1);
        body.extend_from_slice(pdu_hex.as_bytes());
        body.push(CTRL_Z);
        let mut c = Command::new(format!("AT+CMGS={tpdu_len}"))
            .expect(&["+CMGS:"])
            .kind_(CommandKind::SmsPrompt);
        c.body = Some(body);
        Ok(c)
    }

    // ----- network -----

    /// `AT+CREG=<n>` (27.007 §7.2); 2 = URCs with LAC/CI.
    pub fn creg(n: u8) -> Result<Self, AtError> {
        bounded("AT+CREG", "n", n.into(), 3)?;
        Ok(Command::new(format!("AT+CREG={n}")))
    }
    /// `AT+CREG?`.
    pub fn creg_query() -> Self {
        Command::new("AT+CREG?").expect(&["+CREG:"])
    }
    /// `AT+CGREG=<n>` (27.007 §10.1.20).
    pub fn cgreg(n: u8) -> Result<Self, AtError> {
        bounded("AT+CGREG", "n", n.into(), 4)?;
        Ok(Command::new(format!("AT+CGREG={n}")))
    }
    /// `AT+CGREG?`.
    pub fn cgreg_query() -> Self {
        Command::new("AT+CGREG?").expect(&["+CGREG:"])
    }
    /// `AT+CEREG=<n>` (27.007 §10.1.22).
    pub fn cereg(n: u8) -> Result<Self, AtError> {
        bounded("AT+CEREG", "n", n.into(), 5)?;
        Ok(Command::new(format!("AT+CEREG={n}")))
    }
    /// `AT+CEREG?`.
    pub fn cereg_query() -> Self {
        Command::new("AT+CEREG?").expect(&["+CEREG:"])
    }
    /// `AT+COPS=3,0` — operator as long alphanumeric (27.007 §7.3).
    pub fn cops_long_format() -> Self {
        Command::new("AT+COPS=3,0")
    }
    /// `AT+COPS?`.
    pub fn cops_query() -> Self {
        Command::new("AT+COPS?").expect(&["+COPS:"])
    }
    /// `AT+CSQ` (27.007 §8.5).
    pub fn csq() -> Self {
        Command::new("AT+CSQ").expect(&["+CSQ:"])
    }
    /// `AT+CNUM` (27.007 §7.1).
    pub fn cnum() -> Self {
        Command::new("AT+CNUM").expect(&["+CNUM:"])
    }

    // ----- calls -----

    /// `AT+CLIP=<0|1>` caller id (27.007 §7.6).
    pub fn clip(on: bool) -> Self {
        Command::new(format!("AT+CLIP={}", u8::from(on)))
    }
    /// `AT+CRC=<0|1>` extended ring (27.007 §6.11).
    pub fn crc(on: bool) -> Self {
        Command::new(format!("AT+CRC={}", u8::from(on)))
    }
    /// `AT+CVHU=0` so `ATH` hangs up voice calls (27.007 §6.20).
    pub fn cvhu0() -> Self {
        Command::new("AT+CVHU=0")
    }
    /// `ATA` — answer (V.250 §6.3.5). Call command: `NO CARRIER` is its final.
    pub fn ata() -> Self {
        let mut c = Command::new("ATA").kind_(CommandKind::Answer);
        c.call = true;
        c
    }
    /// `ATD<number>;` — voice dial (V.250 §6.3.1). Digits, `+`, `*`, `#` only.
    pub fn atd(number: &str) -> Result<Self, AtError> {
        check_param("ATD", number)?;
        let ok = !number.is_empty()
            && number.len() <= 40
            && number
                .char_indices()
                .all(|(i, c)| c.is_ascii_digit() || c == '*' || c == '#' || (c == '+' && i == 0));
        if !ok {
            return Err(AtError::InvalidArgument {
                command: "ATD",
                reason: format!("bad number {number:?}"),
            });
        }
        let mut c = Command::new(format!("ATD{number};")).kind_(CommandKind::Dial);
        c.call = true;
        Ok(c)
    }
    /// `ATH` — hang up (V.250 §6.3.6; needs `AT+CVHU=0` for voice).
    pub fn ath() -> Self {
        Command::new("ATH")
    }
    /// `AT+CHUP` — hang up voice (27.007 §6.5).
    pub fn chup() -> Self {
        Command::new("AT+CHUP")
    }
    /// `AT+CLCC` — list calls (27.007 §7.18).
    pub fn clcc() -> Self {
        Command::new("AT+CLCC").expect(&["+CLCC:"])
    }
    /// `AT+CLCC=1` — SIMCom: report call changes as `+CLCC` URCs \[CQR].
    pub fn clcc_urc(on: bool) -> Self {
        Command::new(format!("AT+CLCC={}", u8::from(on)))
    }
    /// SIMCom `AT+CPCMREG=<0|1>` — USB PCM audio on/off [MM simtech] (docs/at-protocol.md,
    /// "Calls").
    pub fn cpcmreg(on: bool) -> Self {
        Command::new(format!("AT+CPCMREG={}", u8::from(on)))
    }
    /// Quectel `AT+QPCMV=0;+QPCMV=1,<port>` — reset then enable PCM voice (0 TTY, 2 UAC) \[CQI].
    pub fn qpcmv(port: u8) -> Result<Self, AtError> {
        bounded("AT+QPCMV", "port", port.into(), 2)?;
        Ok(Command::new(format!("AT+QPCMV=0;+QPCMV=1,{port}")))
    }
    /// `AT+CUSD=1,"<str>",<dcs>` (27.007 §7.15): send a USSD string (a code such as `*100#` or
    /// the reply to a menu) with result codes on; the answer comes as a `+CUSD:` URC.
    pub fn cusd(text: &str, dcs: u8) -> Result<Self, AtError> {
        check_param("AT+CUSD", text)?;
        if text.is_empty() || text.len() > 320 {
            return Err(AtError::InvalidArgument {
                command: "AT+CUSD",
                reason: format!("USSD string of {} characters", text.len()),
            });
        }
        Ok(Command::new(format!("AT+CUSD=1,\"{text}\",{dcs}")))
    }
    /// `AT+CUSD=2` (27.007 §7.15): cancel the USSD session.
    pub fn cusd_cancel() -> Self {
        Command::new("AT+CUSD=2")
    }
    /// Quectel `AT+QPCMV=0` — PCM voice off.
    pub fn qpcmv_off() -> Self {
        Command::new("AT+QPCMV=0")
    }

    // ----- files on the modem and their playback (docs/at-protocol.md, "Files on the modem") -----

    /// Quectel `AT+QFLST="<name>"` — list matching UFS files: `+QFLST: "<name>",<size>` per file
    /// [QFILE §2.x]; no line when nothing matches.
    pub fn qflst(name: &str) -> Result<Self, AtError> {
        file_name("AT+QFLST", name)?;
        Ok(Command::new(format!("AT+QFLST=\"{name}\"")).expect(&["+QFLST:"]))
    }
    /// Quectel `AT+QFDEL="<name>"` — delete a UFS file (`+CME ERROR: 405` when there is none)
    /// \[QFILE].
    pub fn qfdel(name: &str) -> Result<Self, AtError> {
        file_name("AT+QFDEL", name)?;
        Ok(Command::new(format!("AT+QFDEL=\"{name}\"")))
    }
    /// Quectel `AT+QFUPL="<name>",<size>,<timeout>` — upload: `CONNECT`, the raw bytes (the body),
    /// then `+QFUPL: <upload_size>,<checksum>` and `OK` \[QFILE]. The file must not
    /// exist (`+CME ERROR: 407`), so delete it first. `timeout_s` is how long the module waits for
    /// data (1–65535 s).
    pub fn qfupl(name: &str, data: &[u8], timeout_s: u16) -> Result<Self, AtError> {
        file_name("AT+QFUPL", name)?;
        non_empty("AT+QFUPL", data)?;
        if timeout_s == 0 {
            return Err(AtError::InvalidArgument {
                command: "AT+QFUPL",
                reason: "timeout must be 1 to 65535 s".into(),
            });
        }
        let mut c = Command::new(format!("AT+QFUPL=\"{name}\",{},{timeout_s}", data.len()))
            .expect(&["+QFUPL:"])
            .kind_(CommandKind::SmsPrompt);
        c.body = Some(data.to_vec());
        c.connect_prompt = true;
        Ok(c)
    }
    /// Quectel `AT+QPSND=1,"<file>",0,1,1` — play a stored file to the far end during a call
    /// (`<control>,<file>,<repeat>,<ulmute>,<dlmute>`: once, uplink and downlink not muted); the
    /// end is the URC `+QPSND: 0` [QEC §12.18].
    pub fn qpsnd_play(file: &str) -> Result<Self, AtError> {
        file_name("AT+QPSND", file)?;
        Ok(Command::new(format!("AT+QPSND=1,\"{file}\",0,1,1")))
    }
    /// Quectel `AT+QPSND=0` — stop playing.
    pub fn qpsnd_stop() -> Self {
        Command::new("AT+QPSND=0")
    }
    /// SIMCom `AT+FSCD=<dir>` — select the current directory (`C:` = local flash) [SIMCom LTE
    /// file system commands].
    pub fn fscd(dir: &str) -> Result<Self, AtError> {
        bare_name("AT+FSCD", dir)?;
        Ok(Command::new(format!("AT+FSCD={dir}")))
    }
    /// SIMCom `AT+FSATTRI=<file>` — attributes of a file in the current directory:
    /// `+FSATTRI: <size>,<date>`; ERROR when it does not exist.
    pub fn fsattri(file: &str) -> Result<Self, AtError> {
        bare_name("AT+FSATTRI", file)?;
        Ok(Command::new(format!("AT+FSATTRI={file}")).expect(&["+FSATTRI:"]))
    }
    /// SIMCom `AT+CFTRANRX="<path>",<len>` — transfer a file to the flash: `> `, the raw bytes (the
    /// body), `OK`; an existing file is replaced [SIMCom A76XX Audio Application Note].
    pub fn cftranrx(path: &str, data: &[u8]) -> Result<Self, AtError> {
        file_name("AT+CFTRANRX", path)?;
        non_empty("AT+CFTRANRX", data)?;
        let mut c = Command::new(format!("AT+CFTRANRX=\"{path}\",{}", data.len()))
            .kind_(CommandKind::SmsPrompt);
        c.body = Some(data.to_vec());
        Ok(c)
    }
    /// SIMCom `AT+CCMXPLAY="<path>",1,0` — play a stored file to the remote party (play_path 1),
    /// once (repeat 0); URCs `+AUDIOSTATE: audio play` / `+AUDIOSTATE: audio play stop`
    /// [SIMCom A76XX Audio Application Note].
    pub fn ccmxplay(path: &str) -> Result<Self, AtError> {
        file_name("AT+CCMXPLAY", path)?;
        Ok(Command::new(format!("AT+CCMXPLAY=\"{path}\",1,0")))
    }
    /// SIMCom `AT+CCMXSTOP` — stop playing.
    pub fn ccmxstop() -> Self {
        Command::new("AT+CCMXSTOP")
    }
    /// SIM800 `AT+FSFLSIZE=<file>` — a file's size: `+FSFLSIZE: <size>`; ERROR when it does not
    /// exist [SIM800 FS app note].
    pub fn fsflsize(file: &str) -> Result<Self, AtError> {
        bare_name("AT+FSFLSIZE", file)?;
        Ok(Command::new(format!("AT+FSFLSIZE={file}")).expect(&["+FSFLSIZE:"]))
    }
    /// SIM800 `AT+FSDEL=<file>` — delete a file.
    pub fn fsdel(file: &str) -> Result<Self, AtError> {
        bare_name("AT+FSDEL", file)?;
        Ok(Command::new(format!("AT+FSDEL={file}")))
    }
    /// SIM800 `AT+FSCREATE=<file>` — create an empty file.
    pub fn fscreate(file: &str) -> Result<Self, AtError> {
        bare_name("AT+FSCREATE", file)?;
        Ok(Command::new(format!("AT+FSCREATE={file}")))
    }
    /// Largest `AT+FSWRITE` chunk: ≤ 10240 bytes per call on SIMCom's file system commands (not
    /// confirmed on every SIM800 firmware; docs/at-protocol.md, "Files on the modem").
    pub const FSWRITE_MAX: usize = 10240;
    /// SIM800 `AT+FSWRITE=<file>,<mode>,<size>,<timeout>` — write `data` (mode 0 = from the start,
    /// 1 = append): `> `, exactly `<size>` raw bytes (the body, no terminator), `OK`. At most
    /// [`Self::FSWRITE_MAX`] bytes per command; `timeout_s` is the module's wait for the data.
    pub fn fswrite(file: &str, append: bool, data: &[u8], timeout_s: u8) -> Result<Self, AtError> {
        bare_name("AT+FSWRITE", file)?;
        non_empty("AT+FSWRITE", data)?;
        bounded(
            "AT+FSWRITE",
            "size",
            u32::try_from(data.len()).unwrap_or(u32::MAX),
            Self::FSWRITE_MAX as u32,
        )?;
        let mut c = Command::new(format!(
            "AT+FSWRITE={file},{},{},{}",
            u8::from(append),
            data.len(),
            timeout_s.max(1)
        ))
        .kind_(CommandKind::SmsPrompt);
        c.body = Some(data.to_vec());
        Ok(c)
    }
    /// SIM800 `AT+CREC=4,"<file>",0,<volume>` — play a stored file into the call (mode 4, main
    /// channel 0, volume 0–100); `+CREC: 0` when it ends [S800 p.337].
    pub fn crec_play(file: &str, volume: u8) -> Result<Self, AtError> {
        file_name("AT+CREC", file)?;
        bounded("AT+CREC", "volume", volume.into(), 100)?;
        Ok(Command::new(format!("AT+CREC=4,\"{file}\",0,{volume}")))
    }
    /// SIM800 `AT+CREC=5` — stop playing.
    pub fn crec_stop() -> Self {
        Command::new("AT+CREC=5")
    }
}

/// A file name that goes between quotes: no quote, `;`, line break or non-ASCII; not empty.
fn file_name(command: &'static str, name: &str) -> Result<(), AtError> {
    if name.is_empty() || name.len() > 80 {
        return Err(AtError::InvalidArgument {
            command,
            reason: "a file name is 1 to 80 characters".into(),
        });
    }
    check_param(command, name)
}

/// A file name written without quotes: also no comma or space (they would split the arguments).
fn bare_name(command: &'static str, name: &str) -> Result<(), AtError> {
    file_name(command, name)?;
    if let Some(c) = name.chars().find(|c| matches!(c, ',' | ' ')) {
        return Err(AtError::InvalidArgument {
            command,
            reason: format!("character {c:?} not allowed in {name:?}"),
        });
    }
    Ok(())
}

fn non_empty(command: &'static str, data: &[u8]) -> Result<(), AtError> {
    if data.is_empty() {
        return Err(AtError::InvalidArgument {
            command,
            reason: "no data to upload".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn texts() {
        assert_eq!(Command::at().text(), "AT\r");
        assert_eq!(Command::ate(false).text(), "ATE0\r");
        assert_eq!(Command::cmee(1).unwrap().text(), "AT+CMEE=1\r");
        assert!(Command::cmee(3).is_err());
        assert_eq!(
            Command::cpin_enter("1234").unwrap().text(),
            "AT+CPIN=\"1234\"\r"
        );
        assert_eq!(
            Command::cnmi(2, 1, 0, 2, 0).unwrap().text(),
            "AT+CNMI=2,1,0,2,0\r"
        );
        assert_eq!(
            Command::cpms("SM", "SM", "SM").unwrap().text(),
            "AT+CPMS=\"SM\",\"SM\",\"SM\"\r"
        );
        assert_eq!(
            Command::qindcfg("ccinfo", true).unwrap().text(),
            "AT+QINDCFG=\"ccinfo\",1,0\r"
        );
        assert_eq!(
            Command::qurccfg_usbat().text(),
            "AT+QURCCFG=\"urcport\",\"usbat\"\r"
        );
        assert_eq!(Command::qpcmv(0).unwrap().text(), "AT+QPCMV=0;+QPCMV=1,0\r");
        assert_eq!(Command::crsm_iccid().text(), "AT+CRSM=176,12258,0,0,10\r");
        assert_eq!(Command::cmgd_all().text(), "AT+CMGD=1,4\r");
        assert_eq!(Command::cfun_reset().text(), "AT+CFUN=1,1\r");
        assert_eq!(
            Command::atd("+15551234567").unwrap().text(),
            "ATD+15551234567;\r"
        );
        assert_eq!(Command::cmgl(4).unwrap().echo(), "AT+CMGL=4");
    }

    #[test]
    fn contracts() {
        assert_eq!(Command::cmgl(4).unwrap().prefixes(), &["+CMGL:"]);
        assert_eq!(Command::cmgl(4).unwrap().timeout(), Duration::from_secs(60));
        assert!(Command::cgsn().bare_answer());
        assert!(Command::ata().is_call());
        assert!(!Command::chup().is_call());
        assert!(Command::cpin_query_no_ok().info_is_final());
        assert_eq!(Command::cpin_query().timeout(), Duration::from_secs(15));
        assert_eq!(Command::cfun(1).unwrap().timeout(), Duration::from_secs(15));
        assert_eq!(
            Command::atd("123").unwrap().timeout(),
            Duration::from_secs(120)
        );
        assert_eq!(Command::at().timeout(), Duration::from_secs(5));
    }

    #[test]
    fn cmgs_length_and_body() {
        // docs/at-protocol.md, "Sending": 24 octets with SMSC "00" → AT+CMGS=23 (dreamfabric
        // vector).
        let pdu = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37";
        let c = Command::cmgs(pdu).unwrap();
        assert_eq!(c.text(), "AT+CMGS=23\r");
        assert!(c.expects_prompt());
        assert_eq!(c.body().unwrap().last(), Some(&CTRL_Z));
        assert_eq!(&c.body().unwrap()[..pdu.len()], pdu.as_bytes());
        assert_eq!(c.timeout(), Duration::from_secs(10));
        assert_eq!(c.body_timeout(), Duration::from_secs(120));
        // With an SMSC field: 0591721891F1 = 6 octets → length = total − 6.
        let with_smsc = "0591721891F101000B917228214365F700040C48656C6C6F20776F726C6421";
        assert_eq!(
            Command::cmgs(with_smsc).unwrap().text(),
            format!("AT+CMGS={}\r", with_smsc.len() / 2 - 6)
        );
        for bad in ["", "0", "0G", "05", "0011\x1a", "00;AT"] {
            assert!(Command::cmgs(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_commands() {
        let q = Command::qfupl("UFS:greet.wav", b"RIFF", 30).unwrap();
        assert_eq!(q.text(), "AT+QFUPL=\"UFS:greet.wav\",4,30\r");
        assert!(q.expects_prompt() && q.prompt_is_connect());
        assert_eq!(q.body(), Some(&b"RIFF"[..]));
        assert_eq!(q.prefixes(), &["+QFUPL:"]);
        assert!(Command::qfupl("UFS:g.wav", b"", 30).is_err());
        assert!(Command::qfupl("UFS:g.wav", b"x", 0).is_err());
        assert_eq!(
            Command::qflst("UFS:greet.wav").unwrap().text(),
            "AT+QFLST=\"UFS:greet.wav\"\r"
        );
        assert_eq!(
            Command::qfdel("UFS:greet.wav").unwrap().text(),
            "AT+QFDEL=\"UFS:greet.wav\"\r"
        );
        assert_eq!(
            Command::qpsnd_play("greet.wav").unwrap().text(),
            "AT+QPSND=1,\"greet.wav\",0,1,1\r"
        );
        let c = Command::cftranrx("C:/greet.wav", &[0, 1, 2]).unwrap();
        assert_eq!(c.text(), "AT+CFTRANRX=\"C:/greet.wav\",3\r");
        assert!(c.expects_prompt() && !c.prompt_is_connect());
        assert_eq!(
            Command::ccmxplay("C:/greet.wav").unwrap().text(),
            "AT+CCMXPLAY=\"C:/greet.wav\",1,0\r"
        );
        assert_eq!(Command::fscd("C:").unwrap().text(), "AT+FSCD=C:\r");
        assert_eq!(
            Command::fsattri("greet.wav").unwrap().prefixes(),
            &["+FSATTRI:"]
        );
        let w = Command::fswrite("C:\\User\\greet.wav", true, &[7; 10240], 10).unwrap();
        assert_eq!(w.text(), "AT+FSWRITE=C:\\User\\greet.wav,1,10240,10\r");
        assert!(w.expects_prompt());
        assert!(Command::fswrite("C:\\User\\g.wav", false, &[7; 10241], 10).is_err());
        assert_eq!(
            Command::crec_play("C:\\User\\greet.wav", 90)
                .unwrap()
                .text(),
            "AT+CREC=4,\"C:\\User\\greet.wav\",0,90\r"
        );
        assert!(Command::crec_play("C:\\User\\g.wav", 101).is_err());
        assert_eq!(
            Command::fsflsize("C:\\User\\greet.wav").unwrap().text(),
            "AT+FSFLSIZE=C:\\User\\greet.wav\r"
        );
        for bad in ["", "a\"b", "a;b", "a\rb", "é"] {
            assert!(Command::qflst(bad).is_err(), "{bad:?}");
            assert!(Command::fsdel(bad).is_err(), "{bad:?}");
        }
        assert!(Command::fscreate("a,b").is_err());
        assert!(Command::fscreate("a b").is_err());
    }

    #[test]
    fn rejects_line_breakers() {
        for pin in [
            "12\"34",
            "1234\r",
            "1234\n",
            "1234;",
            "12",
            "123456789",
            "12a4",
        ] {
            assert!(Command::cpin_enter(pin).is_err(), "{pin:?}");
        }
        for n in ["", "1;H", "12\"", "1\r2", "12+3", "abc"] {
            assert!(Command::atd(n).is_err(), "{n:?}");
        }
        assert!(Command::qindcfg("cc\"info", true).is_err());
        assert!(Command::cpms("SM", "S;", "SM").is_err());
    }

    proptest! {
        #[test]
        fn built_lines_never_carry_a_break(s in "\\PC*|[\"\r\n;0-9]{0,10}") {
            let built = [
                Command::cpin_enter(&s).ok(),
                Command::atd(&s).ok(),
                Command::qindcfg(&s, true).ok(),
                Command::cpms(&s, "SM", "SM").ok(),
                Command::cmgs(&s).ok(),
                Command::qflst(&s).ok(),
                Command::fswrite(&s, false, b"x", 5).ok(),
                Command::crec_play(&s, 50).ok(),
                Command::cftranrx(&s, b"x").ok(),
            ];
            for c in built.into_iter().flatten() {
                let body = c.text().trim_end_matches('\r');
                prop_assert!(!body.contains(['\r', '\n']));
                prop_assert!(body.matches(';').count() <= 1);
                prop_assert_eq!(body.matches('"').count() % 2, 0);
            }
        }
    }
}
