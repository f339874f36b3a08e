#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Zombie versions (issue #8 §3): `Deprecation` (RFC 9745 §2) and `Sunset` (RFC 8594 §3)
//! with a successor link before the sunset, 410 Gone after it; time from a fixed clock.

mod firewall_support;

use axum::{routing::get, Router};
use fhirwall::fhir::{Interaction, ResourceType};
use fhirwall::firewall::{FirewallLayer, FixedClock, RouteInventory, Sunset};
use firewall_support::{send, serve};
use std::sync::Arc;

const DEPRECATED: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z
const SUNSET: i64 = 1_782_864_000; // 2026-07-01T00:00:00Z

async fn server(clock: Arc<FixedClock>) -> std::net::SocketAddr {
    let routes = RouteInventory::new("/fhir")
        .alias_base("/fhir-v0")
        .declare(ResourceType::Patient, [Interaction::Read]);
    let firewall = FirewallLayer::builder(routes)
        .sunset(Sunset::new("/fhir-v0", DEPRECATED, SUNSET).successor("https://ehr.example/fhir"))
        .clock(clock)
        .build();
    serve(
        Router::new()
            .route("/fhir/Patient/{id}", get(|| async { "{}" }))
            .route("/fhir-v0/Patient/{id}", get(|| async { "{}" }))
            .layer(firewall),
    )
    .await
}

#[tokio::test]
async fn deprecated_base_announces_its_sunset() {
    let clock = Arc::new(FixedClock::at(DEPRECATED + 86_400));
    let addr = server(clock).await;
    let r = send(addr, "GET", "/fhir-v0/Patient/1", &[]).await;
    assert_eq!(r.status, 200);
    // RFC 9745 §2.1: an Item whose value is a Date, `@` + unix seconds.
    assert_eq!(r.header("deprecation"), Some("@1735689600"));
    // RFC 8594 §3: an HTTP-date (RFC 9110 §5.6.7 IMF-fixdate).
    assert_eq!(r.header("sunset"), Some("Wed, 01 Jul 2026 00:00:00 GMT"));
    assert_eq!(
        r.header("link"),
        Some("<https://ehr.example/fhir>; rel=\"successor-version\"")
    );
    // The successor carries none of it.
    let r = send(addr, "GET", "/fhir/Patient/1", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("deprecation"), None);
    assert_eq!(r.header("sunset"), None);
}

#[tokio::test]
async fn after_the_sunset_the_base_is_gone() {
    let clock = Arc::new(FixedClock::at(SUNSET - 1));
    let addr = server(clock.clone()).await;
    assert_eq!(
        send(addr, "GET", "/fhir-v0/Patient/1", &[]).await.status,
        200
    );
    clock.set(SUNSET);
    let r = send(addr, "GET", "/fhir-v0/Patient/1", &[]).await;
    assert_eq!(r.status, 410);
    assert!(r.body.contains("OperationOutcome"));
    assert!(r.body.contains("retired"));
    // The prefix matches on segment boundaries only.
    assert_eq!(send(addr, "GET", "/fhir/Patient/1", &[]).await.status, 200);
    // Undeclared routes under the old base are still 404 (the inventory comes first).
    assert_eq!(
        send(addr, "GET", "/fhir-v0/Observation/1", &[])
            .await
            .status,
        404
    );
}
