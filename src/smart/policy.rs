//! [`AuthzPolicy`]: the settings of authorization that are not in the token.

use super::scope::Permissions;
use crate::fhir::{OperationLevel, ResourceType};
use http::StatusCode;

/// Resource types outside the Patient compartment that patient apps commonly need to resolve
/// references (`Observation.performer`, `MedicationRequest.medication`, ...). Not allowed by
/// default: pass them to [`AuthzPolicy::shared_types`] to allow them.
pub const COMMON_SHARED_TYPES: [ResourceType; 8] = [
    ResourceType::Practitioner,
    ResourceType::PractitionerRole,
    ResourceType::Organization,
    ResourceType::Location,
    ResourceType::Medication,
    ResourceType::Substance,
    ResourceType::HealthcareService,
    ResourceType::Endpoint,
];

/// A search feature refused for requests that only `patient/` scopes allow, because it can
/// reach or reveal data outside the compartment (see [`AuthzPolicy::danger_allow_patient_search`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PatientSearchFeature {
    /// `_has` reverse chaining: selects by other resources, which may be other patients'.
    Has,
    /// Chained parameters (`subject.name=...`, `subject:Patient.name=...`) into other types.
    Chain,
    /// `_filter`, whose expressions can reach any element and chain freely.
    Filter,
    /// `_text` and `_content`: full-text search over narrative the scopes may not cover.
    Text,
    /// `_sort` on anything but the searched type's own non-reference parameters.
    Sort,
    /// `_query` named queries and `_list`, whose meaning is the server's.
    NamedQuery,
}

impl PatientSearchFeature {
    const fn bit(self) -> u8 {
        match self {
            PatientSearchFeature::Has => 1,
            PatientSearchFeature::Chain => 2,
            PatientSearchFeature::Filter => 4,
            PatientSearchFeature::Text => 8,
            PatientSearchFeature::Sort => 16,
            PatientSearchFeature::NamedQuery => 32,
        }
    }
}

/// An operation (`$name`) that is allowed, with the permission it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationRule {
    name: String,
    level: Option<OperationLevel>,
    permissions: Permissions,
}

impl OperationRule {
    /// `$name` at any level, needing `permissions` on the type it is invoked on (on every type
    /// at system level).
    pub fn new(name: impl Into<String>, permissions: Permissions) -> Self {
        OperationRule {
            name: name.into(),
            level: None,
            permissions,
        }
    }

    /// Only at this level.
    pub fn at(mut self, level: OperationLevel) -> Self {
        self.level = Some(level);
        self
    }

    /// The operation's name without `$`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The permissions it needs.
    pub fn permissions(&self) -> Permissions {
        self.permissions
    }

    pub(crate) fn matches(&self, name: &str, level: OperationLevel) -> bool {
        self.name == name && self.level.is_none_or(|l| l == level)
    }
}

/// Authorization settings that are not in the token.
///
/// Defaults: no shared reference types under `patient/` scopes; hidden resources answered
/// `404 Not Found`; no operations allowed besides `$everything` and `$export`; every
/// [`PatientSearchFeature`] refused for requests only `patient/` scopes allow; no absolute
/// base URLs (absolute references to a Patient are never taken to be this server's).
#[derive(Clone, Debug)]
pub struct AuthzPolicy {
    pub(crate) shared_types: Vec<ResourceType>,
    pub(crate) hidden_status: StatusCode,
    pub(crate) operations: Vec<OperationRule>,
    patient_search: u8,
    pub(crate) base_urls: Vec<String>,
}

impl Default for AuthzPolicy {
    fn default() -> Self {
        AuthzPolicy {
            shared_types: Vec::new(),
            hidden_status: StatusCode::NOT_FOUND,
            operations: Vec::new(),
            patient_search: 0,
            base_urls: Vec::new(),
        }
    }
}

impl AuthzPolicy {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Types outside the Patient compartment that `patient/` scopes may read and search
    /// (default none; [`COMMON_SHARED_TYPES`] is a typical choice). Writes to them still need a
    /// `user/` or `system/` scope.
    pub fn shared_types(mut self, types: impl IntoIterator<Item = ResourceType>) -> Self {
        self.shared_types = types.into_iter().collect();
        self
    }

    /// The status of a refusal for a resource the token may not see (default 404, so that
    /// refusing does not reveal that the resource exists; 403 is the other sensible answer).
    pub fn hidden_status(mut self, status: StatusCode) -> Self {
        self.hidden_status = status;
        self
    }

    /// Allows an operation with the permission it needs. Operations not declared are refused
    /// (`$everything` and `$export` are built in).
    pub fn operation(mut self, rule: OperationRule) -> Self {
        self.operations.push(rule);
        self
    }

    /// The absolute base URL(s) of the FHIR server (`https://ehr.example.org/fhir`), so that
    /// absolute references to it count as local in compartment checks. Absolute references to
    /// any other base are treated as another patient's.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        let url: String = url.into();
        self.base_urls.push(url.trim_end_matches('/').to_owned());
        self
    }

    /// Allows a search feature for requests that only `patient/` scopes allow. Dangerous: each
    /// of them can select or reveal data outside the patient's compartment through the server's
    /// own evaluation, which fhirwall cannot follow; results are still checked one by one, but
    /// what they were selected by can leak.
    pub fn danger_allow_patient_search(mut self, feature: PatientSearchFeature) -> Self {
        self.patient_search |= feature.bit();
        self
    }

    pub(crate) fn allows_patient_search(&self, feature: PatientSearchFeature) -> bool {
        self.patient_search & feature.bit() != 0
    }

    pub(crate) fn is_shared(&self, rt: ResourceType) -> bool {
        self.shared_types.contains(&rt)
    }
}
