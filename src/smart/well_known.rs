//! `.well-known/smart-configuration` (SMART App Launch 2.2 §"Conformance": "SMART on FHIR
//! Well-Known Configuration"), served from configuration without a token.
//!
//! ```
//! use fhirwall::smart::SmartConfiguration;
//!
//! let config = SmartConfiguration::new("https://auth.example.org/token")
//!     .issuer("https://auth.example.org")
//!     .jwks_uri("https://auth.example.org/jwks")
//!     .authorization_endpoint("https://auth.example.org/authorize")
//!     .scopes_supported(["openid", "fhirUser", "launch/patient", "patient/*.rs"]);
//! let json: serde_json::Value = serde_json::from_slice(&config.to_json()).unwrap();
//! assert!(json["capabilities"].as_array().unwrap().contains(&"permission-v2".into()));
//! assert_eq!(json["code_challenge_methods_supported"], serde_json::json!(["S256"]));
//! ```

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

/// The SMART configuration document.
///
/// Defaults: `grant_types_supported` `["authorization_code"]`,
/// `code_challenge_methods_supported` `["S256"]` (the specification forbids `plain`),
/// `capabilities` `["permission-patient", "permission-user", "permission-v1",
/// "permission-v2"]`; add launch and client capabilities with [`capability`](Self::capability).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SmartConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_endpoint: Option<String>,
    grant_types_supported: Vec<String>,
    token_endpoint: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    response_types_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    management_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    introspection_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_endpoint: Option<String>,
    capabilities: Vec<String>,
    code_challenge_methods_supported: Vec<String>,
}

impl SmartConfiguration {
    /// A document with this token endpoint (the one required URL) and the defaults.
    pub fn new(token_endpoint: impl Into<String>) -> Self {
        SmartConfiguration {
            issuer: None,
            jwks_uri: None,
            authorization_endpoint: None,
            grant_types_supported: vec!["authorization_code".into()],
            token_endpoint: token_endpoint.into(),
            token_endpoint_auth_methods_supported: Vec::new(),
            registration_endpoint: None,
            scopes_supported: Vec::new(),
            response_types_supported: Vec::new(),
            management_endpoint: None,
            introspection_endpoint: None,
            revocation_endpoint: None,
            capabilities: [
                "permission-patient",
                "permission-user",
                "permission-v1",
                "permission-v2",
            ]
            .map(String::from)
            .to_vec(),
            code_challenge_methods_supported: vec!["S256".into()],
        }
    }

    /// `issuer` (required with `sso-openid-connect`).
    pub fn issuer(mut self, url: impl Into<String>) -> Self {
        self.issuer = Some(url.into());
        self
    }

    /// `jwks_uri` (required with `sso-openid-connect`).
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = Some(url.into());
        self
    }

    /// `authorization_endpoint` (required with `launch-ehr` or `launch-standalone`).
    pub fn authorization_endpoint(mut self, url: impl Into<String>) -> Self {
        self.authorization_endpoint = Some(url.into());
        self
    }

    /// `grant_types_supported` (replaces the default).
    pub fn grant_types_supported<I, S>(mut self, grants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.grant_types_supported = grants.into_iter().map(Into::into).collect();
        self
    }

    /// `token_endpoint_auth_methods_supported`.
    pub fn token_endpoint_auth_methods_supported<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.token_endpoint_auth_methods_supported = methods.into_iter().map(Into::into).collect();
        self
    }

    /// `registration_endpoint`.
    pub fn registration_endpoint(mut self, url: impl Into<String>) -> Self {
        self.registration_endpoint = Some(url.into());
        self
    }

    /// `scopes_supported`.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// `response_types_supported`.
    pub fn response_types_supported<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.response_types_supported = types.into_iter().map(Into::into).collect();
        self
    }

    /// `management_endpoint`.
    pub fn management_endpoint(mut self, url: impl Into<String>) -> Self {
        self.management_endpoint = Some(url.into());
        self
    }

    /// `introspection_endpoint`.
    pub fn introspection_endpoint(mut self, url: impl Into<String>) -> Self {
        self.introspection_endpoint = Some(url.into());
        self
    }

    /// `revocation_endpoint`.
    pub fn revocation_endpoint(mut self, url: impl Into<String>) -> Self {
        self.revocation_endpoint = Some(url.into());
        self
    }

    /// Adds a capability (`launch-standalone`, `client-confidential-asymmetric`,
    /// `context-standalone-patient`, `sso-openid-connect`, ...).
    pub fn capability(mut self, capability: impl Into<String>) -> Self {
        let capability = capability.into();
        if !self.capabilities.contains(&capability) {
            self.capabilities.push(capability);
        }
        self
    }

    /// The capabilities.
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// The document as JSON.
    pub fn to_json(&self) -> Bytes {
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_default()
    }

    /// The document as a `200 application/json` response.
    pub fn to_response(&self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.to_json()));
        *response.status_mut() = StatusCode::OK;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        response
    }
}
