//! Key paths and file positions: from a byte span to the key it is in, and back.
//!
//! serde errors carry a byte span; semantic errors carry a key path. Both are turned into a
//! `line:column` and a key path by walking the spanned document toml parses.

use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// `a.b[2].c`.
pub(crate) fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The inverse of [`render`] for the keys this crate writes (no dots inside keys).
pub(crate) fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        let key_end = rest.find('[').unwrap_or(rest.len());
        let (key, tail) = rest.split_at(key_end);
        if !key.is_empty() {
            out.push(Seg::Key(key.to_owned()));
        }
        rest = tail;
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']').unwrap_or(inner.len());
            let (number, after) = inner.split_at(close);
            if let Ok(i) = number.parse() {
                out.push(Seg::Index(i));
            }
            rest = after.strip_prefix(']').unwrap_or(after);
        }
    }
    out
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
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

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

/// The deepest key path whose key or value holds `offset`.
pub(crate) fn path_at(text: &str, offset: usize) -> Vec<Seg> {
    let Ok(root) = DeTable::parse(text) else {
        return Vec::new();
    };
    let mut path = Vec::new();
    let mut best = Vec::new();
    walk_table(root.get_ref(), offset, &mut path, &mut best);
    best
}

fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut Vec<Seg>, best: &mut Vec<Seg>) {
    for (key, value) in table.iter() {
        path.push(Seg::Key(key.get_ref().to_string()));
        if contains(&key.span(), offset) && path.len() > best.len() {
            *best = path.clone();
        }
        walk_value(value, offset, path, best);
        path.pop();
    }
}

fn walk_value(
    value: &Spanned<DeValue<'_>>,
    offset: usize,
    path: &mut Vec<Seg>,
    best: &mut Vec<Seg>,
) {
    if contains(&value.span(), offset) && path.len() > best.len() {
        *best = path.clone();
    }
    match value.get_ref() {
        DeValue::Table(t) => walk_table(t, offset, path, best),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                walk_value(item, offset, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The span to point at for a key path: the value when it is a plain value, else the key (a
/// table's header); the nearest existing ancestor when the path does not exist (a missing key).
pub(crate) fn span_of(text: &str, path: &[Seg]) -> Option<Range<usize>> {
    let root = DeTable::parse(text).ok()?;
    let mut here: Option<Range<usize>> = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    for seg in path {
        let next = match (seg, table, value.map(|v| v.get_ref())) {
            (Seg::Key(k), Some(t), _) => t
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                .map(|(key, v)| {
                    here = Some(key.span());
                    v
                }),
            (Seg::Index(i), _, Some(DeValue::Array(items))) => items.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        let span = next.span();
        match next.get_ref() {
            DeValue::Table(t) => {
                // An inline table or an array element points at its value; a `[table]` at
                // its header.
                let inline = text.get(span.start..).is_some_and(|s| s.starts_with('{'));
                if span.end > span.start && (inline || matches!(seg, Seg::Index(_))) {
                    here = Some(span);
                }
                table = Some(t);
            }
            _ => {
                here = Some(span);
                table = None;
            }
        }
        value = Some(next);
    }
    here
}

/// When `path` names an array and `message` starts with one of its string elements, quoted
/// (`"10.0.0.0/33" is not ...`), the path and span of that element: serde reports an element's
/// error at the whole array.
pub(crate) fn refine_to_element(
    text: &str,
    path: &[Seg],
    message: &str,
) -> Option<(Vec<Seg>, Range<usize>)> {
    if !message.starts_with('"') {
        return None;
    }
    let root = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = root.get_ref();
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    for seg in path {
        let next = match (seg, value.map(|v| v.get_ref())) {
            (Seg::Key(k), None | Some(DeValue::Table(_))) => table
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                .map(|(_, v)| v),
            (Seg::Index(i), Some(DeValue::Array(items))) => items.get(*i),
            _ => None,
        }?;
        if let DeValue::Table(t) = next.get_ref() {
            table = t;
        }
        value = Some(next);
    }
    let DeValue::Array(items) = value?.get_ref() else {
        return None;
    };
    items
        .iter()
        .enumerate()
        .find_map(|(i, item)| match item.get_ref() {
            DeValue::String(s) => {
                let clipped: String = s.chars().take(80).collect();
                message.starts_with(&format!("{clipped:?}")).then(|| {
                    let mut p = path.to_vec();
                    p.push(Seg::Index(i));
                    (p, item.span())
                })
            }
            _ => None,
        })
}
