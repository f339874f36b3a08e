//! What redacting a body gives: [`Redacted`], or a [`RedactError`] when it must not be sent.

use super::scanner::JsonError;

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
        body: Vec<u8>,
        /// Resources altered (each marked `REDACTED` in `meta.security`).
        altered: usize,
        /// Resources withheld entirely (Bundle entries, contained resources, NDJSON lines...).
        hidden: usize,
    },
    /// The body is one resource the caller may not see at all.
    Hidden,
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
