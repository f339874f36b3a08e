//! Audit (feature `audit`): one structured record per request, refused ones included.
//!
//! [`AuditLayer`] goes outermost. When the response head is known it writes an
//! [`AuditRecord`] — shaped after FHIR AuditEvent and the IHE Basic Audit Log Patterns — to an
//! [`AuditSink`] and as a `tracing` event (target `fhirwall::audit`, DEBUG): time, client
//! (trusted client, token client_id, subject, patient context, address), interaction,
//! resource type and id, search parameters (identifying values hashed, secrets dropped:
//! [`ParamPolicy`]), status and outcome, which layer decided and why, resources returned,
//! redactions and latency. Tokens, keys and headers are never recorded.
//!
//! ## The deciding layer: the extension point
//!
//! Each layer puts its decision on the response extensions. The audit layer reads, in order:
//! a [`LayerDecision`] marked refused (any layer, yours included), then the known types of the
//! layers compiled in (`firewall::FirewallDecision`, [`crate::fhir::Unclassified`],
//! `identity::IdentityDecision`, `smart::SmartDecision`), then an allowing
//! [`LayerDecision`]; with none, the handler decided. Counts come from [`ResourcesReturned`]
//! and [`Redactions`]; who the client was from an [`AuditAgent`], which
//! [`AuditCaptureLayer`] (innermost) copies from the request extensions.
//!
//! ## Sinks
//!
//! [`JsonLinesFile`] (rotation by size), [`TracingSink`], [`MemorySink`], and
//! [`NonBlocking`], which puts any sink behind a bounded queue and a writer thread that hands
//! it records in batches ([`AuditSink::record_batch`]): when the queue overflows, records are
//! dropped, counted, and the count is written as a record of its own.
//!
//! ```
//! use axum::{routing::get, Router};
//! use fhirwall::audit::{AuditCaptureLayer, AuditLayer, MemorySink};
//!
//! let sink = MemorySink::new();
//! let app: Router = Router::new()
//!     .route("/fhir/Patient/{id}", get(|| async { "{}" }))
//!     .layer(AuditCaptureLayer::new()) // innermost
//!     // … classify, identity, smart, … here
//!     .layer(AuditLayer::new(sink.clone())); // outermost
//! ```

mod decision;
mod json;
mod layer;
mod record;
mod sink;

pub use decision::{DecisionOutcome, LayerDecision, Redactions, ResourcesReturned};
pub use layer::{
    default_agent, AgentFn, Audit, AuditCapture, AuditCaptureLayer, AuditFuture, AuditLayer,
    CaptureFuture,
};
pub use record::{
    AuditAgent, AuditRecord, ParamPolicy, RecordedDecision, RecordedParam, ValuePolicy,
};
pub use sink::{AuditSink, JsonLinesFile, MemorySink, NonBlocking, TracingSink};
