//! The gateway demo's firewall and audit layers.
//!
//! This is a module, not an example target. The gateway includes it (the `firewall` and
//! `audit` features must be on, as they are by default) and wires it like this:
//!
//! ```ignore
//! #[cfg(all(feature = "firewall", feature = "audit"))]
//! #[path = "support/firewall_demo.rs"]
//! mod firewall_demo;
//!
//! let app = router(store, config.clone());
//! // 1. Declare the routes from what the demo server documents about itself.
//! let cs = firewall_demo::capability_statement(app.clone(), &config.base_path).await;
//! let demo = firewall_demo::DemoFirewall::new(&cs, &config.base_path, "/health")?;
//! for line in &demo.drift {
//!     println!("route drift: {line}");
//! }
//! println!("audit records (JSON lines): {}", demo.audit_path.display());
//! // 2. Layer order, innermost first: capture just before the handlers, then the other
//! //    fhirwall layers, then the firewall, then audit outermost.
//! let app = app
//!     .layer(demo.capture.clone())
//!     // .layer(smart) .layer(identity) ...
//!     .layer(ClassifyLayer::new(Classifier::new(&config.base_path)))
//!     .layer(demo.firewall.clone())
//!     .layer(demo.audit.clone());
//! // 3. Serve with the peer address, which the firewall needs (127.0.0.0/8 and ::1 only):
//! //    `app.into_make_service_with_connect_info::<SocketAddr>()` with fhirwall's `axum`
//! //    feature, or put `fhirwall::net::RemoteAddr` in each request's extensions yourself.
//! ```
//!
//! What it sets up:
//! - addresses: 127.0.0.0/8 and ::1 only;
//! - routes: exactly what the CapabilityStatement lists, plus the Patient compartment (the
//!   demo serves it without documenting it: that shows as drift), `GET <health>`, and the
//!   same routes under a deprecated `/fhir-v0` base (the demo router doesn't serve it, so
//!   it answers 404 from the handler, with `Deprecation`, `Sunset` and `Link` headers);
//!   everything else is 404 before any handler and an audit record marked `probe`;
//! - `/fhir-v0` deprecated 30 days before start, sunset 90 days after (then 410);
//! - security headers (no HSTS: the demo is plain HTTP), `Server` removed;
//! - audit: JSON lines to a file in the temp directory, written off the request path.
#![allow(dead_code)]

use axum::Router;
use fhirwall::audit::{AuditCaptureLayer, AuditLayer, JsonLinesFile, NonBlocking};
use fhirwall::fhir::{Classifier, ResourceType};
use fhirwall::firewall::{FirewallLayer, IpRule, RouteInventory, Sunset};
use http_body_util::BodyExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};
use tower::ServiceExt;

/// The deprecated base path of the demo.
pub const OLD_BASE: &str = "/fhir-v0";

/// The demo's firewall and audit layers.
#[derive(Clone, Debug)]
pub struct DemoFirewall {
    /// The firewall, just inside audit.
    pub firewall: FirewallLayer,
    /// The audit layer, outermost.
    pub audit: AuditLayer,
    /// The audit capture layer, innermost (just before the handlers).
    pub capture: AuditCaptureLayer,
    /// Where the audit records go.
    pub audit_path: PathBuf,
    /// Differences between the declared routes and the CapabilityStatement.
    pub drift: Vec<String>,
}

/// The CapabilityStatement the app serves at `GET <base>/metadata` (empty on failure, which
/// makes [`DemoFirewall::new`] fail closed).
pub async fn capability_statement(app: Router, base_path: &str) -> Vec<u8> {
    let uri = format!("{}/metadata", base_path.trim_end_matches('/'));
    let Ok(request) = http::Request::get(uri).body(axum::body::Body::empty()) else {
        return Vec::new();
    };
    let Ok(response) = app.oneshot(request).await;
    match response.into_body().collect().await {
        Ok(body) => body.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    }
}

impl DemoFirewall {
    /// The demo firewall for the API under `base_path` described by `capability_statement`,
    /// with `health` as an extra non-FHIR route.
    pub fn new(
        capability_statement: &[u8],
        base_path: &str,
        health: &str,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let routes = RouteInventory::from_capability_statement(base_path, capability_statement)?
            .classifier(Classifier::new(base_path))
            .compartment(ResourceType::Patient)
            .alias_base(OLD_BASE)
            .extra(http::Method::GET, health);
        let drift = routes.drift(capability_statement)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let day = 86_400;
        let firewall = FirewallLayer::builder(routes)
            .allow(IpRule::allow(["127.0.0.0/8", "::1/128"])?)
            .sunset(Sunset::new(OLD_BASE, now - 30 * day, now + 90 * day).successor(base_path))
            .build();
        let audit_path =
            std::env::temp_dir().join(format!("fhirwall-demo-audit-{}.jsonl", std::process::id()));
        let file = JsonLinesFile::create(&audit_path)?
            .max_bytes(16 * 1024 * 1024)
            .keep(3);
        let audit = AuditLayer::new(NonBlocking::new(file)).classifier(Classifier::new(base_path));
        Ok(DemoFirewall {
            firewall,
            audit,
            capture: AuditCaptureLayer::new(),
            audit_path,
            drift,
        })
    }
}
