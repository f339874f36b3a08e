//! `[tokens]`, `[authorization]` and `[smart_configuration]` → the SMART layer.

use super::{BindingName, LevelName, MalformedScopesName, PatientContextSpec, PatientSearchName};
use super::{Policy, PolicyError, PolicyErrorKind};
use crate::fhir::{OperationLevel, ResourceType};
use crate::smart::token::{JwtVerifier, KeySet};
use crate::smart::{
    AuthzPolicy, CertificateBinding, ContextConfig, MalformedScopes, OperationRule,
    PatientContextSource, PatientSearchFeature, SmartConfiguration, SmartLayer,
    COMMON_SHARED_TYPES,
};
use std::time::Duration;

impl Policy {
    /// The token verifier of `[tokens]` (`None` without that section).
    pub fn token_verifier(&self) -> Result<Option<JwtVerifier>, PolicyError> {
        let ctx = self.ctx();
        let Some(t) = &self.document.tokens else {
            return Ok(None);
        };
        let mut b = JwtVerifier::builder().issuer(t.issuer.clone());
        let audiences: Vec<String> = if t.audiences.is_empty() {
            self.document
                .service
                .base_url
                .iter()
                .map(|u| u.0.clone())
                .collect()
        } else {
            t.audiences.clone()
        };
        if audiences.is_empty() {
            return Err(ctx.err(
                PolicyErrorKind::MissingKey,
                "tokens",
                "tokens need audiences (the FHIR base URL tokens must be issued for), or service.base_url",
            ));
        }
        for aud in audiences {
            b = b.audience(aud);
        }
        let sources = [
            ("tokens.jwks_url", t.jwks_url.is_some()),
            ("tokens.jwks_discovery", t.jwks_discovery.is_some()),
            ("tokens.public_keys_file", t.public_keys_file.is_some()),
            ("tokens.danger_hmac_secret", t.danger_hmac_secret.is_some()),
        ];
        let given: Vec<&str> = sources
            .iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| *k)
            .collect();
        match given.as_slice() {
            [] => {
                return Err(ctx.err(
                    PolicyErrorKind::MissingKey,
                    "tokens",
                    "tokens need one key source: jwks_url, jwks_discovery, public_keys_file or danger_hmac_secret",
                ))
            }
            [_] => {}
            [_, second, ..] => {
                return Err(ctx.contradiction(
                    second,
                    format!("{} and {} exclude each other: give one key source", given.first().copied().unwrap_or_default(), second),
                ))
            }
        }
        if let Some(path) = &t.public_keys_file {
            let key = "tokens.public_keys_file";
            let bytes = ctx.read(key, path)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ctx.invalid(key, "the key file is not UTF-8 text (PEM or JWK Set)"))?;
            let keys = if text.trim_start().starts_with('{') {
                KeySet::from_jwks(&text)
            } else {
                KeySet::from_pem(&text)
            }
            .map_err(|e| ctx.invalid(key, e.to_string()))?;
            b = b.keys(keys);
        }
        if let Some(secret) = &t.danger_hmac_secret {
            if let Some(value) = secret.value() {
                b = b.danger_hmac_secret(value.expose());
            }
        }
        b = self.remote_keys(b, t)?;
        if !t.algorithms.is_empty() {
            b = b.algorithms(t.algorithms.iter().map(|a| a.0));
        }
        if let Some(typ) = &t.require_typ {
            b = b.require_typ(typ.clone());
        }
        if let Some(s) = t.leeway_seconds {
            b = b.leeway(Duration::from_secs(s));
        }
        if let Some(n) = t.max_token_len {
            b = b.max_token_len(n);
        }
        if let Some(n) = t.cache_capacity {
            b = b.cache_capacity(n);
        }
        if let Some(s) = t.cache_max_age_seconds {
            b = b.cache_max_age(Duration::from_secs(s));
        }
        b.build().map(Some).map_err(|e| {
            let key = match e {
                crate::smart::token::BuildError::AlgorithmConfusion
                | crate::smart::token::BuildError::NoAlgorithms => "tokens.algorithms",
                crate::smart::token::BuildError::MissingIssuer => "tokens.issuer",
                _ => "tokens",
            };
            ctx.err(PolicyErrorKind::Build, key, e.to_string())
        })
    }

    #[cfg(feature = "jwks")]
    fn remote_keys(
        &self,
        b: crate::smart::token::JwtVerifierBuilder,
        t: &super::Tokens,
    ) -> Result<crate::smart::token::JwtVerifierBuilder, PolicyError> {
        use crate::smart::token::JwksSource;
        let source = match (&t.jwks_url, t.jwks_discovery) {
            (Some(url), _) => JwksSource::url(url.0.clone()),
            (None, Some(super::Discovery::Openid)) => JwksSource::openid_discovery(t.issuer.clone()),
            (None, Some(super::Discovery::Smart)) => match &self.document.service.base_url {
                Some(base) => JwksSource::smart_discovery(base.0.clone()),
                None => {
                    return Err(self.ctx().err(
                        PolicyErrorKind::MissingKey,
                        "tokens.jwks_discovery",
                        "SMART discovery reads {service.base_url}/.well-known/smart-configuration: set service.base_url",
                    ))
                }
            },
            (None, None) => return Ok(b),
        };
        let source = if t.insecure_allow_http {
            source.insecure_allow_http()
        } else {
            source
        };
        Ok(b.jwks(source))
    }

    #[cfg(not(feature = "jwks"))]
    fn remote_keys(
        &self,
        b: crate::smart::token::JwtVerifierBuilder,
        t: &super::Tokens,
    ) -> Result<crate::smart::token::JwtVerifierBuilder, PolicyError> {
        if t.jwks_url.is_some() || t.jwks_discovery.is_some() {
            return Err(self.ctx().err(
                PolicyErrorKind::Build,
                "tokens",
                "fetching keys (jwks_url, jwks_discovery) needs fhirwall's feature \"jwks\"",
            ));
        }
        Ok(b)
    }

    /// How claims become an access context (`[tokens]` scope claim, malformed scopes,
    /// patient context).
    pub fn context_config(&self) -> Result<ContextConfig, PolicyError> {
        let ctx = self.ctx();
        let mut config = ContextConfig::new();
        let Some(t) = &self.document.tokens else {
            return Ok(config);
        };
        if let Some(claim) = &t.scope_claim {
            config = config.scope_claim(claim.clone());
        }
        config = config.malformed_scopes(match t.malformed_scopes {
            MalformedScopesName::RefuseToken => MalformedScopes::RefuseToken,
            MalformedScopesName::DropScope => MalformedScopes::DropScope,
        });
        if !t.patient_context.is_empty() {
            let mut sources = Vec::new();
            for (i, spec) in t.patient_context.iter().enumerate() {
                sources.push(match spec {
                    PatientContextSpec::Claim(path) => PatientContextSource::claim(path.clone()),
                    PatientContextSpec::FhirUser => PatientContextSource::FhirUser,
                    PatientContextSpec::ProxyHeader { header, proxies } => {
                        if proxies.is_empty() {
                            return Err(ctx.invalid(
                                &format!("tokens.patient_context[{i}]"),
                                "a patient-context header needs the proxies allowed to set it",
                            ));
                        }
                        let proxies =
                            crate::net::TrustedProxies::new(proxies.iter().map(|c| c.0.as_str()))
                                .map_err(|e| {
                                ctx.invalid(&format!("tokens.patient_context[{i}]"), e.to_string())
                            })?;
                        PatientContextSource::ProxyHeader {
                            header: header.0.clone(),
                            proxies,
                        }
                    }
                });
            }
            config = config.patient_contexts(sources);
        }
        Ok(config)
    }

    /// The authorization settings of `[authorization]`.
    pub fn authz_policy(&self) -> Result<AuthzPolicy, PolicyError> {
        let ctx = self.ctx();
        let a = &self.document.authorization;
        let mut policy = AuthzPolicy::new();
        let mut shared: Vec<ResourceType> = Vec::new();
        for (i, name) in a.shared_types.iter().enumerate() {
            if name == "common" {
                shared.extend(COMMON_SHARED_TYPES);
            } else {
                shared.push(ResourceType::from_name(name).ok_or_else(|| {
                    ctx.invalid(
                        &format!("authorization.shared_types[{i}]"),
                        format!("{name:?} is not an R4 resource type (or \"common\")"),
                    )
                })?);
            }
        }
        policy = policy.shared_types(shared);
        if let Some(status) = a.hidden_status {
            policy = policy.hidden_status(status.0);
        }
        for url in self
            .document
            .service
            .base_url
            .iter()
            .map(|u| &u.0)
            .chain(&a.base_urls)
        {
            policy = policy.base_url(url.clone());
        }
        for op in &a.operations {
            let mut rule = OperationRule::new(op.name.trim_start_matches('$'), op.permissions.0);
            if let Some(level) = op.level {
                rule = rule.at(match level {
                    LevelName::System => OperationLevel::System,
                    LevelName::Type => OperationLevel::Type,
                    LevelName::Instance => OperationLevel::Instance,
                });
            }
            policy = policy.operation(rule);
        }
        for feature in &a.danger_allow_patient_search {
            policy = policy.danger_allow_patient_search(match feature {
                PatientSearchName::Has => PatientSearchFeature::Has,
                PatientSearchName::Chain => PatientSearchFeature::Chain,
                PatientSearchName::Filter => PatientSearchFeature::Filter,
                PatientSearchName::Text => PatientSearchFeature::Text,
                PatientSearchName::Sort => PatientSearchFeature::Sort,
                PatientSearchName::NamedQuery => PatientSearchFeature::NamedQuery,
            });
        }
        Ok(policy)
    }

    /// The RFC 8705 binding mode, when `[authorization]` sets one.
    pub fn certificate_binding(&self) -> Option<CertificateBinding> {
        self.document
            .authorization
            .certificate_binding
            .map(|b| match b {
                BindingName::Off => CertificateBinding::Off,
                BindingName::WhenPresent => CertificateBinding::WhenPresent,
                BindingName::Required => CertificateBinding::Required,
            })
    }

    /// The SMART layer (`None` without `[tokens]`), its certificate binding included.
    pub fn smart_layer(&self) -> Result<Option<SmartLayer>, PolicyError> {
        let Some(verifier) = self.token_verifier()? else {
            return Ok(None);
        };
        let a = &self.document.authorization;
        let mut layer = SmartLayer::new(verifier)
            .context(self.context_config()?)
            .policy(self.authz_policy()?);
        if let Some(realm) = &a.realm {
            layer = layer.realm(realm);
        }
        if let Some(mode) = self.certificate_binding() {
            layer = layer.certificate_binding(mode);
        }
        if let Some(doc) = self.smart_configuration()? {
            layer = layer.smart_configuration(doc);
        }
        if let Some(n) = a.max_request_body {
            layer = layer.max_request_body(n);
        }
        if let Some(n) = a.max_response_body {
            layer = layer.max_response_body(n);
        }
        Ok(Some(layer))
    }

    /// The `.well-known/smart-configuration` document of `[smart_configuration]` (`None`
    /// without that section): `issuer` and `jwks_uri` default to `[tokens]`'s.
    pub fn smart_configuration(&self) -> Result<Option<SmartConfiguration>, PolicyError> {
        let Some(s) = &self.document.smart_configuration else {
            return Ok(None);
        };
        let tokens = self.document.tokens.as_ref();
        let mut doc = SmartConfiguration::new(s.token_endpoint.0.clone());
        if let Some(issuer) = s
            .issuer
            .clone()
            .or_else(|| tokens.map(|t| t.issuer.clone()))
        {
            doc = doc.issuer(issuer);
        }
        let jwks = s
            .jwks_uri
            .as_ref()
            .or_else(|| tokens.and_then(|t| t.jwks_url.as_ref()));
        if let Some(url) = jwks {
            doc = doc.jwks_uri(url.0.clone());
        }
        if let Some(url) = &s.authorization_endpoint {
            doc = doc.authorization_endpoint(url.0.clone());
        }
        if !s.grant_types_supported.is_empty() {
            doc = doc.grant_types_supported(s.grant_types_supported.iter().cloned());
        }
        if !s.token_endpoint_auth_methods_supported.is_empty() {
            doc = doc.token_endpoint_auth_methods_supported(
                s.token_endpoint_auth_methods_supported.iter().cloned(),
            );
        }
        if let Some(url) = &s.registration_endpoint {
            doc = doc.registration_endpoint(url.0.clone());
        }
        if !s.scopes_supported.is_empty() {
            doc = doc.scopes_supported(s.scopes_supported.iter().map(|x| x.0.clone()));
        }
        if !s.response_types_supported.is_empty() {
            doc = doc.response_types_supported(s.response_types_supported.iter().cloned());
        }
        if let Some(url) = &s.management_endpoint {
            doc = doc.management_endpoint(url.0.clone());
        }
        if let Some(url) = &s.introspection_endpoint {
            doc = doc.introspection_endpoint(url.0.clone());
        }
        if let Some(url) = &s.revocation_endpoint {
            doc = doc.revocation_endpoint(url.0.clone());
        }
        for capability in &s.capabilities {
            doc = doc.capability(capability.clone());
        }
        Ok(Some(doc))
    }
}
