//! What the redaction layer checks on a request and a response head before any byte of the
//! body is read (is JSON wanted, what kind of body, is it compressed), and the answers it
//! gives instead of a body it won't send.

use super::layer::{RedactDecision, RedactRefusal};
use crate::fhir::{IssueType, OperationOutcome};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, ETAG};
use http::{Request, Response, StatusCode};

/// Whether the request asks for something other than JSON (`_format`, `Accept`).
pub(super) fn wants_non_json<B>(request: &Request<B>) -> bool {
    let format = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("_format=")));
    if let Some(f) = format {
        return !contains_ignore_case(f.as_bytes(), b"json");
    }
    let accept = request.headers().get_all(http::header::ACCEPT);
    let mut values = 0usize;
    for v in accept.iter() {
        // A value that isn't visible ASCII can't be read: refuse rather than guess.
        if v.to_str().is_err() {
            return true;
        }
        values += 1;
    }
    values > 0
        && !accept.iter().any(|v| {
            let v = v.as_bytes();
            contains_ignore_case(v, b"json")
                || contains_ignore_case(v, b"*/*")
                || contains_ignore_case(v, b"application/*")
        })
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

pub(super) fn refusal(reason: RedactRefusal) -> Response<http_body_util::Full<Bytes>> {
    let (status, code, text) = match reason {
        RedactRefusal::NotAcceptable => (
            StatusCode::NOT_ACCEPTABLE,
            IssueType::NotSupported,
            "only FHIR JSON can be returned to this client",
        ),
        RedactRefusal::HiddenSearch => (
            StatusCode::FORBIDDEN,
            IssueType::Forbidden,
            "this client may not search on elements that are hidden from it",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueType::Exception,
            "the response could not be filtered for this client",
        ),
    };
    let mut response = OperationOutcome::error(code, text).into_response(status);
    response
        .extensions_mut()
        .insert(RedactDecision::Refused(reason));
    response
}

pub(super) fn hidden(status: StatusCode) -> Response<http_body_util::Full<Bytes>> {
    let (code, text) = if status == StatusCode::FORBIDDEN {
        (
            IssueType::Forbidden,
            "access to this resource is not allowed",
        )
    } else {
        (IssueType::NotFound, "resource not found")
    };
    let mut response = OperationOutcome::error(code, text).into_response(status);
    response.extensions_mut().insert(RedactDecision::Hidden);
    response
}

/// A strong validator no longer describes a redacted body (RFC 9110 §8.8.1): weaken it.
pub(super) fn weaken_etag(headers: &mut HeaderMap) {
    if let Some(tag) = headers.get(ETAG) {
        if !tag.as_bytes().starts_with(b"W/") {
            let mut weak = b"W/".to_vec();
            weak.extend_from_slice(tag.as_bytes());
            match HeaderValue::from_bytes(&weak) {
                Ok(v) => {
                    headers.insert(ETAG, v);
                }
                Err(_) => {
                    headers.remove(ETAG);
                }
            }
        }
    }
}

pub(super) enum BodyKind {
    Json,
    Ndjson,
    Other,
}

pub(super) fn body_kind(headers: &HeaderMap) -> BodyKind {
    let Some(ct) = headers.get(CONTENT_TYPE) else {
        // No declared type: read it as JSON, which refuses anything else.
        return BodyKind::Json;
    };
    let Ok(ct) = ct.to_str() else {
        return BodyKind::Other;
    };
    let media = ct.split(';').next().unwrap_or("").trim();
    let is = |name: &str| media.eq_ignore_ascii_case(name);
    if is("application/fhir+ndjson") || is("application/ndjson") || is("application/x-ndjson") {
        BodyKind::Ndjson
    } else if is("application/fhir+json")
        || is("application/json")
        || is("application/json+fhir")
        || is("text/json")
    {
        BodyKind::Json
    } else {
        BodyKind::Other
    }
}

pub(super) fn compressed(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
}
