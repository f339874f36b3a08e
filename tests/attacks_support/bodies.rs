//! Request bodies the corpus names: literal text, huge, streamed without a length, deeply
//! nested, gzip-compressed, and a body that stalls.

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// `n` chunks of `chunk`, with no length known in advance (chunked transfer coding).
struct Chunks {
    chunk: Bytes,
    left: usize,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A body that sends `first` and then never another byte (slowloris), never ending.
pub struct Stall {
    first: Option<Bytes>,
}

impl Stall {
    pub fn new(first: &str) -> Self {
        Stall {
            first: Some(Bytes::from(first.to_owned())),
        }
    }
}

impl http_body::Body for Stall {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.first.take() {
            Some(first) => Poll::Ready(Some(Ok(Frame::data(first)))),
            // Never woken: the peer has gone quiet.
            None => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A corpus body cell and its length (`None` when streamed):
/// `-` (none), `$huge:N` (a valid Observation padded to N bytes), `$stream:N` (the same,
/// in 16 KiB chunks without a length), `$deep:N` (a Patient whose extension nests N levels),
/// `$arrays:N` (N nested JSON arrays), `$gzip:TEXT`, or the literal text (with
/// [`expand`](super::expand)ed `$token:` and certificate references).
pub fn make_body(cell: &str) -> (Body, Option<usize>) {
    if cell == "-" {
        return (Body::empty(), None);
    }
    if let Some(n) = cell.strip_prefix("$huge:") {
        let bytes = padded(n.parse().unwrap());
        let len = bytes.len();
        return (Body::from(bytes), Some(len));
    }
    if let Some(n) = cell.strip_prefix("$stream:") {
        let n: usize = n.parse().unwrap();
        let chunk = Bytes::from(vec![b' '; 16 * 1024]);
        let left = n / chunk.len() + 1;
        // Whitespace only: the size must refuse it before any parser sees the end.
        let body = Chunks { chunk, left };
        return (Body::new(body), None);
    }
    if let Some(n) = cell.strip_prefix("$deep:") {
        let n: usize = n.parse().unwrap();
        let mut text = String::from(r#"{"resourceType":"Patient","extension":"#);
        for _ in 0..n {
            text.push_str(r#"[{"url":"http://example.org/x","extension":"#);
        }
        text.push_str("[]");
        for _ in 0..n {
            text.push_str("}]");
        }
        text.push('}');
        let len = text.len();
        return (Body::from(text), Some(len));
    }
    if let Some(n) = cell.strip_prefix("$arrays:") {
        let n: usize = n.parse().unwrap();
        let text = format!("{}{}", "[".repeat(n), "]".repeat(n));
        let len = text.len();
        return (Body::from(text), Some(len));
    }
    if let Some(text) = cell.strip_prefix("$gzip:") {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        let len = bytes.len();
        return (Body::from(bytes), Some(len));
    }
    let text = super::expand(cell);
    let len = text.len();
    (Body::from(text), Some(len))
}

/// A valid Observation for pat-1 whose `note` text pads it to `n` bytes.
fn padded(n: usize) -> Vec<u8> {
    let head = r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/pat-1"},"note":[{"text":""#;
    let tail = r#""}]}"#;
    let fill = n.saturating_sub(head.len() + tail.len());
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(head.as_bytes());
    out.resize(head.len() + fill, b'a');
    out.extend_from_slice(tail.as_bytes());
    out
}
