//! The two things that make the redaction walk cheap on untouched data: an [`Index`] of where
//! every container ends (filled by the validating scan, so a skipped subtree costs one lookup),
//! and a word-at-a-time search for the bytes that end a run of string content.

use super::scanner::{Frame, Key};

/// Where every container of a validated text ends, so the walk skips an untouched object or
/// array in one lookup instead of scanning its bytes again. Positions are absolute offsets in
/// the body (`u32`: bodies over 4 GiB are walked without an index).
///
/// Containers shorter than [`SMALL`] bytes are not kept: scanning one again costs about what a
/// lookup does, and leaving them out keeps the index a small fraction of the body (the walk's
/// memory is the body, the output and this index). An entry is six bytes: the start, and the
/// length in 16 bits (`LONG` for a container of 64 KiB or more, whose end is in `long`:
/// few containers are that long, even nested).
#[derive(Default)]
pub(crate) struct Index {
    starts: Vec<u32>,
    lens: Vec<u16>,
    /// `(start, end)` of the containers whose length is [`LONG`], in start order.
    long: Vec<(u32, u32)>,
    /// The validating scan's stacks, kept for the next body.
    frames: Vec<Frame>,
    keys: Vec<Key>,
    /// The slot after the one last looked up: the walk goes forward, so the next container
    /// asked for is usually there.
    hint: std::cell::Cell<usize>,
    /// Whether some key of the text has an escape: when none has, keys are compared as
    /// written, without looking for one in each.
    keys_escaped: bool,
}

/// Past this many containers, an index is not kept for another body (its memory goes back):
/// 48 KiB of entries, the index of a body of about a megabyte.
const KEEP: usize = 8192;

thread_local! {
    /// One index per thread, reused: most bodies are small, and a reused index has its
    /// vectors already allocated.
    static SPARE: std::cell::Cell<Option<Index>> = const { std::cell::Cell::new(None) };
}

/// Containers shorter than this are left out of the [`Index`]. With six-byte entries, the
/// index of a body takes at most what eight-byte entries above 128 bytes took (6/96 = 8/128
/// bytes per byte of body and nesting level), and the FHIR objects of 96 to 127 bytes (an
/// address, a telecom list, a coding) are skipped in one lookup.
pub(crate) const SMALL: usize = 96;

/// Indexes holding up to this many entries keep their spare capacity.
const FIT_ABOVE: usize = 1024;

/// The length of an entry whose end is in `Index::long`.
const LONG: u16 = u16::MAX;

impl Index {
    /// This thread's spare index, empty, or a new one.
    pub(crate) fn take() -> Index {
        let mut index = SPARE.with(std::cell::Cell::take).unwrap_or_default();
        index.clear();
        index
    }

    /// Gives the index back to this thread for the next body, unless it grew large.
    pub(crate) fn give_back(self) {
        if self.starts.capacity() <= KEEP && self.frames.capacity() <= KEEP {
            SPARE.with(|spare| spare.set(Some(self)));
        }
    }

    pub(super) fn take_stacks(&mut self) -> (Vec<Frame>, Vec<Key>) {
        let mut frames = std::mem::take(&mut self.frames);
        let mut keys = std::mem::take(&mut self.keys);
        frames.clear();
        keys.clear();
        (frames, keys)
    }

    pub(super) fn put_stacks(&mut self, mut frames: Vec<Frame>, mut keys: Vec<Key>) {
        frames.clear();
        keys.clear();
        self.frames = frames;
        self.keys = keys;
    }

    pub(crate) fn clear(&mut self) {
        self.starts.clear();
        self.lens.clear();
        self.long.clear();
        self.hint.set(0);
        self.keys_escaped = false;
    }

    /// Records that a key of the text has an escape.
    pub(super) fn key_escaped(&mut self) {
        self.keys_escaped = true;
    }

    /// Whether some key of the indexed text has an escape (if not, every key's content is
    /// its decoded value).
    #[inline]
    pub(crate) fn keys_escaped(&self) -> bool {
        self.keys_escaped
    }

    #[inline]
    pub(super) fn open(&mut self, at: usize) -> usize {
        let slot = self.starts.len();
        if let Ok(at) = u32::try_from(at) {
            self.starts.push(at);
            self.lens.push(0);
        }
        slot
    }

    /// After the validating scan, before any lookup: sorts the long containers (they close
    /// inner first) and gives back the spare capacity, so the index of a body takes six bytes
    /// a container while the walk runs, not up to twice that.
    pub(super) fn fit(&mut self) {
        self.long.sort_unstable();
        // Small indexes (an NDJSON line's) keep their capacity for the next text. A little
        // room is left: while scanning, the open containers are entries too, so a body like
        // this one would otherwise regrow (and copy) the index only to give the room back.
        let len = self.starts.len();
        let room = len + len / 16 + 64;
        if self.starts.capacity() > FIT_ABOVE.max(room) {
            self.starts.shrink_to(room);
            self.lens.shrink_to(room);
        }
        self.long.shrink_to_fit();
    }

    /// Records where the container of `slot` ends; forgets it if it is small. A small
    /// container's descendants are smaller still and were forgotten before it, so its slot is
    /// the last one.
    #[inline]
    pub(super) fn close(&mut self, slot: usize, end: usize) {
        let Some(&start) = self.starts.get(slot) else {
            return;
        };
        let len = end.saturating_sub(start as usize);
        if len < SMALL && slot + 1 == self.starts.len() {
            self.starts.pop();
            self.lens.pop();
            return;
        }
        let Some(l) = self.lens.get_mut(slot) else {
            return;
        };
        match u16::try_from(len) {
            Ok(len) if len < LONG => *l = len,
            _ => {
                // An end past u32 stays 0: the container is not found, and is scanned.
                if let Ok(end) = u32::try_from(end) {
                    *l = LONG;
                    self.long.push((start, end));
                }
            }
        }
    }

    /// The end (exclusive) of the container opening at `start`, if indexed.
    #[inline]
    pub(super) fn end(&self, start: usize) -> Option<usize> {
        let start = u32::try_from(start).ok()?;
        let hint = self.hint.get();
        let slot = match self.starts.get(hint) {
            Some(&at) if at == start => hint,
            // Between the slot before the hint and the hint: not indexed (a small container).
            Some(&at)
                if at > start
                    && hint
                        .checked_sub(1)
                        .and_then(|p| self.starts.get(p))
                        .is_none_or(|&b| b < start) =>
            {
                return None;
            }
            // Past the hint: the walk skipped some indexed containers (nested in a skipped
            // one), usually few, so gallop forward rather than search everything.
            Some(&at) if at < start => {
                let mut lo = hint;
                let mut step = 1;
                let hi = loop {
                    let probe = lo.saturating_add(step);
                    match self.starts.get(probe) {
                        Some(&b) if b < start => {
                            lo = probe;
                            step = step.saturating_mul(2);
                        }
                        _ => break probe.saturating_add(1).min(self.starts.len()),
                    }
                };
                let from = lo + 1;
                match self.starts.get(from..hi).map(|r| r.binary_search(&start)) {
                    Some(Ok(k)) => from + k,
                    Some(Err(k)) => {
                        self.hint.set(from + k);
                        return None;
                    }
                    None => {
                        self.hint.set(self.starts.len());
                        return None;
                    }
                }
            }
            _ => match self.starts.binary_search(&start) {
                Ok(k) => k,
                Err(k) => {
                    self.hint.set(k);
                    return None;
                }
            },
        };
        self.hint.set(slot + 1);
        match self.lens.get(slot).copied()? {
            0 => None,
            LONG => self
                .long
                .binary_search_by_key(&start, |&(s, _)| s)
                .ok()
                .and_then(|k| self.long.get(k))
                .map(|&(_, e)| e as usize),
            len => Some(start as usize + usize::from(len)),
        }
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
/// 0x20), a word at a time; `input.len()` if none. Always inlined: a call per string costs
/// about what a short string's scan does.
#[inline(always)]
pub(super) fn string_stop(input: &[u8], mut i: usize, controls: bool) -> usize {
    while let Some(x) = word(input, i) {
        let m = if controls {
            // Flipping bit 1 maps `"` (0x22) to 0x20 and keeps 0x00..=0x1f below it, so one
            // compare finds a quote or a control byte: a mask fewer per word of a string.
            lt_mask(x ^ (ONES * 0x02), 0x21) | eq_mask(x, b'\\')
        } else {
            eq_mask(x, b'"') | eq_mask(x, b'\\')
        };
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

    /// The simple scan [`string_stop`] stands for.
    fn stop_simple(input: &[u8], i: usize, controls: bool) -> usize {
        (i..input.len())
            .find(|&k| matches!(input[k], b'"' | b'\\') || (controls && input[k] < 0x20))
            .unwrap_or(input.len())
    }

    proptest::proptest! {
        /// The word-at-a-time search stops where a byte-at-a-time one does, on any bytes
        /// (non-ASCII, controls, stops in either word of a step or in the tail).
        #[test]
        fn string_stop_agrees_with_a_byte_scan(
            input in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u8::ANY,
                    proptest::strategy::Just(b'a'),
                    proptest::strategy::Just(0xc3u8),
                ],
                0..80,
            ),
            start in 0usize..90,
        ) {
            for controls in [false, true] {
                let i = start.min(input.len());
                proptest::prop_assert_eq!(
                    string_stop(&input, i, controls),
                    stop_simple(&input, i, controls)
                );
            }
        }

        /// Index lookups agree with scans for containers of every size around the thresholds
        /// (left out below `SMALL`, a 16-bit length, the long table from 64 KiB).
        #[test]
        fn index_agrees_with_scans_at_any_size(
            pads in proptest::collection::vec(0usize..200, 1..6),
            long in proptest::bool::ANY,
        ) {
            let big = if long { "y".repeat(usize::from(u16::MAX) - 20) } else { String::new() };
            let inner: Vec<String> = pads
                .iter()
                .map(|&n| format!(r#"{{"k":"{}","a":[{{"b":"{big}"}},[{n}]]}}"#, "x".repeat(n)))
                .collect();
            let text = format!(r#"[{{"e":[{}],"z":"{big}"}}]"#, inner.join(","));
            let text = text.as_bytes();
            let mut index = Index::default();
            proptest::prop_assert!(scanner::validate_indexed(text, 10, 0, &mut index).is_ok());
            for i in 0..text.len() {
                if matches!(text[i], b'{' | b'[') {
                    proptest::prop_assert_eq!(
                        scanner::skip_value_in(text, Some(&index), i),
                        scanner::skip_value(text, i)
                    );
                }
            }
        }
    }

    /// Lookups in any order (forward jumps past indexed containers, backward jumps, primitives)
    /// give what a scan without the index gives.
    #[test]
    fn index_lookups_in_any_order_agree_with_a_scan() {
        let pad = "x".repeat(SMALL);
        let inner: Vec<String> = (0..40)
            .map(|k| format!(r#"{{"k":"{pad}","a":[{k},{{"b":"{pad}"}},[1,[2]]],"s":{{}}}}"#))
            .collect();
        let text = format!(r#"{{"e":[{}],"t":1,"u":"{pad}"}}"#, inner.join(","));
        let text = text.as_bytes();
        let mut index = Index::default();
        scanner::validate_indexed(text, 10, 0, &mut index).unwrap();
        let starts: Vec<usize> = (0..text.len())
            .filter(|&i| matches!(text[i], b'{' | b'[' | b'"' | b'0'..=b'9'))
            .collect();
        let orders: [Vec<usize>; 4] = [
            starts.clone(),
            starts.iter().rev().copied().collect(),
            starts.iter().step_by(7).copied().collect(),
            starts
                .iter()
                .step_by(3)
                .chain(starts.iter().step_by(5))
                .copied()
                .collect(),
        ];
        for order in orders {
            for &i in &order {
                assert_eq!(
                    scanner::skip_value_in(text, Some(&index), i),
                    scanner::skip_value(text, i),
                    "{i}"
                );
            }
        }
    }
}
