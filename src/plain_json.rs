//! A JSON reader for the plain shape of FHIR JSON, by hand and in one pass, keeping nothing:
//! the budget count (`limit`) and the SMART response check (`smart`) walk responses with it.
//! Every method answers `None` on anything it is not sure of (a `\u` escape, a control
//! character, invalid UTF-8, nesting past [`MAX_DEPTH`], anything that is not JSON), and the
//! caller then hands the body to `serde_json`, whose verdict stands.

/// Deeper than this, the full parse decides (`serde_json` refuses past 128).
pub(crate) const MAX_DEPTH: usize = 100;

/// A position in JSON text, read by hand.
pub(crate) struct Scanner<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    pub(crate) fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    pub(crate) fn eat(&mut self, byte: u8) -> Option<()> {
        self.ws();
        (self.peek() == Some(byte)).then(|| self.i += 1)
    }

    pub(crate) fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.b.get(self.i..end) == Some(word)).then(|| self.i = end)
    }

    /// `open item (, item)* close`, or `open close`; each item read by `item`, positioned at
    /// it.
    pub(crate) fn list<F>(&mut self, open: u8, close: u8, mut item: F) -> Option<()>
    where
        F: FnMut(&mut Self) -> Option<()>,
    {
        self.eat(open)?;
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            item(self)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                c if c == close => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An object, each member's value read by `member` (given the name, positioned at the
    /// value). Names must be plain (no escapes).
    pub(crate) fn object<F>(&mut self, mut member: F) -> Option<()>
    where
        F: FnMut(&mut Self, &'a [u8]) -> Option<()>,
    {
        self.list(b'{', b'}', |s| {
            let key = s.plain_string()?;
            s.eat(b':')?;
            s.ws();
            member(s, key)
        })
    }

    /// A string with no escapes, returned without its quotes.
    pub(crate) fn plain_string(&mut self) -> Option<&'a [u8]> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.i + 1;
        let (end, escaped) = self.string_end(start)?;
        self.i = end + 1;
        if escaped {
            return None;
        }
        self.b.get(start..end)
    }

    /// The index of the closing quote of the string whose text starts at `from`, and whether
    /// it had escapes. `None` on a raw control character, a `\u` escape, an unknown escape,
    /// invalid UTF-8 or no closing quote.
    pub(crate) fn string_end(&self, from: usize) -> Option<(usize, bool)> {
        let mut i = from;
        let mut escaped = false;
        let mut ascii = true;
        loop {
            i = stop(self.b, i)?;
            match self.b.get(i).copied()? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    match self.b.get(i + 1).copied()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        _ => return None,
                    }
                }
                c if c >= 0x80 => {
                    ascii = false;
                    i += 1;
                }
                _ => return None,
            }
        }
        if !ascii {
            std::str::from_utf8(self.b.get(from..i)?).ok()?;
        }
        Some((i, escaped))
    }

    /// Any JSON value at nesting `depth`, skipped.
    pub(crate) fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => {
                let (end, _) = self.string_end(self.i + 1)?;
                self.i = end + 1;
                Some(())
            }
            b'{' => self.object(|s, _| s.value(depth + 1)),
            b'[' => self.list(b'[', b']', |s| s.value(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    pub(crate) fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    pub(crate) fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    pub(crate) fn some_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }
}

/// The index of the first byte at or after `from` that a string scan must look at: a quote,
/// a backslash, a control character or a non-ASCII byte. Eight bytes at a time.
#[inline]
pub(crate) fn stop(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        // A byte's high bit ends up set where it is zero (quote, backslash), below 0x20, or
        // non-ASCII; borrows only spill upward, so the lowest hit is exact.
        let hits = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x)
            | x)
            & HIGH;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let rest = b.get(i..)?;
    let skip = rest
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c))?;
    Some(i + skip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The word-at-a-time scan stops where a byte-by-byte one would.
        #[test]
        fn stop_finds_the_first_special_byte(
            bytes in proptest::collection::vec(
                prop_oneof![4 => 0x20u8..0x7f, 1 => any::<u8>()], 0..40),
            from in 0usize..40,
        ) {
            let expected = bytes
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, &c)| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c))
                .map(|(i, _)| i);
            prop_assert_eq!(stop(&bytes, from), expected);
        }
    }
}
