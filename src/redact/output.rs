//! The walk's output, written only once it differs from the input.
//!
//! Most bodies a plan reads come out unchanged (a label rule that hides nothing, rules for
//! types the response doesn't hold). While everything written is a copy of the input's next
//! bytes, the output is just a length into the input: no buffer is allocated and nothing is
//! copied or compared at the end. At the first byte that differs, the output becomes a buffer,
//! reserved once at the input's size (redaction mostly shrinks a body).
//!
//! Once it is a buffer, copies of input spans that follow each other (a member, the comma after
//! it, the next member, ...) are joined and written as one, when something else is written or
//! read: the walk copies many small spans, and one large copy costs about what a small one does.

pub(super) struct Output<'a> {
    input: &'a [u8],
    /// `None` while what was written is exactly `input[..len]`.
    buf: Option<Vec<u8>>,
    len: usize,
    /// How far the input has been copied: what is left to write is at most the rest of the
    /// input and what redaction adds.
    pos: usize,
    /// With a buffer: the input span copied after it and not yet written into it (empty when
    /// `pend.0 == pend.1`). The output is the buffer, then this span.
    pend: (usize, usize),
}

/// Room past the input's size for what redaction adds (labels, masks) before a regrowth.
const SLACK: usize = 256;

/// Appends `bytes`; when more was added than removed, grows by an eighth, not double, to stay
/// near the body's size.
#[inline]
fn append(buf: &mut Vec<u8>, bytes: &[u8]) {
    if buf.capacity() - buf.len() < bytes.len() {
        buf.reserve_exact(bytes.len().max(buf.capacity() / 8) + SLACK);
    }
    buf.extend_from_slice(bytes);
}

impl<'a> Output<'a> {
    pub(super) fn new(input: &'a [u8]) -> Self {
        Output {
            input,
            buf: None,
            len: 0,
            pos: 0,
            pend: (0, 0),
        }
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        match &self.buf {
            Some(buf) => buf.len() + (self.pend.1 - self.pend.0),
            None => self.len,
        }
    }

    /// Writes the pending span into the buffer.
    #[inline]
    fn flush(&mut self) {
        let (s, e) = self.pend;
        if s == e {
            return;
        }
        self.pend = (0, 0);
        if let Some(buf) = &mut self.buf {
            append(buf, self.input.get(s..e).unwrap_or_default());
        }
    }

    /// The buffer, made from the prefix written so far, with room for the rest of the input:
    /// what was skipped before the first difference is never reserved.
    #[cold]
    fn diverge(&mut self) -> &mut Vec<u8> {
        self.flush();
        let input = self.input;
        let len = self.len;
        let rest = input.len().saturating_sub(self.pos);
        self.buf.get_or_insert_with(|| {
            let mut buf = Vec::with_capacity(len + rest + SLACK);
            buf.extend_from_slice(input.get(..len).unwrap_or_default());
            buf
        })
    }

    #[inline]
    pub(super) fn extend_from_slice(&mut self, bytes: &[u8]) {
        if self.buf.is_some() {
            self.flush();
            if let Some(buf) = &mut self.buf {
                append(buf, bytes);
            }
            return;
        }
        let end = self.len + bytes.len();
        if self.input.get(self.len..end) == Some(bytes) {
            self.len = end;
        } else {
            append(self.diverge(), bytes);
        }
    }

    #[inline]
    pub(super) fn push(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }

    /// Writes `input[s..e]`.
    #[inline(always)]
    pub(super) fn copy(&mut self, s: usize, e: usize) {
        // The usual case, inline: the span follows what was copied last.
        if s < e && e <= self.input.len() {
            if self.buf.is_some() {
                if self.pend.0 < s && self.pend.1 == s {
                    self.pend.1 = e;
                    return;
                }
            } else if s == self.len {
                self.len = e;
                self.pos = self.pos.max(e);
                return;
            }
        }
        self.copy_span(s, e);
    }

    /// [`Output::copy`] of a span that does not follow the last one.
    #[inline(never)]
    fn copy_span(&mut self, s: usize, e: usize) {
        if self.buf.is_some() {
            if s >= e || e > self.input.len() {
                return;
            }
            if self.pend.0 == self.pend.1 {
                self.pend = (s, e);
            } else if self.pend.1 == s {
                self.pend.1 = e;
            } else {
                self.flush();
                self.pend = (s, e);
            }
            return;
        }
        let input = self.input;
        let bytes = input.get(s..e).unwrap_or_default();
        if s == self.len {
            self.len += bytes.len();
            self.pos = self.pos.max(self.len);
            return;
        }
        self.pos = self.pos.max(s);
        self.extend_from_slice(bytes);
        self.pos = self.pos.max(e);
    }

    pub(super) fn truncate(&mut self, len: usize) {
        match &mut self.buf {
            Some(buf) => {
                let (s, e) = self.pend;
                if len >= buf.len() {
                    self.pend = (s, e.min(s + (len - buf.len())));
                } else {
                    buf.truncate(len);
                    self.pend = (0, 0);
                }
            }
            None => self.len = self.len.min(len),
        }
    }

    /// What was written from `from` on.
    pub(super) fn written_from(&mut self, from: usize) -> &[u8] {
        self.flush();
        match &self.buf {
            Some(buf) => buf.get(from..).unwrap_or_default(),
            None => self
                .input
                .get(..self.len)
                .and_then(|w| w.get(from..))
                .unwrap_or_default(),
        }
    }

    /// What was written in `[s, e)`.
    pub(super) fn written(&mut self, s: usize, e: usize) -> &[u8] {
        self.written_from(s)
            .get(..e.saturating_sub(s))
            .unwrap_or_default()
    }

    /// Inserts `parts`, one after the other, at `at` (at most the length written).
    pub(super) fn insert(&mut self, at: usize, parts: &[&[u8]]) {
        let buf = self.diverge();
        let at = at.min(buf.len());
        let added: usize = parts.iter().map(|p| p.len()).sum();
        if buf.capacity() - buf.len() < added {
            buf.reserve_exact(added.max(buf.capacity() / 8) + SLACK);
        }
        for part in parts {
            buf.extend_from_slice(part);
        }
        if let Some(tail) = buf.get_mut(at..) {
            tail.rotate_right(added);
        }
    }

    /// `None` when the output is exactly the input.
    pub(super) fn into_changed(mut self) -> Option<Vec<u8>> {
        self.flush();
        match self.buf {
            Some(buf) if buf != self.input => Some(buf),
            Some(_) => None,
            None if self.len == self.input.len() => None,
            None => Some(self.input.get(..self.len).unwrap_or_default().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Output;

    #[test]
    fn copies_stay_virtual_until_a_difference() {
        let input = b"{\"a\":1,\"b\":2}";
        let mut out = Output::new(input);
        out.copy(0, 7);
        out.push(b'"');
        out.copy(8, input.len());
        assert!(out.buf.is_none());
        assert_eq!(out.into_changed(), None);

        let mut out = Output::new(input);
        out.copy(0, 6);
        out.copy(12, input.len());
        assert_eq!(out.into_changed().as_deref(), Some(&b"{\"a\":1}"[..]));

        let mut out = Output::new(input);
        out.copy(0, 7);
        out.truncate(5);
        assert_eq!(out.written_from(0), b"{\"a\":");
        out.extend_from_slice(b"2}");
        out.insert(1, &[b"\"x\":", b"0,"]);
        assert_eq!(
            out.into_changed().as_deref(),
            Some(&b"{\"x\":0,\"a\":2}"[..])
        );
    }
}
