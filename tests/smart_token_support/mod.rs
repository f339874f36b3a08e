//! Test support for the token tests: keys generated once per test binary (rcgen), their JWKs,
//! and a token minter that can write any header, claims and signature an attacker could.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use rcgen::{KeyPair, PublicKeyData};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "https://fhir.test/r4";

pub struct TestKeys {
    pub rsa: KeyPair,
    pub rsa_other: KeyPair,
    pub ec256: KeyPair,
    pub ec256_other: KeyPair,
    pub ec384: KeyPair,
    pub ed: KeyPair,
}

pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| TestKeys {
        rsa: KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap(),
        rsa_other: KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap(),
        ec256: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        ec256_other: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        ec384: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        ed: KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
    })
}

/// Something that signs tokens: a key, the `alg` it writes, and the `kid` it claims.
pub struct Signer {
    pub kid: String,
    /// `None`: unsigned (`alg` defaults to `none`, empty signature).
    pub alg: Option<Algorithm>,
    pub key: Option<EncodingKey>,
    pub header_alg: String,
}

pub fn encoding_key(pair: &KeyPair) -> EncodingKey {
    let pem = pair.serialize_pem();
    if pair.is_compatible(&rcgen::PKCS_RSA_SHA256) {
        EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
    } else if pair.is_compatible(&rcgen::PKCS_ED25519) {
        EncodingKey::from_ed_pem(pem.as_bytes()).unwrap()
    } else {
        EncodingKey::from_ec_pem(pem.as_bytes()).unwrap()
    }
}

/// The public JWK of a key pair, with `kid`, and with `alg` unless `None`.
pub fn jwk(pair: &KeyPair, alg: Algorithm, kid: &str, with_alg: bool) -> Value {
    let raw = pair.public_key_raw();
    let mut value = match alg {
        Algorithm::EdDSA => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}),
        Algorithm::ES256 | Algorithm::ES384 => {
            let (crv, half) = if alg == Algorithm::ES256 {
                ("P-256", 32)
            } else {
                ("P-384", 48)
            };
            assert_eq!(raw.len(), 1 + 2 * half);
            json!({"kty": "EC", "crv": crv, "x": b64(&raw[1..1 + half]), "y": b64(&raw[1 + half..])})
        }
        _ => {
            let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding_key(pair), alg).unwrap();
            serde_json::to_value(jwk).unwrap()
        }
    };
    value["alg"] = json!(format!("{alg:?}"));
    let object = value.as_object_mut().unwrap();
    object.insert("kid".into(), json!(kid));
    if !with_alg {
        object.remove("alg");
    }
    value
}

/// The JWK Set the verifiers under test trust: one RSA key for RS* and PS* (no `alg`), one
/// P-256, one P-384 and one Ed25519 key.
pub fn trusted_jwks() -> Value {
    let k = keys();
    json!({"keys": [
        jwk(&k.rsa, Algorithm::RS256, "rsa-1", false),
        jwk(&k.ec256, Algorithm::ES256, "ec-256", true),
        jwk(&k.ec384, Algorithm::ES384, "ec-384", true),
        jwk(&k.ed, Algorithm::EdDSA, "ed-1", true),
    ]})
}

fn signer(kid: &str, alg: Algorithm, key: EncodingKey) -> Signer {
    Signer {
        kid: kid.into(),
        header_alg: format!("{alg:?}"),
        alg: Some(alg),
        key: Some(key),
    }
}

fn der_of_pem(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

/// The signers the corpus names.
pub fn named_signer(name: &str) -> Signer {
    let k = keys();
    let rsa = || encoding_key(&k.rsa);
    match name {
        "rs256" => signer("rsa-1", Algorithm::RS256, rsa()),
        "rs384" => signer("rsa-1", Algorithm::RS384, rsa()),
        "rs512" => signer("rsa-1", Algorithm::RS512, rsa()),
        "ps256" => signer("rsa-1", Algorithm::PS256, rsa()),
        "ps384" => signer("rsa-1", Algorithm::PS384, rsa()),
        "ps512" => signer("rsa-1", Algorithm::PS512, rsa()),
        "es256" => signer("ec-256", Algorithm::ES256, encoding_key(&k.ec256)),
        "es384" => signer("ec-384", Algorithm::ES384, encoding_key(&k.ec384)),
        "eddsa" => signer("ed-1", Algorithm::EdDSA, encoding_key(&k.ed)),
        "other-rs256" => signer("rsa-1", Algorithm::RS256, encoding_key(&k.rsa_other)),
        "other-es256" => signer("ec-256", Algorithm::ES256, encoding_key(&k.ec256_other)),
        "attacker-rs256" => signer("attacker", Algorithm::RS256, encoding_key(&k.rsa_other)),
        // Key confusion: the trusted RSA public key, in the forms an attacker can download,
        // used as an HMAC secret.
        "hs256-rsa-pem" => signer(
            "rsa-1",
            Algorithm::HS256,
            EncodingKey::from_secret(k.rsa.public_key_pem().as_bytes()).unwrap(),
        ),
        "hs256-rsa-der" => signer(
            "rsa-1",
            Algorithm::HS256,
            EncodingKey::from_secret(&der_of_pem(&k.rsa.public_key_pem())).unwrap(),
        ),
        "hs256-rsa-spki" => signer(
            "rsa-1",
            Algorithm::HS256,
            EncodingKey::from_secret(&k.rsa.subject_public_key_info()).unwrap(),
        ),
        "hs256-rsa-n" => {
            let n = jwk(&k.rsa, Algorithm::RS256, "rsa-1", false)["n"]
                .as_str()
                .unwrap()
                .to_owned();
            signer(
                "rsa-1",
                Algorithm::HS256,
                EncodingKey::from_secret(n.as_bytes()).unwrap(),
            )
        }
        "unsigned" => Signer {
            kid: "rsa-1".into(),
            alg: None,
            key: None,
            header_alg: "none".into(),
        },
        other => panic!("unknown signer {other:?}"),
    }
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header.payload` (both already base64url) with the signer; empty when unsigned.
pub fn sign_input(signer: &Signer, signing_input: &str) -> String {
    match (&signer.key, signer.alg) {
        (Some(key), Some(alg)) => {
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), key, alg).unwrap()
        }
        _ => String::new(),
    }
}

/// The default header a signer writes.
pub fn default_header(signer: &Signer) -> Map<String, Value> {
    let mut header = Map::new();
    header.insert("alg".into(), json!(signer.header_alg));
    header.insert("typ".into(), json!("at+jwt"));
    header.insert("kid".into(), json!(signer.kid));
    header
}

/// The default claims of a valid SMART access token for the verifiers under test.
pub fn default_claims() -> Map<String, Value> {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now + 3600,
        "iat": now,
        "sub": "user-1",
        "client_id": "app-1",
        "scope": "launch/patient patient/*.rs",
        "patient": "123",
    })
    .as_object()
    .unwrap()
    .clone()
}

/// A token from JSON texts: `BASE64URL(header).BASE64URL(claims).signature`.
pub fn token_from_texts(signer: &Signer, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = sign_input(signer, &input);
    format!("{input}.{signature}")
}

/// A valid token signed by a named signer, with these claims merged over the defaults.
pub fn valid_token(signer_name: &str, extra: Value) -> String {
    let signer = named_signer(signer_name);
    let mut claims = default_claims();
    for (k, v) in extra.as_object().unwrap() {
        claims.insert(k.clone(), v.clone());
    }
    token_from_texts(
        &signer,
        &Value::Object(default_header(&signer)).to_string(),
        &Value::Object(claims).to_string(),
    )
}

/// Polls a future once: verification with static keys never waits.
pub fn ready<T>(future: impl std::future::Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("verification with static keys must not wait"),
    }
}

/// The verifier the corpus runs against: the trusted JWK Set, `typ` `at+jwt` required.
pub fn corpus_verifier() -> fhirwall::smart::token::JwtVerifier {
    let keys = fhirwall::smart::token::KeySet::from_jwks(&trusted_jwks().to_string()).unwrap();
    assert_eq!(keys.len(), 4);
    fhirwall::smart::token::JwtVerifier::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .require_typ("at+jwt")
        .keys(keys)
        .build()
        .unwrap()
}
