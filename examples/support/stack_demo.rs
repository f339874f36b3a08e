//! The gateway's demo stack, built with [`Fhirwall`]: the same function serves the gateway
//! (`examples/gateway.rs`), the whole-stack tests (`tests/stack_oneshot.rs`,
//! `tests/stack_tls.rs`) and the stack benchmark, so what the tests check is what a user runs.
//!
//! This is a module, not an example target:
//!
//! ```ignore
//! #[path = "support/stack_demo.rs"]
//! mod stack_demo;
//!
//! let cs = stack_demo::capability_statement(app.clone(), "/fhir").await;
//! let stack = stack_demo::DemoStack::new("/fhir", &cs, AuditLayer::new(TracingSink))
//!     .smart(smart_layer)          // optional: `--smart`
//!     .identity(identity_layer)    // optional: `--tls`
//!     .build()?;
//! let app = app.layer(stack);
//! ```
//!
//! What it sets up, outermost first:
//! - audit: the given layer (its sink decides where records go);
//! - firewall: 127.0.0.0/8 and ::1 only; exactly the routes the demo's CapabilityStatement
//!   lists, plus the Patient compartment (everything else is a 404 before any handler);
//! - identity and smart when given;
//! - budgets per client (trusted client, else token `client_id`, else address):
//!   [`REQUESTS_PER_MINUTE`] cost units a minute (a read costs 1, a search 10),
//!   [`RESOURCES_PER_MINUTE`] resources returned a minute, [`IN_FLIGHT`] requests at once;
//! - validation with the default limits;
//! - redaction by `redact_demo::policy()`.
#![allow(dead_code, unreachable_pub)]

use fhirwall::audit::AuditLayer;
use fhirwall::fhir::{Classifier, ResourceType};
use fhirwall::firewall::{IpRule, RouteInventory};
use fhirwall::identity::TrustedClientLayer;
use fhirwall::limit::{BudgetLayer, MemoryStore, Rate};
use fhirwall::redact::RedactLayer;
use fhirwall::smart::SmartLayer;
use fhirwall::stack::Fhirwall;
use fhirwall::validate::{ValidateConfig, ValidateLayer};

/// Request budget per client, in cost units a minute (read 1, search 10, write 20).
pub const REQUESTS_PER_MINUTE: u64 = 120;
/// Resources returned per client a minute.
pub const RESOURCES_PER_MINUTE: u64 = 200;
/// Requests per client at once.
pub const IN_FLIGHT: u32 = 4;

/// The CapabilityStatement `app` serves at `GET <base>/metadata` (empty on failure, which
/// makes [`DemoStack::build`] fail closed).
pub async fn capability_statement(app: axum::Router, base_path: &str) -> Vec<u8> {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
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

/// The demo's budgets (see the module docs).
pub fn budgets() -> BudgetLayer<MemoryStore> {
    BudgetLayer::new(MemoryStore::default())
        .requests(Some(Rate::per_minute(REQUESTS_PER_MINUTE)))
        .resources(Some(Rate::per_minute(RESOURCES_PER_MINUTE)))
        .max_in_flight(Some(IN_FLIGHT))
}

/// The demo stack's parts, before [`build`](Self::build).
pub struct DemoStack {
    base_path: String,
    capability_statement: Vec<u8>,
    audit: AuditLayer,
    smart: Option<SmartLayer>,
    identity: Option<TrustedClientLayer>,
    budgets: BudgetLayer<MemoryStore>,
    redact: RedactLayer,
}

impl DemoStack {
    /// The demo stack for the API under `base_path` that `capability_statement` describes,
    /// recording with `audit`.
    pub fn new(base_path: &str, capability_statement: &[u8], audit: AuditLayer) -> Self {
        DemoStack {
            base_path: base_path.to_owned(),
            capability_statement: capability_statement.to_vec(),
            audit,
            smart: None,
            identity: None,
            budgets: budgets(),
            redact: redact_layer(),
        }
    }

    /// Adds the SMART layer.
    pub fn smart(mut self, smart: SmartLayer) -> Self {
        self.smart = Some(smart);
        self
    }

    /// Adds the trusted-client layer.
    pub fn identity(mut self, identity: TrustedClientLayer) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Replaces the demo budgets.
    pub fn budgets(mut self, budgets: BudgetLayer<MemoryStore>) -> Self {
        self.budgets = budgets;
        self
    }

    /// The routes the firewall lets through, one per line.
    pub fn routes(&self) -> Result<RouteInventory, String> {
        let routes =
            RouteInventory::from_capability_statement(&self.base_path, &self.capability_statement)
                .map_err(|e| format!("the demo's CapabilityStatement: {e}"))?;
        Ok(routes
            .classifier(Classifier::new(&self.base_path))
            .compartment(ResourceType::Patient))
    }

    /// The whole stack.
    pub fn build(self) -> Result<Fhirwall, String> {
        let routes = self.routes()?;
        let local = IpRule::allow(["127.0.0.0/8", "::1/128"]).map_err(|e| e.to_string())?;
        let mut builder = Fhirwall::builder()
            .classifier(Classifier::new(&self.base_path))
            .audit(self.audit)
            .firewall(routes, |firewall| firewall.allow(local));
        if let Some(identity) = self.identity {
            builder = builder.identity(identity);
        }
        if let Some(smart) = self.smart {
            builder = builder.smart(smart);
        }
        builder
            .budgets(self.budgets)
            .validate(ValidateLayer::new(ValidateConfig::new()))
            .redact(self.redact)
            .build()
            .map_err(|e| e.to_string())
    }
}

#[path = "redact_demo.rs"]
mod redact_demo;

fn redact_layer() -> RedactLayer {
    redact_demo::layer()
}

/// The redaction demo's client names, for callers of this module.
pub use redact_demo::{PATIENT_APP, RESEARCH};
