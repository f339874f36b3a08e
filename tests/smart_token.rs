//! Signed-token verification with static keys: the forged-token corpus in
//! tests/data/forged_tokens.txt (RFC 8725 "JWT Best Current Practices" and the attacks it
//! lists), keys from PEM and JWK Sets, the verified-token cache, and the HMAC rules.
#![cfg(feature = "smart")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod smart_token_support;

use fhirwall::smart::token::{Algorithm, BuildError, JwtVerifier, Key, KeyError, KeySet, KeyType};
use fhirwall::smart::{TokenRejectionKind, VerifyToken};
use serde_json::{json, Value};
use smart_token_support::*;
use std::sync::Arc;

/// Expands `$now`, `$now+N`, `$now-N`, `$jwk:SIGNER` and `$repeat:C:N` in a corpus value.
fn expand(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$now") {
            let sign = after.chars().next();
            let digits: String = after
                .chars()
                .skip(1)
                .take_while(char::is_ascii_digit)
                .collect();
            let now = now() as i64;
            let (value, used) = match sign {
                Some('+') if !digits.is_empty() => {
                    (now + digits.parse::<i64>().unwrap(), 1 + digits.len())
                }
                Some('-') if !digits.is_empty() => {
                    (now - digits.parse::<i64>().unwrap(), 1 + digits.len())
                }
                _ => (now, 0),
            };
            out.push_str(&value.to_string());
            rest = &after[used..];
        } else if let Some(after) = rest.strip_prefix("$jwk:") {
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            out.push_str(&public_jwk(&name).to_string());
            rest = &after[name.len()..];
        } else if let Some(after) = rest.strip_prefix("$repeat:") {
            let mut chars = after.chars();
            let c = chars.next().unwrap();
            assert_eq!(chars.next(), Some(':'));
            let digits: String = chars.take_while(char::is_ascii_digit).collect();
            let n: usize = digits.parse().unwrap();
            out.push_str(&json!(c.to_string().repeat(n)).to_string());
            rest = &after[c.len_utf8() + 1 + digits.len()..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

fn public_jwk(signer: &str) -> Value {
    let k = keys();
    match signer {
        "rs256" => jwk(&k.rsa, jsonwebtoken::Algorithm::RS256, "rsa-1", true),
        "attacker-rs256" => jwk(
            &k.rsa_other,
            jsonwebtoken::Algorithm::RS256,
            "attacker",
            true,
        ),
        "es256" => jwk(&k.ec256, jsonwebtoken::Algorithm::ES256, "ec-256", true),
        other => panic!("no public JWK for {other:?}"),
    }
}

fn apply(map: &mut serde_json::Map<String, Value>, op: &str, line: &str) {
    if let Some((name, value)) = op.split_once('=') {
        let value = serde_json::from_str(&expand(value))
            .unwrap_or_else(|e| panic!("{line}: bad JSON in {op:?}: {e}"));
        map.insert(name.to_owned(), value);
    } else if let Some(name) = op.strip_suffix('-') {
        map.remove(name);
    } else {
        panic!("{line}: bad mutation {op:?}");
    }
}

fn mutate_signature(token: &str, op: &str) -> String {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let bytes = base64_decode(signature);
    let signature = match op {
        "zero" => b64(vec![0u8; bytes.len()]),
        "strip" => String::new(),
        "truncate" => signature[..signature.len() - 8].to_owned(),
        "flip" => {
            let mut bytes = bytes;
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
            b64(bytes)
        }
        "append" => format!("{signature}AAAA"),
        "pad" => format!("{signature}=="),
        other => panic!("bad sig= {other:?}"),
    };
    format!("{input}.{signature}")
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn mutate_form(token: &str, op: &str, signer: &Signer) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    match op {
        "garbage-header" => format!("!!!!.{p}.{s}"),
        "garbage-payload" => format!("{h}.%%%%.{s}"),
        "garbage-signature" => format!("{h}.{p}.****"),
        "pad-header" => format!("{h}=.{p}.{s}"),
        "empty" => String::new(),
        "space" => format!("{h}.{} {}.{s}", &p[..p.len() / 2], &p[p.len() / 2..]),
        "swap-payload" => {
            let mut claims = default_claims();
            claims.insert("patient".into(), json!("456"));
            let _ = signer;
            format!("{h}.{}.{s}", b64(Value::Object(claims).to_string()))
        }
        segments if segments.starts_with("segments:") => {
            let n: usize = segments["segments:".len()..].parse().unwrap();
            let mut out = vec![h, p, s];
            while out.len() < n {
                out.push(s);
            }
            out.truncate(n);
            out.join(".")
        }
        other => panic!("bad form= {other:?}"),
    }
}

struct Case {
    line: String,
    name: String,
    expect: String,
    token: String,
    why: String,
}

fn corpus() -> Vec<Case> {
    let text = include_str!("data/forged_tokens.txt");
    let mut cases = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(
            cols.len() == 5,
            "{line}: want 5 columns, got {}",
            cols.len()
        );
        let (name, expect, signer_name, mutations, why) =
            (cols[0], cols[1], cols[2], cols[3], cols[4]);
        let signer = named_signer(signer_name);
        let mut header = default_header(&signer);
        let mut claims = default_claims();
        let (mut header_text, mut claims_text) = (None, None);
        let (mut sig_ops, mut form_ops) = (Vec::new(), Vec::new());
        for op in mutations
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if let Some(raw) = op.strip_prefix("hraw=") {
                header_text = Some(expand(raw));
            } else if let Some(raw) = op.strip_prefix("craw=") {
                claims_text = Some(expand(raw));
            } else if let Some(m) = op.strip_prefix("h.") {
                apply(&mut header, m, line);
            } else if let Some(m) = op.strip_prefix("c.") {
                apply(&mut claims, m, line);
            } else if let Some(m) = op.strip_prefix("sig=") {
                sig_ops.push(m);
            } else if let Some(m) = op.strip_prefix("form=") {
                form_ops.push(m);
            } else {
                panic!("{line}: unknown mutation {op:?}");
            }
        }
        let header_text = header_text.unwrap_or_else(|| Value::Object(header).to_string());
        let claims_text = claims_text.unwrap_or_else(|| Value::Object(claims).to_string());
        let mut token = token_from_texts(&signer, &header_text, &claims_text);
        for op in sig_ops {
            token = mutate_signature(&token, op);
        }
        for op in form_ops {
            token = mutate_form(&token, op, &signer);
        }
        cases.push(Case {
            line: line.to_owned(),
            name: name.to_owned(),
            expect: expect.to_owned(),
            token,
            why: why.to_owned(),
        });
    }
    cases
}

fn kind_name(kind: TokenRejectionKind) -> &'static str {
    match kind {
        TokenRejectionKind::InvalidToken => "invalid_token",
        TokenRejectionKind::InvalidRequest => "invalid_request",
        TokenRejectionKind::Unavailable => "unavailable",
        _ => "other",
    }
}

/// RFC 8725 §2-§3 and RFC 7515/7519: every forgery in the corpus is refused with the right
/// kind and reason, and every valid token (RS*, PS*, ES256, ES384, EdDSA) is accepted.
#[test]
fn rfc8725_forged_token_corpus() {
    let verifier = corpus_verifier();
    let cases = corpus();
    assert!(cases.len() >= 100, "the corpus shrank to {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let outcome = ready(verifier.verify(&case.token));
        let got = match &outcome {
            Ok(claims) => {
                assert_eq!(claims.get_str("patient"), Some("123"), "{}", case.line);
                "ok".to_owned()
            }
            Err(rejection) => {
                if !rejection.reason.contains(case.why.as_str()) {
                    failures.push(format!(
                        "{}: reason {:?} lacks {:?}",
                        case.name, rejection.reason, case.why
                    ));
                }
                kind_name(rejection.kind).to_owned()
            }
        };
        if got != case.expect {
            failures.push(format!(
                "{}: expected {}, got {got} ({outcome:?})",
                case.name, case.expect
            ));
        }
        // A refused token is never cached; an accepted one is answered from the cache next,
        // unless its `exp` has passed (accepted within the leeway, but never cached past `exp`).
        let live = matches!(&outcome, Ok(c) if c.expires_at().unwrap() > now());
        match verifier.verify_cached(&case.token) {
            Some(Ok(_)) if !live => failures.push(format!("{}: cached", case.name)),
            None if live => failures.push(format!("{}: not cached", case.name)),
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// PEM public keys (SubjectPublicKeyInfo) of every supported type verify their own
/// algorithms, and only those (RFC 8725 §3.1: the key fixes the algorithm).
#[test]
fn pem_keys_verify_their_own_algorithms_only() {
    let k = keys();
    let pem_set = |pem: String| KeySet::from_pem(&pem).unwrap();
    let cases = [
        (
            pem_set(k.rsa.public_key_pem()),
            KeyType::Rsa,
            vec!["rs256", "rs384", "rs512", "ps256", "ps384", "ps512"],
        ),
        (
            pem_set(k.ec256.public_key_pem()),
            KeyType::EcP256,
            vec!["es256"],
        ),
        (
            pem_set(k.ec384.public_key_pem()),
            KeyType::EcP384,
            vec!["es384"],
        ),
        (
            pem_set(k.ed.public_key_pem()),
            KeyType::Ed25519,
            vec!["eddsa"],
        ),
    ];
    let all = [
        "rs256", "rs384", "rs512", "ps256", "ps384", "ps512", "es256", "es384", "eddsa",
    ];
    for (set, key_type, accepted) in cases {
        assert_eq!(set.iter().next().unwrap().key_type(), key_type);
        assert_eq!(set.iter().next().unwrap().kid(), None);
        let verifier = JwtVerifier::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .keys(set)
            .cache_capacity(0)
            .build()
            .unwrap();
        for signer in all {
            // A key without kid matches any kid the token names.
            let result = ready(verifier.verify(&valid_token(signer, json!({}))));
            assert_eq!(
                result.is_ok(),
                accepted.contains(&signer),
                "{key_type:?} {signer}: {result:?}"
            );
        }
    }
}

#[test]
fn pem_refusals() {
    let k = keys();
    assert_eq!(
        Key::from_pem(&k.rsa.serialize_pem()).unwrap_err(),
        KeyError::PrivateKey
    );
    assert_eq!(
        Key::from_pem(&k.ec256.serialize_pem()).unwrap_err(),
        KeyError::PrivateKey
    );
    let p521 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    assert_eq!(
        Key::from_pem(&p521.public_key_pem()).unwrap_err(),
        KeyError::BadPem
    );
    let garbled = k.ec256.public_key_pem().replace('A', "B");
    assert!(Key::from_pem(&garbled).is_err());
}

/// The verified-token cache: a repeated token is answered from the cache with the same
/// claims; expired tokens and refusals are never answered from it; capacity 0 turns it off.
#[test]
fn verified_token_cache() {
    let verifier = corpus_verifier();
    let token = valid_token("es256", json!({}));
    assert!(verifier.verify_cached(&token).is_none());
    let first = ready(verifier.verify(&token)).unwrap();
    let cached = verifier.verify_cached(&token).unwrap().unwrap();
    assert!(Arc::ptr_eq(&first, &cached));
    // Clones share the cache.
    assert!(verifier.clone().verify_cached(&token).is_some());

    let uncached = JwtVerifier::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(KeySet::from_jwks(&trusted_jwks().to_string()).unwrap())
        .cache_capacity(0)
        .build()
        .unwrap();
    assert!(ready(uncached.verify(&token)).is_ok());
    assert!(uncached.verify_cached(&token).is_none());

    // Oversized tokens are refused before hashing, even from the cache path.
    let huge = "a".repeat(fhirwall::smart::token::DEFAULT_MAX_TOKEN_LEN + 1);
    let refused = verifier.verify_cached(&huge).unwrap().unwrap_err();
    assert_eq!(refused.kind, TokenRejectionKind::InvalidToken);
}

/// RFC 8725 §3.1 and §3.5: HMAC only with an explicit secret of at least 256 bits, and
/// never alongside public keys or asymmetric algorithms.
#[test]
fn rfc8725_3_1_hmac_needs_a_danger_secret_and_never_mixes() {
    let base = || JwtVerifier::builder().issuer(ISSUER).audience(AUDIENCE);
    let jwks = || KeySet::from_jwks(&trusted_jwks().to_string()).unwrap();
    let err = |b: fhirwall::smart::token::JwtVerifierBuilder| b.build().unwrap_err();
    assert_eq!(
        err(base().keys(jwks()).algorithms([Algorithm::HS256])),
        BuildError::AlgorithmConfusion
    );
    assert_eq!(
        err(base()
            .keys(jwks())
            .algorithms([Algorithm::RS256, Algorithm::HS256])),
        BuildError::AlgorithmConfusion
    );
    let secret = [42u8; 32];
    assert_eq!(
        err(base().keys(jwks()).danger_hmac_secret(secret)),
        BuildError::SeveralKeySources
    );
    assert_eq!(
        err(base()
            .danger_hmac_secret(secret)
            .algorithms([Algorithm::HS256, Algorithm::RS256])),
        BuildError::AlgorithmConfusion
    );
    assert_eq!(
        err(base().danger_hmac_secret([1u8; 16])),
        BuildError::Key(KeyError::ShortSecret)
    );
    assert_eq!(
        err(base().algorithms([]).keys(jwks())),
        BuildError::NoAlgorithms
    );

    let hmac = base().danger_hmac_secret(secret).build().unwrap();
    let signer = Signer {
        kid: "hmac".into(),
        alg: Some(jsonwebtoken::Algorithm::HS256),
        key: Some(jsonwebtoken::EncodingKey::from_secret(&secret).unwrap()),
        header_alg: "HS256".into(),
    };
    let claims = Value::Object(default_claims()).to_string();
    let good = token_from_texts(&signer, r#"{"alg":"HS256"}"#, &claims);
    assert!(ready(hmac.verify(&good)).is_ok());
    // HS512 needs a 64-byte secret (RFC 7518 §3.2).
    let hs512 = Signer {
        alg: Some(jsonwebtoken::Algorithm::HS512),
        header_alg: "HS512".into(),
        ..signer
    };
    let short = token_from_texts(&hs512, r#"{"alg":"HS512"}"#, &claims);
    assert!(ready(hmac.verify(&short)).is_err());
    // An RS256 token is refused by an HMAC verifier.
    assert!(ready(hmac.verify(&valid_token("rs256", json!({})))).is_err());
    // The secret never shows in Debug.
    let debug = format!("{hmac:?}");
    assert!(!debug.contains("42, 42"), "{debug}");
}

#[test]
fn builder_requires_issuer_audience_and_keys() {
    let jwks = || KeySet::from_jwks(&trusted_jwks().to_string()).unwrap();
    assert_eq!(
        JwtVerifier::builder()
            .audience(AUDIENCE)
            .keys(jwks())
            .build()
            .unwrap_err(),
        BuildError::MissingIssuer
    );
    assert_eq!(
        JwtVerifier::builder()
            .issuer(ISSUER)
            .keys(jwks())
            .build()
            .unwrap_err(),
        BuildError::MissingAudience
    );
    assert_eq!(
        JwtVerifier::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build()
            .unwrap_err(),
        BuildError::MissingKeys
    );
}

/// Several audiences (a server reachable under two base URLs) are each accepted.
#[test]
fn rfc7519_4_1_3_several_configured_audiences() {
    let verifier = JwtVerifier::builder()
        .issuer(ISSUER)
        .audience("https://old.example/fhir")
        .audience(AUDIENCE)
        .keys(KeySet::from_jwks(&trusted_jwks().to_string()).unwrap())
        .build()
        .unwrap();
    assert!(ready(verifier.verify(&valid_token(
        "es256",
        json!({"aud": "https://old.example/fhir"})
    )))
    .is_ok());
    assert!(ready(verifier.verify(&valid_token("es256", json!({})))).is_ok());
    assert!(ready(verifier.verify(&valid_token(
        "es256",
        json!({"aud": "https://new.example/fhir"})
    )))
    .is_err());
}

/// Debug output holds no key material and no claim values (they can be personal data).
#[test]
fn debug_output_redacts_keys_and_claims() {
    let verifier = corpus_verifier();
    let debug = format!("{verifier:?}");
    let n = jwk(&keys().rsa, jsonwebtoken::Algorithm::RS256, "rsa-1", false)["n"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!debug.contains(&n[..20]), "{debug}");
    let claims = ready(verifier.verify(&valid_token(
        "es256",
        json!({"patient": "secret-patient-id"}),
    )))
    .unwrap();
    assert!(!format!("{claims:?}").contains("secret-patient-id"));
}
