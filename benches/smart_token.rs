//! Verifying a bearer token that is already in the verified-token cache, as a ratio against a
//! fresh RS256 and a fresh ES256 signature verification in the same run. Goals (issue #4):
//! cached under 1 µs; the ratios show what the cache saves.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout, clippy::panic)]

mod support;

use criterion::{criterion_group, Criterion};
use fhirwall::smart::token::{JwtVerifier, KeySet};
use fhirwall::smart::VerifyToken;
use serde_json::json;
use std::hint::black_box;

const ISSUER: &str = "https://auth.example.org";
const AUDIENCE: &str = "https://fhir.example.org/r4";

/// Static-key verification never waits: poll once.
fn ready<T>(future: impl std::future::Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("static key verification waited"),
    }
}

fn encoding_key(pair: &rcgen::KeyPair, alg: jsonwebtoken::Algorithm) -> jsonwebtoken::EncodingKey {
    let pem = pair.serialize_pem();
    match alg {
        jsonwebtoken::Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()),
        _ => jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()),
    }
    .unwrap()
}

/// A typical SMART access token (RFC 9068 claims plus SMART context).
fn token(
    key: &jsonwebtoken::EncodingKey,
    alg: jsonwebtoken::Algorithm,
    kid: &str,
    jti: u32,
) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "client_id": "growth-chart-app", "iat": now, "exp": now + 3600,
        "jti": format!("8b0f6f2c-52d5-4c43-9b55-{jti:012}"),
        "scope": "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs patient/Condition.rs",
        "patient": "123", "fhirUser": "https://fhir.example.org/r4/Patient/123",
    });
    let mut header = jsonwebtoken::Header::new(alg);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn verifier(keys: &KeySet, cache: bool) -> JwtVerifier {
    JwtVerifier::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .require_typ("at+jwt")
        .keys(keys.clone())
        .cache_capacity(if cache { 10_000 } else { 0 })
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let rs_key = fhirwall::smart::token::Key::from_pem(&rsa.public_key_pem())
        .unwrap()
        .with_kid("rsa")
        .unwrap();
    let ec_key = fhirwall::smart::token::Key::from_pem(&ec.public_key_pem())
        .unwrap()
        .with_kid("ec")
        .unwrap();
    let keys = KeySet::new([rs_key, ec_key]).unwrap();
    let rs_signing = encoding_key(&rsa, jsonwebtoken::Algorithm::RS256);
    let es_signing = encoding_key(&ec, jsonwebtoken::Algorithm::ES256);
    let rs_token = token(&rs_signing, jsonwebtoken::Algorithm::RS256, "rsa", 0);
    let es_token = token(&es_signing, jsonwebtoken::Algorithm::ES256, "ec", 0);

    let cached = verifier(&keys, true);
    ready(cached.verify(&rs_token)).unwrap();
    // Fill the cache with other clients' tokens, as a busy gateway's would be.
    for i in 1..=5_000 {
        let other = token(&es_signing, jsonwebtoken::Algorithm::ES256, "ec", i);
        ready(cached.verify(&other)).unwrap();
    }
    assert!(cached.verify_cached(&rs_token).is_some());
    let fresh = verifier(&keys, false);

    let mut group = c.benchmark_group("smart_token");
    group.bench_function("fresh_rs256", |b| {
        b.iter(|| ready(fresh.verify(black_box(&rs_token))).unwrap())
    });
    group.bench_function("fresh_es256", |b| {
        b.iter(|| ready(fresh.verify(black_box(&es_token))).unwrap())
    });
    group.bench_function("cached", |b| {
        b.iter(|| cached.verify_cached(black_box(&rs_token)).unwrap().unwrap())
    });
    // The floor of the cached path: the keyed SipHash of the token, which finds its entry.
    let keys = std::hash::RandomState::new();
    group.bench_function("siphash_of_token", |b| {
        b.iter(|| std::hash::BuildHasher::hash_one(&keys, black_box(rs_token.as_bytes())))
    });
    // What the cache was keyed by before (issue #4): the token's SHA-256.
    group.bench_function("sha256_of_token", |b| {
        b.iter(|| <sha2::Sha256 as sha2::Digest>::digest(black_box(rs_token.as_bytes())))
    });
    group.finish();
    println!(
        "token length: RS256 {} bytes, ES256 {} bytes",
        rs_token.len(),
        es_token.len()
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    support::report_ratio("smart_token", "cached", "fresh_rs256", 0.05);
    support::report_ratio("smart_token", "cached", "fresh_es256", 0.05);
    // How much the lookup and the constant-time comparison add to the hash they cannot avoid.
    support::report_ratio("smart_token", "cached", "siphash_of_token", 2.0);
    support::report_ratio("smart_token", "cached", "sha256_of_token", 1.0);
    match support::mean_ns("smart_token", "cached") {
        Some(ns) => {
            let verdict = if ns < 1000.0 { "meets" } else { "MISSES" };
            println!("absolute smart_token/cached = {ns:.0} ns; goal < 1000 ns: {verdict}");
        }
        None => {
            println!("absolute smart_token/cached: no estimate (run without --test to measure)")
        }
    }
}
