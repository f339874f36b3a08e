#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Transport rules (issue #8 §4): plain HTTP refused when TLS is required, `X-Forwarded-Proto`
//! believed only from trusted proxies, security headers set, server-identifying headers gone.

mod firewall_support;

use axum::response::IntoResponse;
use axum::{routing::get, Router};
use fhirwall::fhir::{Interaction, ResourceType};
use fhirwall::firewall::{FirewallLayer, RouteInventory, TlsConnection, TransportPolicy};
use fhirwall::net::TrustedProxies;
use firewall_support::{send, serve};

fn routes() -> RouteInventory {
    RouteInventory::new("/fhir")
        .declare(ResourceType::Patient, [Interaction::Read])
        .extra(http::Method::GET, "/health")
}

async fn patient() -> impl IntoResponse {
    (
        [
            ("content-type", "application/fhir+json"),
            ("server", "hapi-fhir/6.0"),
            ("x-powered-by", "Express"),
        ],
        r#"{"resourceType":"Patient","id":"1"}"#,
    )
}

async fn health() -> impl IntoResponse {
    (
        [
            ("content-type", "text/plain"),
            ("cache-control", "max-age=5"),
        ],
        "ok",
    )
}

fn app(firewall: FirewallLayer) -> Router {
    Router::new()
        .route("/fhir/Patient/{id}", get(patient))
        .route("/health", get(health))
        .layer(firewall)
}

#[tokio::test]
async fn plain_http_is_refused_when_tls_is_required() {
    let addr = serve(app(FirewallLayer::builder(routes())
        .transport(TransportPolicy::default().require_tls())
        .build()))
    .await;
    let r = send(addr, "GET", "/fhir/Patient/1", &[]).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("HTTPS"));
    // 127.0.0.1 is no trusted proxy: its X-Forwarded-Proto is a spoof.
    let r = send(
        addr,
        "GET",
        "/fhir/Patient/1",
        &[("X-Forwarded-Proto", "https")],
    )
    .await;
    assert_eq!(r.status, 403);
    // An absolute-form target names a scheme the client chose (RFC 9112 §3.2.2).
    let target = format!("https://{addr}/fhir/Patient/1");
    assert_eq!(send(addr, "GET", &target, &[]).await.status, 403);
}

#[tokio::test]
async fn forwarded_proto_from_a_trusted_proxy_is_believed() {
    let addr = serve(app(FirewallLayer::builder(routes())
        .trusted_proxies(TrustedProxies::new(["127.0.0.0/8"]).unwrap())
        .transport(TransportPolicy::default().require_tls())
        .build()))
    .await;
    let r = send(
        addr,
        "GET",
        "/fhir/Patient/1",
        &[("X-Forwarded-Proto", "https")],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        addr,
        "GET",
        "/fhir/Patient/1",
        &[("X-Forwarded-Proto", "http")],
    )
    .await;
    assert_eq!(r.status, 403);
    // The nearest proxy's value (the last one) counts.
    let r = send(
        addr,
        "GET",
        "/fhir/Patient/1",
        &[("X-Forwarded-Proto", "https, http")],
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(send(addr, "GET", "/fhir/Patient/1", &[]).await.status, 403);
}

#[tokio::test]
async fn a_tls_connection_marker_passes_and_gets_hsts_and_security_headers() {
    let firewall = FirewallLayer::builder(routes())
        .transport(TransportPolicy::default().require_tls())
        .build();
    let app = app(firewall).layer(tower::util::MapRequestLayer::new(
        |mut req: axum::extract::Request| {
            req.extensions_mut().insert(TlsConnection);
            req
        },
    ));
    let addr = serve(app).await;
    let r = send(addr, "GET", "/fhir/Patient/1", &[]).await;
    assert_eq!(r.status, 200);
    // RFC 6797 §6.1
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    // PHI: a FHIR body is never stored by caches.
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("server"), None);
    assert_eq!(r.header("x-powered-by"), None);
    // Not PHI, with its own caching: left alone.
    let r = send(addr, "GET", "/health", &[]).await;
    assert_eq!(r.header("cache-control"), Some("max-age=5"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    // Refusals get the headers too.
    let r = send(addr, "GET", "/nope", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn without_tls_required_no_hsts_is_sent() {
    let addr = serve(app(FirewallLayer::builder(routes()).build())).await;
    let r = send(addr, "GET", "/fhir/Patient/1", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("strict-transport-security"), None);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("server"), None);
}

/// RFC 6797 §7.2: HSTS MUST NOT be sent over a non-secure transport, not even on the
/// refusal of a plain-HTTP request.
#[tokio::test]
async fn the_plain_http_refusal_carries_no_hsts() {
    let firewall = FirewallLayer::builder(routes())
        .transport(TransportPolicy::default().require_tls())
        .build();
    let addr = serve(app(firewall)).await;
    let r = send(addr, "GET", "/fhir/Patient/1", &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("strict-transport-security"), None);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}
