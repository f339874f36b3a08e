//! The SMART sections of the policy file: `[tokens]`, `[authorization]`, `[smart_configuration]`.

use super::macros::{choice, item, section};
use super::secret::SecretRef;
use super::values::{
    AlgorithmName, Cidr, HeaderNameText, HiddenStatus, HttpsUrl, PermissionLetters, ScopeText,
};
use serde::Deserialize;
use std::path::PathBuf;

choice! {
    /// Where the token verifier's keys come from by discovery.
    pub enum Discovery {
        /// `{issuer}/.well-known/openid-configuration`.
        #[default]
        Openid,
        /// `{base_url}/.well-known/smart-configuration`.
        Smart,
    }
}

choice! {
    /// What a malformed scope does.
    pub enum MalformedScopesName {
        /// Refuse the token (default).
        #[default]
        RefuseToken,
        /// Drop that scope only.
        DropScope,
    }
}

/// One place the patient context comes from.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum PatientContextSpec {
    /// `{ claim = "patient" }`: a claim by dotted path.
    Claim(String),
    /// `"fhir_user"`: the `fhirUser` claim when it is a Patient.
    FhirUser,
    /// `{ proxy_header = { header = "x-patient-id", proxies = ["10.0.0.0/8"] } }`.
    ProxyHeader {
        /// The header.
        header: HeaderNameText,
        /// The proxies allowed to set it.
        proxies: Vec<Cidr>,
    },
}

item! {
    /// `[tokens]`: the one token issuer whose signed JWTs are accepted.
    pub struct Tokens {
        /// The exact `iss`.
        pub issuer: String,
        /// Accepted `aud` values (default: `service.base_url`).
        #[serde(default)]
        pub audiences: Vec<String>,
        /// A JWK Set URL (feature `jwks`).
        #[serde(default)]
        pub jwks_url: Option<HttpsUrl>,
        /// Find the JWKS by discovery (feature `jwks`).
        #[serde(default)]
        pub jwks_discovery: Option<Discovery>,
        /// Static public keys: a PEM or JWK Set file, relative to the policy file.
        #[serde(default)]
        pub public_keys_file: Option<PathBuf>,
        /// A shared HMAC secret (HS256/384/512). Dangerous: whoever holds it can mint tokens.
        #[serde(default)]
        pub danger_hmac_secret: Option<SecretRef>,
        /// The algorithm allowlist (default RS*, PS*, ES256, ES384, EdDSA).
        #[serde(default)]
        pub algorithms: Vec<AlgorithmName>,
        /// A required header `typ` (`at+jwt`).
        #[serde(default)]
        pub require_typ: Option<String>,
        /// Clock skew for `exp`, `nbf`, `iat`, in seconds (default 60).
        #[serde(default)]
        pub leeway_seconds: Option<u64>,
        /// Longest token in bytes (default 16384).
        #[serde(default)]
        pub max_token_len: Option<usize>,
        /// Verified tokens cached (default 10000; 0: off).
        #[serde(default)]
        pub cache_capacity: Option<usize>,
        /// Longest a verified token stays cached, in seconds (default 300).
        #[serde(default)]
        pub cache_max_age_seconds: Option<u64>,
        /// Fetch keys over plain HTTP. Dangerous (tests on 127.0.0.1 only).
        #[serde(default)]
        pub insecure_allow_http: bool,
        /// The claim holding the scopes (default `scope`).
        #[serde(default)]
        pub scope_claim: Option<String>,
        /// What a malformed scope does.
        #[serde(default)]
        pub malformed_scopes: MalformedScopesName,
        /// Where the patient context comes from, tried in order (default `{ claim = "patient" }`).
        #[serde(default)]
        pub patient_context: Vec<PatientContextSpec>,
    }
}

choice! {
    /// RFC 8705 certificate binding of tokens.
    pub enum BindingName {
        /// Not checked.
        Off,
        /// Checked when the token has `cnf.x5t#S256` (default).
        #[default]
        WhenPresent,
        /// Every token must be bound to the client certificate.
        Required,
    }
}

choice! {
    /// A search feature refused under `patient/` scopes unless allowed.
    pub enum PatientSearchName {
        /// `_has`.
        #[default]
        Has,
        /// Chained parameters.
        Chain,
        /// `_filter`.
        Filter,
        /// `_text`, `_content`.
        Text,
        /// `_sort` beyond the type's own parameters.
        Sort,
        /// `_query`, `_list`.
        NamedQuery,
    }
}

choice! {
    /// The level an operation is allowed at.
    pub enum LevelName {
        /// `[base]/$name`.
        #[default]
        System,
        /// `[base]/[type]/$name`.
        Type,
        /// `[base]/[type]/[id]/$name`.
        Instance,
    }
}

item! {
    /// `[[authorization.operations]]`.
    pub struct OperationSpec {
        /// The operation, without `$`.
        pub name: String,
        /// Only at this level (default: any).
        #[serde(default)]
        pub level: Option<LevelName>,
        /// The SMART v2 permissions it needs on the type (`r`, `rs`, `cud`).
        pub permissions: PermissionLetters,
    }
}

section! {
    /// `[authorization]`: scope and operation rules (SMART layer).
    pub struct Authorization {
        /// The `WWW-Authenticate` realm (default `fhirwall`).
        #[serde(default)]
        pub realm: Option<String>,
        /// RFC 8705 binding (the SMART layer's default is `when_present`).
        #[serde(default)]
        pub certificate_binding: Option<BindingName>,
        /// Types outside the Patient compartment `patient/` scopes may read; `["common"]` for
        /// Practitioner, PractitionerRole, Organization, Location, Medication, Substance,
        /// HealthcareService, Endpoint.
        #[serde(default)]
        pub shared_types: Vec<String>,
        /// The status of a refusal for a resource the token may not see (404 or 403).
        #[serde(default)]
        pub hidden_status: Option<HiddenStatus>,
        /// Absolute base URLs that count as this server in compartment checks (besides `service.base_url`).
        #[serde(default)]
        pub base_urls: Vec<String>,
        /// Operations allowed besides `$everything` and `$export`.
        #[serde(default)]
        pub operations: Vec<OperationSpec>,
        /// Search features allowed under `patient/` scopes. Dangerous.
        #[serde(default)]
        pub danger_allow_patient_search: Vec<PatientSearchName>,
        /// Largest request body checked, in bytes (default 4 MiB).
        #[serde(default)]
        pub max_request_body: Option<usize>,
        /// Largest response body checked, in bytes (default 16 MiB).
        #[serde(default)]
        pub max_response_body: Option<usize>,
    }
}

item! {
    /// `[smart_configuration]`: the published `.well-known/smart-configuration`.
    pub struct SmartConfigurationSpec {
        /// `token_endpoint` (required).
        pub token_endpoint: HttpsUrl,
        /// `authorization_endpoint`.
        #[serde(default)]
        pub authorization_endpoint: Option<HttpsUrl>,
        /// `issuer` (default `tokens.issuer`).
        #[serde(default)]
        pub issuer: Option<String>,
        /// `jwks_uri` (default `tokens.jwks_url`).
        #[serde(default)]
        pub jwks_uri: Option<HttpsUrl>,
        /// `grant_types_supported` (default `["authorization_code"]`).
        #[serde(default)]
        pub grant_types_supported: Vec<String>,
        /// `token_endpoint_auth_methods_supported`.
        #[serde(default)]
        pub token_endpoint_auth_methods_supported: Vec<String>,
        /// `registration_endpoint`.
        #[serde(default)]
        pub registration_endpoint: Option<HttpsUrl>,
        /// `scopes_supported`: each must be a SMART scope.
        #[serde(default)]
        pub scopes_supported: Vec<ScopeText>,
        /// `response_types_supported`.
        #[serde(default)]
        pub response_types_supported: Vec<String>,
        /// `management_endpoint`.
        #[serde(default)]
        pub management_endpoint: Option<HttpsUrl>,
        /// `introspection_endpoint`.
        #[serde(default)]
        pub introspection_endpoint: Option<HttpsUrl>,
        /// `revocation_endpoint`.
        #[serde(default)]
        pub revocation_endpoint: Option<HttpsUrl>,
        /// Capabilities besides the permission ones (`launch-standalone`, `client-confidential-asymmetric` ...).
        #[serde(default)]
        pub capabilities: Vec<String>,
    }
}
