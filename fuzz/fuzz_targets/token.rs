//! Token handling (`smart::token`): finding the bearer token (RFC 6750 §2.1), reading and
//! checking a JWS (RFC 7515 compact form, header rules, strict JSON with no duplicate names),
//! the claim checks (RFC 7519 `exp`/`nbf`/`iat`, `iss`, `aud`), JWK Sets (RFC 7517), and turning
//! verified claims into an access context (scopes, patient context, `fhirUser`).
//!
//! Two fixed verifiers: one with a static ES256 public key (nothing random may ever pass it),
//! one with an HMAC secret, so that structured header and claims JSON, signed here with the
//! secret, reach the checks that run after the signature.
//!
//! Invariants: no panic; static verification never waits; random strings never pass the
//! ES256 verifier; an accepted token has this issuer, one of the audiences and an `exp` not
//! past, and is then answered from the cache.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use fhirwall::smart::token::{bearer_token, Algorithm, JwtVerifier, KeySet};
use fhirwall::smart::{
    ContextConfig, MalformedScopes, PatientContextSource, TokenRejection, VerifiedClaims,
    VerifyToken,
};
use http::{Extensions, HeaderMap, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://auth.example.org";
const AUDIENCE: &str = "https://fhir.example.org/r4";
const SECRET: &[u8] = b"fhirwall-fuzz-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
/// A P-256 public key whose private half was thrown away when it was made.
const PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqRKdKsYfTqNlUSG+6qf/fx8x+66q
RmRIqpyd/sA0iZlCCe1sipz+MkGVb37GhYgmBnjTtEjYc/AxxuPPQJSJfQ==
-----END PUBLIC KEY-----";

const KEYS: &[&str] = &[
    "alg",
    "typ",
    "kid",
    "cty",
    "crit",
    "jwk",
    "jku",
    "x5u",
    "x5c",
    "enc",
    "zip",
    "b64",
    "iss",
    "aud",
    "exp",
    "nbf",
    "iat",
    "sub",
    "scope",
    "scp",
    "patient",
    "fhirUser",
    "client_id",
    "azp",
    "cnf",
    "x5t#S256",
    "context",
    "jti",
];
const STRINGS: &[&str] = &[
    ISSUER,
    AUDIENCE,
    "HS256",
    "HS384",
    "HS512",
    "ES256",
    "none",
    "JWT",
    "at+jwt",
    "application/at+jwt",
    "patient/*.rs",
    "launch/patient patient/Observation.rs?category=laboratory openid fhirUser",
    "user/*.cruds",
    "patient/Patient.read",
    "Patient/123",
    "123",
    "https://fhir.example.org/r4/Patient/9",
    "Practitioner/7",
    "",
];

struct Verifiers {
    es256: JwtVerifier,
    hmac: JwtVerifier,
}

fn verifiers() -> &'static Verifiers {
    static V: OnceLock<Verifiers> = OnceLock::new();
    V.get_or_init(|| Verifiers {
        es256: JwtVerifier::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .keys(KeySet::from_pem(PUBLIC_PEM).expect("the fuzz public key reads"))
            .build()
            .expect("the ES256 verifier builds"),
        hmac: JwtVerifier::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .audience("https://other.example.org/fhir")
            .danger_hmac_secret(SECRET)
            .cache_capacity(64)
            .build()
            .expect("the HMAC verifier builds"),
    })
}

/// A JSON value; objects are written member by member, so duplicate names survive.
#[derive(Arbitrary, Debug)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    /// Seconds from now: times near the present get past the claim checks.
    NowPlus(i16),
    Float(f64),
    Known(u8),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(K, J)>),
}

#[derive(Arbitrary, Debug)]
enum K {
    Known(u8),
    Other(String),
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

fn key(out: &mut String, k: &K) {
    match k {
        K::Known(i) => string(out, KEYS[usize::from(*i) % KEYS.len()]),
        K::Other(s) => string(out, s),
    }
}

fn write(out: &mut String, j: &J) {
    match j {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Int(i) => out.push_str(&i.to_string()),
        J::NowPlus(d) => out.push_str(&(now() + i64::from(*d)).to_string()),
        J::Float(f) if f.is_finite() => out.push_str(&f.to_string()),
        J::Float(_) => out.push_str("1e400"),
        J::Known(i) => string(out, STRINGS[usize::from(*i) % STRINGS.len()]),
        J::Str(s) => string(out, s),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, item);
            }
            out.push(']');
        }
        J::Obj(members) => members_of(out, members, ""),
    }
}

/// An object: `prefix` (already-written members) then `members`.
fn members_of(out: &mut String, members: &[(K, J)], prefix: &str) {
    out.push('{');
    out.push_str(prefix);
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 || !prefix.is_empty() {
            out.push(',');
        }
        key(out, k);
        out.push(':');
        write(out, v);
    }
    out.push('}');
}

#[derive(Arbitrary, Debug)]
enum Input {
    /// The `Authorization` header and query of a request.
    Bearer {
        authorization: Vec<Vec<u8>>,
        query: String,
    },
    /// Any token text, through both verifiers.
    Raw(String),
    /// Structured header and claims, signed with the secret.
    Signed {
        alg: u8,
        header_alg: bool,
        header: Vec<(K, J)>,
        standard_claims: bool,
        claims: Vec<(K, J)>,
        tamper: Option<u8>,
    },
    /// Arbitrary header and claims bytes, signed with the secret.
    SignedBytes { header: Vec<u8>, claims: Vec<u8> },
    /// A JWK Set document.
    Jwks(String),
    /// Claims as a verifier hands them on, straight to the access-context step.
    Claims(Vec<(K, J)>),
}

fn finish(
    future: std::pin::Pin<
        Box<dyn Future<Output = Result<Arc<VerifiedClaims>, TokenRejection>> + Send>,
    >,
) -> Result<Arc<VerifiedClaims>, TokenRejection> {
    let mut future = future;
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("static-key verification waited"),
    }
}

fn contexts(claims: &Arc<VerifiedClaims>) {
    let headers = HeaderMap::new();
    let extensions = Extensions::new();
    // Fresh configs each time: their grant caches (bounded, but kept for the process) would
    // otherwise make libFuzzer run a leak check on every input.
    let configs = [
        ContextConfig::new(),
        ContextConfig::new()
            .scope_claim("scp")
            .malformed_scopes(MalformedScopes::DropScope)
            .patient_contexts([
                PatientContextSource::claim("context.patient"),
                PatientContextSource::FhirUser,
            ]),
    ];
    for config in &configs {
        let first = config.build_shared(claims, &headers, &extensions);
        // The second answer comes from the grant cache and must be the same.
        let second = config.build_shared(claims, &headers, &extensions);
        assert_eq!(first.is_ok(), second.is_ok());
        if let (Ok(a), Ok(b)) = (&first, &second) {
            assert_eq!(a.patients(), b.patients());
            assert_eq!(a.scopes().to_string(), b.scopes().to_string());
            let _ = (a.client_id(), a.subject(), a.fhir_user());
            let _ = format!("{a:?}");
        }
        let third = config.build(claims, &headers, &extensions);
        assert_eq!(first.is_ok(), third.is_ok());
    }
    let _ = format!("{claims:?}");
}

fn check_accepted(token: &str, claims: &Arc<VerifiedClaims>, verifier: &JwtVerifier) {
    assert_eq!(claims.get_str("iss"), Some(ISSUER));
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => verifier.audiences().contains(a),
        Some(Value::Array(items)) => items.iter().any(|a| {
            a.as_str()
                .is_some_and(|a| verifier.audiences().iter().any(|x| x == a))
        }),
        _ => false,
    };
    assert!(aud_ok, "accepted a token for another audience");
    let exp = claims.expires_at().expect("an accepted token has exp");
    assert!(
        i64::try_from(exp).unwrap_or(i64::MAX) >= now() - 120,
        "accepted an expired token"
    );
    match verifier.verify_cached(token) {
        Some(Ok(cached)) => assert_eq!(cached.claims(), claims.claims()),
        Some(Err(_)) | None => panic!("an accepted token is not cached"),
    }
    contexts(claims);
}

fn sign(alg: Algorithm, header: &str, claims: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let jwt_alg = match alg {
        Algorithm::HS384 => jsonwebtoken::Algorithm::HS384,
        Algorithm::HS512 => jsonwebtoken::Algorithm::HS512,
        _ => jsonwebtoken::Algorithm::HS256,
    };
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET).expect("an HMAC key");
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, jwt_alg).expect("HMAC signing works");
    format!("{input}.{signature}")
}

fn verify_hmac(token: &str) {
    let v = &verifiers().hmac;
    if let Ok(claims) = finish(v.verify(token)) {
        check_accepted(token, &claims, v);
    }
}

fuzz_target!(|input: Input| {
    let v = verifiers();
    match input {
        Input::Bearer {
            authorization,
            query,
        } => {
            let mut headers = HeaderMap::new();
            for value in &authorization {
                if let Ok(value) = HeaderValue::from_bytes(value) {
                    headers.append(http::header::AUTHORIZATION, value);
                }
            }
            let Ok(uri) = format!("/fhir/Patient?{query}").parse::<Uri>() else {
                return;
            };
            if let Ok(Some(token)) = bearer_token(&headers, &uri) {
                assert!(!token.is_empty());
                assert!(finish(v.es256.verify(token)).is_err());
                verify_hmac(token);
            }
        }
        Input::Raw(token) => {
            assert!(
                finish(v.es256.verify(&token)).is_err(),
                "a random token passed"
            );
            verify_hmac(&token);
        }
        Input::Signed {
            alg,
            header_alg,
            header,
            standard_claims,
            claims,
            tamper,
        } => {
            let alg = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512][usize::from(alg % 3)];
            let mut head = String::new();
            let prefix = if header_alg {
                format!("\"alg\":\"{alg}\"")
            } else {
                String::new()
            };
            members_of(&mut head, &header, &prefix);
            let mut body = String::new();
            let prefix = if standard_claims {
                format!(
                    "\"iss\":\"{ISSUER}\",\"aud\":\"{AUDIENCE}\",\"exp\":{}",
                    now() + 300
                )
            } else {
                String::new()
            };
            members_of(&mut body, &claims, &prefix);
            let mut token = sign(alg, &head, body.as_bytes());
            if let Some(at) = tamper {
                // Any change to a signed token must make it fail.
                let at = usize::from(at) % token.len();
                let Some(c) = token.get(at..=at).and_then(|s| s.chars().next()) else {
                    return;
                };
                let swapped = if c == 'A' { 'B' } else { 'A' };
                token.replace_range(at..=at, &swapped.to_string());
                if let Ok(claims) = finish(v.hmac.verify(&token)) {
                    // Only a change the encoding cannot see (trailing bits) may still pass.
                    check_accepted(&token, &claims, &v.hmac);
                }
            } else {
                verify_hmac(&token);
            }
        }
        Input::SignedBytes { header, claims } => {
            let Ok(header) = String::from_utf8(header) else {
                return;
            };
            verify_hmac(&sign(Algorithm::HS256, &header, &claims));
        }
        Input::Jwks(text) => {
            if let Ok(set) = KeySet::from_jwks(&text) {
                assert!(!set.is_empty());
                for key in set.iter() {
                    let _ = (key.kid(), key.algorithm(), key.key_type());
                    let _ = format!("{key:?}");
                }
            }
        }
        Input::Claims(members) => {
            let mut text = String::new();
            members_of(&mut text, &members, "");
            if let Ok(map) = serde_json::from_str::<Map<String, Value>>(&text) {
                let claims = Arc::new(VerifiedClaims::new(map, None));
                contexts(&claims);
                let _ = (
                    claims.get_path("context.patient"),
                    claims.get_path("a.b.c.d"),
                );
            }
        }
    }
});
