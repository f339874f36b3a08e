//! The cheap checks that let [`RouteInventory::quick_at`](super::RouteInventory::quick_at)
//! judge a request without the classifier: no method override in the headers, and an id
//! that is a plain path segment.

use http::HeaderMap;

/// The headers the classifier refuses as method overrides (a request wearing one is judged by
/// the classifier, never by [`RouteInventory::quick_at`](super::RouteInventory::quick_at)).
/// No method-override header and no unreadable `If-Match`: one pass over the request's
/// names, cheaper than four hash lookups (three of long custom names).
///
/// Over the names (a slice), not the values: `HeaderMap::iter` walks each name's extra values
/// too, which costs more than the check; `If-Match`'s values are read only when it is there.
#[inline]
pub(super) fn plain_read_headers(headers: &HeaderMap) -> bool {
    headers.keys().all(|name| {
        if name == http::header::IF_MATCH {
            headers
                .get_all(http::header::IF_MATCH)
                .iter()
                .all(|value| value.to_str().is_ok())
        } else {
            !METHOD_OVERRIDE_HEADERS.contains(name)
        }
    })
}

const METHOD_OVERRIDE_HEADERS: [http::HeaderName; 3] = [
    http::HeaderName::from_static("x-http-method-override"),
    http::HeaderName::from_static("x-http-method"),
    http::HeaderName::from_static("x-method-override"),
];

/// A FHIR id (`[A-Za-z0-9\-\.]{1,64}`, FHIR R4 §2.24.0.1) that is also a plain path segment
/// (not a dot segment).
#[inline(always)]
pub(super) fn is_plain_id(id: &str) -> bool {
    let id = id.as_bytes();
    // Slice patterns for the dot segments: no string compares.
    !matches!(id, [] | [b'.'] | [b'.', b'.'])
        && id.len() <= 64
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
