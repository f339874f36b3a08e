//! Claim checks shared by signed tokens and introspection answers: the time window (RFC 7519
//! §4.1.4, §4.1.5, §4.1.6), the issuer (§4.1.1) and the audience (§4.1.3).

use super::json::numeric_date;
use crate::smart::TokenRejection;
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

const EXPIRED: TokenRejection = TokenRejection::invalid_token("the token has expired");
const NO_EXPIRY: TokenRejection = TokenRejection::invalid_token("the token has no expiry");
const NOT_YET: TokenRejection = TokenRejection::invalid_token("the token is not valid yet");
const FUTURE: TokenRejection = TokenRejection::invalid_token("the token was issued in the future");
const BAD_TIME: TokenRejection =
    TokenRejection::invalid_token("the token has a malformed time claim");
const ISSUER: TokenRejection = TokenRejection::invalid_token("the token issuer is not accepted");
const AUDIENCE: TokenRejection =
    TokenRejection::invalid_token("the token audience does not include this server");

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks `exp`, `nbf` and `iat` against `now`, each with `leeway` seconds of clock skew, and
/// returns `exp`. A present claim that is not a NumericDate is refused.
pub(crate) fn check_times(
    claims: &Map<String, Value>,
    now: u64,
    leeway: u64,
    exp_required: bool,
) -> Result<Option<u64>, TokenRejection> {
    let date = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(v) => numeric_date(v).map(Some).ok_or(BAD_TIME),
    };
    let exp = date("exp")?;
    let nbf = date("nbf")?;
    let iat = date("iat")?;
    match exp {
        None if exp_required => return Err(NO_EXPIRY),
        Some(exp) if exp.saturating_add(leeway) <= now => return Err(EXPIRED),
        _ => {}
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(NOT_YET);
    }
    if iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(FUTURE);
    }
    Ok(exp)
}

/// `iss` must be present and equal `issuer` (RFC 7519 §4.1.1: case-sensitive string compare).
/// With `required` false an absent `iss` passes.
pub(crate) fn check_issuer(
    claims: &Map<String, Value>,
    issuer: &str,
    required: bool,
) -> Result<(), TokenRejection> {
    match claims.get("iss") {
        None if !required => Ok(()),
        Some(Value::String(iss)) if iss == issuer => Ok(()),
        _ => Err(ISSUER),
    }
}

/// `aud` (a string, or an array of strings) must name one of `audiences` (RFC 7519 §4.1.3).
/// With `required` false an absent `aud` passes.
pub(crate) fn check_audience(
    claims: &Map<String, Value>,
    audiences: &[String],
    required: bool,
) -> Result<(), TokenRejection> {
    let ours = |aud: &str| audiences.iter().any(|a| a == aud);
    match claims.get("aud") {
        None if !required => Ok(()),
        Some(Value::String(aud)) if ours(aud) => Ok(()),
        Some(Value::Array(auds)) if auds.iter().filter_map(Value::as_str).any(ours) => {
            // Every member must be a string, or the claim is malformed.
            if auds.iter().all(Value::is_string) {
                Ok(())
            } else {
                Err(AUDIENCE)
            }
        }
        _ => Err(AUDIENCE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn rfc7519_4_1_4_to_6_time_window_with_leeway() {
        let now = 1_000_000;
        let ok = |c: Value| check_times(&claims(c), now, 60, true);
        assert_eq!(ok(json!({"exp": now + 1})), Ok(Some(now + 1)));
        assert_eq!(ok(json!({"exp": now - 59})), Ok(Some(now - 59)));
        assert_eq!(ok(json!({"exp": now - 60})), Err(EXPIRED));
        assert_eq!(ok(json!({})), Err(NO_EXPIRY));
        assert_eq!(ok(json!({"exp": "soon"})), Err(BAD_TIME));
        assert_eq!(
            ok(json!({"exp": now + 10, "nbf": now + 60})),
            Ok(Some(now + 10))
        );
        assert_eq!(ok(json!({"exp": now + 10, "nbf": now + 61})), Err(NOT_YET));
        assert_eq!(ok(json!({"exp": now + 10, "iat": now + 61})), Err(FUTURE));
        assert_eq!(ok(json!({"exp": now + 10, "iat": -5})), Err(BAD_TIME));
        assert_eq!(check_times(&claims(json!({})), now, 60, false), Ok(None));
    }

    #[test]
    fn rfc7519_4_1_1_and_4_1_3_issuer_and_audience() {
        let aud = ["https://fhir.example/r4".to_owned()];
        let c = |v: Value| claims(v);
        assert!(check_issuer(&c(json!({"iss": "https://as"})), "https://as", true).is_ok());
        assert!(check_issuer(&c(json!({"iss": "https://AS"})), "https://as", true).is_err());
        assert!(check_issuer(&c(json!({})), "https://as", true).is_err());
        assert!(check_issuer(&c(json!({})), "https://as", false).is_ok());
        assert!(check_issuer(&c(json!({"iss": ["https://as"]})), "https://as", true).is_err());
        assert!(check_audience(&c(json!({"aud": "https://fhir.example/r4"})), &aud, true).is_ok());
        assert!(check_audience(
            &c(json!({"aud": ["x", "https://fhir.example/r4"]})),
            &aud,
            true
        )
        .is_ok());
        assert!(check_audience(
            &c(json!({"aud": ["x", 1, "https://fhir.example/r4"]})),
            &aud,
            true
        )
        .is_err());
        assert!(
            check_audience(&c(json!({"aud": "https://fhir.example/r4/"})), &aud, true).is_err()
        );
        assert!(check_audience(&c(json!({"aud": []})), &aud, true).is_err());
        assert!(check_audience(&c(json!({})), &aud, true).is_err());
        assert!(check_audience(&c(json!({})), &aud, false).is_ok());
    }
}
