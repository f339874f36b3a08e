//! Decoding string content (escapes, surrogate pairs) of validated JSON, for comparing keys
//! and reading the few values the walk looks at.

use std::borrow::Cow;

/// The unescaped bytes of a string's raw content.
pub(crate) fn decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let simple = match raw.get(i + 1) {
            Some(b'n') => Some(b'\n'),
            Some(b't') => Some(b'\t'),
            Some(b'r') => Some(b'\r'),
            Some(b'b') => Some(8),
            Some(b'f') => Some(12),
            Some(b'u') => None,
            Some(&c) => Some(c),
            None => break,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        let mut unit = hex4(raw, i + 2);
        i += 6;
        let mut code = unit.map(u32::from);
        if let Some(hi @ 0xD800..=0xDBFF) = unit {
            if raw.get(i) == Some(&b'\\') && raw.get(i + 1) == Some(&b'u') {
                unit = hex4(raw, i + 2);
                if let Some(lo @ 0xDC00..=0xDFFF) = unit {
                    code =
                        Some(0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00));
                    i += 6;
                }
            }
        }
        let c = code.and_then(char::from_u32).unwrap_or('\u{FFFD}');
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    Cow::Owned(out)
}

fn hex4(raw: &[u8], i: usize) -> Option<u16> {
    let text = std::str::from_utf8(raw.get(i..i + 4)?).ok()?;
    u16::from_str_radix(text, 16).ok()
}

/// Whether `a` and `b` are the same bytes. Keys and names are short: two overlapping word
/// loads each compare them, where `==` on slices calls `memcmp`.
#[inline(always)]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        // First, middle and last: every byte of three or fewer.
        1..=3 => a.first() == b.first() && a.get(n / 2) == b.get(n / 2) && a.last() == b.last(),
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        8..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        _ => a == b,
    }
}

#[inline(always)]
fn w4(x: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(x.get(i..i + 4)?.try_into().ok()?))
}

#[inline(always)]
fn w8(x: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(x.get(i..i + 8)?.try_into().ok()?))
}

/// The decoded content of the string value `[s, e)` (quotes included), or `None` if it isn't a
/// string.
pub(crate) fn string_value(input: &[u8], s: usize, e: usize) -> Option<Cow<'_, [u8]>> {
    if input.get(s) != Some(&b'"') || e < s + 2 {
        return None;
    }
    Some(decode(input.get(s + 1..e - 1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_agrees_with_eq() {
        let words: Vec<Vec<u8>> = (0..40)
            .map(|n| (0..n).map(|k| b'a' + (k % 3) as u8).collect())
            .collect();
        for a in &words {
            for b in &words {
                assert_eq!(same(a, b), a == b);
                for k in 0..b.len() {
                    let mut c = b.clone();
                    c[k] = b'z';
                    assert_eq!(same(a, &c), *a == c, "{a:?} {c:?}");
                }
            }
        }
    }

    #[test]
    fn decodes_escapes() {
        assert_eq!(&*decode(br"a\n\u00e9\ud83d\ude00\/"), "a\né😀/".as_bytes());
    }
}
