//! The whole fhirwall stack (`Fhirwall`: audit, firewall, classify, smart with a cached token
//! and the patient compartment, budgets, validation, redaction that applies) in front of a
//! trivial axum handler, as a ratio against the same handler with no layer, in the same run.
//! No TLS. Goal: the stack costs less than 25x a bare axum round trip through
//! `Router::oneshot` (a few microseconds, far below any network or database time).
#![allow(
    missing_docs,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

#[path = "../examples/support/smart_demo.rs"]
mod smart_demo;
mod support;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, Criterion};
use fhirwall::audit::{AuditLayer, AuditRecord, AuditSink};
use fhirwall::fhir::{Classifier, Interaction, ResourceType};
use fhirwall::firewall::{IpRule, RouteInventory};
use fhirwall::limit::{BudgetLayer, MemoryStore, Rate};
use fhirwall::net::RemoteAddr;
use fhirwall::redact::{Action, CallerMatch, Policy, RedactLayer, Redactor, Rule};
use fhirwall::smart::SmartLayer;
use fhirwall::stack::Fhirwall;
use fhirwall::validate::{ValidateConfig, ValidateLayer};
use http::Request;
use http_body_util::BodyExt;
use std::hint::black_box;
use tower::ServiceExt;

const PATIENT: &str = r#"{"resourceType":"Patient","id":"pat-1","identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"999-12-3456"},{"system":"urn:mrn","value":"12345"}],"name":[{"family":"Lindqvist","given":["Grace"]}],"telecom":[{"system":"phone","value":"555-0100"}],"gender":"female","birthDate":"1974-12-25"}"#;

/// Counts records and drops them: the bench measures the stack, not a disk.
struct NullSink;
impl AuditSink for NullSink {
    fn record(&self, record: AuditRecord) {
        black_box(record);
    }
}

fn handler() -> Router {
    Router::new().route(
        "/fhir/Patient/{id}",
        get(|| async {
            (
                [(http::header::CONTENT_TYPE, "application/fhir+json")],
                PATIENT,
            )
        }),
    )
}

fn stack(issuer: &smart_demo::DemoIssuer) -> Fhirwall {
    let routes = RouteInventory::new("/fhir").declare(ResourceType::Patient, [Interaction::Read]);
    let redactor = Redactor::new(Policy {
        rules: vec![Rule::new(
            ["Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')"],
            Action::Remove,
        )
        .unwrap()
        .when(CallerMatch::clients(["patient-app"]))],
        ..Policy::default()
    })
    .unwrap();
    let big = Rate::per_minute(1_000_000_000);
    Fhirwall::builder()
        .classifier(Classifier::new("/fhir"))
        .audit(AuditLayer::new(NullSink))
        .firewall(routes, |f| f.allow(IpRule::allow(["127.0.0.0/8"]).unwrap()))
        .smart(SmartLayer::new(issuer.verifier()))
        .budgets(
            BudgetLayer::new(MemoryStore::default())
                .requests(Some(big))
                .resources(Some(big))
                .max_in_flight(None),
        )
        .validate(ValidateLayer::new(ValidateConfig::new()))
        .redact(RedactLayer::new(redactor))
        .build()
        .unwrap()
}

fn request(token: Option<&str>) -> Request<Body> {
    let mut builder = Request::get("/fhir/Patient/pat-1");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let mut request = builder.body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(RemoteAddr("127.0.0.1:50000".parse().unwrap()));
    request
}

async fn round_trip(app: &Router, request: Request<Body>) -> bytes::Bytes {
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap().to_bytes()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let issuer =
        smart_demo::DemoIssuer::generate("http://127.0.0.1/issuer", "http://127.0.0.1/fhir")
            .unwrap();
    let token = issuer
        .mint(
            &smart_demo::DemoToken::new("patient-app")
                .scope("launch/patient patient/*.rs")
                .patient("pat-1"),
        )
        .unwrap();
    let bare = handler();
    let full = handler().layer(stack(&issuer));
    // The first request verifies the token; later ones find it in the verifier's cache.
    let redacted = rt.block_on(round_trip(&full, request(Some(&token))));
    let redacted = String::from_utf8_lossy(&redacted).into_owned();
    assert!(!redacted.contains("999-12-3456"), "the SSN is redacted");
    assert!(redacted.contains("REDACTED"));

    let mut group = c.benchmark_group("stack");
    group.bench_function("bare_axum", |b| {
        b.iter(|| rt.block_on(round_trip(&bare, black_box(request(None)))))
    });
    group.bench_function("fhirwall_stack", |b| {
        b.iter(|| rt.block_on(round_trip(&full, black_box(request(Some(&token))))))
    });
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    support::report_ratio("stack", "fhirwall_stack", "bare_axum", 25.0);
}
