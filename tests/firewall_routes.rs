#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Declared-route inventory (issue #8 §2): undeclared routes, path tricks included, never
//! reach a handler; the inventory is built from and checked against a CapabilityStatement.

mod firewall_support;

use axum::Router;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::{Classifier, Interaction, ResourceType};
use fhirwall::firewall::{FirewallLayer, RouteInventory};
use firewall_support::{cases, send, serve};
use http::Method;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn inventory() -> RouteInventory {
    RouteInventory::new("/fhir")
        .declare(
            ResourceType::Patient,
            [
                Interaction::Read,
                Interaction::SearchType,
                Interaction::Create,
            ],
        )
        .declare(ResourceType::Observation, [Interaction::SearchType])
        .operation("everything", Some(ResourceType::Patient))
        .compartment(ResourceType::Patient)
        .extra(Method::GET, "/health")
}

/// A server whose every handler (a catch-all) counts its calls.
async fn counting_server(with_classify: bool) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mut app = Router::new().fallback(move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            "{}"
        }
    });
    if with_classify {
        app = app.layer(ClassifyLayer::new(Classifier::new("/fhir")));
    }
    let app = app.layer(FirewallLayer::builder(inventory()).build());
    (serve(app).await, calls)
}

#[tokio::test]
async fn undeclared_routes_never_reach_the_handler() {
    let (addr, calls) = counting_server(false).await;
    let mut checked = 0;
    for (line, f) in cases("routes.txt") {
        let (method, target, expected) = (&f[0], &f[1], &f[2]);
        let before = calls.load(Ordering::SeqCst);
        let r = send(addr, method, target, &[]).await;
        let after = calls.load(Ordering::SeqCst);
        if expected == "pass" {
            assert_eq!(
                after,
                before + 1,
                "routes.txt line {line}: {method} {target} should pass, got {}",
                r.status
            );
        } else {
            assert_eq!(
                after, before,
                "routes.txt line {line}: {method} {target} reached the handler"
            );
            // hyper itself refuses some targets (400) before any service runs; that's fine too.
            assert!(
                r.status == 404 || r.status == 400,
                "routes.txt line {line}: {method} {target}: {}",
                r.status
            );
            if r.status == 404 {
                assert!(r.body.contains("OperationOutcome"), "line {line}");
                assert!(r.body.contains("not-found"), "line {line}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 60);
}

#[tokio::test]
async fn method_override_never_reaches_the_handler() {
    // X-HTTP-Method-Override could turn a declared GET into an undeclared DELETE.
    let (addr, calls) = counting_server(true).await;
    for h in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        let r = send(addr, "GET", "/fhir/Patient/1", &[(h, "DELETE")]).await;
        assert_ne!(r.status, 200, "{h}");
    }
    let r = send(addr, "GET", "/fhir/Patient/1?_method=DELETE", &[]).await;
    assert_eq!(r.status, 404);
    // A declared route with a broken query: the ClassifyLayer behind refuses it (400).
    let r = send(addr, "GET", "/fhir/Patient?name=%zz", &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

async fn demo_capability_statement() -> Vec<u8> {
    let store = fhirwall_demo::MemoryStore::new();
    fhirwall_demo::sample::load(&store, 7);
    let app = fhirwall_demo::router(store, fhirwall_demo::DemoConfig::default());
    let addr = serve(app).await;
    let r = send(addr, "GET", "/fhir/metadata", &[]).await;
    assert_eq!(r.status, 200);
    let body = if r
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        dechunk(&r.body)
    } else {
        r.body
    };
    body.into_bytes()
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

#[tokio::test]
async fn inventory_from_the_demo_capability_statement_has_no_drift() {
    let cs = demo_capability_statement().await;
    let routes = RouteInventory::from_capability_statement("/fhir", &cs).unwrap();
    assert!(routes.drift(&cs).unwrap().is_empty());
    let listing = routes.listing();
    assert!(listing.contains("Patient read"), "{listing:?}");
    assert!(listing.contains("$everything on Patient"));
    assert!(listing.contains("system batch"));
    let h = http::HeaderMap::new();
    assert!(routes.permits(&Method::GET, &"/fhir/Patient/1".parse().unwrap(), &h));
    assert!(routes.permits(
        &Method::GET,
        &"/fhir/Patient/1/$everything".parse().unwrap(),
        &h
    ));
    assert!(!routes.permits(
        &Method::GET,
        &"/fhir/Patient/1/$export".parse().unwrap(),
        &h
    ));
}

#[tokio::test]
async fn drift_is_reported_both_ways() {
    let cs = demo_capability_statement().await;
    let routes = RouteInventory::from_capability_statement("/fhir", &cs)
        .unwrap()
        .operation("export", None);
    let drift = routes.drift(&cs).unwrap();
    assert_eq!(drift, ["reachable but undocumented: $export on system"]);

    let narrow = RouteInventory::new("/fhir").declare(ResourceType::Patient, [Interaction::Read]);
    let drift = narrow.drift(&cs).unwrap();
    assert!(drift
        .iter()
        .any(|d| d == "documented but unreachable: system batch"));
    assert!(drift
        .iter()
        .all(|d| d.starts_with("documented but unreachable")));
}

#[test]
fn bad_capability_statements_are_errors() {
    use fhirwall::firewall::CapabilityError;
    assert_eq!(
        RouteInventory::from_capability_statement("/fhir", b"{}").unwrap_err(),
        CapabilityError::NotCapabilityStatement
    );
    let cs = br#"{"resourceType":"CapabilityStatement","rest":[{"mode":"server","resource":[{"type":"Nonsense"}]}]}"#;
    assert!(matches!(
        RouteInventory::from_capability_statement("/fhir", cs),
        Err(CapabilityError::UnknownResourceType(_))
    ));
    let cs = br#"{"resourceType":"CapabilityStatement","rest":[{"mode":"server","resource":[{"type":"Patient","interaction":[{"code":"teleport"}]}]}]}"#;
    assert!(matches!(
        RouteInventory::from_capability_statement("/fhir", cs),
        Err(CapabilityError::UnknownInteraction(_))
    ));
}

proptest::proptest! {
    /// Parsing an untrusted CapabilityStatement never panics.
    #[test]
    fn capability_parser_never_panics(s in ".{0,200}") {
        let _ = RouteInventory::from_capability_statement("/fhir", s.as_bytes());
    }

    /// Whatever the path, the check never panics, and an undeclared-looking path never passes.
    #[test]
    fn route_check_never_panics(path in "/[a-zA-Z0-9%./;_$-]{0,40}") {
        if let Ok(uri) = path.parse::<http::Uri>() {
            let routes = inventory();
            let ok = routes.permits(&Method::GET, &uri, &http::HeaderMap::new());
            if path.contains("..") || path.contains("//") || path.contains(';') {
                proptest::prop_assert!(!ok, "{}", path);
            }
        }
    }
}
