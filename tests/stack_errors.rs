#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Every `StackError`: each contradiction is refused by `FhirwallBuilder::build` with a message
//! that says what to change, and the consistent variant of the same stack builds.

use fhirwall::audit::{AuditCaptureLayer, AuditLayer, MemorySink};
use fhirwall::fhir::{Classifier, Interaction, ResourceType};
use fhirwall::firewall::RouteInventory;
use fhirwall::identity::{ClientMatch, TrustPolicy, TrustedClientLayer};
use fhirwall::smart::{
    CertificateBinding, SmartLayer, TokenFuture, TokenRejection, VerifiedClaims, VerifyToken,
};
use fhirwall::stack::{Fhirwall, StackError};
use fhirwall::validate::{ValidateConfig, ValidateLayer};
use std::sync::Arc;

/// Refuses every token; these tests never send one.
struct NoTokens;
impl VerifyToken for NoTokens {
    fn verify_cached(&self, _: &str) -> Option<Result<Arc<VerifiedClaims>, TokenRejection>> {
        Some(Err(TokenRejection::invalid_token("unknown token")))
    }
    fn verify(&self, _: &str) -> TokenFuture {
        Box::pin(async { Err(TokenRejection::invalid_token("unknown token")) })
    }
}

fn smart() -> SmartLayer {
    SmartLayer::new(NoTokens)
}

fn identity() -> TrustedClientLayer {
    let policy = TrustPolicy::builder()
        .allow(
            "lab",
            ClientMatch::san_uri("spiffe://lab.example/ingest").unwrap(),
        )
        .build()
        .unwrap();
    TrustedClientLayer::new(policy)
}

fn routes(base: &str) -> RouteInventory {
    RouteInventory::new(base).declare(ResourceType::Patient, [Interaction::Read])
}

fn message(error: StackError) -> String {
    error.to_string()
}

#[test]
fn no_layer_at_all() {
    let err = Fhirwall::builder().build().unwrap_err();
    assert_eq!(err, StackError::NoLayers);
    assert!(message(err).contains("add at least one layer"));
    assert!(Fhirwall::builder()
        .validate(ValidateLayer::new(ValidateConfig::new()))
        .build()
        .is_ok());
}

/// RFC 8705 §3: a certificate-bound token can only be checked against a client certificate.
#[test]
fn bound_tokens_required_without_identity() {
    let err = Fhirwall::builder()
        .smart(smart())
        .certificate_binding(CertificateBinding::Required)
        .build()
        .unwrap_err();
    assert_eq!(err, StackError::BoundTokensWithoutIdentity);
    assert!(message(err).contains(".identity(TrustedClientLayer)"));
    let ok = Fhirwall::builder()
        .identity(identity())
        .smart(smart())
        .certificate_binding(CertificateBinding::Required)
        .build()
        .unwrap();
    assert_eq!(ok.layers(), ["identity", "token gate", "classify", "smart"]);
}

/// RFC 8705 §3: with mutual TLS in the stack, binding must not be switched off.
#[test]
fn binding_off_next_to_identity() {
    let err = Fhirwall::builder()
        .identity(identity())
        .smart(smart())
        .certificate_binding(CertificateBinding::Off)
        .build()
        .unwrap_err();
    assert_eq!(err, StackError::BindingOffWithIdentity);
    assert!(message(err).contains("WhenPresent"));
    assert!(Fhirwall::builder()
        .smart(smart())
        .certificate_binding(CertificateBinding::Off)
        .build()
        .is_ok());
}

#[test]
fn binding_without_smart() {
    let err = Fhirwall::builder()
        .identity(identity())
        .certificate_binding(CertificateBinding::Required)
        .build()
        .unwrap_err();
    assert_eq!(err, StackError::BindingWithoutSmart);
    assert!(message(err).contains(".smart(SmartLayer)"));
}

#[test]
fn empty_route_inventory() {
    let err = Fhirwall::builder()
        .firewall(RouteInventory::new("/fhir"), |f| f)
        .build()
        .unwrap_err();
    assert_eq!(err, StackError::EmptyRouteInventory);
    assert!(message(err).contains("declare what the server serves"));
    assert!(Fhirwall::builder()
        .firewall(routes("/fhir"), |f| f)
        .build()
        .is_ok());
}

#[test]
fn route_inventory_for_another_base() {
    let err = Fhirwall::builder()
        .firewall(routes("/r4"), |f| f)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        StackError::FirewallBaseMismatch {
            base: "/fhir".to_owned()
        }
    );
    assert!(message(err).contains("same base path"));
    assert!(Fhirwall::builder()
        .classifier(Classifier::new("/r4"))
        .firewall(routes("/r4"), |f| f)
        .build()
        .is_ok());
}

#[test]
fn audit_capture_without_audit() {
    let err = Fhirwall::builder()
        .validate(ValidateLayer::new(ValidateConfig::new()))
        .audit_capture(AuditCaptureLayer::new())
        .build()
        .unwrap_err();
    assert_eq!(err, StackError::CaptureWithoutAudit);
    assert!(message(err).contains(".audit(AuditLayer)"));
    let ok = Fhirwall::builder()
        .audit(AuditLayer::new(MemorySink::new()))
        .audit_capture(AuditCaptureLayer::new())
        .build()
        .unwrap();
    assert_eq!(ok.layers(), ["audit", "classify", "audit capture"]);
}

/// The order is the documented one, and every name in it is a layer the stack can run.
#[test]
fn order_is_documented() {
    assert_eq!(Fhirwall::ORDER.first(), Some(&"audit"));
    assert_eq!(Fhirwall::ORDER.last(), Some(&"audit capture"));
    let classify = Fhirwall::ORDER
        .iter()
        .position(|l| *l == "classify")
        .unwrap();
    let smart = Fhirwall::ORDER.iter().position(|l| *l == "smart").unwrap();
    let validate = Fhirwall::ORDER
        .iter()
        .position(|l| *l == "validate")
        .unwrap();
    assert!(classify < smart && classify < validate);
}
