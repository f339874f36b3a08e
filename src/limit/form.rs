//! Lowering `_count` in a `POST [base]/[type]/_search`, whose parameters may sit in the URL, in
//! the `application/x-www-form-urlencoded` body, or in both (FHIR R4 §3.1.1.3 "search via
//! POST" in http.html#search).
//!
//! The rules are the GET path's: `_count` may be given once in the URL and form together (a
//! second copy is refused, as the classifier refuses it in a URL, because servers disagree on
//! which copy wins), it must be a non-negative integer, and only its own segment changes: every
//! other parameter keeps its bytes and its place, and `Content-Length` is set to the new size.

use super::caps::CapRefusal;
use crate::body::{BoxError, FhirBody};
use crate::fhir::{FhirRequest, Query};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderValue, Uri};
use http_body::Body;
use percent_encoding::percent_decode_str;
use std::ops::Range;

/// A request body type the budget layer can replace with new bytes, so that it can lower
/// `_count` in a `POST _search` form body ([`CountCapMode::Lower`](super::CountCapMode::Lower)).
///
/// Implemented for fhirwall's own [`FhirBody`] (what [`ClassifyLayer`](crate::classify::ClassifyLayer)
/// hands on), `http_body_util`'s `Full<Bytes>`, `BoxBody` and `UnsyncBoxBody`, and, with the
/// `axum` feature, `axum::body::Body`.
///
/// ```
/// use bytes::Bytes;
/// use fhirwall::limit::RewritableBody;
/// use http_body_util::Full;
///
/// let body = <Full<Bytes> as RewritableBody>::from_bytes(Bytes::from_static(b"_count=100"));
/// # let _ = body;
/// ```
pub trait RewritableBody: Body<Data = Bytes> + Sized {
    /// A body holding exactly `bytes`.
    fn from_bytes(bytes: Bytes) -> Self;
}

impl<B> RewritableBody for FhirBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    fn from_bytes(bytes: Bytes) -> Self {
        FhirBody::full(bytes)
    }
}

impl RewritableBody for http_body_util::Full<Bytes> {
    fn from_bytes(bytes: Bytes) -> Self {
        http_body_util::Full::new(bytes)
    }
}

impl<E: 'static> RewritableBody for http_body_util::combinators::BoxBody<Bytes, E> {
    fn from_bytes(bytes: Bytes) -> Self {
        use http_body_util::BodyExt;
        http_body_util::Full::new(bytes)
            .map_err(|never| match never {})
            .boxed()
    }
}

impl<E: 'static> RewritableBody for http_body_util::combinators::UnsyncBoxBody<Bytes, E> {
    fn from_bytes(bytes: Bytes) -> Self {
        use http_body_util::BodyExt;
        http_body_util::Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync()
    }
}

#[cfg(feature = "axum")]
impl RewritableBody for axum::body::Body {
    fn from_bytes(bytes: Bytes) -> Self {
        axum::body::Body::from(bytes)
    }
}

/// Where the one `_count` of a search was found.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    Url(Range<usize>),
    Form(Range<usize>),
}

/// The byte ranges of the `&`-separated segments of `raw` whose decoded name is `_count` (the
/// whole segment, name and value). A name with a modifier (`_count:x`) is not one: the GET
/// path refuses it too, as a repeat once `_count` is added.
fn count_segments(raw: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut start = 0;
    raw.split('&').filter_map(move |segment| {
        let range = start..start + segment.len();
        start = range.end + 1;
        let name = segment
            .split('=')
            .next()
            .unwrap_or_default()
            .replace('+', " ");
        let is_count = percent_decode_str(&name).decode_utf8_lossy() == "_count";
        is_count.then_some(range)
    })
}

/// The value of a `name=value` segment, decoded as the classifier decodes it.
fn segment_value(segment: &str) -> Option<u32> {
    let (_, value) = segment.split_once('=')?;
    let value = value.replace('+', " ");
    let value = percent_decode_str(&value).decode_utf8().ok()?;
    value.parse().ok()
}

/// `raw` with the bytes in `range` replaced by `with`.
fn splice(raw: &str, range: &Range<usize>, with: &str) -> Option<String> {
    Some(format!(
        "{}{with}{}",
        raw.get(..range.start)?,
        raw.get(range.end..)?
    ))
}

/// Lowers the `_count` of a `POST _search` to `cap`, wherever the client put it, and returns
/// the form body to send on (`form` itself when only the URL changed).
///
/// Refused as [`CapRefusal::Malformed`]: a form that is not UTF-8, a `_count` given more than
/// once across URL and form (or not found where the classified request says it is), or not a
/// non-negative integer.
pub(crate) fn lower_post_count(
    parts: &mut Parts,
    form: Bytes,
    cap: u32,
) -> Result<Bytes, CapRefusal> {
    let original = form.clone();
    let text = std::str::from_utf8(&original).map_err(|_| CapRefusal::Malformed)?;
    // The classifier reads the form without its trailing line break; so does this.
    let params = text.trim_end_matches(['\r', '\n']);
    let url = parts.uri.query().unwrap_or("").to_owned();
    let url = url.as_str();
    let at = {
        let mut found = count_segments(url)
            .map(Found::Url)
            .chain(count_segments(params).map(Found::Form));
        match (found.next(), found.next()) {
            (Some(at), None) => at,
            _ => return Err(CapRefusal::Malformed),
        }
    };
    let (raw, range) = match &at {
        Found::Url(r) => (url, r),
        Found::Form(r) => (params, r),
    };
    let segment = raw.get(range.clone()).ok_or(CapRefusal::Malformed)?;
    let value = segment_value(segment).ok_or(CapRefusal::Malformed)?;
    if value <= cap {
        return Ok(form);
    }
    let replacement = format!("_count={cap}");
    let (new_url, new_form) = match &at {
        Found::Url(range) => (
            splice(url, range, &replacement).ok_or(CapRefusal::Malformed)?,
            None,
        ),
        Found::Form(range) => (
            url.to_owned(),
            Some(splice(text, range, &replacement).ok_or(CapRefusal::Malformed)?),
        ),
    };
    let form = match new_form {
        None => {
            let path_and_query = format!("{}?{new_url}", parts.uri.path());
            let mut uri = parts.uri.clone().into_parts();
            uri.path_and_query = Some(path_and_query.parse().map_err(|_| CapRefusal::Malformed)?);
            parts.uri = Uri::from_parts(uri).map_err(|_| CapRefusal::Malformed)?;
            form
        }
        Some(new_form) => {
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(new_form.len()));
            // The body is now whole and of known length; a chunked framing header would
            // contradict the Content-Length.
            parts.headers.remove(TRANSFER_ENCODING);
            Bytes::from(new_form)
        }
    };
    if let Some(fhir) = parts.extensions.get_mut::<FhirRequest>() {
        let limit = fhir.query.len().saturating_add(1);
        let params = std::str::from_utf8(&form)
            .map_err(|_| CapRefusal::Malformed)?
            .trim_end_matches(['\r', '\n']);
        let mut query = Query::parse(&new_url, limit).map_err(|_| CapRefusal::Malformed)?;
        let form_query = Query::parse(params, limit).map_err(|_| CapRefusal::Malformed)?;
        query
            .extend(form_query)
            .map_err(|_| CapRefusal::Malformed)?;
        fhir.query = query;
    }
    Ok(form)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::Classifier;
    use http::Request;

    fn post(uri: &str, form: &str) -> (Parts, Bytes) {
        let request = Request::post(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(())
            .unwrap_or_default();
        let (mut parts, ()) = request.into_parts();
        let classifier = Classifier::new("/fhir");
        if let Ok(crate::fhir::Classification::NeedsBody(pending)) =
            classifier.classify_head(&parts.method, &parts.uri, &parts.headers)
        {
            if let Ok(fhir) = classifier.finish(pending, form.as_bytes()) {
                parts.extensions.insert(fhir);
            }
        }
        (parts, Bytes::from(form.to_owned()))
    }

    #[test]
    fn lowers_in_the_form_and_keeps_every_other_byte() {
        let (mut parts, form) = post(
            "/fhir/Observation/_search?a=1",
            "x=%7C&_count=500&y=a+b\r\n",
        );
        let out = lower_post_count(&mut parts, form, 100);
        assert_eq!(out.as_deref(), Ok(&b"x=%7C&_count=100&y=a+b\r\n"[..]));
        assert_eq!(parts.uri.query(), Some("a=1"));
        assert_eq!(parts.headers[CONTENT_LENGTH], "24");
        let fhir = parts.extensions.get::<FhirRequest>();
        assert_eq!(fhir.and_then(|f| f.query().count()), Some(Ok(100)));
    }

    #[test]
    fn a_second_count_or_a_stray_one_is_refused() {
        // Unclassified requests (the classifier refuses these first) still fail closed here.
        for (uri, form) in [
            ("/fhir/Observation/_search?_count=5", "_count=500"),
            ("/fhir/Observation/_search", "_count=500&%5Fcount=5"),
            ("/fhir/Observation/_search", "code=a"),
            ("/fhir/Observation/_search", "_count=5x"),
        ] {
            let (mut parts, bytes) = post(uri, form);
            assert_eq!(
                lower_post_count(&mut parts, bytes, 100),
                Err(CapRefusal::Malformed),
                "{uri} {form:?}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever surrounds it, only the `_count` segment changes (FHIR R4 http.html#search:
        /// the other parameters are the client's and reach the server as sent).
        #[test]
        fn only_the_count_segment_changes(
            before in proptest::collection::vec("[a-z]{1,5}=[a-zA-Z0-9%+.]{0,6}", 0..4),
            after in proptest::collection::vec("[a-z]{1,5}=[a-zA-Z0-9%+.]{0,6}", 0..4),
            count in 101u32..1_000_000,
        ) {
            let mut all = before.clone();
            all.push(format!("_count={count}"));
            all.extend(after.iter().cloned());
            let form = all.join("&");
            let (mut parts, bytes) = post("/fhir/Observation/_search", &form);
            let mut expected = before;
            expected.push("_count=100".to_owned());
            expected.extend(after);
            let out = lower_post_count(&mut parts, bytes, 100);
            proptest::prop_assert_eq!(out, Ok(Bytes::from(expected.join("&"))));
        }

        /// Any bytes at all: an answer, never a panic.
        #[test]
        fn never_panics(url in "[ -~]{0,30}", form in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let request = Request::post(format!("/fhir/Observation/_search?{}", url.replace(' ', "")))
                .body(())
                .unwrap_or_default();
            let (mut parts, ()) = request.into_parts();
            let _ = lower_post_count(&mut parts, Bytes::from(form), 100);
        }
    }
}
