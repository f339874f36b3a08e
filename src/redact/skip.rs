//! The two things that make the redaction walk cheap on untouched data: an [`Index`] of where
//! every container ends (filled by the validating scan, so a skipped subtree costs one lookup),
//! and a word-at-a-time search for the bytes that end a run of string content.

/// Where every container of a validated text ends, so the walk skips an untouched object or
/// array in one lookup instead of scanning its bytes again. Positions are absolute offsets in
/// the body (`u32`: bodies over 4 GiB are walked without an index).
#[derive(Debug, Default)]
pub(crate) struct Index {
    starts: Vec<u32>,
    ends: Vec<u32>,
    /// The slot last looked up: the walk goes forward, so the next container is usually
    /// just after it.
    hint: std::cell::Cell<usize>,
}

impl Index {
    pub(crate) fn clear(&mut self) {
        self.starts.clear();
        self.ends.clear();
        self.hint.set(0);
    }

    pub(super) fn open(&mut self, at: usize) -> usize {
        let slot = self.starts.len();
        if let Ok(at) = u32::try_from(at) {
            self.starts.push(at);
            self.ends.push(0);
        }
        slot
    }

    pub(super) fn close(&mut self, slot: usize, end: usize) {
        if let (Some(e), Ok(end)) = (self.ends.get_mut(slot), u32::try_from(end)) {
            *e = end;
        }
    }

    /// The end (exclusive) of the container opening at `start`, if indexed.
    #[inline]
    pub(super) fn end(&self, start: usize) -> Option<usize> {
        let start = u32::try_from(start).ok()?;
        let hint = self.hint.get();
        let near = (hint..hint.saturating_add(4)).find(|&k| self.starts.get(k) == Some(&start));
        let slot = match near {
            Some(k) => k,
            None => self.starts.binary_search(&start).ok()?,
        };
        self.hint.set(slot + 1);
        self.ends
            .get(slot)
            .copied()
            .filter(|&e| e > start)
            .map(|e| e as usize)
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `x` equal to `b` (exact for the lowest such byte).
#[inline]
fn eq_mask(x: u64, b: u8) -> u64 {
    let y = x ^ (ONES * u64::from(b));
    y.wrapping_sub(ONES) & !y & HIGHS
}

/// High bit set in each byte of `x` below `n` (n ≤ 128; exact for the lowest such byte).
#[inline]
fn lt_mask(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS
}

#[inline]
fn word(input: &[u8], i: usize) -> Option<u64> {
    let bytes: [u8; 8] = input.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// The first index at or after `i` holding `"` or `\\` (or, with `controls`, a byte below
/// 0x20), eight bytes at a time; `input.len()` if none.
#[inline]
pub(super) fn string_stop(input: &[u8], mut i: usize, controls: bool) -> usize {
    while let Some(x) = word(input, i) {
        let mut m = eq_mask(x, b'"') | eq_mask(x, b'\\');
        if controls {
            m |= lt_mask(x, 0x20);
        }
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = input.get(i) {
        if b == b'"' || b == b'\\' || (controls && b < 0x20) {
            return i;
        }
        i += 1;
    }
    input.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::scanner;

    #[test]
    fn word_scans_find_the_first_stop() {
        let text = b"abcdefghijklmnop\"qrstuvwxyz";
        assert_eq!(string_stop(text, 0, false), 16);
        let with_control = b"abcdefghij\x01klmnop\"";
        assert_eq!(string_stop(with_control, 0, true), 10);
        assert_eq!(string_stop(with_control, 0, false), 17);
        assert_eq!(
            string_stop(b"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\\", 0, true),
            8
        );
        assert_eq!(string_stop(b"abc", 0, true), 3);
        let long = format!("\"{}\\\"{}\" ", "x".repeat(37), "y".repeat(5));
        assert_eq!(scanner::skip_string(long.as_bytes(), 0), long.len() - 1);
    }

    #[test]
    fn the_index_skips_containers() {
        let text = br#" {"a":[1,{"b":[]}],"c":{}} "#;
        let mut index = Index::default();
        scanner::validate_indexed(text, 10, 0, &mut index).unwrap();
        for i in 0..text.len() {
            if matches!(text[i], b'{' | b'[') {
                assert_eq!(
                    scanner::skip_value_in(text, Some(&index), i),
                    scanner::skip_value(text, i),
                    "{i}"
                );
            }
        }
    }
}
