//! Reading a JWS compact serialization (RFC 7515 §7.1) and checking its protected header,
//! before any key is looked at.
//!
//! The header is read here rather than by `jsonwebtoken`, so that every member is seen: the
//! members that would let a token choose its own key (`jwk`, `jku`, `x5u`, `x5c`) are refused,
//! not ignored, because a verifier that later starts to follow them would turn every such token
//! into a forgery; `crit` is refused because no extension is understood (§4.1.11).

use super::json::strict_object;
use super::keys::valid_kid;
use super::Algorithm;
use crate::smart::TokenRejection;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

pub(crate) const MALFORMED: TokenRejection =
    TokenRejection::invalid_token("the token is malformed");
const ENCRYPTED: TokenRejection =
    TokenRejection::invalid_token("encrypted tokens (JWE) are not accepted");
const UNSIGNED: TokenRejection = TokenRejection::invalid_token("the token is not signed");
const ALGORITHM: TokenRejection =
    TokenRejection::invalid_token("the token's signature algorithm is not accepted");
const EMBEDDED_KEY: TokenRejection =
    TokenRejection::invalid_token("the token names its own key, which is never trusted");
const EXTENSIONS: TokenRejection =
    TokenRejection::invalid_token("the token uses header extensions that are not understood");
const NESTED: TokenRejection = TokenRejection::invalid_token("nested tokens are not accepted");
const TYPE: TokenRejection = TokenRejection::invalid_token("the token type is not accepted");

/// Header members that carry a key or say where to fetch one. Never followed.
const KEY_MEMBERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];
/// Members that only make sense with `crit` (RFC 7797 `b64`) or in a JWE (RFC 7516 §4.1).
const EXTENSION_MEMBERS: [&str; 4] = ["crit", "b64", "enc", "zip"];

/// A JWS whose header has passed the checks, ready for a key.
pub(crate) struct Jws<'t> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    /// `BASE64URL(header) "." BASE64URL(payload)`, the bytes the signature covers.
    pub(crate) signing_input: &'t str,
    pub(crate) signature: Vec<u8>,
    pub(crate) claims: Map<String, Value>,
}

/// What the header must satisfy.
pub(crate) struct HeaderRules<'a> {
    pub(crate) algorithms: &'a [Algorithm],
    /// The required `typ` (RFC 7515 §4.1.9), if one is configured.
    pub(crate) typ: Option<&'a str>,
}

/// Splits, decodes and checks a compact JWS. Nothing here is trusted yet: the claims are only
/// parsed, and checked after the signature.
pub(crate) fn parse<'t>(
    token: &'t str,
    rules: &HeaderRules<'_>,
) -> Result<Jws<'t>, TokenRejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(MALFORMED);
    };
    match parts.count() {
        0 => {}
        2 => return Err(ENCRYPTED),
        _ => return Err(MALFORMED),
    }
    let signing_input = token
        .get(..header.len() + 1 + payload.len())
        .ok_or(MALFORMED)?;

    let header = decode(header)
        .and_then(|h| strict_object(&h))
        .ok_or(MALFORMED)?;
    let (alg, kid) = check_header(&header, rules)?;
    if signature.is_empty() {
        return Err(UNSIGNED);
    }
    let claims = decode(payload)
        .and_then(|p| strict_object(&p))
        .ok_or(MALFORMED)?;
    let signature = decode(signature).ok_or(MALFORMED)?;
    Ok(Jws {
        alg,
        kid,
        signing_input,
        signature,
        claims,
    })
}

fn check_header(
    header: &Map<String, Value>,
    rules: &HeaderRules<'_>,
) -> Result<(Algorithm, Option<String>), TokenRejection> {
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name)
        .filter(|alg| rules.algorithms.contains(alg))
        .ok_or(ALGORITHM)?;
    if KEY_MEMBERS.iter().any(|m| header.contains_key(*m)) {
        return Err(EMBEDDED_KEY);
    }
    if header.contains_key("enc") {
        return Err(ENCRYPTED);
    }
    if EXTENSION_MEMBERS.iter().any(|m| header.contains_key(*m)) {
        return Err(EXTENSIONS);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if valid_kid(kid) => Some(kid.clone()),
        Some(_) => return Err(MALFORMED),
    };
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(typ)) => Some(typ.as_str()),
        Some(_) => return Err(MALFORMED),
    };
    if let Some(expected) = rules.typ {
        if !typ.is_some_and(|typ| media_type_eq(typ, expected)) {
            return Err(TYPE);
        }
    }
    match header.get("cty") {
        None => {}
        Some(Value::String(cty)) if media_type_eq(cty, "JWT") => return Err(NESTED),
        Some(Value::String(_)) => {}
        Some(_) => return Err(MALFORMED),
    }
    Ok((alg, kid))
}

/// RFC 7515 §4.1.9: media types compare case-insensitively, and a value without `/` is
/// read as if `application/` were prepended.
pub(crate) fn media_type_eq(given: &str, expected: &str) -> bool {
    fn subtype(media_type: &str) -> Option<&str> {
        match media_type.split_once('/') {
            None => Some(media_type),
            Some((top, sub)) if top.eq_ignore_ascii_case("application") => Some(sub),
            Some(_) => None,
        }
    }
    matches!((subtype(given), subtype(expected)), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
}

/// Unpadded base64url with canonical trailing bits; anything else is refused.
fn decode(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn token(header: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(r#"{"exp":1}"#))
    }

    fn check(header: &str) -> Result<(), &'static str> {
        let rules = HeaderRules {
            algorithms: &Algorithm::DEFAULT_ALLOWED,
            typ: Some("at+jwt"),
        };
        parse(&token(header), &rules)
            .map(|_| ())
            .map_err(|r| r.reason)
    }

    #[test]
    fn rfc7515_header_rules() {
        assert_eq!(check(r#"{"alg":"RS256","typ":"at+jwt"}"#), Ok(()));
        assert_eq!(
            check(r#"{"alg":"RS256","typ":"application/AT+JWT"}"#),
            Ok(())
        );
        assert_eq!(
            check(r#"{"alg":"none","typ":"at+jwt"}"#),
            Err(ALGORITHM.reason)
        );
        assert_eq!(
            check(r#"{"alg":"HS256","typ":"at+jwt"}"#),
            Err(ALGORITHM.reason)
        );
        assert_eq!(check(r#"{"alg":"RS256"}"#), Err(TYPE.reason));
        assert_eq!(check(r#"{"alg":"RS256","typ":"JWT"}"#), Err(TYPE.reason));
        assert_eq!(
            check(r#"{"alg":"RS256","typ":"text/at+jwt"}"#),
            Err(TYPE.reason)
        );
        for member in ["jwk", "jku", "x5u", "x5c"] {
            let header = format!(r#"{{"alg":"RS256","typ":"at+jwt","{member}":"x"}}"#);
            assert_eq!(check(&header), Err(EMBEDDED_KEY.reason), "{member}");
        }
        assert_eq!(
            check(r#"{"alg":"RS256","typ":"at+jwt","crit":["x"],"x":1}"#),
            Err(EXTENSIONS.reason)
        );
        assert_eq!(
            check(r#"{"alg":"RS256","typ":"at+jwt","b64":false}"#),
            Err(EXTENSIONS.reason)
        );
        assert_eq!(
            check(r#"{"alg":"RS256","typ":"at+jwt","enc":"A128GCM"}"#),
            Err(ENCRYPTED.reason)
        );
        assert_eq!(
            check(r#"{"alg":"RS256","typ":"at+jwt","cty":"jwt"}"#),
            Err(NESTED.reason)
        );
        assert_eq!(
            check(r#"{"alg":"RS256","typ":"at+jwt","kid":5}"#),
            Err(MALFORMED.reason)
        );
        assert_eq!(
            check(r#"{"alg":"RS256","alg":"RS256","typ":"at+jwt"}"#),
            Err(MALFORMED.reason)
        );
    }

    #[test]
    fn rfc7515_7_1_compact_form() {
        let rules = HeaderRules {
            algorithms: &Algorithm::DEFAULT_ALLOWED,
            typ: None,
        };
        let h = b64(r#"{"alg":"RS256"}"#);
        let p = b64("{}");
        let reason = |t: &str| parse(t, &rules).err().map(|r| r.reason);
        assert_eq!(reason(&format!("{h}.{p}.c2ln")), None);
        assert_eq!(reason(&format!("{h}.{p}")), Some(MALFORMED.reason));
        assert_eq!(reason(&format!("{h}.{p}.")), Some(UNSIGNED.reason));
        assert_eq!(reason(&format!("{h}.{p}.c2ln.x")), Some(MALFORMED.reason));
        assert_eq!(reason(&format!("{h}.{p}.a.b.c")), Some(ENCRYPTED.reason));
        assert_eq!(reason(&format!("{h}.{p}.c2ln=")), Some(MALFORMED.reason));
        // Non-canonical trailing bits would make two spellings of one signature.
        assert_eq!(reason(&format!("{h}.{p}.c2lnQQ")), None);
        assert_eq!(reason(&format!("{h}.{p}.c2lnQR")), Some(MALFORMED.reason));
        assert_eq!(reason(&format!("{h}=.{p}.c2ln")), Some(MALFORMED.reason));
        assert_eq!(reason(""), Some(MALFORMED.reason));
    }
}
