//! Answers and URCs of the modem file and playback commands (docs/at-protocol.md, "Files on the
//! modem"): the size and checksum lines of an upload or a listing, and the URC that says a stored
//! file finished playing.
//!
//! Pure parsers beside `response` (which keeps the SMS/call/health answers); the builders are in
//! `command`. Malformed lines are errors, never panics (property-tested). The playback end URCs
//! are recognised from their text here rather than as new [`super::Urc`] variants, so the URC enum
//! (matched by other layers) does not change; Quectel's `+QPSND:` is already typed
//! ([`super::Urc::Qpsnd`]).

use super::AtError;
use super::lex::prefixed_fields;

/// Quectel's upload checksum: the XOR of the data as big-endian 16-bit words, an odd last byte
/// taken as the high byte of a last word with low byte 0 (Quectel FILE AT Commands Manual,
/// `AT+QFUPL` note 2: "16 bit checksum based on bitwise XOR").
pub fn quectel_checksum(data: &[u8]) -> u16 {
    data.chunks(2).fold(0u16, |acc, w| {
        let hi = u16::from(w.first().copied().unwrap_or(0));
        let lo = u16::from(w.get(1).copied().unwrap_or(0));
        acc ^ (hi << 8 | lo)
    })
}

/// `+QFUPL: <upload_size>,<checksum>` — the checksum is printed in hex (`+QFUPL: 1187,2d19` in
/// the field) \[QFILE]. Returns (size, checksum).
pub fn parse_qfupl(line: &str) -> Result<(u64, u16), AtError> {
    let bad = || AtError::parse("+QFUPL", line);
    let f = prefixed_fields(line, "+QFUPL:").ok_or_else(bad)?;
    let [size, sum] = f.as_slice() else {
        return Err(bad());
    };
    let size = size.text().trim().parse::<u64>().map_err(|_| bad())?;
    let sum = u16::from_str_radix(sum.text().trim(), 16).map_err(|_| bad())?;
    Ok((size, sum))
}

/// `+QFLST: "<name>",<size>` \[QFILE]. Returns (name, size).
pub fn parse_qflst(line: &str) -> Result<(String, u64), AtError> {
    let bad = || AtError::parse("+QFLST", line);
    let f = prefixed_fields(line, "+QFLST:").ok_or_else(bad)?;
    let [name, size] = f.as_slice() else {
        return Err(bad());
    };
    let size = size.text().trim().parse::<u64>().map_err(|_| bad())?;
    Ok((name.text().to_owned(), size))
}

/// SIMCom `+FSATTRI: <size>,<date>` (the date is ignored). Returns the size.
pub fn parse_fsattri(line: &str) -> Result<u64, AtError> {
    let bad = || AtError::parse("+FSATTRI", line);
    let f = prefixed_fields(line, "+FSATTRI:").ok_or_else(bad)?;
    f.first()
        .and_then(|s| s.text().trim().parse::<u64>().ok())
        .ok_or_else(bad)
}

/// SIM800 `+FSFLSIZE: <size>`. Returns the size.
pub fn parse_fsflsize(line: &str) -> Result<u64, AtError> {
    let bad = || AtError::parse("+FSFLSIZE", line);
    let f = prefixed_fields(line, "+FSFLSIZE:").ok_or_else(bad)?;
    match f.as_slice() {
        [s] => s.text().trim().parse::<u64>().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// What a playback URC line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackUrc {
    Started,
    Ended,
}

/// SIMCom `+AUDIOSTATE: audio play` / `+AUDIOSTATE: audio play stop` (A76XX audio app note) and
/// SIM800 `+CREC: 0` ("playback ended" as community code reads it, S800 p.337); `None` for any
/// other line.
pub fn parse_playback_urc(line: &str) -> Option<PlaybackUrc> {
    let t = line.trim();
    if let Some(rest) = t.strip_prefix("+AUDIOSTATE:") {
        return match rest.trim() {
            "audio play" => Some(PlaybackUrc::Started),
            "audio play stop" => Some(PlaybackUrc::Ended),
            _ => None,
        };
    }
    if let Some(rest) = t.strip_prefix("+CREC:") {
        return (rest.trim() == "0").then_some(PlaybackUrc::Ended);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn checksum_follows_the_manual() {
        assert_eq!(quectel_checksum(&[]), 0);
        assert_eq!(quectel_checksum(&[0x12, 0x34]), 0x1234);
        assert_eq!(quectel_checksum(&[0x12, 0x34, 0x12, 0x34]), 0);
        // Odd length: the last byte is the high byte of a word with low byte 0.
        assert_eq!(quectel_checksum(&[0x12, 0x34, 0xAB]), 0x1234 ^ 0xAB00);
    }

    #[test]
    fn answers() {
        assert_eq!(parse_qfupl("+QFUPL: 1187,2d19").unwrap(), (1187, 0x2d19));
        assert_eq!(parse_qfupl("+QFUPL: 10,0").unwrap(), (10, 0));
        assert!(parse_qfupl("+QFUPL: 10").is_err());
        assert!(parse_qfupl("+QFUPL: x,12").is_err());
        assert!(parse_qfupl("+QFUPL: 1,12345").is_err());
        assert_eq!(
            parse_qflst("+QFLST: \"UFS:greet.wav\",16044").unwrap(),
            ("UFS:greet.wav".to_owned(), 16044)
        );
        assert!(parse_qflst("+QFLST: \"UFS:greet.wav\"").is_err());
        assert_eq!(
            parse_fsattri("+FSATTRI: 8604, 2008/04/28 10:24:46").unwrap(),
            8604
        );
        assert!(parse_fsattri("+FSATTRI: big").is_err());
        assert_eq!(parse_fsflsize("+FSFLSIZE: 10").unwrap(), 10);
        assert!(parse_fsflsize("+FSFLSIZE: ").is_err());
    }

    #[test]
    fn playback_urcs() {
        assert_eq!(
            parse_playback_urc("+AUDIOSTATE: audio play"),
            Some(PlaybackUrc::Started)
        );
        assert_eq!(
            parse_playback_urc("+AUDIOSTATE: audio play stop"),
            Some(PlaybackUrc::Ended)
        );
        assert_eq!(parse_playback_urc("+CREC: 0"), Some(PlaybackUrc::Ended));
        assert_eq!(parse_playback_urc("+CREC: 1"), None);
        assert_eq!(parse_playback_urc("+AUDIOSTATE: crec stop"), None);
        assert_eq!(parse_playback_urc("OK"), None);
    }

    proptest! {
        #[test]
        fn never_panic(s in "\\PC*") {
            let _ = parse_qfupl(&s);
            let _ = parse_qflst(&s);
            let _ = parse_fsattri(&s);
            let _ = parse_fsflsize(&s);
            let _ = parse_playback_urc(&s);
        }

        #[test]
        fn checksum_of_a_doubled_buffer_is_zero(d in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut even = d.clone();
            if even.len() % 2 == 1 { even.push(0); }
            let twice = [even.clone(), even].concat();
            prop_assert_eq!(quectel_checksum(&twice), 0);
        }
    }
}
