//! Content negotiation (FHIR R4 §3.1.0.1.10 "Content Types and encodings"): what a body may
//! be (415 otherwise) and what a client may ask for (406 otherwise).

use super::problem::{Problem, ProblemClass};
use crate::fhir::IssueType;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::HeaderMap;

/// The kind of body an interaction carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// A FHIR resource in JSON.
    Resource,
    /// A PATCH: JSON Patch, or FHIRPath Patch as a `Parameters` resource.
    Patch,
    /// A `POST _search` form.
    Form,
}

/// The media type without parameters, lowercased; `None` if a `charset` other than UTF-8 is
/// given.
fn media_type(value: &str) -> Option<String> {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    for param in parts {
        let (name, v) = param.split_once('=').unwrap_or((param, ""));
        if name.trim().eq_ignore_ascii_case("charset")
            && !v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return None;
        }
    }
    Some(essence)
}

/// Whether this media type is FHIR JSON (`application/json` only if `plain_json`).
fn is_json(essence: &str, plain_json: bool) -> bool {
    essence == "application/fhir+json" || (plain_json && essence == "application/json")
}

/// Checks the body's `Content-Type` for an interaction whose body is `kind` (415).
pub(crate) fn content_type(
    headers: &HeaderMap,
    kind: BodyKind,
    plain_json: bool,
) -> Result<BodyKind, Problem> {
    let refused = || {
        Problem::new(
            ProblemClass::UnsupportedMediaType,
            IssueType::NotSupported,
            match kind {
                BodyKind::Resource => "the body must be application/fhir+json",
                BodyKind::Patch => {
                    "a patch must be application/json-patch+json or application/fhir+json"
                }
                BodyKind::Form => "a POST _search body must be application/x-www-form-urlencoded",
            },
            "",
        )
    };
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(refused());
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(media_type)
        .ok_or_else(refused)?;
    match kind {
        BodyKind::Resource if is_json(&essence, plain_json) => Ok(BodyKind::Resource),
        BodyKind::Patch if essence == "application/json-patch+json" => Ok(BodyKind::Patch),
        BodyKind::Patch if is_json(&essence, plain_json) => Ok(BodyKind::Resource),
        BodyKind::Form if essence == "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        _ => Err(refused()),
    }
}

/// Whether a `_format` value asks for JSON (FHIR R4 §3.1.0.1.10: `json`, or a JSON mime type).
fn format_is_json(value: &str, plain_json: bool) -> bool {
    let value = value.trim();
    value == "json"
        || media_type(value).is_some_and(|e| is_json(&e, true) || e == "application/json+fhir")
        || (plain_json && value == "application/json")
}

/// Checks `_format` and `Accept` (406 if the client asks only for what is not JSON).
pub(crate) fn accept(
    headers: &HeaderMap,
    format: Option<&str>,
    plain_json: bool,
) -> Result<(), Problem> {
    let refused = |expression: &str| {
        Problem::new(
            ProblemClass::NotAcceptable,
            IssueType::NotSupported,
            "only FHIR JSON (application/fhir+json) responses are available",
            expression,
        )
    };
    if let Some(format) = format {
        if !format_is_json(format, plain_json) {
            return Err(refused("_format"));
        }
        // `_format` overrides `Accept` (FHIR R4 §3.1.0.1.10).
        return Ok(());
    }
    let mut any = false;
    let mut acceptable = false;
    for value in headers.get_all(ACCEPT) {
        let Ok(value) = value.to_str() else {
            return Err(refused("Accept"));
        };
        for range in value.split(',') {
            if range.trim().is_empty() {
                continue;
            }
            any = true;
            let mut parts = range.split(';');
            let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            // `q=0` means "not acceptable" (RFC 9110 §12.4.2).
            let zero = parts.any(|p| {
                p.split_once('=').is_some_and(|(n, v)| {
                    n.trim() == "q" && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
                })
            });
            if zero {
                continue;
            }
            acceptable |= matches!(
                essence.as_str(),
                "*/*"
                    | "application/*"
                    | "application/fhir+json"
                    | "application/json+fhir"
                    | "application/json"
            );
        }
    }
    if any && !acceptable {
        return Err(refused("Accept"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: http::HeaderName, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, v.parse().unwrap());
        h
    }

    #[test]
    fn fhir_r4_content_types() {
        let ct = |v: &str, kind| content_type(&headers(CONTENT_TYPE, v), kind, true).is_ok();
        assert!(ct("application/fhir+json", BodyKind::Resource));
        assert!(ct(
            "application/fhir+json; charset=utf-8",
            BodyKind::Resource
        ));
        assert!(!ct(
            "application/fhir+json; charset=latin1",
            BodyKind::Resource
        ));
        assert!(!ct("application/fhir+xml", BodyKind::Resource));
        assert!(!ct("text/plain", BodyKind::Resource));
        assert!(ct("application/json-patch+json", BodyKind::Patch));
        assert!(!ct("application/json-patch+json", BodyKind::Resource));
        assert!(ct("application/x-www-form-urlencoded", BodyKind::Form));
        assert!(content_type(&HeaderMap::new(), BodyKind::Resource, true).is_err());
        assert!(content_type(
            &headers(CONTENT_TYPE, "application/json"),
            BodyKind::Resource,
            false
        )
        .is_err());
    }

    #[test]
    fn fhir_r4_accept_and_format() {
        let acc = |v: &str| accept(&headers(ACCEPT, v), None, true).is_ok();
        assert!(acc("application/fhir+json"));
        assert!(acc("text/html, */*;q=0.1"));
        assert!(!acc("application/fhir+xml"));
        assert!(!acc("application/fhir+json;q=0, application/xml"));
        assert!(accept(&HeaderMap::new(), Some("json"), true).is_ok());
        assert!(accept(&HeaderMap::new(), Some("xml"), true).is_err());
        assert!(accept(&HeaderMap::new(), Some("application/fhir+json"), true).is_ok());
        assert!(accept(&HeaderMap::new(), Some("text/turtle"), true).is_err());
    }
}
