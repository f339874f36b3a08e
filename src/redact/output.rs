//! The walk's output, written only once it differs from the input.
//!
//! Most bodies a plan reads come out unchanged (a label rule that hides nothing, rules for
//! types the response doesn't hold). While everything written is a copy of the input's next
//! bytes, the output is just a length into the input: no buffer is allocated and nothing is
//! copied or compared at the end.
//!
//! At the first byte that differs, the output becomes a list of chunks. A small body gets one
//! chunk reserved at the input's size, as one buffer would be. A large one gets chunks of about
//! a thirty-second of the input (issue #5: memory at most twice the body). Redaction mostly
//! shrinks a body: one buffer reserved at the input's size would, with the input, be twice the
//! body before anything else is counted, and one regrown as it fills would hold two copies of
//! the output while it is copied. With chunks, what is held is what was written plus the
//! unwritten end of the last chunk. Positions are counted over the whole output; reading back
//! a span that crosses chunks (rare: a `meta` written across a boundary) first makes it one
//! span (`Output::join_from`).
//!
//! Once it is a buffer, copies of input spans that follow each other (a member, the comma after
//! it, the next member, ...) are joined and written as one, when something else is written or
//! read: the walk copies many small spans, and one large copy costs about what a small one does.

use super::outcome::RedactedBody;

pub(super) struct Output<'a> {
    input: &'a [u8],
    /// `None` while what was written is exactly `input[..len]`; then the chunk being written,
    /// the last one.
    buf: Option<Vec<u8>>,
    /// The chunks written before `buf`, in order, none empty.
    chunks: Vec<Vec<u8>>,
    /// Bytes in `chunks`: the position `buf` starts at.
    done: usize,
    len: usize,
    /// How far the input has been copied: what is left to write is at most the rest of the
    /// input and what redaction adds.
    pos: usize,
    /// With a buffer: the input span copied after it and not yet written into it (empty when
    /// `pend.0 == pend.1`). The output is the chunks, the buffer, then this span.
    pend: (usize, usize),
    /// The capacity of each chunk started after the first.
    chunk: usize,
    /// An output of the whole input (plus [`SLACK`]) at most this long is one chunk.
    whole: usize,
}

/// Room past the input's size for what redaction adds (labels, masks) in a body written as
/// one chunk.
const SLACK: usize = 256;
/// Bodies whose output fits in this are written as one chunk, reserved at the input's size.
const WHOLE_MAX: usize = 64 * 1024;
/// Chunks of a large body: a thirty-second of it, within these bounds.
const MIN_CHUNK: usize = 16 * 1024;
const MAX_CHUNK: usize = 1024 * 1024;

/// The size of the chunks after the first for an input of `n` bytes: at most an eighth of it,
/// for the small body that outgrows its one chunk.
fn chunk_size(n: usize) -> usize {
    (n / 32).clamp(MIN_CHUNK, MAX_CHUNK).min(n / 8 + SLACK)
}

impl<'a> Output<'a> {
    pub(super) fn new(input: &'a [u8]) -> Self {
        Self::with_chunks(input, chunk_size(input.len()), WHOLE_MAX)
    }

    fn with_chunks(input: &'a [u8], chunk: usize, whole: usize) -> Self {
        Output {
            input,
            buf: None,
            chunks: Vec::new(),
            done: 0,
            len: 0,
            pos: 0,
            pend: (0, 0),
            chunk: chunk.max(1),
            whole,
        }
    }

    /// An output whose chunks are `chunk` bytes, however small the input.
    #[cfg(test)]
    fn with_chunk_size(input: &'a [u8], chunk: usize) -> Self {
        Self::with_chunks(input, chunk, 0)
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        match &self.buf {
            Some(buf) => self.done + buf.len() + (self.pend.1 - self.pend.0),
            None => self.len,
        }
    }

    /// Appends `bytes` to the buffer (there is one).
    #[inline]
    fn append(&mut self, bytes: &[u8]) {
        if let Some(buf) = &mut self.buf {
            if buf.capacity() - buf.len() >= bytes.len() {
                buf.extend_from_slice(bytes);
                return;
            }
        }
        self.spill(bytes);
    }

    /// [`Output::append`] of more than the chunk has room for: fills it, and starts the next
    /// chunk with the rest (all of it, when it is larger than a chunk).
    #[cold]
    #[inline(never)]
    fn spill(&mut self, bytes: &[u8]) {
        let Some(buf) = &mut self.buf else {
            return;
        };
        let (now, rest) = bytes.split_at((buf.capacity() - buf.len()).min(bytes.len()));
        buf.extend_from_slice(now);
        let mut next = Vec::with_capacity(self.chunk.max(rest.len()));
        next.extend_from_slice(rest);
        let full = std::mem::replace(buf, next);
        self.close(full);
    }

    /// Puts a chunk written before the buffer at the end of `chunks`.
    fn close(&mut self, chunk: Vec<u8>) {
        if !chunk.is_empty() {
            self.done += chunk.len();
            self.chunks.push(chunk);
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
        let input = self.input;
        self.append(input.get(s..e).unwrap_or_default());
    }

    /// The buffer, made from the prefix written so far: one chunk with room for the rest of
    /// the input when that is small, else the prefix and room for one chunk. What was skipped
    /// before the first difference is never reserved.
    #[cold]
    fn diverge(&mut self) {
        if self.buf.is_some() {
            self.flush();
            return;
        }
        let input = self.input;
        let len = self.len;
        let whole = len + input.len().saturating_sub(self.pos) + SLACK;
        let capacity = if whole <= self.whole {
            whole
        } else {
            len + self.chunk
        };
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(input.get(..len).unwrap_or_default());
        self.buf = Some(buf);
    }

    #[inline]
    pub(super) fn extend_from_slice(&mut self, bytes: &[u8]) {
        if self.buf.is_some() {
            self.flush();
            self.append(bytes);
            return;
        }
        let end = self.len + bytes.len();
        if self.input.get(self.len..end) == Some(bytes) {
            self.len = end;
        } else {
            self.diverge();
            self.append(bytes);
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
                let written = self.done + buf.len();
                if len >= written {
                    self.pend = (s, e.min(s + (len - written)));
                } else {
                    self.pend = (0, 0);
                    if len >= self.done {
                        buf.truncate(len - self.done);
                    } else {
                        self.truncate_chunks(len);
                    }
                }
            }
            None => self.len = self.len.min(len),
        }
    }

    /// [`Output::truncate`] to a position before the buffer: the chunk holding it becomes the
    /// buffer, those after it are dropped.
    #[cold]
    fn truncate_chunks(&mut self, len: usize) {
        while let Some(mut last) = self.chunks.pop() {
            self.done -= last.len();
            if len >= self.done {
                last.truncate(len - self.done);
                self.buf = Some(last);
                return;
            }
        }
    }

    /// What was written from `from` on.
    pub(super) fn written_from(&mut self, from: usize) -> &[u8] {
        self.flush();
        if self.buf.is_some() && from < self.done {
            self.join_from(from);
        }
        match &self.buf {
            Some(buf) => from
                .checked_sub(self.done)
                .and_then(|at| buf.get(at..))
                .unwrap_or_default(),
            None => self
                .input
                .get(..self.len)
                .and_then(|w| w.get(from..))
                .unwrap_or_default(),
        }
    }

    /// Makes what was written from `from` on one span of the buffer. Usually `from` is in the
    /// last chunk, near its end (a `meta` written across the boundary), and the buffer was
    /// started just after it: that chunk's tail moves to the front of the buffer, into its
    /// room. Else the chunks from the one holding `from` on and the buffer are joined into one
    /// buffer, its unwritten room what the buffer had.
    #[cold]
    #[inline(never)]
    fn join_from(&mut self, from: usize) {
        if let (Some(last), Some(buf)) = (self.chunks.last_mut(), self.buf.as_mut()) {
            let start = self.done - last.len();
            let tail = from
                .checked_sub(start)
                .and_then(|at| last.get(at..))
                .unwrap_or_default();
            let moved = tail.len();
            if from >= start && buf.capacity() - buf.len() >= moved {
                buf.extend_from_slice(tail);
                buf.rotate_right(moved);
                last.truncate(from - start);
                self.done -= moved;
                if last.is_empty() {
                    self.chunks.pop();
                }
                return;
            }
        }
        let mut start = self.done;
        let mut first = self.chunks.len();
        while start > from {
            let Some(i) = first.checked_sub(1) else {
                break;
            };
            first = i;
            start -= self.chunks.get(i).map_or(0, Vec::len);
        }
        let joined = self.chunks.split_off(first);
        let buf = self.buf.take().unwrap_or_default();
        let len = self.done - start + buf.len();
        let mut one = Vec::with_capacity(len + (buf.capacity() - buf.len()));
        for chunk in &joined {
            one.extend_from_slice(chunk);
        }
        one.extend_from_slice(&buf);
        self.buf = Some(one);
        self.done = start;
    }

    /// What was written in `[s, e)`.
    pub(super) fn written(&mut self, s: usize, e: usize) -> &[u8] {
        self.written_from(s)
            .get(..e.saturating_sub(s))
            .unwrap_or_default()
    }

    /// Inserts `parts`, one after the other, at `at` (at most the length written).
    pub(super) fn insert(&mut self, at: usize, parts: &[&[u8]]) {
        self.diverge();
        let added: usize = parts.iter().map(|p| p.len()).sum();
        if at >= self.done {
            let room = self.chunk;
            let Some(buf) = &mut self.buf else {
                return;
            };
            let at = (at - self.done).min(buf.len());
            if let Some(rest) = insert_into(buf, at, parts, added, room) {
                let full = std::mem::replace(buf, rest);
                self.close(full);
            }
            return;
        }
        // Into an earlier chunk: the one holding `at` (at its end, the one it ends).
        let mut start = self.done;
        for i in (0..self.chunks.len()).rev() {
            let Some(chunk) = self.chunks.get_mut(i) else {
                return;
            };
            start -= chunk.len();
            if at >= start {
                if let Some(rest) = insert_into(chunk, at - start, parts, added, 0) {
                    if chunk.is_empty() {
                        *chunk = rest;
                    } else {
                        self.chunks.insert(i + 1, rest);
                    }
                }
                self.done += added;
                return;
            }
        }
    }

    /// `None` when the output is exactly the input.
    pub(super) fn into_changed(mut self) -> Option<RedactedBody> {
        self.flush();
        match self.buf.take() {
            Some(buf) => {
                self.close(buf);
                let chunks = self.chunks;
                let same = self.done == self.input.len() && {
                    let mut rest = self.input;
                    chunks.iter().all(|c| match rest.split_at_checked(c.len()) {
                        Some((head, tail)) => {
                            rest = tail;
                            head == c.as_slice()
                        }
                        None => false,
                    })
                };
                (!same).then(|| RedactedBody::from_chunks(chunks))
            }
            None if self.len == self.input.len() => None,
            None => Some(RedactedBody::from(
                self.input.get(..self.len).unwrap_or_default().to_vec(),
            )),
        }
    }
}

/// Inserts `parts` (`added` bytes) at `at` in `chunk`. Without room for them, the chunk is cut
/// at `at` instead and the chunk to follow it is returned: `parts`, then what followed `at`,
/// with `room` bytes more. Either way, at most the chunk's tail is moved, never the whole
/// chunk regrown.
fn insert_into(
    chunk: &mut Vec<u8>,
    at: usize,
    parts: &[&[u8]],
    added: usize,
    room: usize,
) -> Option<Vec<u8>> {
    let at = at.min(chunk.len());
    if chunk.capacity() - chunk.len() >= added {
        for part in parts {
            chunk.extend_from_slice(part);
        }
        if let Some(tail) = chunk.get_mut(at..) {
            tail.rotate_right(added);
        }
        return None;
    }
    let tail = chunk.get(at..).unwrap_or_default();
    let mut next = Vec::with_capacity(added + tail.len() + room);
    for part in parts {
        next.extend_from_slice(part);
    }
    next.extend_from_slice(tail);
    chunk.truncate(at);
    Some(next)
}

#[cfg(test)]
mod tests;
