//! FHIR-aware response redaction (feature `redact`): what each client may see, down to the
//! element.
//!
//! A [`Policy`] (plain serde data) lists [`Rule`]s that remove or mask elements chosen by
//! [`ElementPath`]s (`Patient.telecom`, `Observation.value[x]`,
//! `Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')`,
//! `Patient.extension('url')`), or remove whole resources; [`LabelRule`]s hide resources by their
//! `meta.security` labels. Each rule applies to the callers its [`CallerMatch`] selects: client
//! names (mTLS trusted client, token `client_id`), SMART scopes, or named custom predicates.
//!
//! A [`Redactor`] compiles the policy against the R4 tables (a typo in a path is an error, not a
//! silently disabled rule; a removed required element is masked with a `data-absent-reason`
//! extension instead). [`RedactLayer`] captures the [`Caller`] from the request extensions
//! before calling the inner service, and filters the response:
//!
//! - resources, Bundles of every type (every `entry.resource`, `_include`d ones too, nested
//!   Bundles), `contained` resources, `Parameters` (`parameter.resource`, `part`) and NDJSON;
//! - one validating scan and one walk over the bytes, no `serde_json::Value`: what no rule
//!   touches is copied byte for byte (`1.50` stays `1.50`, key order is kept); memory is the
//!   body, the output, and small stacks, bounded by [`Redactor::max_body`];
//! - every altered resource gets the `meta.security` label `REDACTED`
//!   (`http://terminology.hl7.org/CodeSystem/v3-ObservationValue`), once; arrays and objects
//!   emptied by redaction are removed; a searchset that lost entries gets an
//!   `OperationOutcome` entry with issue code `suppressed` ([`Policy::suppressed_note`]);
//!   when the caller's plan can withhold whole resources (a `remove_resource` rule or a label
//!   rule applies), a searchset's `Bundle.total` (optional in R4) is removed: it counts the
//!   hidden matches of every page, so neither it nor a decremented number could be sent
//!   without telling how many resources are hidden;
//! - fails closed: JSON that doesn't parse, duplicate keys, nesting past the depth limit, a body
//!   over the limit, a compressed body (`Content-Encoding`: stack compression *outside*
//!   redaction) → 500 `OperationOutcome`; a request for XML or another format (`_format`,
//!   `Accept`) or a non-JSON response → 406; never the original body. `Content-Length` is
//!   fixed, a strong `ETag` is weakened, digests are dropped; HEAD and 304 pass with their
//!   headers adjusted. The [`RedactDecision`] goes on the response extensions.
//!
//! When no rule applies to the caller the response passes through unread.
//!
//! ```
//! use fhirwall::redact::{Action, Caller, CallerMatch, Policy, Redacted, Redactor, Rule};
//!
//! let policy = Policy {
//!     rules: vec![Rule::new(
//!         ["Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')"],
//!         Action::Remove,
//!     )
//!     .unwrap()
//!     .except(CallerMatch::clients(["care-team"]))],
//!     ..Policy::default()
//! };
//! let redactor = Redactor::new(policy).unwrap();
//! let patient = br#"{"resourceType":"Patient","id":"p","identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"999-12-3456"}],"birthDate":"1974-12-25"}"#;
//!
//! let care_team = redactor.plan(&Caller::anonymous().with_client("care-team"));
//! assert_eq!(care_team.redact(patient).unwrap(), Redacted::Unchanged);
//!
//! let Redacted::Changed { body, .. } = redactor.plan(&Caller::anonymous()).redact(patient).unwrap()
//! else { panic!() };
//! assert!(!String::from_utf8(body.into_vec()).unwrap().contains("999-12-3456"));
//! ```

mod builder;
mod caller;
mod check;
mod compile;
mod count;
#[cfg(all(test, feature = "limit"))]
mod count_tests;
mod edit;
mod engine;
mod heads;
mod keys;
mod labels;
mod layer;
mod member;
mod outcome;
mod output;
mod path;
mod policy;
mod scanner;
mod search_guard;
mod skip;
mod strings;
#[cfg(test)]
mod walk_tests;

pub use builder::RedactorBuilder;
#[cfg(feature = "smart")]
pub use caller::FromAccessContext;
#[cfg(feature = "mtls")]
pub use caller::FromTrustedClient;
pub use caller::{CallerExtractor, FromCallerExtension};
pub use compile::{
    Plan, PolicyError, Predicate, Redactor, DEFAULT_MAX_BODY, DEFAULT_MAX_DEPTH, MAX_DEPTH_CEILING,
};
pub use layer::{Redact, RedactDecision, RedactFuture, RedactLayer, RedactRefusal};
pub use outcome::{RedactError, Redacted, RedactedBody, REDACTED_SYSTEM};
pub use path::{ElementPath, Filter, PathError, Step, MAX_PATH_LEN};
pub use policy::{Action, Caller, CallerMatch, LabelRule, Policy, Required, Rule};
