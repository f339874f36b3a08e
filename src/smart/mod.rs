//! SMART on FHIR authorization (feature `smart`): verified tokens, v1/v2/granular scopes, the
//! patient compartment, certificate-bound tokens and RFC 6750 challenges.
//!
//! The module has two halves that meet in [`VerifiedClaims`]:
//!
//! - token verification turns a bearer token into [`VerifiedClaims`] through the
//!   [`VerifyToken`] trait ([`token`]);
//! - authorization turns the claims into an [`AccessContext`] ([`ContextConfig`]) and decides
//!   every FHIR interaction ([`authorize`], [`AuthzPolicy`]) against the token's [`ScopeSet`].
//!
//! [`SmartLayer`] puts both together as a tower layer, with RFC 8705 certificate binding
//! ([`CertificateBinding`]), RFC 6750 challenges ([`refusal_response`]) and
//! `.well-known/smart-configuration` ([`SmartConfiguration`]).
//!
//! ```
//! use fhirwall::fhir::Classifier;
//! use fhirwall::smart::{authorize, AccessContext, AuthzPolicy, MalformedScopes, ScopeSet};
//! use http::{HeaderMap, Method};
//!
//! let scopes = ScopeSet::parse("launch/patient patient/*.rs", MalformedScopes::RefuseToken).unwrap();
//! let ctx = AccessContext::new(scopes).with_patients(["pat-1"]);
//! let uri = "/fhir/Condition?clinical-status=active".parse().unwrap();
//! let request = Classifier::new("/fhir").classify(&Method::GET, &uri, &HeaderMap::new(), b"").unwrap();
//! let allowed = authorize(&request, &ctx, &AuthzPolicy::new()).unwrap();
//! assert_eq!(allowed.narrowing(), Some("patient=Patient/pat-1"));
//! ```
//!
//! # Scopes
//!
//! [`Scope`] follows SMART App Launch 2.2 §"Scopes for requesting FHIR resources":
//! `<patient|user|system>/<Type|*>.<permissions>[?param=value&...]`, v2 permissions `c r u d s`
//! in that order (non-empty, no repeats), v1 `.read`/`.write`/`.*` read as `.rs`/`.cud`/`.cruds`.
//! Granular parameters must be plain search parameters of the type (AND between parameters, OR
//! between comma-separated values). `openid`, `fhirUser`, `profile`, `launch`, `launch/*`,
//! `offline_access`, `online_access` and extension scopes grant no data access. A malformed
//! scope is never salvaged into a narrower one: the token is refused
//! ([`MalformedScopes::RefuseToken`], the default) or that scope alone dropped
//! ([`MalformedScopes::DropScope`]). Access is the union over every scope, never the first match.
//!
//! # The patient compartment
//!
//! Under `patient/` scopes (FHIR R4 §2.23, through the generated
//! [`patient_compartment`](crate::fhir::tables::patient_compartment) table):
//!
//! - **Membership.** A `Patient` belongs to the patients in context when its id is one of
//!   theirs. Any other resource belongs when the references at its compartment parameters'
//!   element paths name at least one patient in context *and no other patient*: stricter than
//!   the CompartmentDefinition, under which an Observation about patient B performed by
//!   patient A is in A's compartment too. A reference that can't be resolved (another server's
//!   `.../Patient/x`, `urn:uuid:`, an identifier-only Patient reference, a contained Patient)
//!   counts as another patient's. Absolute references count as local only under
//!   [`AuthzPolicy::base_url`].
//! - **Searches** that only `patient/` scopes allow are narrowed: the type's compartment
//!   parameter (`patient`, else `subject`, else the first in the table; `_id` for `Patient`)
//!   set to the patients in context is appended to the URI the inner service receives (and to
//!   the [`FhirRequest`](crate::fhir::FhirRequest) later layers read). A search whose own
//!   parameters name another patient is refused (403), as are `_has`, chains, `_filter`,
//!   `_text`/`_content`, `_sort` outside the type's own parameters, `_list` and `_query`
//!   unless [`AuthzPolicy::danger_allow_patient_search`]. System-level searches and type or
//!   system histories can't be narrowed and are refused; use a compartment search or
//!   `$everything`.
//! - **Reads and search results** are checked on the response, resource by resource:
//!   a resource of another patient is answered like a missing one (404 by default,
//!   [`AuthzPolicy::hidden_status`]; the server's own 404 and 410 get the same answer), and a
//!   Bundle entry of another patient, including `_include`, `_revinclude` and `:iterate`
//!   entries, is removed, together with `Bundle.total` (it would count what was withheld).
//!   Responses are read up to [`SmartLayer::max_response_body`]; what can't be parsed (or has
//!   duplicate JSON keys) is refused with 502, never passed on. Untouched members keep their
//!   exact bytes.
//! - **Writes** must land in the compartment: the body of a create or update is checked
//!   before it is passed on; an update or delete of one resource first reads the stored
//!   resource through the inner service and refuses if it is not the patient's; conditional
//!   writes have their condition narrowed, and a narrowed conditional update may not carry an
//!   id (with no match, the server would create or overwrite the resource with that id).
//!   Patch is refused under `patient/` and granular scopes (its result can't be checked).
//! - **Shared reference types** (Practitioner, Organization, Medication ...) are readable under
//!   `patient/` scopes only when listed in [`AuthzPolicy::shared_types`]
//!   ([`COMMON_SHARED_TYPES`] is a typical list).
//!
//! Granular conditions are enforced the same way: a search must carry the scope's parameters
//! itself (so the server applies them); a read, an included resource or a written resource is
//! checked against them (token, reference and URI parameters can be checked; a condition that
//! can't be is taken as not holding).

mod access;
mod authorize;
mod binding;
mod challenge;
mod claims;
mod compartment;
mod context;
mod decision;
mod future;
mod gate;
mod granular;
mod json;
mod layer;
mod operations;
mod plain;
mod policy;
mod response;
mod scope;
mod scope_set;
mod sparse;
mod steps;
pub mod token;
mod type_facts;
mod verify;
mod well_known;
mod write_check;

pub use authorize::authorize;
pub use binding::{thumbprints_match, CertificateBinding};
pub use challenge::refusal_response;
pub use claims::VerifiedClaims;
pub use context::{AccessContext, ContextConfig, ContextError, PatientContextSource};
pub use decision::{Authorized, Refusal, RefusalKind, SmartDecision};
pub use future::SmartFuture;
pub use gate::{TokenGate, TokenGateFuture, TokenGateLayer};
pub use layer::{Smart, SmartLayer};
pub use policy::{AuthzPolicy, OperationRule, PatientSearchFeature, COMMON_SHARED_TYPES};
pub use scope::{
    Permissions, ResourceScope, Scope, ScopeContext, ScopeError, ScopeParam, ScopeVersion,
    MAX_SCOPE_LEN,
};
pub use scope_set::{MalformedScopes, ScopeSet, ScopeSetError, MAX_SCOPES};
pub use verify::{TokenFuture, TokenRejection, TokenRejectionKind, VerifyToken};
pub use well_known::SmartConfiguration;
