//! Reading an amount out of the network's answer to a balance USSD code (docs/modems.md,
//! "Balance"). Operators word it every way ("Balance: 12.34 EUR, valid until …", "Your credit
//! is Rs. 45.20", "Saldo 5,50 EUR"), so the rule is deliberately small and documented rather than
//! clever: the **first decimal number** in the text is the amount, with an optional currency next
//! to it.
//!
//! The number: an optional `-` right before the first digit, then digits with `.` or `,` between
//! them. With both separators the last one is the decimal point and the others group thousands
//! (`1,234.56`, `1.234,56`); with one separator that appears once it is the decimal point (`5,50`);
//! one that appears more than once groups thousands (`1.234.567`). The currency: a word of up to
//! four letters starting upper case, or a currency sign, right after the number, else right before it (`EUR 5`, `$5`,
//! `Rs. 45`). A text whose first number is something else (a phone number, a date) reads wrong:
//! choose a code that answers the balance first. Pure: no I/O.

/// An amount read from a USSD answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Balance {
    pub amount: f64,
    pub currency: Option<String>,
}

const SIGNS: &[char] = &['€', '$', '£', '¥', '₹', '₦', '₱', '₽', '₺', '₩'];

/// The first decimal number of `text` and the currency next to it; `None` without a digit.
pub fn parse_balance(text: &str) -> Option<Balance> {
    let chars: Vec<char> = text.chars().collect();
    let start = chars.iter().position(char::is_ascii_digit)?;
    let mut end = start;
    while end < chars.len()
        && (chars[end].is_ascii_digit()
            || (matches!(chars[end], '.' | ',')
                && chars.get(end + 1).is_some_and(char::is_ascii_digit)))
    {
        end += 1;
    }
    let raw: String = chars[start..end].iter().collect();
    let negative = start > 0 && chars[start - 1] == '-';
    let amount = number(&raw)? * if negative { -1.0 } else { 1.0 };
    let before_start = if negative { start - 1 } else { start };
    let currency =
        currency_after(&chars[end..]).or_else(|| currency_before(&chars[..before_start]));
    Some(Balance { amount, currency })
}

fn number(raw: &str) -> Option<f64> {
    let dots = raw.matches('.').count();
    let commas = raw.matches(',').count();
    let normal: String = match (dots, commas) {
        (0, 0) => raw.to_string(),
        (_, 0) | (0, _) => {
            let sep = if dots > 0 { '.' } else { ',' };
            if dots + commas == 1 {
                raw.replace(sep, ".")
            } else {
                raw.replace(sep, "")
            }
        }
        _ => {
            let last = raw.rfind(['.', ','])?;
            let (int, frac) = raw.split_at(last);
            format!("{}.{}", int.replace(['.', ','], ""), frac.get(1..)?)
        }
    };
    normal.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A currency word: one to four letters, the first upper case (a lower-case word next to the
/// number is prose: "5 left", "is 5").
fn is_word(w: &str) -> bool {
    (1..=4).contains(&w.chars().count())
        && w.chars().all(char::is_alphabetic)
        && w.chars().next().is_some_and(char::is_uppercase)
}

fn currency_after(rest: &[char]) -> Option<String> {
    let s: String = rest.iter().collect();
    let s = s.trim_start();
    if let Some(c) = s.chars().next().filter(|c| SIGNS.contains(c)) {
        return Some(c.to_string());
    }
    let word: String = s.chars().take_while(|c| c.is_alphabetic()).collect();
    is_word(&word).then_some(word)
}

fn currency_before(before: &[char]) -> Option<String> {
    let s: String = before.iter().collect();
    let s = s.trim_end().trim_end_matches('.').trim_end();
    if let Some(c) = s.chars().last().filter(|c| SIGNS.contains(c)) {
        return Some(c.to_string());
    }
    let word: String = s
        .chars()
        .rev()
        .take_while(|c| c.is_alphabetic())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    is_word(&word).then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(t: &str) -> Option<(f64, Option<String>)> {
        parse_balance(t).map(|b| (b.amount, b.currency))
    }

    #[test]
    fn the_first_number_and_its_currency() {
        let cases: &[(&str, f64, Option<&str>)] = &[
            (
                "Balance: 12.34 EUR, valid until 31.12.2026",
                12.34,
                Some("EUR"),
            ),
            ("Saldo 5,50 EUR", 5.5, Some("EUR")),
            ("Your credit is Rs. 45.20", 45.2, Some("Rs")),
            ("Credit: EUR 3", 3.0, Some("EUR")),
            ("You have $7.5 left", 7.5, Some("$")),
            ("Balance 1,234.56 USD", 1234.56, Some("USD")),
            ("Guthaben: 1.234,56 €", 1234.56, Some("€")),
            ("Solde: -1.20 EUR", -1.2, Some("EUR")),
            ("balance is 5 and counting", 5.0, None),
            ("Points 1.234.567", 1_234_567.0, None),
            ("Balance: 0.00.", 0.0, None),
        ];
        for (text, amount, currency) in cases {
            let (a, c) = read(text).unwrap_or_else(|| panic!("{text}"));
            assert!((a - amount).abs() < 1e-9, "{text}: {a}");
            assert_eq!(c.as_deref(), *currency, "{text}");
        }
    }

    #[test]
    fn no_digit_no_balance_and_garbage_never_panics() {
        assert_eq!(read("Service unavailable"), None);
        assert_eq!(read(""), None);
        for t in ["-", ".,.,", "€", "9".repeat(400).as_str(), "1.,2", "ÄÖ 1,"] {
            let _ = parse_balance(t);
        }
    }
}
