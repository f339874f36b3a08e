//! Request-side input validation (feature `validate`): hostile JSON, content negotiation,
//! FHIR R4 structure, search parameters, ids and references, checked in one pass before the
//! handler sees the request.
//!
//! [`ValidateLayer`] sits inside [`ClassifyLayer`](crate::classify::ClassifyLayer) (it reads the
//! [`FhirRequest`](crate::fhir::FhirRequest) that layer puts in the extensions; without it
//! every request is refused with 500 "fhirwall is misconfigured"). For a request with a body
//! (create, update, patch, batch, transaction, `POST` operations) it reads the body up to
//! [`ValidateConfig::max_body_bytes`] (413 beyond, chunked bodies included), checks it, and
//! hands the inner service the same bytes.
//!
//! What is refused, each problem one `OperationOutcome` issue with a FHIRPath `expression`:
//!
//! - **400**: JSON that is not strict RFC 8259 (duplicate keys, lone surrogates, invalid UTF-8,
//!   control characters, `NaN`, trailing data) or nested deeper than the limit; unknown
//!   elements, arrays where single and single where arrays, wrong JSON types, `null`, empty
//!   strings, arrays and objects; an unknown or mismatched `resourceType`, an update whose body
//!   `id` differs from the URL; unknown search parameters, wrong modifiers, bad values, caps.
//! - **422**: primitive formats (dates, ids, integers ...), missing required elements, more
//!   than one variant of a choice, codes outside a complete required binding, bad references.
//! - **415** for a body that is not FHIR JSON, **406** for `_format`/`Accept` asking for
//!   something else.
//!
//! ```
//! use axum::{routing::post, Router};
//! use fhirwall::classify::ClassifyLayer;
//! use fhirwall::fhir::Classifier;
//! use fhirwall::validate::{ValidateConfig, ValidateLayer};
//! use tower::ServiceBuilder;
//!
//! let app: Router = Router::new()
//!     .route("/fhir/Patient", post(|| async { "created" }))
//!     .layer(
//!         ServiceBuilder::new()
//!             .layer(ClassifyLayer::new(Classifier::new("/fhir")))
//!             .layer(ValidateLayer::new(ValidateConfig::new().max_count(50))),
//!     );
//!
//! // The checks also run on their own:
//! let body = br#"{"resourceType":"Patient","gender":"female","birthDate":"1970-13-01"}"#;
//! let refusal = fhirwall::validate::check_resource(body, &ValidateConfig::new()).unwrap_err();
//! assert_eq!(refusal.problems()[0].expression, "Patient.birthDate");
//! assert_eq!(refusal.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
//! ```

mod config;
mod json;
mod layer;
mod negotiate;
mod primitives;
mod problem;
mod references;
mod search;
mod structure;

pub use config::{CreateId, ValidateConfig};
pub use json::{check as check_json, JsonError, JsonErrorKind};
pub use layer::{Validate, ValidateFuture, ValidateLayer, ValidationDecision};
pub use problem::{Problem, ProblemClass, Rejection};
pub use search::check_search;
pub use structure::{check_resource, Checked};
