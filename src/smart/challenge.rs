//! RFC 6750 §3 refusals: status, `WWW-Authenticate` challenge and an `OperationOutcome` body
//! that says what was wrong without revealing keys or token contents.
//!
//! | refusal | status | challenge |
//! |---|---|---|
//! | no token | 401 | `Bearer realm="..."` |
//! | invalid, expired or unbound token | 401 | `Bearer realm="...", error="invalid_token", error_description="..."` |
//! | malformed request (token in the query ...) | 400 | `Bearer realm="...", error="invalid_request", ...` |
//! | too few scopes | 403 | `Bearer realm="...", error="insufficient_scope", scope="<needed>"` |
//! | other refusals (another patient, hidden resource, unchecked response) | 403 / 404 / 502 | none |

use super::decision::{Refusal, RefusalKind};
use crate::fhir::{Issue, IssueType, OperationOutcome};
use bytes::Bytes;
use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::Response;
use http_body_util::Full;

/// Whether `text` may go in a quoted-string of an RFC 6750 challenge attribute
/// (`%x20-21 / %x23-5B / %x5D-7E`).
fn is_challenge_text(text: &str) -> bool {
    text.bytes()
        .all(|b| b == 0x20 || b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// A realm with the characters a quoted-string can't hold removed.
pub(crate) fn clean_realm(realm: &str) -> String {
    realm
        .chars()
        .filter(|&c| matches!(c as u32, 0x20 | 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        .collect()
}

/// The `WWW-Authenticate` value for a refusal, if it has one.
pub(crate) fn challenge(refusal: &Refusal, realm: &str) -> Option<String> {
    let error = match refusal.kind {
        RefusalKind::NoToken => return Some(format!("Bearer realm=\"{realm}\"")),
        RefusalKind::InvalidToken => "invalid_token",
        RefusalKind::InvalidRequest => "invalid_request",
        RefusalKind::InsufficientScope => "insufficient_scope",
        _ => return None,
    };
    let mut value = format!("Bearer realm=\"{realm}\", error=\"{error}\"");
    if is_challenge_text(&refusal.text) {
        value.push_str(&format!(", error_description=\"{}\"", refusal.text));
    }
    if let Some(scope) = refusal
        .needed_scope
        .as_deref()
        .filter(|s| is_challenge_text(s))
    {
        value.push_str(&format!(", scope=\"{scope}\""));
    }
    Some(value)
}

fn issue_type(refusal: &Refusal) -> IssueType {
    match refusal.kind {
        RefusalKind::NoToken => IssueType::Login,
        RefusalKind::InvalidToken => IssueType::Security,
        RefusalKind::InvalidRequest => IssueType::Invalid,
        RefusalKind::Unavailable => IssueType::Transient,
        RefusalKind::InsufficientScope | RefusalKind::Forbidden => IssueType::Forbidden,
        RefusalKind::Hidden if refusal.status == http::StatusCode::NOT_FOUND => IssueType::NotFound,
        RefusalKind::Hidden => IssueType::Forbidden,
        RefusalKind::TooLarge => IssueType::TooLong,
        _ => IssueType::Exception,
    }
}

/// The refusal as a response.
pub fn refusal_response(refusal: &Refusal, realm: &str) -> Response<Full<Bytes>> {
    let code = issue_type(refusal);
    let mut outcome = OperationOutcome::error(code, refusal.text.clone());
    for (index, text) in &refusal.entries {
        outcome.push(
            Issue::error(code, text.clone()).with_expression(format!("Bundle.entry[{index}]")),
        );
    }
    let mut response = outcome.into_response(refusal.status);
    if let Some(value) = challenge(refusal, realm).and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        // RFC 6750 §3.
        let realm = "fhir";
        assert_eq!(
            challenge(&Refusal::new(RefusalKind::NoToken, "x"), realm).unwrap(),
            "Bearer realm=\"fhir\""
        );
        let c = challenge(
            &Refusal::insufficient("patient/Observation.rs".into()),
            realm,
        )
        .unwrap();
        assert!(c.contains("error=\"insufficient_scope\""));
        assert!(c.contains("scope=\"patient/Observation.rs\""));
        assert!(challenge(&Refusal::forbidden("x"), realm).is_none());
        assert_eq!(clean_realm("a\"b\\c é"), "abc ");
    }
}
