//! Where each key of a TOML text sits: a flat index from key paths (`modem[1].per_minute`) to byte
//! spans, built from toml's spanned document tree. The serde mirror itself stays free of
//! `Spanned<T>` wrappers: validation errors name a key path and this index turns it into a line, and
//! deserialisation errors carry a byte span that this index turns back into the key path. Keeping
//! positions out of the mirror keeps the mirror a plain description of the file format.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// Where one key sits: the span of its name and of its value (for a `[table]` the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    pub key: Range<usize>,
    pub value: Range<usize>,
}

/// All key paths of a document with their places.
#[derive(Debug, Default)]
pub(crate) struct SpanIndex {
    places: BTreeMap<String, Place>,
}

impl SpanIndex {
    /// Index a document; a text that does not parse yields an empty index (the parse error is
    /// reported separately by the deserialiser, with its own span).
    pub fn build(text: &str) -> SpanIndex {
        let mut index = SpanIndex::default();
        if let Ok(root) = DeTable::parse(text) {
            index.walk_table("", root.get_ref());
        }
        index
    }

    fn walk_table(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            self.places.insert(
                path.clone(),
                Place {
                    key: key.span(),
                    value: value.span(),
                },
            );
            self.walk_value(&path, value.get_ref());
        }
    }

    fn walk_value(&mut self, path: &str, value: &DeValue<'_>) {
        match value {
            DeValue::Table(table) => self.walk_table(path, table),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    self.places.insert(
                        item_path.clone(),
                        Place {
                            key: item.span(),
                            value: item.span(),
                        },
                    );
                    self.walk_value(&item_path, item.get_ref());
                }
            }
            _ => {}
        }
    }

    /// The place of `path`, or of its nearest enclosing key that is in the text (a defaulted key is
    /// absent, so its table's header is the best place to point at).
    pub fn find(&self, path: &str) -> Option<&Place> {
        let mut path = path;
        loop {
            if let Some(place) = self.places.get(path) {
                return Some(place);
            }
            path = parent(path)?;
        }
    }

    /// The most specific key path whose key or value span holds byte `offset`: the key an error
    /// at that offset is about.
    pub fn path_at(&self, offset: usize) -> Option<&str> {
        self.places
            .iter()
            .filter(|(_, p)| contains(&p.key, offset) || contains(&p.value, offset))
            .min_by_key(|(path, p)| {
                // Smallest enclosing span wins; among equal spans the deeper path (array item
                // over the array itself) is more specific.
                let width = if contains(&p.key, offset) {
                    p.key.len()
                } else {
                    p.value.len()
                };
                (width, usize::MAX - path.len())
            })
            .map(|(path, _)| path.as_str())
    }
}

fn contains(range: &Range<usize>, offset: usize) -> bool {
    range.start <= offset && offset < range.end.max(range.start + 1)
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a`; `None` at the top.
fn parent(path: &str) -> Option<&str> {
    if let Some(stripped) = path.strip_suffix(']')
        && let Some(open) = stripped.rfind('[')
    {
        return stripped.get(..open);
    }
    path.rfind('.').and_then(|dot| path.get(..dot))
}

/// 1-based (line, column) of byte `offset` in `text`; the column counts characters. Offsets past
/// the end or inside a multi-byte character are clamped rather than trusted.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[daemon]\nstate_dir = \"/x\"\n\n[[modem]]\nname = \"a\"\n\n[[modem]]\nname = \"b\"\nper_minute = 0\n";

    fn line_of(index: &SpanIndex, path: &str) -> usize {
        let place = index.find(path).expect("path indexed");
        line_column(DOC, place.value.start).0
    }

    #[test]
    fn finds_lines_of_nested_keys() {
        let index = SpanIndex::build(DOC);
        assert_eq!(line_of(&index, "daemon.state_dir"), 2);
        assert_eq!(line_of(&index, "modem[1].name"), 8);
        assert_eq!(line_of(&index, "modem[1].per_minute"), 9);
    }

    #[test]
    fn absent_key_falls_back_to_its_table() {
        let index = SpanIndex::build(DOC);
        assert_eq!(line_of(&index, "modem[0].per_hour"), 4);
    }

    #[test]
    fn path_at_offset_prefers_the_innermost_key() {
        let index = SpanIndex::build(DOC);
        let offset = DOC.find("per_minute").unwrap();
        assert_eq!(index.path_at(offset), Some("modem[1].per_minute"));
        let value = DOC.rfind('0').unwrap();
        assert_eq!(index.path_at(value), Some("modem[1].per_minute"));
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent("a.b[2].c"), Some("a.b[2]"));
        assert_eq!(parent("a.b[2]"), Some("a.b"));
        assert_eq!(parent("a"), None);
    }

    #[test]
    fn line_column_is_safe_on_any_offset() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab\ncd", 400), (2, 3));
        assert_eq!(line_column("é\nx", 1), (1, 1));
        assert_eq!(line_column("", 0), (1, 1));
    }
}
