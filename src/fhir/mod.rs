//! Shared FHIR knowledge: request classification, the R4 tables and `OperationOutcome`.
//!
//! Nothing here depends on tower: the [`Classifier`] turns a method, URI, headers and (for
//! batches, transactions and `POST _search`) a body into a [`FhirRequest`], or into an
//! [`Unclassified`] refusal. The tower side lives in [`crate::classify`].
//!
//! ```
//! use fhirwall::fhir::{Classifier, Interaction, OperationLevel};
//! use http::{HeaderMap, Method};
//!
//! let classifier = Classifier::new("/fhir");
//! let uri = "/fhir/Patient/123/$everything?_count=50".parse().unwrap();
//! let request = classifier.classify(&Method::GET, &uri, &HeaderMap::new(), b"").unwrap();
//! assert_eq!(request.interaction(), Interaction::Operation);
//! assert_eq!(request.operation().unwrap().name, "everything");
//! assert_eq!(request.operation().unwrap().level, OperationLevel::Instance);
//! assert_eq!(request.id(), Some("123"));
//! ```

mod bundle;
mod classify;
mod interaction;
mod outcome;
mod path;
mod query;
pub mod tables;
mod unclassified;

pub use classify::{Classification, Classifier, PendingBody};
pub use interaction::{
    BundleEntry, Compartment, FhirRequest, Interaction, Operation, OperationLevel,
};
pub use outcome::{Issue, IssueSeverity, IssueType, OperationOutcome, FHIR_JSON, MAX_TEXT_LEN};
pub use query::{ParamKind, Query, QueryError, QueryParam, SearchValue};
pub use tables::ResourceType;
pub use unclassified::{Unclassified, UnclassifiedKind};
