#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The gateway demo's firewall and audit (issue #8 §7), wired as its module docs say, in
//! front of the real demo FHIR server.

mod firewall_support;

#[path = "../examples/support/firewall_demo.rs"]
mod firewall_demo;

use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::Classifier;
use firewall_support::{send, serve};

#[tokio::test]
async fn demo_gateway_firewall_and_audit() {
    let store = fhirwall_demo::MemoryStore::new();
    fhirwall_demo::sample::load(&store, 7);
    let config = fhirwall_demo::DemoConfig::default();
    let app = fhirwall_demo::router(store, config.clone());
    let cs = firewall_demo::capability_statement(app.clone(), &config.base_path).await;
    let demo = firewall_demo::DemoFirewall::new(&cs, &config.base_path, "/health").unwrap();
    // The demo serves the Patient compartment without documenting it.
    assert_eq!(
        demo.drift,
        ["reachable but undocumented: compartment Patient"]
    );
    let app = app
        .layer(demo.capture.clone())
        .layer(ClassifyLayer::new(Classifier::new(&config.base_path)))
        .layer(demo.firewall.clone())
        .layer(demo.audit.clone());
    let addr = serve(app).await;

    assert_eq!(send(addr, "GET", "/fhir/metadata", &[]).await.status, 200);
    assert_eq!(
        send(addr, "GET", "/fhir/Patient?_count=1", &[])
            .await
            .status,
        200
    );
    let r = send(addr, "GET", "/fhir/wp-admin", &[]).await;
    assert_eq!(r.status, 404);
    let r = send(addr, "GET", "/fhir-v0/Patient?_count=1", &[]).await;
    assert!(r.header("deprecation").unwrap().starts_with('@'));
    assert!(r.header("sunset").unwrap().ends_with("GMT"));
    assert_eq!(r.header("link"), Some("</fhir>; rel=\"successor-version\""));

    // The audit file fills off the request path.
    let mut text = String::new();
    for _ in 0..500 {
        text = std::fs::read_to_string(&demo.audit_path).unwrap_or_default();
        if text.lines().count() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines
        .iter()
        .any(|l| l["probe"] == true && l["decision"]["layer"] == "firewall"));
    let _ = std::fs::remove_file(&demo.audit_path);
}
