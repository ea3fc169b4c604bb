//! Final result codes: the line that ends a command (V.250 §5.7.1, 27.007 §9.2, 27.005 §3.2.5).
//!
//! Owns the typed [`FinalResult`] and its nom parsers; it does not decide *whether* a line is final
//! for the command in flight — that is the digester's job, because `NO CARRIER` ends `ATD` but is a
//! URC for everything else (docs/at-protocol.md, "Unsolicited result codes"). Huawei's
//! `COMMAND NOT SUPPORT` is kept apart from `ERROR` so the actor can log which one it saw, but
//! [`FinalResult::is_error`] treats both alike.

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag, tag_no_case},
    character::complete::{space0, u16 as dec_u16},
    combinator::{all_consuming, map, opt, rest, value},
    sequence::preceded,
};

/// How a call attempt or a call ended, as reported by V.250 result codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallEnd {
    /// `NO CARRIER`: connection ended or could not be set up.
    NoCarrier,
    /// `BUSY`.
    Busy,
    /// `NO ANSWER`.
    NoAnswer,
    /// `NO DIALTONE` (also `NO DIAL TONE`).
    NoDialtone,
}

/// The error detail of `+CME ERROR:` / `+CMS ERROR:`: numeric with `AT+CMEE=1`, text with `=2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Numeric(u16),
    Text(String),
}

/// A final result code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FinalResult {
    /// `OK` (V.250 §5.7.1, code 0).
    Ok,
    /// `ERROR` (V.250 §5.7.1, code 4).
    Error,
    /// Huawei `COMMAND NOT SUPPORT` — an unsupported command, same meaning as `ERROR` [PGM, GAM, MM].
    CommandNotSupport,
    /// `+CME ERROR: <err>` (27.007 §9.2).
    CmeError(ErrorCode),
    /// `+CMS ERROR: <err>` (27.005 §3.2.5).
    CmsError(ErrorCode),
    /// `NO CARRIER` / `BUSY` / `NO ANSWER` / `NO DIALTONE` (V.250 §5.7.1) — final only for call commands.
    CallEnd(CallEnd),
    /// `CONNECT [<text>]` (V.250 §5.7.1): a data phase follows (ZTE `ATD`, `AT+QFDWL`).
    Connect(Option<String>),
}

impl FinalResult {
    /// `true` for `OK` and `CONNECT`.
    pub fn is_ok(&self) -> bool {
        matches!(self, FinalResult::Ok | FinalResult::Connect(_))
    }

    /// `true` for every error form, including Huawei's `COMMAND NOT SUPPORT`.
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            FinalResult::Error
                | FinalResult::CommandNotSupport
                | FinalResult::CmeError(_)
                | FinalResult::CmsError(_)
        )
    }
}

/// `<err>` of 27.007 §9.2 / 27.005 §3.2.5: a number (`CMEE=1`) or verbose text (`CMEE=2`).
fn error_code(input: &str) -> IResult<&str, ErrorCode> {
    alt((
        map(all_consuming(dec_u16), ErrorCode::Numeric),
        map(rest, |t: &str| ErrorCode::Text(t.trim().to_owned())),
    ))
    .parse(input)
}

/// `+CME ERROR: <err>` — mobile equipment error, 27.007 §9.2.
fn cme_error(input: &str) -> IResult<&str, FinalResult> {
    map(
        preceded((tag_no_case("+CME ERROR:"), space0), error_code),
        FinalResult::CmeError,
    )
    .parse(input)
}

/// `+CMS ERROR: <err>` — message service failure, 27.005 §3.2.5.
fn cms_error(input: &str) -> IResult<&str, FinalResult> {
    map(
        preceded((tag_no_case("+CMS ERROR:"), space0), error_code),
        FinalResult::CmsError,
    )
    .parse(input)
}

/// `CONNECT[ <text>]` — V.250 §5.7.1 result code 1 with optional connection text.
fn connect(input: &str) -> IResult<&str, FinalResult> {
    map(
        preceded(tag("CONNECT"), opt(preceded(space0, rest))),
        |t: Option<&str>| {
            FinalResult::Connect(
                t.map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            )
        },
    )
    .parse(input)
}

/// The call-progress result codes of V.250 §5.7.1 (`NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE`).
pub(crate) fn call_end(input: &str) -> IResult<&str, CallEnd> {
    all_consuming(alt((
        value(CallEnd::NoCarrier, tag("NO CARRIER")),
        value(CallEnd::Busy, tag("BUSY")),
        value(CallEnd::NoAnswer, tag("NO ANSWER")),
        value(
            CallEnd::NoDialtone,
            alt((tag("NO DIALTONE"), tag("NO DIAL TONE"))),
        ),
    )))
    .parse(input)
}

/// A whole final-result line, V.250 §5.7.1 plus the 27.007/27.005 error forms and Huawei's
/// `COMMAND NOT SUPPORT`.
fn final_result(input: &str) -> IResult<&str, FinalResult> {
    alt((
        value(FinalResult::Ok, all_consuming(tag("OK"))),
        value(FinalResult::Error, all_consuming(tag("ERROR"))),
        cme_error,
        cms_error,
        map(call_end, FinalResult::CallEnd),
        connect,
        value(
            FinalResult::CommandNotSupport,
            all_consuming(tag("COMMAND NOT SUPPORT")),
        ),
    ))
    .parse(input)
}

/// Parses a complete line (line end already stripped) as a final result code.
/// Returns `None` for anything else; never fails on odd input.
pub fn parse_final(line: &str) -> Option<FinalResult> {
    // Cheap filter first: the digester calls this on every line while a command waits, and most
    // of those lines are `+XXX:` information responses or PDU hex.
    let b = line.as_bytes();
    match b.first()? {
        b'+' => {
            let head = b.get(..4)?;
            if !head.eq_ignore_ascii_case(b"+CME") && !head.eq_ignore_ascii_case(b"+CMS") {
                return None;
            }
        }
        b'O' | b'E' | b'N' | b'B' | b'C' => {}
        _ => return None,
    }
    final_result(line.trim_end()).ok().map(|(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_finals() {
        assert_eq!(parse_final("OK"), Some(FinalResult::Ok));
        assert_eq!(parse_final("ERROR"), Some(FinalResult::Error));
        // Wavecom after AT+CFUN=1 [PGM fakemodems] (docs/at-protocol.md, "Initialisation" step 6).
        assert_eq!(
            parse_final("+CME ERROR: 515"),
            Some(FinalResult::CmeError(ErrorCode::Numeric(515)))
        );
        // Text form with AT+CMEE=2 [MM mm-serial-parsers.c].
        assert_eq!(
            parse_final("+CME ERROR: SIM PIN required"),
            Some(FinalResult::CmeError(ErrorCode::Text(
                "SIM PIN required".into()
            )))
        );
        // Empty SMSC → 330 (docs/at-protocol.md, "Initialisation" step 11).
        assert_eq!(
            parse_final("+CMS ERROR: 330"),
            Some(FinalResult::CmsError(ErrorCode::Numeric(330)))
        );
        assert_eq!(
            parse_final("NO CARRIER"),
            Some(FinalResult::CallEnd(CallEnd::NoCarrier))
        );
        assert_eq!(
            parse_final("BUSY"),
            Some(FinalResult::CallEnd(CallEnd::Busy))
        );
        assert_eq!(
            parse_final("NO ANSWER"),
            Some(FinalResult::CallEnd(CallEnd::NoAnswer))
        );
        assert_eq!(
            parse_final("NO DIALTONE"),
            Some(FinalResult::CallEnd(CallEnd::NoDialtone))
        );
        assert_eq!(parse_final("CONNECT"), Some(FinalResult::Connect(None)));
        assert_eq!(
            parse_final("CONNECT 115200"),
            Some(FinalResult::Connect(Some("115200".into())))
        );
        // Huawei E1752/K3715 [PGM fakemodems].
        assert_eq!(
            parse_final("COMMAND NOT SUPPORT"),
            Some(FinalResult::CommandNotSupport)
        );
        assert!(FinalResult::CommandNotSupport.is_error());
    }

    #[test]
    fn not_finals() {
        for l in [
            "OKAY",
            "ERROR+CNUM:",
            "+CMTI: \"SM\",3",
            "",
            "O",
            "+CME",
            "BUSYX",
            "NO CARRIERS",
        ] {
            assert_eq!(parse_final(l), None, "{l:?}");
        }
    }

    #[test]
    fn error_code_out_of_range_is_text() {
        assert_eq!(
            parse_final("+CMS ERROR: 99999"),
            Some(FinalResult::CmsError(ErrorCode::Text("99999".into())))
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_final(&s);
        }
    }
}
