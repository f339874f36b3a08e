//! The body type fhirwall's layers hand on: either the body they were given, or one they built
//! (a refusal, a buffered request body, a filtered response).
//!
//! ```
//! use bytes::Bytes;
//! use fhirwall::body::{full_response, FhirBody};
//! use fhirwall::fhir::{IssueType, OperationOutcome};
//! use http::StatusCode;
//! use http_body_util::Empty;
//!
//! // A layer over a service whose responses have body type `Empty<Bytes>` answers with
//! // `Response<FhirBody<Empty<Bytes>>>`, whether it refuses or passes the response on.
//! let refusal: http::Response<FhirBody<Empty<Bytes>>> = full_response(
//!     OperationOutcome::error(IssueType::Forbidden, "not allowed").into_response(StatusCode::FORBIDDEN),
//! );
//! let passed: http::Response<FhirBody<Empty<Bytes>>> =
//!     http::Response::new(Empty::new()).map(FhirBody::inner);
//! assert_eq!(refusal.status(), 403);
//! assert_eq!(passed.status(), 200);
//! ```

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A boxed error, as tower and axum use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// A body that is either the wrapped service's own body or one fhirwall built in full.
    ///
    /// Layers return `Response<FhirBody<B>>` so that a refusal (an `OperationOutcome`) and the
    /// inner service's response have one type without boxing; errors of the inner body are
    /// boxed.
    #[derive(Debug)]
    pub struct FhirBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { #[pin] body: Full<Bytes> },
        // A body built in pieces (a redacted body, written in chunks), sent one frame each
        // rather than copied into one buffer; `left` is their total length.
        Frames { frames: VecDeque<Bytes>, left: u64 },
    }
}

impl<B> FhirBody<B> {
    /// Wraps the inner service's body unchanged.
    pub fn inner(body: B) -> Self {
        FhirBody {
            kind: Kind::Inner { body },
        }
    }

    /// A body of these bytes.
    pub fn full(bytes: Bytes) -> Self {
        FhirBody {
            kind: Kind::Full {
                body: Full::new(bytes),
            },
        }
    }

    /// A body of these frames, in order (empty ones are left out). Only the redaction layer
    /// builds one.
    #[cfg_attr(not(feature = "redact"), allow(dead_code))]
    pub(crate) fn frames(frames: impl IntoIterator<Item = Bytes>) -> Self {
        let frames: VecDeque<Bytes> = frames.into_iter().filter(|f| !f.is_empty()).collect();
        let left = frames.iter().map(|f| f.len() as u64).sum();
        FhirBody {
            kind: Kind::Frames { frames, left },
        }
    }

    pub(crate) fn from_full(body: Full<Bytes>) -> Self {
        FhirBody {
            kind: Kind::Full { body },
        }
    }
}

impl<B> Body for FhirBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Full { body } => body.poll_frame(cx).map_err(|never| match never {}),
            KindProj::Frames { frames, left } => Poll::Ready(frames.pop_front().map(|data| {
                *left = left.saturating_sub(data.len() as u64);
                Ok(Frame::data(data))
            })),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { body } => body.is_end_stream(),
            Kind::Frames { frames, .. } => frames.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { body } => body.size_hint(),
            Kind::Frames { left, .. } => SizeHint::with_exact(*left),
        }
    }
}

/// Turns a built response (such as [`OperationOutcome::into_response`]) into one with the body
/// type a layer returns.
///
/// [`OperationOutcome::into_response`]: crate::fhir::OperationOutcome::into_response
pub fn full_response<B>(response: http::Response<Full<Bytes>>) -> http::Response<FhirBody<B>> {
    response.map(FhirBody::from_full)
}

/// A response body's resources, counted by a layer that read the body already (redaction),
/// for the budget layer, which would otherwise scan it again. It keeps the bytes it counted
/// (shared, not copied), so the count is used for exactly those bytes and nothing else.
#[cfg(all(feature = "redact", feature = "limit"))]
#[derive(Clone)]
pub(crate) struct CountedBody {
    /// The body, in the frames it is sent as.
    frames: Vec<Bytes>,
    count: u64,
}

/// Put in the request extensions by the budget layer when it will count the response's
/// resources by reading its body: a redaction layer inside then counts them on its walk
/// ([`CountedBody`]).
#[cfg(all(feature = "redact", feature = "limit"))]
#[derive(Clone, Copy)]
pub(crate) struct CountWanted;

#[cfg(all(feature = "redact", feature = "limit"))]
impl CountedBody {
    pub(crate) fn new(frames: Vec<Bytes>, count: u64) -> Self {
        CountedBody { frames, count }
    }

    /// The count, if `body` is the very bytes that were counted.
    pub(crate) fn count_of(&self, body: &[u8]) -> Option<u64> {
        let mut rest = body;
        for frame in &self.frames {
            let (head, tail) = rest.split_at_checked(frame.len())?;
            if head != &frame[..] {
                return None;
            }
            rest = tail;
        }
        rest.is_empty().then_some(self.count)
    }
}

/// A response body as read so far, by the layers that read one whole (redaction, budgets).
/// A body that comes in one frame (most do) is kept as that frame, without a copy. One that
/// comes in several and told its length is copied as it arrives into one buffer reserved once
/// at that length. One that didn't tell is copied into
/// blocks and joined once at the end into a buffer of its exact length: a buffer regrown by
/// doubling as frames arrive would hold up to three times the body while it is copied, and
/// keeping the frames themselves would hold a body sent in tiny frames many times over.
#[cfg(any(feature = "redact", feature = "limit"))]
#[derive(Debug)]
pub(crate) struct Collected {
    /// The first frame; with no length told, then the full blocks.
    frames: Vec<Bytes>,
    /// With a length told, once a second frame arrives: the body so far. Without: the block
    /// being filled.
    buf: Vec<u8>,
    len: usize,
    expected: usize,
}

/// The blocks a body of unknown length is copied into.
#[cfg(any(feature = "redact", feature = "limit"))]
const BLOCK: usize = 64 * 1024;

#[cfg(any(feature = "redact", feature = "limit"))]
impl Collected {
    pub(crate) fn new(expected: usize) -> Self {
        Collected {
            frames: Vec::new(),
            buf: Vec::new(),
            len: 0,
            expected,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let first = self.len == 0;
        self.len += data.len();
        if first {
            self.frames.push(data);
            return;
        }
        if self.expected > 0 {
            if self.buf.is_empty() {
                self.buf.reserve_exact(self.expected.max(self.len));
                for frame in self.frames.drain(..) {
                    self.buf.extend_from_slice(&frame);
                }
            }
            self.buf.extend_from_slice(&data);
            return;
        }
        let mut rest: &[u8] = &data;
        while !rest.is_empty() {
            if self.buf.capacity() == self.buf.len() {
                let full = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
                if !full.is_empty() {
                    self.frames.push(Bytes::from(full));
                }
            }
            let (now, later) =
                rest.split_at((self.buf.capacity() - self.buf.len()).min(rest.len()));
            self.buf.extend_from_slice(now);
            rest = later;
        }
    }

    pub(crate) fn take(&mut self) -> Bytes {
        if self.expected > 0 && !self.buf.is_empty() {
            return Bytes::from(std::mem::take(&mut self.buf));
        }
        if self.buf.is_empty() && self.frames.len() <= 1 {
            return self.frames.pop().unwrap_or_default();
        }
        // The last block's room goes before the body is held twice.
        self.buf.shrink_to_fit();
        let mut joined = Vec::with_capacity(self.len);
        // Each frame is freed once copied.
        for frame in self.frames.drain(..) {
            joined.extend_from_slice(&frame);
        }
        joined.extend_from_slice(&std::mem::take(&mut self.buf));
        Bytes::from(joined)
    }
}

/// Why [`poll_read_bounded`] stopped before the end of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// More bytes arrived than the limit allows.
    TooLarge,
    /// The body itself failed (a reset connection, a malformed chunk).
    Unreadable,
}

/// Reads a whole body into `buffer`, never holding more than `limit` bytes.
///
/// The count is kept while reading because a chunked body has no `Content-Length` to trust;
/// non-data frames (trailers) are dropped. Ready with `Ok(())` at the end of the body.
pub(crate) fn poll_read_bounded<B>(
    mut body: Pin<&mut B>,
    cx: &mut Context<'_>,
    buffer: &mut Vec<u8>,
    limit: usize,
) -> Poll<Result<(), ReadError>>
where
    B: Body<Data = Bytes>,
{
    loop {
        match body.as_mut().poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(Ok(())),
            Poll::Ready(Some(Err(_))) => return Poll::Ready(Err(ReadError::Unreadable)),
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buffer.len().saturating_add(data.len()) > limit {
                        return Poll::Ready(Err(ReadError::TooLarge));
                    }
                    buffer.extend_from_slice(&data);
                }
            }
        }
    }
}

#[cfg(all(test, any(feature = "redact", feature = "limit")))]
mod tests {
    use super::*;

    /// Frames of every size, with and without a length told (and a wrong one), gather into the
    /// body they make up, in order.
    #[test]
    fn collected_frames_make_up_the_body() {
        let sizes = [1, BLOCK + 7, 3, BLOCK, BLOCK - 3, 0, 2 * BLOCK + 1, 5];
        let body: Vec<u8> = (0..sizes.iter().sum::<usize>())
            .map(|i| (i % 251) as u8)
            .collect();
        for expected in [0, body.len(), 10] {
            let mut collected = Collected::new(expected);
            let mut at = 0;
            for size in sizes {
                collected.push(Bytes::copy_from_slice(&body[at..at + size]));
                at += size;
                assert_eq!(collected.len(), at);
            }
            assert_eq!(collected.take(), body, "expected {expected}");
        }
        let mut one = Collected::new(0);
        let frame = Bytes::from_static(b"{}");
        one.push(frame.clone());
        assert_eq!(one.take().as_ptr(), frame.as_ptr());
    }

    #[cfg(all(feature = "redact", feature = "limit"))]
    /// A count stands only for the very bytes counted, however they were cut into frames.
    #[test]
    fn a_count_is_for_the_bytes_counted_only() {
        let counted = CountedBody::new(
            vec![Bytes::from_static(b"{\"a\":"), Bytes::from_static(b"1}")],
            7,
        );
        assert_eq!(counted.count_of(b"{\"a\":1}"), Some(7));
        for other in [
            &b"{\"a\":2}"[..],
            b"{\"a\":1} ",
            b"{\"a\":",
            b"",
            b"{\"a\":1",
        ] {
            assert_eq!(counted.count_of(other), None, "{other:?}");
        }
    }
}
