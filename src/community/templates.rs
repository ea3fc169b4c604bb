//! Text templates: `{org}`, `{contact}`, `{name}`, `{first_name}`, `{city}`; `{{` and `}}` are
//! literal braces (the syntax `config` validates for its texts).
//!
//! Config texts may only use `{org}` and `{contact}` (config validation enforces that); broadcast
//! templates may also use the member placeholders. A placeholder with no value renders as its
//! fallback: `{name}`/`{first_name}` → the broadcast's name fallback ("friend" by default, see
//! `broadcast`), `{city}` → "your city", `{contact}` → empty. Rendering never fails on a template
//! that [`check`] accepted; on any other input it renders unknown placeholders literally rather
//! than panicking or dropping text.

use std::collections::BTreeMap;

use super::CommunityError;

/// Placeholders a broadcast template may use.
pub const BROADCAST_PLACEHOLDERS: &[&str] = &["org", "contact", "name", "first_name", "city"];

/// Values for one rendering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars<'a> {
    pub org: &'a str,
    pub contact: Option<&'a str>,
    pub name: Option<&'a str>,
    pub city: Option<&'a str>,
    /// Used for `{name}` and `{first_name}` when the name is missing or blank.
    pub name_fallback: &'a str,
    /// Custom fields (`{shirt_size}`), by name; a configured field the member has not answered
    /// should be present with an empty value (see `broadcast::render_for`).
    pub fields: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Vars<'a> {
    fn value(&self, placeholder: &str) -> Option<String> {
        let name = self.name.map(str::trim).filter(|n| !n.is_empty());
        Some(match placeholder {
            "org" => self.org.to_string(),
            "contact" => self.contact.unwrap_or("").to_string(),
            "name" => name.unwrap_or(self.name_fallback).to_string(),
            "first_name" => name
                .and_then(|n| n.split_whitespace().next())
                .unwrap_or(self.name_fallback)
                .to_string(),
            "city" => self
                .city
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .unwrap_or("your city")
                .to_string(),
            other => self.fields?.get(other)?.trim().to_string(),
        })
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'t> {
    Literal(&'t str),
    Brace(char),
    Placeholder(&'t str),
}

fn pieces(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        let (lit, tail) = rest.split_at(pos);
        if !lit.is_empty() {
            out.push(Piece::Literal(lit));
        }
        if let Some(after) = tail.strip_prefix("{{") {
            out.push(Piece::Brace('{'));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push(Piece::Brace('}'));
            rest = after;
        } else if tail.starts_with('}') {
            return Err("unmatched '}' (write '}}' for a literal brace)".into());
        } else {
            let inner = tail.get(1..).unwrap_or("");
            let Some(close) = inner.find('}') else {
                return Err("unclosed '{' (write '{{' for a literal brace)".into());
            };
            out.push(Piece::Placeholder(inner.get(..close).unwrap_or("")));
            rest = inner.get(close + 1..).unwrap_or("");
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Literal(rest));
    }
    Ok(out)
}

/// Checks a template against the allowed placeholders.
pub fn check(template: &str, allowed: &[&str]) -> Result<(), CommunityError> {
    let parsed = pieces(template).map_err(|reason| CommunityError::Template { reason })?;
    for piece in parsed {
        if let Piece::Placeholder(name) = piece
            && !allowed.contains(&name)
        {
            let known = allowed
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(CommunityError::Template {
                reason: format!("unknown placeholder {{{name}}} (known: {known})"),
            });
        }
    }
    Ok(())
}

/// Renders a template. Malformed braces and unknown placeholders are kept literally (the
/// template was checked where it came in; this must not fail on the way out).
pub fn render(template: &str, vars: &Vars<'_>) -> String {
    let Ok(parsed) = pieces(template) else {
        return template.to_string();
    };
    let mut out = String::with_capacity(template.len() + 16);
    for piece in parsed {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Brace(c) => out.push(c),
            Piece::Placeholder(name) => match vars.value(name) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vars<'a>(name: Option<&'a str>) -> Vars<'a> {
        Vars {
            org: "Oak St Tenants",
            contact: Some("oakst.org"),
            name,
            city: None,
            name_fallback: "friend",
            fields: None,
        }
    }

    #[test]
    fn custom_fields_render_from_the_map() {
        let mut fields = BTreeMap::new();
        fields.insert("shirt_size".to_string(), " L ".to_string());
        fields.insert("diet".to_string(), String::new());
        let v = Vars {
            fields: Some(&fields),
            ..vars(None)
        };
        assert_eq!(
            render("size {shirt_size}, diet {diet}.", &v),
            "size L, diet ."
        );
        // Without the map (config texts), an unknown name stays literal.
        assert_eq!(render("{shirt_size}", &vars(None)), "{shirt_size}");
    }

    #[test]
    fn renders_placeholders_and_braces() {
        assert_eq!(
            render(
                "Hi {name}! {org} ({contact}) {{x}}",
                &vars(Some("Ana Lopez"))
            ),
            "Hi Ana Lopez! Oak St Tenants (oakst.org) {x}"
        );
        assert_eq!(
            render("Hi {first_name},", &vars(Some(" Ana Lopez "))),
            "Hi Ana,"
        );
        assert_eq!(render("Hi {name},", &vars(None)), "Hi friend,");
        assert_eq!(render("Hi {name},", &vars(Some("   "))), "Hi friend,");
        assert_eq!(render("in {city}", &vars(None)), "in your city");
        assert_eq!(render("{bogus} {", &vars(None)), "{bogus} {");
    }

    #[test]
    fn check_names_the_bad_placeholder() {
        assert!(check("Hi {name}", BROADCAST_PLACEHOLDERS).is_ok());
        let err = check("Hi {nmae}", BROADCAST_PLACEHOLDERS)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("{nmae}"), "{err}");
        assert!(check("a } b", BROADCAST_PLACEHOLDERS).is_err());
        assert!(check("a { b", BROADCAST_PLACEHOLDERS).is_err());
    }

    proptest! {
        #[test]
        fn render_never_panics(t in ".*", name in proptest::option::of(".*")) {
            let _ = render(&t, &vars(name.as_deref()));
            let _ = check(&t, BROADCAST_PLACEHOLDERS);
        }

        #[test]
        fn text_without_braces_is_unchanged(t in "[^{}]*") {
            prop_assert_eq!(render(&t, &vars(None)), t);
        }
    }
}
