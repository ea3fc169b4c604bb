//! The digester: bytes from an AT port in, classified [`Item`]s out, surviving every framing case
//! of docs/at-protocol.md, "Framing".
//!
//! Owns the receive buffer and the framing rules; it does not own the port, the clock or the
//! command queue (the modem actor does). The shape follows atat's `digest.rs`: every complete line is
//! sorted exactly once into echo, prompt, final result, information response of the command in
//! flight, or URC — by its prefix, never by its position (a `+CMTI` between an echo and its `OK` is a
//! URC). Choices that are not obvious:
//! - A line ends at `\n`; all `\r` around it and leading NUL bytes are dropped, empty lines skipped.
//!   That one rule covers CRLF, the CRCRLF of SIMCom/Huawei and the echo's lone CR.
//! - Parsing is lazy: `feed` only appends, `next_item` parses one line per item. So after a
//!   `CONNECT` the caller can [`Digester::take_raw`] the binary bytes before any of them is read as text.
//! - The `> ` prompt has no line end; it is recognised at the start of a line, complete or not, but
//!   only while the command in flight expects one (Gammu's "edit mode" rule), and only once the two
//!   bytes `> ` are there, so the result does not depend on how reads were split.
//! - Two-line URCs (`+CMT`, `+CDS`, `+CBM`) are held until their PDU line arrives and come out as one
//!   item; if the next line is not hex the header alone comes out as [`Urc::Unknown`].
//! - Memory is bounded by [`MAX_LINE`]: a longer line is dropped as it arrives and reported as
//!   [`Item::Overflow`] when it ends.

use super::command::{CTRL_Z, Command};
use super::final_result::{FinalResult, parse_final};
use super::lex::{is_hex, is_hex_bytes, strip_prefix_ci};
use super::urc::{PduHeader, Urc, pdu_header, typed};

/// Longest line kept, in bytes. The longest legitimate line is a `+CMGR`/`+CMGL` PDU line:
/// 2 × (12 SMSC + 164 TPDU octets) = 352 hex digits; `+CLAC`-style lists stay far below too.
/// 4 KiB leaves a tenfold margin while bounding what a babbling port can make us hold.
pub const MAX_LINE: usize = 4096;

/// One classified piece of modem output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The modem echoing the command line (`ATE1`) or the PDU body.
    Echo(String),
    /// The `> ` prompt of `AT+CMGS`: write the command's body now.
    Prompt,
    /// The final result of the command in flight (or a stray one when none is in flight).
    Final(FinalResult),
    /// A line belonging to the command in flight: a declared `+XXX:` line, a bare answer line, or
    /// the PDU line after a `+CMGR:`/`+CMGL:` header.
    Info(String),
    /// An unsolicited result code.
    Urc(Urc),
    /// A line with control bytes or invalid UTF-8 that nobody claimed.
    Garbage(Vec<u8>),
    /// A line longer than the cap was dropped; `dropped` is its length in bytes.
    Overflow { dropped: usize },
}

/// What the digester remembers of the command in flight.
#[derive(Debug, Clone)]
struct InFlight {
    echo: String,
    prefixes: &'static [&'static str],
    bare: bool,
    info_is_final: bool,
    call: bool,
    expects_prompt: bool,
    /// The prompt is `CONNECT` (Quectel `AT+QFUPL`), not `> `.
    connect_prompt: bool,
    echo_seen: bool,
    prompt_seen: bool,
    body_echo_seen: bool,
}

/// The sans-I/O AT stream classifier. See the module docs of [`crate::at`] for the driving loop.
#[derive(Debug, Clone)]
pub struct Digester {
    buf: Vec<u8>,
    pos: usize,
    cmd: Option<InFlight>,
    /// A `+CMT:`/`+CDS:`/`+CBM:` header waiting for its PDU line, with its text for the fallback.
    pending_header: Option<(PduHeader, String)>,
    /// The last Info was a `+CMGR:`/`+CMGL:` header: a following hex line is its PDU.
    expect_pdu_info: bool,
    /// An `info_is_final` line was handed out: the next item is a synthesised `OK`.
    pending_final: bool,
    /// Dropping an overlong line until its `\n`; bytes dropped so far.
    discarding: Option<usize>,
    report_echo: bool,
    max_line: usize,
}

impl Default for Digester {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a classified line leaves the read position.
enum Consume {
    /// The whole line (up to and including `\n`).
    Line,
    /// Only the first `n` bytes of the line; the rest is read again as a line.
    Prefix(usize),
    /// Nothing: the line is read again (after a pending header was flushed).
    None,
}

impl Digester {
    /// A digester with the default cap ([`MAX_LINE`]) that reports echoes.
    pub fn new() -> Self {
        Self::with_max_line(MAX_LINE)
    }

    /// A digester with a custom line cap (at least 16 bytes).
    pub fn with_max_line(max_line: usize) -> Self {
        Digester {
            buf: Vec::with_capacity(1024),
            pos: 0,
            cmd: None,
            pending_header: None,
            expect_pdu_info: false,
            pending_final: false,
            discarding: None,
            report_echo: true,
            max_line: max_line.max(16),
        }
    }

    /// Report echoes as [`Item::Echo`] (default) or drop them silently.
    pub fn set_report_echo(&mut self, report: bool) {
        self.report_echo = report;
    }

    /// Appends bytes read from the port. Never parses; call [`Digester::next_item`] afterwards.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            if self.pos >= self.buf.len() {
                self.buf.clear();
            } else {
                self.buf.drain(..self.pos);
            }
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Declares the command now in flight (call before writing it).
    pub fn begin(&mut self, cmd: &Command) {
        self.cmd = Some(InFlight {
            echo: cmd.echo().to_owned(),
            prefixes: cmd.prefixes(),
            bare: cmd.bare_answer(),
            info_is_final: cmd.info_is_final(),
            call: cmd.is_call(),
            expects_prompt: cmd.expects_prompt(),
            connect_prompt: cmd.prompt_is_connect(),
            echo_seen: false,
            prompt_seen: false,
            body_echo_seen: false,
        });
        self.expect_pdu_info = false;
        self.pending_final = false;
    }

    /// Forgets the command in flight (after a timeout, or after `CONNECT` once the data phase is over).
    /// A final result ends the command by itself, so calling this after one is harmless.
    pub fn end(&mut self) {
        self.cmd = None;
        self.expect_pdu_info = false;
        self.pending_final = false;
    }

    /// Whether a command is in flight.
    pub fn in_flight(&self) -> bool {
        self.cmd.is_some()
    }

    /// Bytes buffered and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes up to `max` raw bytes from the buffer, unparsed — for the binary phase after
    /// `CONNECT` (`AT+QFDWL`): call it instead of `next_item` until the transfer is complete.
    pub fn take_raw(&mut self, max: usize) -> Vec<u8> {
        let end = self.pos + max.min(self.buffered());
        let out = self
            .buf
            .get(self.pos..end)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        self.pos = end;
        out
    }

    /// The next complete item, or `None` until more bytes are fed.
    pub fn next_item(&mut self) -> Option<Item> {
        if self.pending_final {
            self.pending_final = false;
            self.cmd = None;
            return Some(Item::Final(FinalResult::Ok));
        }
        // Moved out for the duration of the call so lines can borrow it while `self` changes state.
        let buf = std::mem::take(&mut self.buf);
        let item = self.next_in(&buf);
        self.buf = buf;
        item
    }

    fn next_in(&mut self, buf: &[u8]) -> Option<Item> {
        loop {
            let rest = buf.get(self.pos..)?;
            let Some(nl) = find_newline(rest) else {
                return self.partial(buf);
            };
            let next = self.pos + nl + 1;
            if let Some(dropped) = self.discarding.take() {
                self.pos = next;
                return Some(Item::Overflow {
                    dropped: dropped + nl,
                });
            }
            let raw = rest.get(..nl).unwrap_or_default();
            let (lead, line) = trim_line(raw);
            // The prompt is checked before the length cap, as `partial` does, so that the outcome
            // does not depend on whether the line's end had arrived yet.
            if let Some(n) = prompt_at(&mut self.cmd, line, true) {
                self.pos += lead + n;
                return Some(Item::Prompt);
            }
            if nl > self.max_line {
                self.pos = next;
                return Some(Item::Overflow { dropped: nl });
            }
            if line.is_empty() {
                self.pos = next;
                continue;
            }
            let (item, consume) = self.classify(line);
            match consume {
                Consume::Line => self.pos = next,
                Consume::Prefix(n) => self.pos += lead + n,
                Consume::None => {}
            }
            if let Some(item) = item {
                return Some(item);
            }
        }
    }

    /// No newline in the buffer: recognise a prompt, or start dropping an overlong line.
    fn partial(&mut self, buf: &[u8]) -> Option<Item> {
        let rest = buf.get(self.pos..)?;
        if let Some(d) = self.discarding.as_mut() {
            *d += rest.len();
            self.pos = buf.len();
            return None;
        }
        let (lead, line) = trim_line(rest);
        if let Some(n) = prompt_at(&mut self.cmd, line, false) {
            self.pos += lead + n;
            return Some(Item::Prompt);
        }
        if rest.len() > self.max_line {
            self.discarding = Some(rest.len());
            self.pos = buf.len();
        }
        None
    }

    /// Sorts one complete, trimmed, non-empty line.
    fn classify(&mut self, bytes: &[u8]) -> (Option<Item>, Consume) {
        // Modem text is ASCII almost always; the lossy (copying) path is only for broken bytes.
        let lossy;
        let line: &str = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => {
                lossy = String::from_utf8_lossy(bytes).into_owned();
                &lossy
            }
        };

        if let Some((header, header_text)) = self.pending_header.take() {
            if is_hex(line) {
                return (
                    Some(Item::Urc(header.complete(line.to_owned()))),
                    Consume::Line,
                );
            }
            return (Some(Item::Urc(Urc::Unknown(header_text))), Consume::None);
        }

        if let Some(cmd) = self.cmd.as_mut() {
            if !cmd.echo_seen && line.eq_ignore_ascii_case(&cmd.echo) {
                cmd.echo_seen = true;
                return (
                    self.report_echo.then(|| Item::Echo(line.to_owned())),
                    Consume::Line,
                );
            }
            if cmd.prompt_seen && !cmd.body_echo_seen {
                let body = bytes.strip_suffix(&[CTRL_Z]).unwrap_or(bytes);
                if is_hex_bytes(body) {
                    cmd.body_echo_seen = true;
                    return (
                        self.report_echo.then(|| Item::Echo(line.to_owned())),
                        Consume::Line,
                    );
                }
            }
            if self.expect_pdu_info {
                self.expect_pdu_info = false;
                if is_hex(line) {
                    return (Some(Item::Info(line.to_owned())), Consume::Line);
                }
            }
            if let Some(result) = parse_final(line) {
                return match result {
                    FinalResult::CallEnd(end) if !cmd.call => {
                        (Some(Item::Urc(Urc::CallEnded(end))), Consume::Line)
                    }
                    // The data phase of an upload (`AT+QFUPL`): the body goes now, and the
                    // command's own answer follows it.
                    FinalResult::Connect(_) if cmd.connect_prompt && !cmd.prompt_seen => {
                        cmd.prompt_seen = true;
                        (Some(Item::Prompt), Consume::Line)
                    }
                    FinalResult::Connect(_) => (Some(Item::Final(result)), Consume::Line),
                    _ => {
                        self.end();
                        (Some(Item::Final(result)), Consume::Line)
                    }
                };
            }
            // chan_dongle's `ERROR+CNUM:` — ERROR glued to the next line [CD at_response.h].
            if let Some(after) = line.strip_prefix("ERROR")
                && (after.starts_with('+') || after.starts_with('^'))
            {
                self.end();
                return (Some(Item::Final(FinalResult::Error)), Consume::Prefix(5));
            }
            if let Some(p) = cmd
                .prefixes
                .iter()
                .find(|p| strip_prefix_ci(line, p).is_some())
            {
                self.expect_pdu_info = matches!(*p, "+CMGR:" | "+CMGL:");
                self.pending_final = cmd.info_is_final;
                return (Some(Item::Info(line.to_owned())), Consume::Line);
            }
            let bare = cmd.bare;
            if let Some(h) = pdu_header(line) {
                self.pending_header = Some((h, line.to_owned()));
                return (None, Consume::Line);
            }
            if let Some(urc) = typed(line) {
                return (Some(Item::Urc(urc)), Consume::Line);
            }
            if bare {
                return (Some(Item::Info(line.to_owned())), Consume::Line);
            }
            return (Some(unknown(bytes, line)), Consume::Line);
        }

        if let Some(result) = parse_final(line) {
            let item = match result {
                FinalResult::CallEnd(end) => Item::Urc(Urc::CallEnded(end)),
                other => Item::Final(other),
            };
            return (Some(item), Consume::Line);
        }
        if let Some(h) = pdu_header(line) {
            self.pending_header = Some((h, line.to_owned()));
            return (None, Consume::Line);
        }
        match typed(line) {
            Some(urc) => (Some(Item::Urc(urc)), Consume::Line),
            None => (Some(unknown(bytes, line)), Consume::Line),
        }
    }
}

/// If a prompt is due and `line` starts with it, marks it seen and returns its length.
/// A lone `>` counts only on a `complete` line: in a partial line a space may still follow.
fn prompt_at(cmd: &mut Option<InFlight>, line: &[u8], complete: bool) -> Option<usize> {
    let cmd = cmd
        .as_mut()
        .filter(|c| c.expects_prompt && !c.prompt_seen)?;
    let n = if line.starts_with(b"> ") {
        2
    } else if complete && line == b">" {
        // PGM's fake modem form `> \r\n` (trailing space trimmed with the line end).
        1
    } else {
        return None;
    };
    cmd.prompt_seen = true;
    Some(n)
}

/// An unclaimed line: `Urc::Unknown` if it is clean text, `Garbage` if it has control bytes or
/// invalid UTF-8 (line noise, a baud-rate mismatch, a stray Ctrl-Z echo).
fn unknown(bytes: &[u8], line: &str) -> Item {
    let clean = std::str::from_utf8(bytes).is_ok()
        && !bytes.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7F);
    if clean {
        Item::Urc(Urc::Unknown(line.to_owned()))
    } else {
        Item::Garbage(bytes.to_vec())
    }
}

/// Strips leading NUL/CR and trailing CR/whitespace; returns how many leading bytes were dropped.
fn trim_line(raw: &[u8]) -> (usize, &[u8]) {
    let lead = raw.iter().take_while(|&&b| b == 0 || b == b'\r').count();
    let line = raw.get(lead..).unwrap_or_default();
    let keep = line
        .iter()
        .rposition(|&b| !matches!(b, b'\r' | b' ' | b'\t'))
        .map_or(0, |i| i + 1);
    // Keep a lone "> " intact for the prompt check: trailing spaces matter only there.
    if line.starts_with(b"> ") && keep < 2 {
        return (lead, line.get(..2).unwrap_or_default());
    }
    (lead, line.get(..keep).unwrap_or_default())
}

/// Position of the first `\n`, scanning a machine word at a time (no memchr dependency).
fn find_newline(hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w) ^ NL;
        // Classic "has zero byte": non-zero iff some byte of x is 0, i.e. some input byte is '\n'.
        if (x.wrapping_sub(LO) & !x & HI) != 0 {
            return chunk.iter().position(|&b| b == b'\n').map(|i| offset + i);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| offset + i)
}

#[cfg(test)]
mod tests;
