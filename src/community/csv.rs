//! Member import and export as CSV (RFC 4180), hand-written: the format is small, and the
//! import must report every bad row with its row number, which a hand-written reader makes easy.
//!
//! Reader: fields separated by `,`, records by CRLF or LF (a lone CR inside an unquoted field is
//! data); a field that starts with `"` is quoted, `""` inside it is one quote, and it may hold
//! commas and line breaks (RFC 4180 §2.5–2.7). Text after a closing quote, or a quote inside an
//! unquoted field, is an error naming the line. A UTF-8 byte-order mark (spreadsheets write one)
//! is skipped. Completely empty lines are skipped. Writer: CRLF records; a field is quoted when
//! it holds `,`, `"`, CR, LF, surrounding spaces, or is empty as the only field of a record (so
//! it does not read back as an empty line).
//!
//! Import ([`parse_import`]): the header row names the columns, case-insensitively, in any
//! order: `number` (required), `name`, `city`, `region`, `tags` (`;`-separated), `timezone`.
//! Every row is checked and ALL errors are collected ("row 7: number '555': not a valid phone
//! number"); rows are numbered like a spreadsheet shows them (the header is row 1), counting
//! records, not lines. The result is all rows or the list of errors, never part of a file: the
//! store inserts the rows in one transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::CommunityError;
use super::member::{MemberView, clean_field, normalise_number, normalise_tags};
use super::tz;

/// Reads CSV text into records (see the module doc for the dialect).
pub fn parse_records(text: &str) -> Result<Vec<Vec<String>>, CommunityError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    // State: at the start of a field, inside an unquoted field, inside quotes, after quotes.
    #[derive(PartialEq)]
    enum St {
        Start,
        Bare,
        Quoted,
        AfterQuote,
    }
    let mut st = St::Start;
    let mut quote_line = 0;
    let end_record =
        |record: &mut Vec<String>, field: &mut String, records: &mut Vec<Vec<String>>| {
            record.push(std::mem::take(field));
            records.push(std::mem::take(record));
        };
    while let Some(c) = chars.next() {
        match st {
            St::Quoted => match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => st = St::AfterQuote,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            },
            St::Start | St::Bare | St::AfterQuote => match c {
                ',' => {
                    record.push(std::mem::take(&mut field));
                    st = St::Start;
                }
                '\n' => {
                    if st == St::Start && record.is_empty() {
                        // An empty line: nothing to record.
                    } else {
                        end_record(&mut record, &mut field, &mut records);
                    }
                    line += 1;
                    st = St::Start;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '"' if st == St::Start => {
                    st = St::Quoted;
                    quote_line = line;
                }
                '"' => {
                    return Err(CommunityError::Csv {
                        line,
                        reason: "a quote inside an unquoted field (quote the whole field and double the quote)".into(),
                    });
                }
                c if st == St::AfterQuote => {
                    return Err(CommunityError::Csv {
                        line,
                        reason: format!("{c:?} after a closing quote (expected ',' or a line end)"),
                    });
                }
                c => {
                    field.push(c);
                    st = St::Bare;
                }
            },
        }
    }
    match st {
        St::Quoted => {
            return Err(CommunityError::Csv {
                line: quote_line,
                reason: "a quoted field is never closed".into(),
            });
        }
        St::Start if record.is_empty() => {}
        _ => end_record(&mut record, &mut field, &mut records),
    }
    Ok(records)
}

fn needs_quotes(field: &str, only_field: bool) -> bool {
    field.contains([',', '"', '\r', '\n'])
        || field.starts_with([' ', '\t'])
        || field.ends_with([' ', '\t'])
        || field.starts_with('\u{feff}')
        || (only_field && field.is_empty())
}

/// Writes records as CSV with CRLF line ends.
pub fn write_records<S: AsRef<str>>(records: &[Vec<S>]) -> String {
    let mut out = String::new();
    for record in records {
        let only = record.len() == 1;
        for (i, field) in record.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let field = field.as_ref();
            if needs_quotes(field, only) {
                out.push('"');
                out.push_str(&field.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(field);
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// The columns of the import and export format, in export order.
pub const COLUMNS: [&str; 6] = ["number", "name", "city", "region", "tags", "timezone"];

/// One valid import row (the store's new member, without status: the import decides that).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRow {
    /// Spreadsheet row number (header = 1).
    pub row: usize,
    pub number: String,
    pub name: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub tags: Vec<String>,
    /// Given, or derived from the number and city (see `tz`); `None` = the default zone.
    pub time_zone: Option<String>,
    /// Custom field columns with a value (an empty cell is no answer), by name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// One bad row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub row: usize,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}: {}", self.row, self.message)
    }
}

pub(crate) fn join_errors(errors: &[RowError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parses and validates an import file. `default_region` (ISO code) reads numbers written
/// without a country code. Duplicated numbers within the file are errors (the later row names
/// the earlier one); numbers already in the store are the store's to reject.
pub fn parse_import(
    text: &str,
    default_region: Option<&str>,
) -> Result<Vec<ImportRow>, CommunityError> {
    parse_import_with(text, default_region, &[])
}

/// [`parse_import`] that also reads a column for each configured custom field in `fields`
/// (`shirt_size`), named exactly like the field (case-insensitively, as the other columns).
pub fn parse_import_with(
    text: &str,
    default_region: Option<&str>,
    fields: &[&str],
) -> Result<Vec<ImportRow>, CommunityError> {
    let records = parse_records(text)?;
    let mut errors = Vec::new();
    let mut iter = records.into_iter();
    let Some(header) = iter.next() else {
        return Err(CommunityError::Import(vec![RowError {
            row: 1,
            message: "empty file (expected a header row: number,name,city,region,tags,timezone)"
                .into(),
        }]));
    };
    let mut index = [None; 6];
    let mut field_cols: Vec<(&str, usize)> = Vec::new();
    for (col, name) in header.iter().enumerate() {
        let key = name.trim().to_ascii_lowercase();
        let key = if key == "time_zone" {
            "timezone".to_string()
        } else {
            key
        };
        match COLUMNS.iter().position(|c| *c == key) {
            Some(i) => match index.get_mut(i) {
                Some(slot @ None) => *slot = Some(col),
                _ => errors.push(RowError {
                    row: 1,
                    message: format!("column {key:?} appears twice"),
                }),
            },
            None => match fields.iter().find(|f| **f == key) {
                Some(f) if field_cols.iter().any(|(g, _)| g == f) => errors.push(RowError {
                    row: 1,
                    message: format!("column {key:?} appears twice"),
                }),
                Some(f) => field_cols.push((f, col)),
                None => {
                    let mut known: Vec<&str> = COLUMNS.to_vec();
                    known.extend_from_slice(fields);
                    errors.push(RowError {
                        row: 1,
                        message: format!("unknown column {name:?} (known: {})", known.join(", ")),
                    })
                }
            },
        }
    }
    if index[0].is_none() {
        errors.push(RowError {
            row: 1,
            message: "no \"number\" column".into(),
        });
    }
    if !errors.is_empty() {
        return Err(CommunityError::Import(errors));
    }
    let width = header.len();
    let mut rows = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, record) in iter.enumerate() {
        let row = i + 2;
        if record.len() != width {
            errors.push(RowError {
                row,
                message: format!("{} fields, the header has {width}", record.len()),
            });
            continue;
        }
        let get = |c: usize| {
            index
                .get(c)
                .copied()
                .flatten()
                .and_then(|i| record.get(i))
                .map(String::as_str)
        };
        let mut bad = |message: String| errors.push(RowError { row, message });
        let raw_number = get(0).unwrap_or("");
        let number = match normalise_number(raw_number, default_region) {
            Ok(n) => Some(n),
            Err(e) => {
                let reason = match e {
                    CommunityError::InvalidNumber { reason, .. } => reason,
                    other => other.to_string(),
                };
                bad(format!("number '{raw_number}': {reason}"));
                None
            }
        };
        let city = get(2).and_then(clean_field);
        let tags = match normalise_tags(get(4).unwrap_or("").split(';')) {
            Ok(t) => t,
            Err(e) => {
                bad(format!("tags: {e}"));
                Vec::new()
            }
        };
        let given_zone = get(5).map(str::trim).filter(|z| !z.is_empty());
        if let Some(z) = given_zone
            && !tz::is_known_zone(z)
        {
            bad(format!("timezone '{z}': not in the tz database"));
        }
        let Some(number) = number else { continue };
        if let Some(first) = seen.get(&number.number) {
            bad(format!("number '{}' repeats row {first}", number.number));
            continue;
        }
        seen.insert(number.number.clone(), row);
        let time_zone = given_zone
            .map(str::to_string)
            .or_else(|| tz::zone_for_number(&number, city.as_deref()).map(str::to_string));
        rows.push(ImportRow {
            row,
            number: number.number,
            name: get(1).and_then(clean_field),
            city,
            region: get(3).and_then(clean_field),
            tags,
            time_zone,
            fields: field_cols
                .iter()
                .filter_map(|(f, c)| {
                    let v = record.get(*c).and_then(|v| clean_field(v))?;
                    Some((f.to_string(), v))
                })
                .collect(),
        });
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        errors.sort_by_key(|e| e.row);
        Err(CommunityError::Import(errors))
    }
}

/// Writes members in the import format (header + one row each), so an export imports back.
pub fn export_members(members: &[MemberView]) -> String {
    export_members_with(members, &[])
}

/// [`export_members`] with one more column per configured custom field in `fields`, after the
/// built-in ones and named like the field (a member without an answer has an empty cell).
pub fn export_members_with(members: &[MemberView], fields: &[&str]) -> String {
    let mut header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    header.extend(fields.iter().map(|f| f.to_string()));
    let mut records: Vec<Vec<String>> = vec![header];
    for m in members {
        let mut record = vec![
            m.number.clone(),
            m.name.clone().unwrap_or_default(),
            m.city.clone().unwrap_or_default(),
            m.region.clone().unwrap_or_default(),
            m.tags.join(";"),
            m.time_zone.clone().unwrap_or_default(),
        ];
        record.extend(
            fields
                .iter()
                .map(|f| m.fields.get(*f).cloned().unwrap_or_default()),
        );
        records.push(record);
    }
    write_records(&records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn records(text: &str) -> Vec<Vec<String>> {
        parse_records(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn rfc4180_reading() {
        assert_eq!(
            records("a,b\r\n\"x, \"\"y\"\"\",\"line\r\nbreak\"\n\n,\n"),
            vec![
                vec!["a".to_string(), "b".into()],
                vec!["x, \"y\"".into(), "line\r\nbreak".into()],
                vec!["".into(), "".into()],
            ]
        );
        assert_eq!(
            records("\u{feff}number\n+1\n"),
            vec![vec!["number".to_string()], vec!["+1".into()]]
        );
        assert_eq!(
            records("no newline at end"),
            vec![vec!["no newline at end".to_string()]]
        );
        assert!(records("").is_empty());
    }

    #[test]
    fn rfc4180_errors_name_the_line() {
        let e = parse_records("a\nb\n\"open\n").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("csv line 3: a quoted field is never closed")
        );
        let e = parse_records("a\n\"x\"y\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("csv line 2:"), "{e}");
        assert!(parse_records("a\nx\"y\n").is_err());
    }

    #[test]
    fn import_collects_every_row_error() {
        let text = "Number,Name,City,Region,Tags,Timezone\n\
            +13125550101,Ana,Chicago,60601,volunteer;Block Captain,\n\
            555,Bo,,,,\n\
            (312) 555-0102,Cy,,,,\n\
            +13125550101,Dup,,,,\n\
            +13125550103,Di,,,bad/tag,\n\
            +13125550104,Ed,,,,Mars/Olympus\n\
            +13125550105,Fay\n\
            not a number,,,,,\n";
        let errors = match parse_import(text, Some("US")) {
            Err(CommunityError::Import(e)) => e,
            other => panic!("{other:?}"),
        };
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "row 3: number '555': not a valid phone number",
                "row 5: number '+13125550101' repeats row 2",
                "row 6: tags: tag \"bad/tag\": only letters, digits, '-' and '_' are allowed",
                "row 7: timezone 'Mars/Olympus': not in the tz database",
                "row 8: 2 fields, the header has 6",
                "row 9: number 'not a number': not a valid phone number (letters)",
            ]
        );
    }

    #[test]
    fn import_valid_rows() {
        let text = "tags,number,city\n\"volunteer; donor\",(312) 555-0101,Denver\n,+4930901820,\n";
        let rows = parse_import(text, Some("US")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].number, "+13125550101");
        assert_eq!(rows[0].tags, vec!["donor", "volunteer"]);
        assert_eq!(rows[0].time_zone.as_deref(), Some("America/Denver"));
        assert_eq!(rows[0].row, 2);
        assert_eq!(rows[1].time_zone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(rows[1].city, None);
    }

    #[test]
    fn header_errors() {
        for (text, want) in [
            ("", "empty file"),
            ("name,city\n", "no \"number\" column"),
            ("number,phone\n", "unknown column \"phone\""),
            ("number,Number\n", "appears twice"),
        ] {
            let got = parse_import(text, None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(got.contains(want), "{text:?}: {got}");
        }
    }

    #[test]
    fn custom_field_columns_export_and_import_back() {
        let mut m = MemberView::new("+13125550123", crate::community::MemberStatus::Active, 0);
        m.fields.insert("shirt_size".into(), "L".into());
        let other = MemberView::new("+13125550124", crate::community::MemberStatus::Active, 0);
        let text = export_members_with(&[m, other], &["shirt_size", "diet"]);
        assert!(
            text.starts_with("number,name,city,region,tags,timezone,shirt_size,diet\r\n"),
            "{text}"
        );
        let rows = parse_import_with(&text, None, &["shirt_size", "diet"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            rows[0].fields.get("shirt_size").map(String::as_str),
            Some("L")
        );
        assert!(!rows[0].fields.contains_key("diet") && rows[1].fields.is_empty());
        // Without the field configured, its column is unknown.
        let err = parse_import(&text, None).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("shirt_size")));
    }

    #[test]
    fn export_imports_back() {
        let mut m = MemberView::new("+13125550101", crate::community::MemberStatus::Active, 0);
        m.name = Some("Smith, \"Ana\"".into());
        m.city = Some("Chicago".into());
        m.tags = vec!["donor".into(), "volunteer".into()];
        m.time_zone = Some("America/Chicago".into());
        let csv = export_members(&[m.clone()]);
        assert!(csv.starts_with("number,name,city,region,tags,timezone\r\n"));
        let rows = parse_import(&csv, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows[0].name, m.name);
        assert_eq!(rows[0].tags, m.tags);
        assert_eq!(rows[0].time_zone, m.time_zone);
    }

    proptest! {
        #[test]
        fn reader_never_panics(s in "(?s).{0,200}") {
            let _ = parse_records(&s);
            let _ = parse_import(&s, Some("US"));
        }

        #[test]
        fn round_trip(recs in proptest::collection::vec(
            proptest::collection::vec("(?s)[a-z ,\"\r\n\u{e9}]{0,6}", 1..4), 0..6)) {
            let text = write_records(&recs);
            prop_assert_eq!(parse_records(&text).ok(), Some(recs));
        }
    }
}
