//! Finding the bearer token of a request (RFC 6750 §2).
//!
//! Only the `Authorization` request header field (§2.1) is read. The URI query parameter
//! (§2.3) puts tokens into access logs, browser history and `Referer` headers, and a form body
//! (§2.2) is invisible to anything that does not buffer it; a request carrying `access_token` in
//! its query is refused as `invalid_request`, and a form-body token is never read (see
//! [`body_carries_access_token`] for layers that do buffer the body).

use crate::smart::{TokenRejection, TokenRejectionKind};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Uri};
use percent_encoding::percent_decode_str;

const QUERY_TOKEN: TokenRejection = TokenRejection {
    kind: TokenRejectionKind::InvalidRequest,
    reason: "access tokens are accepted only in the Authorization header",
};
const SEVERAL_HEADERS: TokenRejection = TokenRejection {
    kind: TokenRejectionKind::InvalidRequest,
    reason: "the request has more than one Authorization header",
};
const MALFORMED: TokenRejection = TokenRejection {
    kind: TokenRejectionKind::InvalidRequest,
    reason: "the Authorization header is not a well-formed bearer credential",
};

/// The bearer token of a request, from its single `Authorization: Bearer <token>` header.
///
/// - `Ok(None)`: no `Authorization` header, or one with another scheme (`Basic ...`): the
///   caller answers 401 with a bare `WWW-Authenticate: Bearer` challenge (RFC 6750 §3.1).
/// - `Err` with [`TokenRejectionKind::InvalidRequest`] (400): an `access_token` query parameter
///   (in any letter case, percent-encoded or not, with or without a header token: §2.3 is not
///   supported and §2 forbids using two methods), more than one `Authorization` header, or a
///   `Bearer` credential that is not `"Bearer" 1*SP b64token` (§2.1). The scheme name is
///   case-insensitive (RFC 9110 §11.1).
///
/// The token is returned as written; it is not decoded or checked here.
///
/// ```
/// use fhirwall::smart::token::bearer_token;
/// use fhirwall::smart::TokenRejectionKind;
/// use http::{HeaderMap, Uri};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", "bearer abc.def-ghi_jkl".parse().unwrap());
/// let uri: Uri = "/fhir/Patient/1".parse().unwrap();
/// assert_eq!(bearer_token(&headers, &uri).unwrap(), Some("abc.def-ghi_jkl"));
///
/// let uri: Uri = "/fhir/Patient/1?access_token=abc".parse().unwrap();
/// let refused = bearer_token(&HeaderMap::new(), &uri).unwrap_err();
/// assert_eq!(refused.kind, TokenRejectionKind::InvalidRequest);
/// ```
pub fn bearer_token<'a>(
    headers: &'a HeaderMap,
    uri: &Uri,
) -> Result<Option<&'a str>, TokenRejection> {
    if uri.query().is_some_and(form_has_access_token) {
        return Err(QUERY_TOKEN);
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(SEVERAL_HEADERS);
    }
    let bytes = value.as_bytes();
    let (scheme, rest) = match bytes.iter().position(|b| *b == b' ') {
        Some(space) => (bytes.get(..space), bytes.get(space + 1..)),
        None => (Some(bytes), None),
    };
    // Other schemes (`Basic`, `DPoP`...) may carry any octets; they are simply not ours.
    if !scheme.is_some_and(|s| s.eq_ignore_ascii_case(b"bearer")) {
        return Ok(None);
    }
    let rest = rest.ok_or(MALFORMED)?;
    let token = std::str::from_utf8(rest)
        .map_err(|_| MALFORMED)?
        .trim_start_matches(' ');
    if is_b64token(token) {
        Ok(Some(token))
    } else {
        Err(MALFORMED)
    }
}

/// Whether a request body is an `application/x-www-form-urlencoded` form carrying an
/// `access_token` parameter (RFC 6750 §2.2), for layers that buffer bodies (`POST _search`)
/// and want to refuse such requests with `invalid_request` rather than leave the token unread.
pub fn body_carries_access_token(headers: &HeaderMap, body: &[u8]) -> bool {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    // A body that is not UTF-8 cannot hold a parameter name we would match anyway.
    is_form && std::str::from_utf8(body).is_ok_and(form_has_access_token)
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 6750 §2.1).
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    // A table: tokens are long (a JWT is most of a kilobyte) and this runs on every request.
    !body.is_empty()
        && body
            .bytes()
            .all(|b| B64TOKEN.get(usize::from(b)).copied().unwrap_or(false))
}

// Evaluated at compile time, where an index out of range fails the build, not a request.
#[allow(clippy::indexing_slicing)]
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0u8;
    loop {
        table[b as usize] =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        if b == u8::MAX {
            break;
        }
        b += 1;
    }
    table
};

fn form_has_access_token(form: &str) -> bool {
    form.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        if name.contains('+') {
            let name = name.replace('+', " ");
            return decoded_is_access_token(&name);
        }
        decoded_is_access_token(name)
    })
}

fn decoded_is_access_token(name: &str) -> bool {
    let decoded = percent_decode_str(name).decode_utf8_lossy();
    decoded.trim().eq_ignore_ascii_case("access_token")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(values: &[&str], uri: &str) -> Result<Option<String>, TokenRejectionKind> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(AUTHORIZATION, v.parse().unwrap());
        }
        let uri: Uri = uri.parse().unwrap();
        bearer_token(&headers, &uri)
            .map(|t| t.map(str::to_owned))
            .map_err(|r| r.kind)
    }

    #[test]
    fn rfc6750_2_1_b64token_table_is_the_grammar() {
        for b in 0..=u8::MAX {
            let grammar =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(B64TOKEN[usize::from(b)], grammar, "byte {b}");
        }
    }

    #[test]
    fn rfc6750_2_1_header_syntax() {
        let ok = |t: &str| Ok(Some(t.to_owned()));
        assert_eq!(run(&["Bearer a.b.c"], "/x"), ok("a.b.c"));
        assert_eq!(run(&["BEARER a.b.c"], "/x"), ok("a.b.c"));
        assert_eq!(run(&["bEaReR   a+/b~c=="], "/x"), ok("a+/b~c=="));
        assert_eq!(run(&[], "/x"), Ok(None));
        assert_eq!(run(&["Basic dXNlcjpwYXNz"], "/x"), Ok(None));
        assert_eq!(
            run(&["Bearer"], "/x"),
            Err(TokenRejectionKind::InvalidRequest)
        );
        assert_eq!(
            run(&["Bearer "], "/x"),
            Err(TokenRejectionKind::InvalidRequest)
        );
        assert_eq!(
            run(&["Bearer ==="], "/x"),
            Err(TokenRejectionKind::InvalidRequest)
        );
        assert_eq!(
            run(&["Bearer a=b"], "/x"),
            Err(TokenRejectionKind::InvalidRequest)
        );
        assert_eq!(
            run(&["Bearer a b"], "/x"),
            Err(TokenRejectionKind::InvalidRequest)
        );
        assert_eq!(
            run(&["Bearer a,b"], "/x"),
            Err(TokenRejectionKind::InvalidRequest)
        );
        assert_eq!(run(&["Bearer\ta"], "/x"), Ok(None));
        let mut headers = HeaderMap::new();
        let latin1 = http::HeaderValue::from_bytes(b"Basic \xe9t\xe9").unwrap();
        headers.insert(AUTHORIZATION, latin1);
        assert_eq!(bearer_token(&headers, &"/x".parse().unwrap()), Ok(None));
        let latin1 = http::HeaderValue::from_bytes(b"Bearer \xe9t\xe9").unwrap();
        headers.insert(AUTHORIZATION, latin1);
        assert!(bearer_token(&headers, &"/x".parse().unwrap()).is_err());
    }

    #[test]
    fn rfc6750_2_one_method_and_one_header() {
        let invalid = Err(TokenRejectionKind::InvalidRequest);
        assert_eq!(run(&["Bearer a", "Bearer a"], "/x"), invalid);
        assert_eq!(run(&[], "/x?access_token=a"), invalid);
        assert_eq!(run(&["Bearer a"], "/x?_count=1&access_token=a"), invalid);
        assert_eq!(run(&[], "/x?ACCESS_TOKEN"), invalid);
        assert_eq!(run(&[], "/x?access%5Ftoken=a"), invalid);
        assert_eq!(run(&[], "/x?access_token+=a"), invalid);
        assert_eq!(run(&[], "/x?not_access_token=a"), Ok(None));
    }

    #[test]
    fn rfc6750_2_2_form_bodies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        assert!(body_carries_access_token(&headers, b"a=1&access_token=x"));
        assert!(!body_carries_access_token(&headers, b"a=1&b=2"));
        headers.insert(CONTENT_TYPE, "application/fhir+json".parse().unwrap());
        assert!(!body_carries_access_token(&headers, b"access_token=x"));
    }
}
