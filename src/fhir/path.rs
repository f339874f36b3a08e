//! Path safety: split a request path into decoded segments, refusing anything ambiguous.
//!
//! Path-based access rules are bypassed when the firewall and the server read a path
//! differently (`/fhir/Patient%2F1`, `/fhir/./Patient/1`, `/fhir/Patient;x/1`, `%252F`, …). The
//! only safe answer is to decode exactly once and refuse every form that another component
//! could read another way.

use super::query::check_percent_triplets;
use super::unclassified::{Unclassified, UnclassifiedKind};
use percent_encoding::percent_decode_str;
use std::borrow::Cow;

/// Most segments a FHIR path has after the base (`Patient/1/_history/2` has 4, a compartment
/// search 3); anything longer is refused before decoding.
const MAX_SEGMENTS: usize = 8;

fn bad(text: &'static str) -> Unclassified {
    Unclassified::new(UnclassifiedKind::BadPath, text)
}

/// The decoded segments of a path, without a heap allocation unless one needed decoding.
pub(crate) struct Segments<'a> {
    items: [Cow<'a, str>; MAX_SEGMENTS],
    len: usize,
}

impl<'a> Segments<'a> {
    /// The segments as string slices, for matching.
    pub(crate) fn as_strs(&self) -> ([&str; MAX_SEGMENTS], usize) {
        (
            std::array::from_fn(|i| self.items.get(i).map_or("", |s| s.as_ref())),
            self.len,
        )
    }
}

/// Splits the part of the path after the base into decoded segments.
///
/// `rest` is what follows the base path, without its leading `/`; an empty `rest` is the base
/// itself.
pub(crate) fn segments(rest: &str) -> Result<Segments<'_>, Unclassified> {
    let mut out = Segments {
        items: std::array::from_fn(|_| Cow::Borrowed("")),
        len: 0,
    };
    if rest.is_empty() {
        return Ok(out);
    }
    for raw in rest.split('/') {
        let Some(slot) = out.items.get_mut(out.len) else {
            return Err(Unclassified::new(
                UnclassifiedKind::UnknownRoute,
                "the path has more segments than any FHIR interaction",
            ));
        };
        *slot = segment(raw)?;
        out.len += 1;
    }
    Ok(out)
}

fn segment(raw: &str) -> Result<Cow<'_, str>, Unclassified> {
    if raw.is_empty() {
        return Err(bad(
            "the path has an empty segment (double or trailing slash)",
        ));
    }
    if raw.contains(';') {
        return Err(bad("path parameters (';') are not allowed"));
    }
    let decoded: Cow<'_, str> = if raw.contains('%') {
        check_percent_triplets(raw).map_err(|_| bad("the path has a malformed percent-escape"))?;
        let d = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| bad("the path is not valid UTF-8"))?;
        match d {
            Cow::Borrowed(_) => Cow::Borrowed(raw),
            Cow::Owned(s) => Cow::Owned(s),
        }
    } else {
        Cow::Borrowed(raw)
    };
    if decoded.contains(['/', '\\']) {
        return Err(bad(
            "encoded slashes and backslashes are not allowed in the path",
        ));
    }
    if decoded.contains('%') {
        // Only a `%25` produces a `%` here: a double-encoded path that a second decoder
        // elsewhere would read differently.
        return Err(bad("double percent-encoding is not allowed in the path"));
    }
    if decoded == "." || decoded == ".." {
        return Err(bad("dot segments are not allowed in the path"));
    }
    if decoded.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(bad(
            "the path may hold only visible ASCII characters (no spaces, controls or non-ASCII)",
        ));
    }
    Ok(decoded)
}

/// Whether `s` is a FHIR id: `[A-Za-z0-9\-\.]{1,64}` (FHIR R4 §2.24.0.1 "id" primitive).
pub(crate) fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Whether `s` is a plausible operation name after the `$`: a code as OperationDefinition.code
/// allows, kept to ASCII letters, digits, `-` and `_`.
pub(crate) fn is_operation_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_once() {
        let s = segments("Patient/a%2Db").unwrap();
        let (strs, len) = s.as_strs();
        assert_eq!(&strs[..len], ["Patient", "a-b"]);
    }

    #[test]
    fn refuses_ambiguous_forms() {
        for rest in [
            "Patient//1",
            "Patient/1/",
            "Patient%2F1",
            "Patient%2f1",
            "Patient/%2e%2e",
            "./Patient",
            "Patient;x=1/1",
            "Patient/%251",
            "Patient/%zz",
            "Patient/a%5Cb",
            "Patient/%C3%A9",
            "Patient/a%20b",
            "Patient/a%00b",
        ] {
            assert!(segments(rest).is_err(), "{rest} was accepted");
        }
    }

    #[test]
    fn id_rule() {
        assert!(is_fhir_id("abc-1.2"));
        assert!(is_fhir_id(&"a".repeat(64)));
        assert!(!is_fhir_id(&"a".repeat(65)));
        assert!(!is_fhir_id(""));
        assert!(!is_fhir_id("a_b"));
    }
}
