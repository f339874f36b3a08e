#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The documented example policy (`examples/policy.toml`) loads, builds the whole stack, and
//! publishes the CapabilityStatement `rest.security` (FHIR R4 §3.1.0 CapabilityStatement,
//! SMART App Launch 2.2 §"Conformance") and `.well-known/smart-configuration`.

use axum::{routing::get, Router};
use fhirwall::firewall::TlsConnection;
use fhirwall::net::RemoteAddr;
use fhirwall::policy::{Policy, OAUTH_URIS_EXTENSION, SECURITY_SERVICE_SYSTEM};
use http::{Request, StatusCode};
use tower::ServiceExt;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml");

fn example() -> Policy {
    Policy::load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_example_covers_every_section() {
    let policy = example();
    let doc = policy.document();
    assert_eq!(doc.clients.len(), 2);
    assert!(doc.forwarded_certificates.is_some());
    assert!(doc.tokens.is_some());
    assert!(doc.smart_configuration.is_some());
    assert_eq!(doc.redaction.rules.len(), 2);
    assert_eq!(doc.routes.sunsets.len(), 1);
    assert!(!doc.audit.sinks.is_empty());
    assert!(doc.audit.salt.as_ref().unwrap().value().is_some());
    // The salt is secret: Debug shows that it is there, not what it is.
    assert!(!format!("{policy:?}").contains("demo-audit-salt"));
}

#[test]
fn the_example_builds_every_layer_in_order() {
    let stack = example().build().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        stack.layers(),
        vec![
            "audit",
            "firewall",
            "identity",
            "token gate",
            "classify",
            "smart",
            "firewall client rules",
            "limit",
            "validate",
            "redact",
            "audit capture"
        ]
    );
}

#[test]
fn per_layer_conversions_stand_alone() {
    let policy = example();
    let trust = policy.trust_policy().unwrap();
    assert_eq!(trust.client_names(), vec!["lab-ingest", "partner-portal"]);
    let routes = policy.route_inventory().unwrap();
    let listing = routes.listing();
    assert!(listing.iter().any(|r| r.contains("Patient")), "{listing:?}");
    assert!(
        listing.iter().any(|r| r.contains("MedicationRequest")),
        "{listing:?}"
    );
    assert!(policy.token_verifier().unwrap().is_some());
    assert!(policy.validate_config().is_ok());
    assert!(policy.redactor().is_ok());
    assert!(policy.budget_layer().is_ok());
    assert!(policy.firewall_layer().is_ok());
    assert!(policy.audit_layer().is_ok());
}

#[test]
fn capability_statement_gets_rest_security() {
    let policy = example();
    let mut cs: serde_json::Value =
        serde_json::from_str(include_str!("data/policy/capability.json")).unwrap();
    policy.patch_capability_statement(&mut cs).unwrap();
    let security = &cs["rest"][0]["security"];
    let codes: Vec<&str> = security["service"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["SMART-on-FHIR", "Certificates"]);
    assert_eq!(
        security["service"][0]["coding"][0]["system"],
        SECURITY_SERVICE_SYSTEM
    );
    let oauth = &security["extension"][0];
    assert_eq!(oauth["url"], OAUTH_URIS_EXTENSION);
    let uris: Vec<(&str, &str)> = oauth["extension"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["url"].as_str().unwrap(), e["valueUri"].as_str().unwrap()))
        .collect();
    assert!(uris.contains(&("token", "https://auth.example.org/token")));
    assert!(uris.contains(&("authorize", "https://auth.example.org/authorize")));
    let description = security["description"].as_str().unwrap();
    assert!(description.contains("TLS is required"), "{description}");
    assert!(
        description.contains("https://auth.example.org"),
        "{description}"
    );

    let mut not_cs = serde_json::json!({"resourceType": "Patient"});
    assert!(policy.patch_capability_statement(&mut not_cs).is_err());
}

#[test]
fn smart_configuration_comes_from_the_policy() {
    let doc = example().smart_configuration().unwrap().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&doc.to_json()).unwrap();
    assert_eq!(json["issuer"], "https://auth.example.org");
    assert_eq!(json["token_endpoint"], "https://auth.example.org/token");
    let caps = json["capabilities"].as_array().unwrap();
    assert!(caps.contains(&"launch-standalone".into()));
    assert!(caps.contains(&"permission-v2".into()));
}

#[tokio::test]
async fn the_example_stack_refuses_and_serves() {
    let stack = example().build().unwrap();
    let app = Router::new()
        .route(
            "/fhir/Patient/{id}",
            get(|| async { r#"{"resourceType":"Patient","id":"1"}"# }),
        )
        .route("/health", get(|| async { "ok" }))
        .layer(stack);
    let send = |path: &str, tls: bool| {
        let mut request = Request::get(path).body(axum::body::Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(RemoteAddr("10.20.0.5:40000".parse().unwrap()));
        if tls {
            request.extensions_mut().insert(TlsConnection);
        }
        app.clone().oneshot(request)
    };
    // transport.require_tls: plain HTTP is refused (403).
    assert_eq!(
        send("/fhir/Patient/1", false).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // Routes: an undeclared route is a 404 before anything else.
    assert_eq!(
        send("/debug/vars", true).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // Identity: no client certificate, 401.
    assert_eq!(
        send("/fhir/Patient/1", true).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}
