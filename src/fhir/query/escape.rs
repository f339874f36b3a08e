//! Percent-encoding checks and FHIR's search escapes (FHIR R4 §3.1.1.5.7).

use super::QueryError;

pub(super) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `percent_decode` passes a malformed `%zz` through as text; servers differ on that, so a
/// malformed escape is refused instead.
pub(crate) fn check_percent_triplets(s: &str) -> Result<(), QueryError> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let ok = matches!(
                (bytes.get(i + 1), bytes.get(i + 2)),
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit()
            );
            if !ok {
                return Err(QueryError::BadEncoding);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Calls `f` with each part of `raw` between unescaped `separator`s.
pub(super) fn for_each_unescaped<'a>(raw: &'a str, separator: char, mut f: impl FnMut(&'a str)) {
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            f(raw.get(start..i).unwrap_or_default());
            start = i + c.len_utf8();
        }
    }
    f(raw.get(start..).unwrap_or_default());
}

pub(super) fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next @ (',' | '|' | '$' | '\\')) => out.push(next),
                // Not one of FHIR's escapes: keep the backslash as text.
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}
