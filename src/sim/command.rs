//! Parsing of the command lines a host sends to a simulated modem: the text after `AT` up to the
//! carriage return, split into single commands. It owns only syntax (V.250 §5.2 / 27.007 §4): which
//! command, which form (execute, set, read, test) and its arguments. What a command *does* lives in
//! `modem/`; this file must not know about modem state.
//!
//! Why hand-written rather than nom: the grammar is tiny and mostly about where a command ends.
//! Basic commands (`E0`, `V1`, `Z`, `&F`, `A`, `H`) can be chained without separators (`ATE0V1`),
//! extended commands (`+CMGS=23`, `^CVOICE?`) run to the next `;` outside quotes, and `D` swallows
//! the rest of the line (its `;` means "voice call", not "next command") [V.250 §6.3.1].

/// The form an extended command was given in (27.007 §4.1: `+X`, `+X=…`, `+X?`, `+X=?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// `AT+CMGL` or a basic command with its optional number (`E0` → Exec with argument "0").
    Exec,
    /// `AT+CMGS=23`.
    Set,
    /// `AT+CREG?`.
    Read,
    /// `AT+CMGF=?`.
    Test,
}

/// One argument of a set command. Quoted strings keep their case; bare values are trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Nothing between two commas (`AT+CMGR=,,3`), meaning "default".
    Empty,
    /// A quoted string, quotes removed.
    Str(String),
    /// A bare token, e.g. a number.
    Bare(String),
}

impl Arg {
    /// The argument as an integer, if it is a bare (or quoted) decimal number.
    pub fn int(&self) -> Option<i64> {
        match self {
            Arg::Bare(s) | Arg::Str(s) => s.trim().parse().ok(),
            Arg::Empty => None,
        }
    }
    /// The argument as text (quoted or bare), `None` if empty.
    pub fn text(&self) -> Option<&str> {
        match self {
            Arg::Bare(s) | Arg::Str(s) => Some(s.as_str()),
            Arg::Empty => None,
        }
    }
    /// True if the argument was given in quotes.
    pub fn is_quoted(&self) -> bool {
        matches!(self, Arg::Str(_))
    }
}

/// One parsed command of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Upper-case name including its prefix: `E`, `&F`, `+CMGS`, `^CVOICE`, `D`.
    pub name: String,
    pub form: Form,
    /// Raw argument text: after `=` for Set, the digits of a basic command, the dial string of `D`.
    pub raw: String,
}

impl Command {
    /// The arguments of a Set form split at commas outside quotes.
    pub fn args(&self) -> Vec<Arg> {
        split_args(&self.raw)
    }
    /// The numeric value of a basic command (`E0` → 0); a missing number means 0 (V.250 §5.3.1).
    pub fn basic_value(&self) -> Option<i64> {
        let t = self.raw.trim();
        if t.is_empty() {
            Some(0)
        } else {
            t.parse().ok()
        }
    }
}

/// A command line could not be split: the whole line answers ERROR, as a modem does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line does not start with AT: {0:?}")]
    NoAtPrefix(String),
    #[error("unexpected character {ch:?} at offset {offset}")]
    Unexpected { ch: char, offset: usize },
    #[error("unterminated quote in {0:?}")]
    UnterminatedQuote(String),
}

/// Splits a whole line (without its `\r`) such as `AT+CMEE=1;+CREG?` into commands.
///
/// `AT` alone gives an empty list (answered with OK). `A/` (repeat) is handled by the caller.
pub fn parse_line(line: &str) -> Result<Vec<Command>, ParseError> {
    let trimmed = line.trim_start_matches([' ', '\0']);
    let bytes = trimmed.as_bytes();
    if bytes.len() < 2 || !bytes[..2].eq_ignore_ascii_case(b"AT") {
        return Err(ParseError::NoAtPrefix(line.to_string()));
    }
    // Both prefix bytes are ASCII, so slicing at 2 is on a char boundary.
    parse_body(&trimmed[2..])
}

/// Parses the text after `AT`.
pub fn parse_body(body: &str) -> Result<Vec<Command>, ParseError> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | ';' => i += 1,
            '+' | '^' | '*' | '$' | '#' | '%' => {
                // Extended command: name up to `=`, `?`, `;` or end.
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let name: String = chars[start..i]
                    .iter()
                    .collect::<String>()
                    .to_ascii_uppercase();
                if name.len() < 2 {
                    return Err(ParseError::Unexpected {
                        ch: c,
                        offset: start,
                    });
                }
                let (form, raw, next) = extended_tail(&chars, i)?;
                out.push(Command { name, form, raw });
                i = next;
            }
            _ if c.eq_ignore_ascii_case(&'d') => {
                // Dial: the rest of the line is the dial string (V.250 §6.3.1).
                let raw: String = chars[i + 1..].iter().collect();
                out.push(Command {
                    name: "D".into(),
                    form: Form::Exec,
                    raw: raw.trim().to_string(),
                });
                i = chars.len();
            }
            '&' | '\\' => {
                let start = i;
                if i + 1 >= chars.len() || !chars[i + 1].is_ascii_alphabetic() {
                    return Err(ParseError::Unexpected { ch: c, offset: i });
                }
                i += 2;
                let name: String = chars[start..i]
                    .iter()
                    .collect::<String>()
                    .to_ascii_uppercase();
                let (form, raw, next) = basic_tail(&chars, i);
                out.push(Command { name, form, raw });
                i = next;
            }
            _ if c.is_ascii_alphabetic() => {
                let name = c.to_ascii_uppercase().to_string();
                i += 1;
                if name == "S" {
                    // S-registers: `S0=2`, `S7?`.
                    let start = i;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                    let reg: String = chars[start..i].iter().collect();
                    let (form, raw, next) = extended_tail(&chars, i)?;
                    out.push(Command {
                        name: format!("S{reg}"),
                        form,
                        raw,
                    });
                    i = next;
                    continue;
                }
                let (form, raw, next) = basic_tail(&chars, i);
                out.push(Command { name, form, raw });
                i = next;
            }
            _ => return Err(ParseError::Unexpected { ch: c, offset: i }),
        }
    }
    Ok(out)
}

/// Basic command tail: digits, or `?` (read), or `=value` for `&` commands with values.
fn basic_tail(chars: &[char], mut i: usize) -> (Form, String, usize) {
    if i < chars.len() && chars[i] == '?' {
        return (Form::Read, String::new(), i + 1);
    }
    let start = i;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    (Form::Exec, chars[start..i].iter().collect(), i)
}

/// Extended command tail: `=?`, `=args`, `?`, or nothing; ends at `;` outside quotes.
fn extended_tail(chars: &[char], i: usize) -> Result<(Form, String, usize), ParseError> {
    match chars.get(i) {
        None | Some(';') => Ok((Form::Exec, String::new(), i)),
        Some('?') => Ok((Form::Read, String::new(), i + 1)),
        Some('=') => {
            if chars.get(i + 1) == Some(&'?') {
                return Ok((Form::Test, String::new(), i + 2));
            }
            let start = i + 1;
            let mut j = start;
            let mut quoted = false;
            while j < chars.len() {
                match chars[j] {
                    '"' => quoted = !quoted,
                    ';' if !quoted => break,
                    _ => {}
                }
                j += 1;
            }
            if quoted {
                return Err(ParseError::UnterminatedQuote(
                    chars[start..].iter().collect(),
                ));
            }
            Ok((Form::Set, chars[start..j].iter().collect(), j))
        }
        Some(&ch) => Err(ParseError::Unexpected { ch, offset: i }),
    }
}

/// Splits `1,"SM","a,b",,7` into arguments, honouring quotes (27.007 §4.1 string constants).
pub fn split_args(raw: &str) -> Vec<Arg> {
    let mut args = Vec::new();
    if raw.trim().is_empty() {
        return args;
    }
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    for ch in raw.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            ',' if !quoted => {
                args.push(finish_arg(&cur, was_quoted));
                cur.clear();
                was_quoted = false;
            }
            _ => {
                if quoted || !ch.is_whitespace() {
                    cur.push(ch);
                }
            }
        }
    }
    args.push(finish_arg(&cur, was_quoted));
    args
}

fn finish_arg(cur: &str, was_quoted: bool) -> Arg {
    if was_quoted {
        Arg::Str(cur.to_string())
    } else if cur.is_empty() {
        Arg::Empty
    } else {
        Arg::Bare(cur.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(line: &str) -> Vec<(String, Form, String)> {
        parse_line(line)
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.form, c.raw))
            .collect()
    }

    #[test]
    fn plain_at_is_empty() {
        assert_eq!(parse_line("AT").unwrap(), vec![]);
        assert_eq!(parse_line("at").unwrap(), vec![]);
    }

    #[test]
    fn basic_commands_chain_without_separator() {
        assert_eq!(
            names("ATE0V1&FZ"),
            vec![
                ("E".into(), Form::Exec, "0".into()),
                ("V".into(), Form::Exec, "1".into()),
                ("&F".into(), Form::Exec, "".into()),
                ("Z".into(), Form::Exec, "".into()),
            ]
        );
    }

    #[test]
    fn extended_forms() {
        assert_eq!(
            names("AT+CMEE=1;+CREG?;+CMGF=?;+CGMI;^CVOICE?"),
            vec![
                ("+CMEE".into(), Form::Set, "1".into()),
                ("+CREG".into(), Form::Read, "".into()),
                ("+CMGF".into(), Form::Test, "".into()),
                ("+CGMI".into(), Form::Exec, "".into()),
                ("^CVOICE".into(), Form::Read, "".into()),
            ]
        );
    }

    #[test]
    fn semicolon_inside_quotes_does_not_split() {
        let c = parse_line("AT+CSCA=\"+1;555\",145;E0").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0].args(),
            vec![Arg::Str("+1;555".into()), Arg::Bare("145".into())]
        );
        assert_eq!(c[1].name, "E");
    }

    #[test]
    fn quectel_chain_with_answer() {
        // asterisk-chan-quectel's `AT+QPCMV=0;+QPCMV=1,0;A` (at_command.c).
        let c = names("AT+QPCMV=0;+QPCMV=1,0;A");
        assert_eq!(c.len(), 3);
        assert_eq!(c[2], ("A".into(), Form::Exec, "".into()));
    }

    #[test]
    fn dial_swallows_rest() {
        assert_eq!(
            names("ATD+15551234;"),
            vec![("D".into(), Form::Exec, "+15551234;".into())]
        );
    }

    #[test]
    fn args_split() {
        assert_eq!(
            split_args("1,\"SM\",,7"),
            vec![
                Arg::Bare("1".into()),
                Arg::Str("SM".into()),
                Arg::Empty,
                Arg::Bare("7".into())
            ]
        );
        assert_eq!(split_args(""), vec![]);
        assert_eq!(split_args("\"\""), vec![Arg::Str(String::new())]);
    }

    #[test]
    fn errors() {
        assert!(matches!(parse_line("XYZ"), Err(ParseError::NoAtPrefix(_))));
        assert!(matches!(
            parse_line("AT+CSCA=\"abc"),
            Err(ParseError::UnterminatedQuote(_))
        ));
        assert!(parse_line("AT+").is_err());
        assert!(parse_line("AT!").is_err());
    }

    #[test]
    fn s_registers() {
        assert_eq!(names("ATS0=0"), vec![("S0".into(), Form::Set, "0".into())]);
        assert_eq!(names("ATS3?"), vec![("S3".into(), Form::Read, "".into())]);
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = parse_line(&s);
            let _ = split_args(&s);
        }

        #[test]
        fn never_panics_with_at_prefix(s in "[A-Za-z0-9+^&=?;,\" ]{0,60}") {
            if let Ok(cmds) = parse_line(&format!("AT{s}")) {
                for c in cmds { let _ = c.args(); let _ = c.basic_value(); }
            }
        }
    }
}
