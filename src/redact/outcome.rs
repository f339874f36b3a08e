//! What redacting a body gives: [`Redacted`], or a [`RedactError`] when it must not be sent.

use super::scanner::JsonError;
use bytes::Bytes;
use std::fmt;

/// The `meta.security` coding added once to every altered resource (HL7 v3 ObservationValue
/// `REDACTED`).
pub const REDACTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// The result of redacting a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redacted {
    /// Nothing was selected: send the body exactly as it was.
    Unchanged,
    /// The redacted body.
    Changed {
        /// The new body.
        body: RedactedBody,
        /// Resources altered (each marked `REDACTED` in `meta.security`).
        altered: usize,
        /// Resources withheld entirely (Bundle entries, contained resources, NDJSON lines...).
        hidden: usize,
    },
    /// The body is one resource the caller may not see at all.
    Hidden,
}

/// A redacted body, in the chunks it was written in.
///
/// A large body is written in chunks of about a thirty-second of its size rather than into one
/// buffer reserved at the input's size or regrown as it fills, so that redacting it holds
/// little more than the input and what was written; a body of up to 64 KiB is one chunk. Send
/// the chunks as the frames of a response body ([`RedactedBody::into_frames`]), or join them
/// ([`RedactedBody::to_vec`], [`RedactedBody::into_vec`]).
///
/// Two bodies are equal when their bytes are, however they are cut into chunks.
///
/// ```
/// use fhirwall::redact::RedactedBody;
///
/// let body = RedactedBody::from(b"{}".to_vec());
/// assert_eq!(body.len(), 2);
/// assert_eq!(body, &b"{}"[..]);
/// assert_eq!(body.chunks().collect::<Vec<_>>(), [&b"{}"[..]]);
/// assert_eq!(body.into_vec(), b"{}");
/// ```
#[derive(Clone, Default)]
pub struct RedactedBody {
    /// None empty.
    chunks: Vec<Vec<u8>>,
    len: usize,
}

impl RedactedBody {
    pub(super) fn from_chunks(mut chunks: Vec<Vec<u8>>) -> Self {
        chunks.retain(|c| !c.is_empty());
        let len = chunks.iter().map(Vec::len).sum();
        RedactedBody { chunks, len }
    }

    /// The body's length in bytes (its `Content-Length`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the body has no bytes (an NDJSON body all of whose lines were withheld).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks, in order; none is empty.
    pub fn chunks(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.chunks.iter().map(Vec::as_slice)
    }

    /// The body as one buffer (a copy).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        out
    }

    /// The body as one buffer: the chunk itself when there is one, else the chunks joined.
    pub fn into_vec(mut self) -> Vec<u8> {
        if self.chunks.len() <= 1 {
            return self.chunks.pop().unwrap_or_default();
        }
        self.to_vec()
    }

    /// The chunks as [`Bytes`], without copying: the frames of a response body whose
    /// `Content-Length` is [`RedactedBody::len`].
    pub fn into_frames(self) -> Vec<Bytes> {
        self.chunks.into_iter().map(Bytes::from).collect()
    }

    fn eq_bytes(&self, mut other: &[u8]) -> bool {
        if self.len != other.len() {
            return false;
        }
        self.chunks
            .iter()
            .all(|c| match other.split_at_checked(c.len()) {
                Some((head, tail)) => {
                    other = tail;
                    head == c.as_slice()
                }
                None => false,
            })
    }
}

impl From<Vec<u8>> for RedactedBody {
    fn from(bytes: Vec<u8>) -> Self {
        RedactedBody::from_chunks(vec![bytes])
    }
}

/// Its length and number of chunks, not its bytes.
impl fmt::Debug for RedactedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactedBody")
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl PartialEq for RedactedBody {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .chunks
                .iter()
                .flatten()
                .eq(other.chunks.iter().flatten())
    }
}

impl Eq for RedactedBody {}

impl PartialEq<[u8]> for RedactedBody {
    fn eq(&self, other: &[u8]) -> bool {
        self.eq_bytes(other)
    }
}

impl PartialEq<&[u8]> for RedactedBody {
    fn eq(&self, other: &&[u8]) -> bool {
        self.eq_bytes(other)
    }
}

impl PartialEq<Vec<u8>> for RedactedBody {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.eq_bytes(other)
    }
}

impl PartialEq<str> for RedactedBody {
    fn eq(&self, other: &str) -> bool {
        self.eq_bytes(other.as_bytes())
    }
}

impl PartialEq<&str> for RedactedBody {
    fn eq(&self, other: &&str) -> bool {
        self.eq_bytes(other.as_bytes())
    }
}

/// Why a body could not be redacted; it must then not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// The body is not JSON.
    #[error("the response is not valid JSON")]
    Syntax,
    /// An object repeats a key.
    #[error("the response repeats a JSON key")]
    DuplicateKey,
    /// The body nests deeper than the limit.
    #[error("the response nests too deeply")]
    TooDeep,
    /// The body is larger than the limit.
    #[error("the response is larger than the redaction limit")]
    TooLarge,
    /// JSON that is not a FHIR resource where one must be.
    #[error("the response is not a FHIR resource")]
    NotFhir,
}

impl From<JsonError> for RedactError {
    fn from(e: JsonError) -> Self {
        match e {
            JsonError::Syntax => RedactError::Syntax,
            JsonError::DuplicateKey => RedactError::DuplicateKey,
            JsonError::TooDeep => RedactError::TooDeep,
        }
    }
}
