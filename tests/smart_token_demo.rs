//! The gateway's demo issuer (examples/support/smart_demo.rs): its tokens verify with its own
//! verifier and JWK Set, carry the SMART claims asked for, and nothing else verifies.
#![cfg(feature = "smart")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../examples/support/smart_demo.rs"]
mod smart_demo;

use fhirwall::smart::token::{JwtVerifier, KeySet};
use fhirwall::smart::VerifyToken;
use smart_demo::{DemoIssuer, DemoToken, DEMO_TOKEN_LIFETIME, LABORATORY};

const ISSUER: &str = "http://127.0.0.1:8080/demo-issuer";
const BASE: &str = "http://127.0.0.1:8080/fhir";

#[tokio::test]
async fn demo_tokens_verify_with_the_demo_verifier() {
    let demo = DemoIssuer::generate(ISSUER, BASE).unwrap();
    assert_eq!(
        demo.jwks_uri(),
        "http://127.0.0.1:8080/demo-issuer/jwks.json"
    );
    assert_eq!(demo.jwks_path(), "/demo-issuer/jwks.json");
    let verifier = demo.verifier();

    let token = demo.mint(&DemoToken::patient_app("example")).unwrap();
    let claims = verifier.verify(&token).await.unwrap();
    assert_eq!(claims.get_str("iss"), Some(ISSUER));
    assert_eq!(claims.get_str("aud"), Some(BASE));
    assert_eq!(claims.get_str("patient"), Some("example"));
    assert_eq!(claims.get_str("fhirUser"), Some("Patient/example"));
    assert_eq!(claims.get_str("client_id"), Some("demo-patient-app"));
    assert_eq!(
        claims.get_str("scope"),
        Some("launch/patient openid fhirUser patient/*.rs")
    );
    let iat = claims.get("iat").unwrap().as_u64().unwrap();
    assert_eq!(
        claims.expires_at(),
        Some(iat + DEMO_TOKEN_LIFETIME.as_secs())
    );

    let lab = verifier
        .verify(&demo.mint(&DemoToken::lab_system()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        lab.get_str("scope").unwrap(),
        format!("system/Observation.cs?category={LABORATORY}")
    );
    assert!(lab.get("patient").is_none());

    let custom = DemoToken::new("my-app")
        .scope("patient/Observation.rs")
        .patient("p2")
        .claim("context", serde_json::json!({"encounter": "e1"}));
    let custom = verifier.verify(&demo.mint(&custom).unwrap()).await.unwrap();
    assert_eq!(
        custom
            .get_path("context.encounter")
            .and_then(|v| v.as_str()),
        Some("e1")
    );

    for (who, token) in demo.sample_tokens("example").unwrap() {
        assert!(verifier.verify(&token).await.is_ok(), "{who}");
    }
}

/// The served JWK Set is all a separate verifier (a real SMART layer elsewhere) needs.
#[tokio::test]
async fn demo_jwks_verifies_demo_tokens_and_keys_differ_per_start() {
    let demo = DemoIssuer::generate(ISSUER, BASE).unwrap();
    let other = DemoIssuer::generate(ISSUER, BASE).unwrap();
    let from_jwks = JwtVerifier::builder()
        .issuer(ISSUER)
        .audience(BASE)
        .keys(KeySet::from_jwks(demo.jwks_json()).unwrap())
        .build()
        .unwrap();
    let token = demo.mint(&DemoToken::clinician("example")).unwrap();
    assert!(from_jwks.verify(&token).await.is_ok());
    // A token of another run (another key) is refused.
    let stale = other.mint(&DemoToken::clinician("example")).unwrap();
    assert!(demo.verifier().verify(&stale).await.is_err());
    assert!(!format!("{demo:?}").contains("PRIVATE"));
}
