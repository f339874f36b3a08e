//! A hand-written JSON scanner over raw bytes: one validating pass (RFC 8259 grammar, UTF-8,
//! duplicate keys refused, a depth limit, no recursion so no stack overflow), then fast
//! structural skips over the validated bytes for the redaction walk.
//!
//! Nothing here builds a tree: values are byte spans of the input, so untouched spans can be
//! copied out exactly as they came in (decimals keep every digit, key order is unchanged).

use super::skip::string_stop;
pub(crate) use super::skip::Index;
pub(crate) use super::strings::{decode, string_value};
use std::collections::HashSet;

/// Why a body is not JSON the redactor accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON (or not UTF-8).
    Syntax,
    /// An object has the same key twice (RFC 8259 §4 leaves it undefined; FHIR forbids it).
    DuplicateKey,
    /// Nested deeper than the limit.
    TooDeep,
}

/// Objects with more keys than this get a hash set for the duplicate check.
pub(super) const LINEAR_KEYS: usize = 16;

pub(crate) struct Frame {
    pub(super) object: bool,
    pub(super) keys_start: usize,
    /// Boxed: most objects never need one, and a small frame is cheap to push (a frame is
    /// pushed for every container of the body).
    #[allow(clippy::box_collection)]
    pub(super) set: Option<Box<HashSet<Vec<u8>>>>,
    /// This container's slot in the [`Index`].
    pub(super) slot: usize,
    /// A bit per [`signature`] of the unescaped keys so far: a key whose bit is clear can't
    /// repeat one of them, and is not compared.
    pub(super) seen: u64,
    /// Whether a key so far had escapes (then every key is compared, decoded).
    pub(super) escapes: bool,
}

/// One of 64 bits for an unescaped key: equal keys have the same bit.
#[inline]
fn signature(raw: &[u8]) -> u64 {
    let first = raw.first().copied().unwrap_or(0);
    let last = raw.last().copied().unwrap_or(0);
    let h = (raw.len() as u32)
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add(u32::from(first).wrapping_mul(0x85EB_CA6B))
        .wrapping_add(u32::from(last).wrapping_mul(0xC2B2_AE35));
    1u64 << (h >> 26)
}

#[inline(always)]
pub(crate) fn skip_ws(input: &[u8], mut i: usize) -> usize {
    // Compact JSON (most API responses) has no whitespace: one compare, no loop.
    if input.get(i).is_none_or(|&b| b > b' ') {
        return i;
    }
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = input.get(i) {
        i += 1;
    }
    i
}

/// Validates `input` as one JSON text. Containers nest at most `max_depth` deep.
#[cfg(test)]
pub(crate) fn validate(input: &[u8], max_depth: usize) -> Result<(), JsonError> {
    validate_indexed(input, max_depth, 0, &mut Index::default())
}

/// [`validate`], recording where each container ends in `index` (offsets plus `base`, the
/// position of `input` in the body).
pub(crate) fn validate_indexed(
    input: &[u8],
    max_depth: usize,
    base: usize,
    index: &mut Index,
) -> Result<(), JsonError> {
    std::str::from_utf8(input).map_err(|_| JsonError::Syntax)?;
    // The stacks are kept in the index between bodies, so a small body allocates nothing.
    let (mut stack, mut keys) = index.take_stacks();
    let result = validate_with(input, max_depth, base, index, &mut stack, &mut keys);
    index.put_stacks(stack, keys);
    index.fit();
    result
}

fn validate_with(
    input: &[u8],
    max_depth: usize,
    base: usize,
    index: &mut Index,
    stack: &mut Vec<Frame>,
    // Raw key spans of the open objects, in stack order.
    keys: &mut Vec<Key>,
) -> Result<(), JsonError> {
    let mut i = skip_ws(input, 0);
    'value: loop {
        match input.get(i) {
            Some(b'{') => {
                if stack.len() >= max_depth {
                    return Err(JsonError::TooDeep);
                }
                let slot = index.open(base + i);
                i = skip_ws(input, i + 1);
                if input.get(i) == Some(&b'}') {
                    i += 1;
                    index.close(slot, base + i);
                } else {
                    stack.push(Frame {
                        object: true,
                        keys_start: keys.len(),
                        set: None,
                        slot,
                        seen: 0,
                        escapes: false,
                    });
                    i = key(input, i, keys, stack, index)?;
                    continue 'value;
                }
            }
            Some(b'[') => {
                if stack.len() >= max_depth {
                    return Err(JsonError::TooDeep);
                }
                let slot = index.open(base + i);
                i = skip_ws(input, i + 1);
                if input.get(i) == Some(&b']') {
                    i += 1;
                    index.close(slot, base + i);
                } else {
                    stack.push(Frame {
                        object: false,
                        keys_start: keys.len(),
                        set: None,
                        slot,
                        seen: 0,
                        escapes: false,
                    });
                    continue 'value;
                }
            }
            Some(b'"') => i = scan_string(input, i)?.0,
            Some(b'-' | b'0'..=b'9') => i = scan_number(input, i)?,
            Some(b't') => i = literal(input, i, b"true")?,
            Some(b'f') => i = literal(input, i, b"false")?,
            Some(b'n') => i = literal(input, i, b"null")?,
            _ => return Err(JsonError::Syntax),
        }
        loop {
            i = skip_ws(input, i);
            let Some(frame) = stack.last() else {
                return if i == input.len() {
                    Ok(())
                } else {
                    Err(JsonError::Syntax)
                };
            };
            match (frame.object, input.get(i)) {
                (_, Some(b',')) => {
                    i = skip_ws(input, i + 1);
                    if frame.object {
                        i = key(input, i, keys, stack, index)?;
                    }
                    continue 'value;
                }
                (true, Some(b'}')) | (false, Some(b']')) => {
                    i += 1;
                    keys.truncate(frame.keys_start);
                    index.close(frame.slot, base + i);
                    stack.pop();
                }
                _ => return Err(JsonError::Syntax),
            }
        }
    }
}

/// A key of an open object: its raw content's span and whether it has escapes.
pub(crate) struct Key {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) escaped: bool,
}

/// Reads `"key" :` at `i`, refusing a duplicate in the innermost object; returns where the
/// value starts.
#[inline(always)]
fn key(
    input: &[u8],
    i: usize,
    keys: &mut Vec<Key>,
    stack: &mut [Frame],
    index: &mut Index,
) -> Result<usize, JsonError> {
    if input.get(i) != Some(&b'"') {
        return Err(JsonError::Syntax);
    }
    let (end, escaped) = scan_string(input, i)?;
    let span = (i + 1, end - 1);
    let frame = stack.last_mut().ok_or(JsonError::Syntax)?;
    let raw = input.get(span.0..span.1).ok_or(JsonError::Syntax)?;
    let count = keys.len() - frame.keys_start;
    let sig = signature(raw);
    // Most keys: a small object, no escapes, and a signature not seen before in it.
    if frame.set.is_none()
        && count < LINEAR_KEYS
        && !escaped
        && !frame.escapes
        && frame.seen & sig == 0
    {
        frame.seen |= sig;
    } else {
        if escaped {
            index.key_escaped();
        }
        super::keys::check_key(input, raw, escaped, sig, keys, frame)?;
    }
    keys.push(Key {
        start: span.0,
        end: span.1,
        escaped,
    });
    let mut i = end;
    if input.get(i) != Some(&b':') {
        i = skip_ws(input, i);
        if input.get(i) != Some(&b':') {
            return Err(JsonError::Syntax);
        }
    }
    Ok(skip_ws(input, i + 1))
}

fn literal(input: &[u8], i: usize, word: &[u8]) -> Result<usize, JsonError> {
    match input.get(i..i + word.len()) {
        Some(w) if w == word => Ok(i + word.len()),
        _ => Err(JsonError::Syntax),
    }
}

fn digits(input: &[u8], mut i: usize) -> usize {
    while input.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

fn scan_number(input: &[u8], mut i: usize) -> Result<usize, JsonError> {
    if input.get(i) == Some(&b'-') {
        i += 1;
    }
    match input.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(input, i + 1),
        _ => return Err(JsonError::Syntax),
    }
    if input.get(i) == Some(&b'.') {
        let end = digits(input, i + 1);
        if end == i + 1 {
            return Err(JsonError::Syntax);
        }
        i = end;
    }
    if let Some(b'e' | b'E') = input.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = input.get(i) {
            i += 1;
        }
        let end = digits(input, i);
        if end == i {
            return Err(JsonError::Syntax);
        }
        i = end;
    }
    Ok(i)
}

/// Scans the string starting at the quote at `i`; returns the index after the closing quote
/// and whether it had escapes.
#[inline(always)]
fn scan_string(input: &[u8], i: usize) -> Result<(usize, bool), JsonError> {
    let j = string_stop(input, i + 1, true);
    // Most strings: no escape, straight to the closing quote.
    if input.get(j) == Some(&b'"') {
        return Ok((j + 1, false));
    }
    scan_string_rest(input, j)
}

/// [`scan_string`] from the first byte at `i` that is not plain string content.
#[inline(never)]
fn scan_string_rest(input: &[u8], mut i: usize) -> Result<(usize, bool), JsonError> {
    let mut escaped = false;
    loop {
        match input.get(i) {
            Some(b'"') => return Ok((i + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                match input.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        let hex = input.get(i + 2..i + 6).ok_or(JsonError::Syntax)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(JsonError::Syntax);
                        }
                        i += 6;
                    }
                    _ => return Err(JsonError::Syntax),
                }
            }
            Some(0..=0x1f) | None => return Err(JsonError::Syntax),
            Some(_) => i += 1,
        }
        i = string_stop(input, i, true);
    }
}

/// The end of the string whose opening quote is at `i`, in validated input.
#[inline]
pub(crate) fn skip_string(input: &[u8], mut i: usize) -> usize {
    i += 1;
    loop {
        i = string_stop(input, i, false);
        match input.get(i) {
            Some(b'"') => return i + 1,
            Some(_) => i += 2,
            None => return input.len(),
        }
    }
}

/// The end of the value starting at `i`, in validated input.
#[cfg(test)]
pub(crate) fn skip_value(input: &[u8], i: usize) -> usize {
    skip_value_in(input, None, i)
}

/// [`skip_value`], looking containers up in `index` when given. Always inlined (it is called
/// for every value the walk passes); a container the index does not hold is scanned out of
/// line.
#[inline(always)]
pub(crate) fn skip_value_in(input: &[u8], index: Option<&Index>, i: usize) -> usize {
    match input.get(i) {
        Some(b'"') => skip_string(input, i),
        Some(b'{' | b'[') => {
            // Only containers are indexed: a primitive's lookup would only cost a search.
            if let Some(end) = index.and_then(|x| x.end(i)) {
                return end;
            }
            skip_container(input, i)
        }
        _ => {
            let mut j = i;
            while let Some(&b) = input.get(j) {
                if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                j += 1;
            }
            j
        }
    }
}

/// The end of the container opening at `i`, scanned (validated input).
#[inline(never)]
fn skip_container(input: &[u8], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while let Some(&b) = input.get(j) {
        match b {
            b'"' => {
                j = skip_string(input, j);
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    input.len()
}

/// One member of an object: the key's content (without quotes) and the value, as spans.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Member {
    /// Index of the key's opening quote.
    pub(crate) start: usize,
    pub(crate) key: (usize, usize),
    pub(crate) value: (usize, usize),
}

/// The members of the validated object `[s, e)`.
pub(crate) fn members(input: &[u8], s: usize, e: usize, out: &mut Vec<Member>) {
    members_in(input, None, s, e, out);
}

/// [`members`] with an [`Index`]; `e` may be past the object (what contains it ends there).
/// Returns where the object ends.
pub(crate) fn members_in(
    input: &[u8],
    index: Option<&Index>,
    s: usize,
    e: usize,
    out: &mut Vec<Member>,
) -> usize {
    let mut i = skip_ws(input, s + 1);
    while i < e && input.get(i) == Some(&b'"') {
        let key_end = skip_string(input, i);
        let v = skip_ws(input, skip_ws(input, key_end) + 1);
        let v_end = skip_value_in(input, index, v);
        out.push(Member {
            start: i,
            key: (i + 1, key_end.saturating_sub(1)),
            value: (v, v_end),
        });
        i = skip_ws(input, v_end);
        if input.get(i) == Some(&b',') {
            i = skip_ws(input, i + 1);
        }
    }
    // At the closing brace.
    i + 1
}

/// The value of the member `key` (compared decoded) of the validated object `[s, e)`.
pub(crate) fn find_member(
    input: &[u8],
    index: Option<&Index>,
    s: usize,
    e: usize,
    key: &[u8],
) -> Option<(usize, usize)> {
    let mut i = skip_ws(input, s + 1);
    while i < e && input.get(i) == Some(&b'"') {
        let key_end = skip_string(input, i);
        let v = skip_ws(input, skip_ws(input, key_end) + 1);
        let v_end = skip_value_in(input, index, v);
        let raw = input.get(i + 1..key_end.saturating_sub(1))?;
        let found = if index.is_some_and(|x| !x.keys_escaped()) {
            super::strings::same(raw, key)
        } else {
            decode(raw) == key
        };
        if found {
            return Some((v, v_end));
        }
        i = skip_ws(input, v_end);
        if input.get(i) == Some(&b',') {
            i = skip_ws(input, i + 1);
        }
    }
    None
}

/// The items of the validated array `[s, e)`, with an [`Index`] when given.
pub(crate) fn items_in(
    input: &[u8],
    index: Option<&Index>,
    s: usize,
    e: usize,
    out: &mut Vec<(usize, usize)>,
) {
    let mut i = skip_ws(input, s + 1);
    while i < e && input.get(i).is_some_and(|&b| b != b']') {
        let end = skip_value_in(input, index, i);
        if end == i {
            break;
        }
        out.push((i, end));
        i = skip_ws(input, end);
        if input.get(i) == Some(&b',') {
            i = skip_ws(input, i + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_rfc8259() {
        for ok in [
            "{}",
            "[]",
            " {\"a\" : [1, -1.50, 2e10, -1.00000000000000000E+245, true, false, null, \"x\\u00e9\"]} ",
            "\"s\"",
            "0",
        ] {
            assert_eq!(validate(ok.as_bytes(), 10), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":1,}",
            "[1,]",
            "01",
            "1.",
            "-",
            "[1 2]",
            "{\"a\":1}x",
            "\"\u{1}\"",
            "tru",
            "{a:1}",
            "\"\\x\"",
            "[\"\\u12\"]",
            "+1",
        ] {
            assert_eq!(
                validate(bad.as_bytes(), 10),
                Err(JsonError::Syntax),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_duplicate_keys_including_escaped_and_many() {
        // RFC 8259 §4: names SHOULD be unique; FHIR JSON requires it.
        assert_eq!(
            validate(br#"{"a":1,"a":2}"#, 10),
            Err(JsonError::DuplicateKey)
        );
        assert_eq!(
            validate(br#"{"a":1,"\u0061":2}"#, 10),
            Err(JsonError::DuplicateKey)
        );
        let mut many: String = (0..40).map(|k| format!("\"k{k}\":1,")).collect();
        many.push_str("\"k7\":1");
        assert_eq!(
            validate(format!("{{{many}}}").as_bytes(), 10),
            Err(JsonError::DuplicateKey)
        );
        assert_eq!(validate(br#"{"a":{"a":1},"b":{"a":2}}"#, 10), Ok(()));
    }

    #[test]
    fn depth_limit_without_recursion() {
        let deep = "[".repeat(1_000_000);
        assert_eq!(validate(deep.as_bytes(), 100), Err(JsonError::TooDeep));
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(validate(ok.as_bytes(), 100), Ok(()));
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_serde_json(text in "[\\[\\]{}\":,0-9a-z.eE+\\- \\\\]{0,40}") {
            let ours = validate(text.as_bytes(), 64).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            // serde_json keeps the last duplicate; we refuse duplicates.
            if ours { proptest::prop_assert!(theirs); }
            if theirs && !ours {
                proptest::prop_assert_eq!(validate(text.as_bytes(), 64), Err(JsonError::DuplicateKey));
            }
        }
    }
}
