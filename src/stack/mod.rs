//! The whole fhirwall stack in the recommended order, from one builder.
//!
//! Each protection is a layer of its own, and each can be used alone; but order matters
//! (the audit layer must see refusals, budgets must know the client, redaction must see what
//! the handler sent) and some settings only make sense together. [`Fhirwall::builder`] takes
//! each layer configured with its own builder, checks them against each other
//! ([`StackError`]), and returns one [`Fhirwall`] layer that applies them in
//! [`Fhirwall::ORDER`]:
//!
//! | step | layer | why there |
//! |---|---|---|
//! | audit | `AuditLayer` | sees every outcome, refusals included |
//! | firewall | `FirewallLayer` | cheapest refusals first: transport, address, undeclared route, sunset |
//! | identity | `TrustedClientLayer` | unknown clients refused before any body is read |
//! | token gate | `SmartLayer::token_gate` | 401 for a body without a valid token, before classification reads it |
//! | classify | [`ClassifyLayer`](crate::classify::ClassifyLayer) (always) | the [`FhirRequest`](crate::fhir::FhirRequest) every later layer reads |
//! | smart | `SmartLayer` | token, scopes, patient compartment |
//! | firewall client rules | `FirewallLayer::client_rules` | client networks and access windows, once the client is known |
//! | limit | `BudgetLayer` | budget per established client; counts what is really returned |
//! | validate | `ValidateLayer` | request body and parameters |
//! | redact | `RedactLayer` | response visibility |
//! | audit capture | `AuditCaptureLayer` | who the client was, for the audit record |
//!
//! A layer left out is a pass-through ([`Optional`]): the stack is one named type
//! ([`FhirwallService`]) with no boxed futures and no trait objects on the request path.
//!
//! ## With axum
//!
//! ```
//! use axum::{routing::get, Router};
//! use fhirwall::audit::{AuditLayer, MemorySink};
//! use fhirwall::fhir::Classifier;
//! use fhirwall::limit::{BudgetLayer, MemoryStore, Rate};
//! use fhirwall::stack::Fhirwall;
//! use fhirwall::validate::{ValidateConfig, ValidateLayer};
//!
//! let sink = MemorySink::new();
//! let stack = Fhirwall::builder()
//!     .classifier(Classifier::new("/fhir"))
//!     .audit(AuditLayer::new(sink.clone()))
//!     .budgets(BudgetLayer::new(MemoryStore::default()).requests(Some(Rate::per_minute(300))))
//!     .validate(ValidateLayer::new(ValidateConfig::new()))
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/fhir/Patient/{id}", get(|| async { r#"{"resourceType":"Patient"}"# }))
//!     .layer(stack);
//! # Ok::<(), fhirwall::stack::StackError>(())
//! ```
//!
//! Put compression (if any) outside: `.layer(stack).layer(CompressionLayer::new())`.
//!
//! ## Around a whole service, called by hand
//!
//! `Fhirwall` is a `tower::Layer`, so it also wraps a whole service directly: a `Router`, or
//! the reverse proxy of a gateway in front of an existing FHIR server. Handed to hyper or
//! axum, which name the request type, that needs nothing more. When you call the service
//! yourself, name the request type too: write `Service::<Request<Body>>::call(&mut svc, req)`
//! and `ServiceExt::<Request<Body>>::oneshot(svc, req)`, not `svc.call(req)`. With method
//! syntax rustc looks for `call` before it knows the request type, and then works through the
//! bounds of every layer and every combination of layers left out: it takes many minutes to
//! compile (`tests/stack_around_service.rs` shows the named form).
//!
//! ```
//! use axum::{body::Body, routing::get, Router};
//! use fhirwall::fhir::Classifier;
//! use fhirwall::net::RemoteAddr;
//! use fhirwall::stack::Fhirwall;
//! use fhirwall::validate::{ValidateConfig, ValidateLayer};
//! use http::Request;
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stack = Fhirwall::builder()
//!     .classifier(Classifier::new("/fhir"))
//!     .validate(ValidateLayer::new(ValidateConfig::new()))
//!     .build()?;
//! let upstream: Router =
//!     Router::new().route("/fhir/Patient/{id}", get(|| async { r#"{"resourceType":"Patient"}"# }));
//! let svc = stack.layer(upstream);
//!
//! let mut request = Request::get("/fhir/Patient?birthdate=yesterday").body(Body::empty())?;
//! request.extensions_mut().insert(RemoteAddr("127.0.0.1:50000".parse()?));
//! let response = ServiceExt::<Request<Body>>::oneshot(svc, request).await?;
//! assert_eq!(response.status(), 400);
//! # Ok(())
//! # }
//! ```
//!
//! ## By hand
//!
//! The same stack with `tower::ServiceBuilder` around any service (the first `.layer` call is
//! the outermost), for when you need something between the layers:
//!
//! ```
//! use axum::{routing::get, Router};
//! use fhirwall::audit::{AuditCaptureLayer, AuditLayer, MemorySink};
//! use fhirwall::classify::ClassifyLayer;
//! use fhirwall::fhir::Classifier;
//! use fhirwall::limit::{BudgetLayer, MemoryStore, Rate};
//! use fhirwall::validate::{ValidateConfig, ValidateLayer};
//! use tower::ServiceBuilder;
//!
//! let classifier = Classifier::new("/fhir");
//! let layers = ServiceBuilder::new()
//!     .layer(AuditLayer::new(MemorySink::new()).classifier(classifier.clone())) // audit
//!     // firewall, identity would go here
//!     .layer(ClassifyLayer::new(classifier)) // classify
//!     // smart, firewall client rules would go here
//!     .layer(BudgetLayer::new(MemoryStore::default()).requests(Some(Rate::per_minute(300)))) // limit
//!     .layer(ValidateLayer::new(ValidateConfig::new())) // validate
//!     // redact would go here
//!     .layer(AuditCaptureLayer::new()); // audit capture
//! let app: Router = Router::new()
//!     .route("/fhir/Patient/{id}", get(|| async { r#"{"resourceType":"Patient"}"# }))
//!     .layer(layers);
//! ```
//!
//! ## What is refused at build time
//!
//! See [`StackError`]: no layer at all; `CertificateBinding::Required` without an identity
//! layer; `CertificateBinding::Off` next to one; a binding without a smart layer; a firewall
//! route inventory that declares nothing or serves another base; an audit capture without an
//! audit layer. Two contradictions of the issue can't arise and so have no error: an audit
//! layer always has a sink (its constructor takes one), and the smart layer's compartment
//! checks can't be switched off under `patient/` scopes.

mod builder;
mod chain;
#[cfg(feature = "audit")]
mod decisions;
mod error;
mod optional;

pub use builder::FhirwallBuilder;
pub use chain::{
    AuditStep, BudgetStep, CaptureStep, ClientRulesStep, DefaultStore, Fhirwall, FhirwallService,
    FirewallStep, First, GateStep, IdentityStep, RedactStep, SmartStep, StackStore, ValidateStep,
};
#[cfg(feature = "audit")]
pub use decisions::{NoteDecisions, NoteFuture};
pub use error::StackError;
#[cfg(feature = "limit")]
pub use optional::Budgeted;
pub use optional::{BodyShape, Optional, OptionalFuture, Unchanged, WrapBoth, WrapResponse};
