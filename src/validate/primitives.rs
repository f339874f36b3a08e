//! Hand-written checkers for the formats of the FHIR R4 primitive types (FHIR R4 §2.24.0.1
//! "Primitive Types"), equivalent to the regexes of the specification.
//!
//! The specification's `\s` is read as ASCII whitespace (space, tab, line feed, vertical tab,
//! form feed, carriage return): a no-break space inside a `string` is valid.

/// The JSON shape a primitive takes (FHIR R4 §2.6.2 "JSON representation of primitive
/// elements").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `true` or `false`.
    Bool,
    /// A JSON number.
    Number,
    /// A JSON string.
    String,
}

/// The JSON shape of primitive type `name`.
pub(crate) fn shape(name: &str) -> Shape {
    match name {
        "boolean" => Shape::Bool,
        "integer" | "positiveInt" | "unsignedInt" | "decimal" | "integer64" => Shape::Number,
        _ => Shape::String,
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Whether `value` (a JSON string's decoded text, or a JSON number's text) is valid for the
/// primitive type `name`. Unknown names are refused (fail closed).
pub(crate) fn valid(name: &str, value: &str) -> bool {
    let b = value.as_bytes();
    // FHIR R4 §2.24.0.1 "string": no characters below U+0020 except tab, CR and LF.
    if b.iter()
        .any(|&c| c < 0x20 && !matches!(c, b'\t' | b'\r' | b'\n'))
    {
        return false;
    }
    match name {
        "string" | "markdown" => !b.is_empty() && !b.iter().any(|&c| c == 0x0b || c == 0x0c),
        "xhtml" => !value
            .trim_matches(|c: char| c.is_ascii_whitespace())
            .is_empty(),
        "uri" | "url" | "canonical" => !b.is_empty() && !b.iter().any(|&c| is_ws(c)),
        "code" => code(b),
        "id" => id(b),
        "oid" => oid(b),
        "uuid" => uuid(b),
        "base64Binary" => base64(b),
        "boolean" => value == "true" || value == "false",
        "decimal" => decimal(b),
        "integer" => integer(value).is_some(),
        "positiveInt" => integer(value).is_some_and(|n| n >= 1),
        "unsignedInt" => integer(value).is_some_and(|n| n >= 0),
        "date" => date(b).is_some_and(|rest| rest.is_empty()),
        "dateTime" => date_time(b, false),
        "instant" => date_time(b, true),
        "time" => time(b).is_some_and(|rest| rest.is_empty()),
        _ => false,
    }
}

/// `[^\s]+(\s[^\s]+)*`: no leading, trailing or doubled whitespace.
fn code(b: &[u8]) -> bool {
    let mut prev_ws = true;
    for &c in b {
        let ws = is_ws(c);
        if ws && prev_ws {
            return false;
        }
        prev_ws = ws;
    }
    !prev_ws
}

/// `[A-Za-z0-9\-\.]{1,64}`.
pub(crate) fn id(b: &[u8]) -> bool {
    (1..=64).contains(&b.len())
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

/// `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`.
fn oid(b: &[u8]) -> bool {
    let Some(rest) = b.strip_prefix(b"urn:oid:") else {
        return false;
    };
    let mut arcs = rest.split(|&c| c == b'.');
    if !matches!(arcs.next(), Some([b'0'..=b'2'])) {
        return false;
    }
    let mut n = 0;
    for arc in arcs {
        n += 1;
        let ok = match arc {
            [b'0'] => true,
            [first, ..] => *first != b'0' && arc.iter().all(u8::is_ascii_digit),
            [] => false,
        };
        if !ok {
            return false;
        }
    }
    n > 0
}

/// `urn:uuid:` and a lowercase 8-4-4-4-12 UUID.
pub(crate) fn uuid(b: &[u8]) -> bool {
    let Some(rest) = b.strip_prefix(b"urn:uuid:") else {
        return false;
    };
    rest.len() == 36
        && rest.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`: groups of four base64 characters, whitespace between groups.
fn base64(b: &[u8]) -> bool {
    let mut in_group = 0usize;
    let mut groups = 0usize;
    for &c in b {
        if is_ws(c) {
            if in_group != 0 {
                return false;
            }
        } else if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=' {
            in_group += 1;
            if in_group == 4 {
                in_group = 0;
                groups += 1;
            }
        } else {
            return false;
        }
    }
    in_group == 0 && groups > 0
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn decimal(b: &[u8]) -> bool {
    let b = b.strip_prefix(b"-").unwrap_or(b);
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 || (int_len > 1 && b.first() == Some(&b'0')) {
        return false;
    }
    let mut rest = b.get(int_len..).unwrap_or_default();
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = frac.get(n..).unwrap_or_default();
    }
    if let Some(exp) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exp = exp
            .strip_prefix(b"+")
            .or_else(|| exp.strip_prefix(b"-"))
            .unwrap_or(exp);
        return !exp.is_empty() && exp.iter().all(u8::is_ascii_digit);
    }
    rest.is_empty()
}

/// `-?([0]|([1-9][0-9]*))` within the 32-bit range FHIR R4 gives `integer`.
fn integer(value: &str) -> Option<i64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let b = digits.as_bytes();
    if b.is_empty() || b.len() > 11 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b.first() == Some(&b'0') {
        return None;
    }
    let n: i64 = value.parse().ok()?;
    (i64::from(i32::MIN)..=i64::from(i32::MAX))
        .contains(&n)
        .then_some(n)
}

fn digits(b: &[u8], n: usize) -> Option<(u32, &[u8])> {
    let head = b.get(..n)?;
    if !head.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = head
        .iter()
        .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
    Some((v, b.get(n..).unwrap_or_default()))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (year 0001..9999, a real day of the month); returns what
/// follows, and whether the day was given.
fn date_parts(b: &[u8]) -> Option<(&[u8], bool)> {
    let (year, rest) = digits(b, 4)?;
    if year == 0 {
        return None;
    }
    let Some(rest) = rest.strip_prefix(b"-") else {
        return Some((rest, false));
    };
    let (month, rest) = digits(rest, 2)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    let Some(rest) = rest.strip_prefix(b"-") else {
        return Some((rest, false));
    };
    let (day, rest) = digits(rest, 2)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some((rest, true))
}

fn date(b: &[u8]) -> Option<&[u8]> {
    date_parts(b).map(|(rest, _)| rest)
}

/// `hh:mm:ss(.f+)?`; returns what follows.
fn time(b: &[u8]) -> Option<&[u8]> {
    let (h, rest) = digits(b, 2)?;
    let rest = rest.strip_prefix(b":")?;
    let (m, rest) = digits(rest, 2)?;
    let rest = rest.strip_prefix(b":")?;
    let (s, mut rest) = digits(rest, 2)?;
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = frac.get(n..).unwrap_or_default();
    }
    Some(rest)
}

/// `Z` or `(+|-)hh:mm` up to `14:00`.
fn zone(b: &[u8]) -> bool {
    if b == b"Z" {
        return true;
    }
    let Some(rest) = b.strip_prefix(b"+").or_else(|| b.strip_prefix(b"-")) else {
        return false;
    };
    let Some((h, rest)) = digits(rest, 2) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(b":") else {
        return false;
    };
    let Some((m, rest)) = digits(rest, 2) else {
        return false;
    };
    rest.is_empty() && m <= 59 && (h <= 13 || (h == 14 && m == 0))
}

/// `dateTime` (a partial date, or a full date with time and zone), or `instant` (always full).
fn date_time(b: &[u8], instant: bool) -> bool {
    let Some((rest, full_date)) = date_parts(b) else {
        return false;
    };
    if rest.is_empty() {
        return !instant;
    }
    if !full_date {
        return false;
    }
    let Some(rest) = rest.strip_prefix(b"T") else {
        return false;
    };
    time(rest).is_some_and(zone)
}

/// A date for search (FHIR R4 §3.1.1.4.2 "date"): any precision from the year to fractions of
/// a second; a time needs at least hours and minutes, and may have a zone.
pub(crate) fn search_date(b: &[u8]) -> bool {
    let Some((rest, full_date)) = date_parts(b) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(t) = rest.strip_prefix(b"T") else {
        return false;
    };
    if !full_date {
        return false;
    }
    let split = t
        .iter()
        .position(|&c| c == b'Z' || c == b'+' || c == b'-')
        .unwrap_or(t.len());
    let (clock, tz) = t.split_at(split);
    let clock_ok = match clock.len() {
        5 => digits(clock, 2).is_some_and(|(h, r)| {
            h <= 23
                && r.strip_prefix(b":")
                    .and_then(|r| digits(r, 2))
                    .is_some_and(|(m, r)| m <= 59 && r.is_empty())
        }),
        _ => time(clock).is_some_and(<[u8]>::is_empty),
    };
    clock_ok && (tz.is_empty() || zone(tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_fhir_r4_datatypes() {
        // FHIR R4 §2.24.0.1: the regexes of the primitive types.
        for (ty, v, ok) in [
            ("date", "2018", true),
            ("date", "2018-02", true),
            ("date", "2018-02-29", false),
            ("date", "2020-02-29", true),
            ("date", "0000", false),
            ("dateTime", "2015-02-07T13:28:17-05:00", true),
            ("dateTime", "2015-02-07T13:28:17", false),
            ("dateTime", "2015-02T13:28:17Z", false),
            ("instant", "2015-02-07T13:28:17.239+02:00", true),
            ("instant", "2015-02-07", false),
            ("time", "23:59:60", true),
            ("time", "24:00:00", false),
            ("id", "a-B.9", true),
            ("id", "a_b", false),
            ("code", "a b", true),
            ("code", " a", false),
            ("code", "a  b", false),
            ("string", "no\u{a0}break", true),
            ("string", "tab\tok", true),
            ("string", "\u{b}", false),
            ("integer", "2147483647", true),
            ("integer", "2147483648", false),
            ("integer", "01", false),
            ("positiveInt", "0", false),
            ("unsignedInt", "0", true),
            ("decimal", "1.50", true),
            ("decimal", "1.", false),
            ("base64Binary", "aGk= aGk=", true),
            ("base64Binary", "aGk", false),
            ("oid", "urn:oid:1.2.3", true),
            ("oid", "urn:oid:1.02", false),
            (
                "uuid",
                "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
                true,
            ),
            (
                "uuid",
                "urn:uuid:C757873D-ec9a-4326-a141-556f43239520",
                false,
            ),
            ("uri", "http://a b", false),
            ("nonsense", "x", false),
        ] {
            assert_eq!(valid(ty, v), ok, "{ty} {v:?}");
        }
    }
}
