//! How every verb prints its answer: a table or sentence for a person on a terminal, the daemon's
//! data as pretty JSON with `--json` (for scripts), plus the two little formatting rules all the
//! tables share (`-` for an empty cell, the plural `s`). It owns the look of the output only; what
//! goes into a table is each verb's business, and nothing here talks to the daemon.
//!
//! The bytes are a contract: scripts parse the JSON and tests compare the text, so the table style
//! (`UTF8_BORDERS_ONLY`) and the JSON layout (`serde_json::to_string_pretty`, one value, one
//! trailing newline) must not change casually. A table whose header cells are all empty (the
//! two-column `status` summary) is printed without a header row.

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use super::runtime::Outcome;

/// An empty table in the house style, with `header` as its first row unless every cell is empty.
pub(super) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_BORDERS_ONLY);
    if header.iter().any(|h| !h.is_empty()) {
        t.set_header(header.to_vec());
    }
    t
}

pub(super) fn print_table(t: &Table) {
    println!("{t}");
}

/// `value` as pretty JSON on stdout.
pub(super) fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("cannot print JSON")?
    );
    Ok(())
}

/// The `--json` switch in one place: `value` as JSON when `json` is set, else what `human` prints.
pub(super) fn show<T: Serialize + ?Sized>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T),
) -> anyhow::Result<Outcome> {
    if json {
        print_json(value)?;
    } else {
        human(value);
    }
    Ok(Outcome::Ok)
}

/// A table cell for an optional text: `-` when absent or empty.
pub(super) fn dash(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "-".to_string(),
    }
}

/// The `s` of "3 members" (and none in "1 member").
pub(super) fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_header_is_left_out() {
        let mut t = table(&["", ""]);
        t.add_row(vec!["version", "1"]);
        assert_eq!(t.to_string().lines().count(), 3);
        let mut t = table(&["name", "state"]);
        t.add_row(vec!["sim0", "ready"]);
        assert_eq!(t.to_string().lines().count(), 5);
    }

    #[test]
    fn cells_and_plurals() {
        assert_eq!(dash(None), "-");
        assert_eq!(dash(Some("")), "-");
        assert_eq!(dash(Some("x")), "x");
        assert_eq!(plural(1), "");
        assert_eq!(plural(0), "s");
        assert_eq!(plural(2), "s");
    }
}
