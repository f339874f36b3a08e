//! A strict JSON scanner over bytes (RFC 8259), hardened for hostile input.
//!
//! It never builds a tree: the structure checker pulls tokens from it and validates as it goes.
//! What RFC 8259 leaves to implementations is refused, because two parsers that read it
//! differently let a request smuggle content past one of them: duplicate object keys, lone
//! surrogate escapes, invalid UTF-8, a byte-order mark, and trailing data. Depth is bounded so a
//! deeply nested body costs neither stack nor time.

use crate::unique_keys::KeySet;
use std::borrow::Cow;

/// Why a body is not acceptable JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// The body ended in the middle of a value.
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte,
    /// Bytes after the top-level value.
    TrailingData,
    /// Nesting deeper than the configured limit.
    TooDeep,
    /// An object with the same key twice.
    DuplicateKey,
    /// Bytes that are not UTF-8.
    InvalidUtf8,
    /// A `\u` escape of a lone surrogate, or a malformed escape.
    InvalidEscape,
    /// A raw control character (U+0000..U+001F) inside a string.
    ControlCharacter,
    /// A number RFC 8259 does not allow (`01`, `1.`, `+1`, `NaN`, `Infinity`).
    InvalidNumber,
}

impl JsonErrorKind {
    /// A fixed sentence for the `OperationOutcome`.
    pub const fn text(self) -> &'static str {
        match self {
            JsonErrorKind::UnexpectedEnd => "the JSON body ends in the middle of a value",
            JsonErrorKind::UnexpectedByte => "the body is not valid JSON",
            JsonErrorKind::TrailingData => "the JSON body has data after its value",
            JsonErrorKind::TooDeep => "the JSON body is nested too deeply",
            JsonErrorKind::DuplicateKey => "a JSON object has the same key twice",
            JsonErrorKind::InvalidUtf8 => "the JSON body is not valid UTF-8",
            JsonErrorKind::InvalidEscape => {
                "a JSON string has an invalid escape or a lone surrogate"
            }
            JsonErrorKind::ControlCharacter => "a JSON string contains a control character",
            JsonErrorKind::InvalidNumber => "a JSON number is not valid",
        }
    }
}

/// A JSON error and the byte offset where it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonError {
    /// What is wrong.
    pub kind: JsonErrorKind,
    /// Byte offset in the body.
    pub offset: usize,
}

/// The kind of the next value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Next {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Next::Object => "an object",
            Next::Array => "an array",
            Next::String => "a string",
            Next::Number => "a number",
            Next::Bool => "a boolean",
            Next::Null => "null",
        }
    }
}

/// A pull scanner: the caller asks for the token it expects next.
pub(crate) struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
}

pub(crate) type JResult<T> = Result<T, JsonError>;

impl<'a> Scanner<'a> {
    pub(crate) fn new(bytes: &'a [u8], max_depth: usize) -> Self {
        Scanner {
            bytes,
            pos: 0,
            depth: 0,
            max_depth,
        }
    }

    /// Where the scanner is, to come back to with [`reset`](Self::reset).
    pub(crate) fn mark(&self) -> (usize, usize) {
        (self.pos, self.depth)
    }

    pub(crate) fn reset(&mut self, mark: (usize, usize)) {
        (self.pos, self.depth) = mark;
    }

    /// An error of this kind at the current position.
    pub(crate) fn error(&self, kind: JsonErrorKind) -> JsonError {
        JsonError {
            kind,
            offset: self.pos,
        }
    }

    fn err<T>(&self, kind: JsonErrorKind) -> JResult<T> {
        Err(JsonError {
            kind,
            offset: self.pos,
        })
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The kind of the next value, without consuming it.
    pub(crate) fn peek(&mut self) -> JResult<Next> {
        self.ws();
        match self.bytes.get(self.pos) {
            None => self.err(JsonErrorKind::UnexpectedEnd),
            Some(b'{') => Ok(Next::Object),
            Some(b'[') => Ok(Next::Array),
            Some(b'"') => Ok(Next::String),
            Some(b'-' | b'0'..=b'9') => Ok(Next::Number),
            Some(b't' | b'f') => Ok(Next::Bool),
            Some(b'n') => Ok(Next::Null),
            Some(b'N' | b'I' | b'+' | b'.') => self.err(JsonErrorKind::InvalidNumber),
            Some(_) => self.err(JsonErrorKind::UnexpectedByte),
        }
    }

    fn expect(&mut self, byte: u8) -> JResult<()> {
        self.ws();
        match self.bytes.get(self.pos) {
            Some(&b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            None => self.err(JsonErrorKind::UnexpectedEnd),
            Some(_) => self.err(JsonErrorKind::UnexpectedByte),
        }
    }

    /// Enters an object (`{`); then call [`next_key`](Self::next_key) until it returns `None`.
    pub(crate) fn begin_object(&mut self) -> JResult<()> {
        self.enter()?;
        self.expect(b'{')
    }

    /// Enters an array (`[`); then call [`next_item`](Self::next_item) until it is `false`.
    pub(crate) fn begin_array(&mut self) -> JResult<()> {
        self.enter()?;
        self.expect(b'[')
    }

    fn enter(&mut self) -> JResult<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return self.err(JsonErrorKind::TooDeep);
        }
        Ok(())
    }

    /// The next key of the object (consuming the `:`), or `None` after its `}`. `first` says
    /// whether this is the first call for this object.
    pub(crate) fn next_key(&mut self, first: bool) -> JResult<Option<Cow<'a, str>>> {
        self.ws();
        match self.bytes.get(self.pos) {
            Some(b'}') => {
                self.pos += 1;
                self.depth -= 1;
                return Ok(None);
            }
            Some(b',') if !first => {
                self.pos += 1;
                self.ws();
            }
            Some(b'"') if first => {}
            None => return self.err(JsonErrorKind::UnexpectedEnd),
            Some(_) => return self.err(JsonErrorKind::UnexpectedByte),
        }
        if self.bytes.get(self.pos) != Some(&b'"') {
            return self.err(JsonErrorKind::UnexpectedByte);
        }
        let key = self.string()?;
        self.expect(b':')?;
        Ok(Some(key))
    }

    /// Whether the array has another item (consuming the `,`); `false` after its `]`.
    pub(crate) fn next_item(&mut self, first: bool) -> JResult<bool> {
        self.ws();
        match self.bytes.get(self.pos) {
            Some(b']') => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            Some(b',') if !first => {
                self.pos += 1;
                Ok(true)
            }
            None => self.err(JsonErrorKind::UnexpectedEnd),
            Some(_) if first => Ok(true),
            Some(_) => self.err(JsonErrorKind::UnexpectedByte),
        }
    }

    /// A string value, unescaped.
    pub(crate) fn string(&mut self) -> JResult<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.pos;
        let bytes = self.bytes;
        let mut ascii = true;
        // Fast path: no escapes.
        loop {
            match bytes.get(self.pos) {
                None => return self.err(JsonErrorKind::UnexpectedEnd),
                Some(b'"') => {
                    let raw = bytes.get(start..self.pos).unwrap_or_default();
                    self.pos += 1;
                    return if ascii {
                        // ASCII without control characters is UTF-8.
                        Ok(Cow::Borrowed(std::str::from_utf8(raw).unwrap_or_default()))
                    } else {
                        match std::str::from_utf8(raw) {
                            Ok(s) => Ok(Cow::Borrowed(s)),
                            Err(e) => Err(JsonError {
                                kind: JsonErrorKind::InvalidUtf8,
                                offset: start + e.valid_up_to(),
                            }),
                        }
                    };
                }
                Some(b'\\') => break,
                Some(&b) if b < 0x20 => return self.err(JsonErrorKind::ControlCharacter),
                Some(&b) => {
                    ascii &= b < 0x80;
                    self.pos += 1;
                }
            }
        }
        let mut out: Vec<u8> = Vec::with_capacity(self.pos - start + 16);
        out.extend_from_slice(bytes.get(start..self.pos).unwrap_or_default());
        loop {
            match bytes.get(self.pos) {
                None => return self.err(JsonErrorKind::UnexpectedEnd),
                Some(b'"') => {
                    self.pos += 1;
                    return match String::from_utf8(out) {
                        Ok(s) => Ok(Cow::Owned(s)),
                        Err(_) => Err(JsonError {
                            kind: JsonErrorKind::InvalidUtf8,
                            offset: start,
                        }),
                    };
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = bytes.get(self.pos).copied();
                    self.pos += 1;
                    match esc {
                        Some(b'"') => out.push(b'"'),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'/') => out.push(b'/'),
                        Some(b'b') => out.push(0x08),
                        Some(b'f') => out.push(0x0c),
                        Some(b'n') => out.push(b'\n'),
                        Some(b'r') => out.push(b'\r'),
                        Some(b't') => out.push(b'\t'),
                        Some(b'u') => {
                            let c = self.unicode_escape()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        None => return self.err(JsonErrorKind::UnexpectedEnd),
                        Some(_) => return self.err(JsonErrorKind::InvalidEscape),
                    }
                }
                Some(&b) if b < 0x20 => return self.err(JsonErrorKind::ControlCharacter),
                Some(&b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    fn hex4(&mut self) -> JResult<u32> {
        let Some(digits) = self.bytes.get(self.pos..self.pos + 4) else {
            return self.err(JsonErrorKind::UnexpectedEnd);
        };
        let mut v = 0u32;
        for &d in digits {
            let n = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return self.err(JsonErrorKind::InvalidEscape),
            };
            v = v << 4 | u32::from(n);
        }
        self.pos += 4;
        Ok(v)
    }

    /// After `\u`: one code point, pairing surrogates; a lone surrogate is refused.
    fn unicode_escape(&mut self) -> JResult<char> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                return self.err(JsonErrorKind::InvalidEscape);
            }
            self.pos += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return self.err(JsonErrorKind::InvalidEscape);
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        match char::from_u32(code) {
            Some(c) => Ok(c),
            None => self.err(JsonErrorKind::InvalidEscape),
        }
    }

    /// A number, as its text (RFC 8259 §6 grammar).
    pub(crate) fn number(&mut self) -> JResult<&'a str> {
        self.ws();
        let start = self.pos;
        let b = self.bytes;
        let at = |i: usize| b.get(i).copied();
        let mut i = start;
        if at(i) == Some(b'-') {
            i += 1;
        }
        match at(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while matches!(at(i), Some(b'0'..=b'9')) {
                    i += 1;
                }
            }
            _ => {
                self.pos = i;
                return self.err(JsonErrorKind::InvalidNumber);
            }
        }
        if at(i) == Some(b'.') {
            i += 1;
            let s = i;
            while matches!(at(i), Some(b'0'..=b'9')) {
                i += 1;
            }
            if i == s {
                self.pos = i;
                return self.err(JsonErrorKind::InvalidNumber);
            }
        }
        if matches!(at(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(at(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let s = i;
            while matches!(at(i), Some(b'0'..=b'9')) {
                i += 1;
            }
            if i == s {
                self.pos = i;
                return self.err(JsonErrorKind::InvalidNumber);
            }
        }
        // `01`, `1x`: a number must end at a delimiter.
        if matches!(
            at(i),
            Some(b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'.' | b'+' | b'-')
        ) {
            self.pos = i;
            return self.err(JsonErrorKind::InvalidNumber);
        }
        self.pos = i;
        Ok(std::str::from_utf8(b.get(start..i).unwrap_or_default()).unwrap_or_default())
    }

    fn word(&mut self, word: &[u8]) -> JResult<()> {
        self.ws();
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            if matches!(self.bytes.get(self.pos), Some(c) if c.is_ascii_alphanumeric()) {
                return self.err(JsonErrorKind::UnexpectedByte);
            }
            Ok(())
        } else {
            self.err(JsonErrorKind::UnexpectedByte)
        }
    }

    /// `true` or `false`.
    pub(crate) fn boolean(&mut self) -> JResult<bool> {
        self.ws();
        if self.bytes.get(self.pos) == Some(&b't') {
            self.word(b"true").map(|()| true)
        } else {
            self.word(b"false").map(|()| false)
        }
    }

    /// `null`.
    pub(crate) fn null(&mut self) -> JResult<()> {
        self.word(b"null")
    }

    /// Checks and skips one value of any shape, refusing duplicate keys at every level.
    pub(crate) fn skip_value(&mut self) -> JResult<()> {
        match self.peek()? {
            Next::Object => {
                self.begin_object()?;
                let mut keys = KeySet::default();
                let mut first = true;
                while let Some(key) = self.next_key(first)? {
                    first = false;
                    if !keys.insert(key) {
                        return self.err(JsonErrorKind::DuplicateKey);
                    }
                    self.skip_value()?;
                }
                Ok(())
            }
            Next::Array => {
                self.begin_array()?;
                let mut first = true;
                while self.next_item(first)? {
                    first = false;
                    self.skip_value()?;
                }
                Ok(())
            }
            Next::String => self.string().map(drop),
            Next::Number => self.number().map(drop),
            Next::Bool => self.boolean().map(drop),
            Next::Null => self.null(),
        }
    }

    /// After the top-level value: only whitespace may follow.
    pub(crate) fn end(&mut self) -> JResult<()> {
        self.ws();
        if self.pos < self.bytes.len() {
            return self.err(JsonErrorKind::TrailingData);
        }
        Ok(())
    }
}

/// Checks that `bytes` is one strict JSON value (of any shape), within `max_depth`.
pub fn check(bytes: &[u8], max_depth: usize) -> Result<(), JsonError> {
    let mut s = Scanner::new(bytes, max_depth);
    s.skip_value()?;
    s.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<JsonErrorKind> {
        check(s.as_bytes(), 8).err().map(|e| e.kind)
    }

    #[test]
    fn rfc_8259_strictness() {
        use JsonErrorKind::*;
        assert_eq!(
            kind(r#"{"a":[1,-0.5e+3,true,false,null,"x\u00e9\ud83d\ude00"]}"#),
            None
        );
        assert_eq!(kind(r#"{"a":1,"a":2}"#), Some(DuplicateKey));
        assert_eq!(kind(r#"{"a":1,"\u0061":2}"#), Some(DuplicateKey));
        assert_eq!(kind(r#""\ud800""#), Some(InvalidEscape));
        assert_eq!(kind(r#""\udc00""#), Some(InvalidEscape));
        assert_eq!(kind("\"\u{1}\""), Some(ControlCharacter));
        assert_eq!(kind("01"), Some(InvalidNumber));
        assert_eq!(kind("1."), Some(InvalidNumber));
        assert_eq!(kind("NaN"), Some(InvalidNumber));
        assert_eq!(kind("-Infinity"), Some(InvalidNumber));
        assert_eq!(kind("{} x"), Some(TrailingData));
        assert_eq!(kind("[[[[[[[[[[]]]]]]]]]]"), Some(TooDeep));
        assert_eq!(kind("{\"a\":1,}"), Some(UnexpectedByte));
        assert_eq!(kind("[1,]"), Some(UnexpectedByte));
        assert_eq!(kind("\u{feff}{}"), Some(UnexpectedByte));
        assert_eq!(check(b"\"\xff\"", 8).map_err(|e| e.kind), Err(InvalidUtf8));
        assert_eq!(kind("tru"), Some(UnexpectedByte));
        assert_eq!(kind(""), Some(UnexpectedEnd));
    }

    #[test]
    fn many_keys_are_linear() {
        let mut s = String::from("{");
        for i in 0..50_000 {
            s.push_str(&format!("\"k{i}\":{i},"));
        }
        s.push_str("\"k7\":0}");
        assert_eq!(kind(&s), Some(JsonErrorKind::DuplicateKey));
    }
}
