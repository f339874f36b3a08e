//! Published documentation from the policy: the CapabilityStatement's `rest.security`.

use super::{Policy, PolicyError, PolicyErrorKind};
use serde_json::{json, Value};

/// The code system of RESTful security services (FHIR R4 `restful-security-service`).
pub const SECURITY_SERVICE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/restful-security-service";
/// The SMART App Launch extension listing the OAuth endpoints in `rest.security`.
pub const OAUTH_URIS_EXTENSION: &str =
    "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

impl Policy {
    /// The `rest.security` element this policy enforces (FHIR R4
    /// `CapabilityStatement.rest.security`): the `SMART-on-FHIR` service with the
    /// `oauth-uris` extension (SMART App Launch 2.2 §"Conformance") when `[tokens]` is set,
    /// the `Certificates` service with trusted mTLS clients, and a description of every
    /// protection in force.
    pub fn capability_security(&self) -> Result<Value, PolicyError> {
        let doc = &self.document;
        let mut services = Vec::new();
        let mut extensions = Vec::new();
        if doc.tokens.is_some() {
            services.push(json!({
                "coding": [{
                    "system": SECURITY_SERVICE_SYSTEM,
                    "code": "SMART-on-FHIR",
                    "display": "SMART-on-FHIR"
                }],
                "text": "OAuth2 using the SMART App Launch profile"
            }));
            if let Some(s) = &doc.smart_configuration {
                let mut uris = vec![json!({ "url": "token", "valueUri": s.token_endpoint.0 })];
                for (name, url) in [
                    ("authorize", &s.authorization_endpoint),
                    ("register", &s.registration_endpoint),
                    ("manage", &s.management_endpoint),
                    ("introspect", &s.introspection_endpoint),
                    ("revoke", &s.revocation_endpoint),
                ] {
                    if let Some(url) = url {
                        uris.push(json!({ "url": name, "valueUri": url.0 }));
                    }
                }
                extensions.push(json!({ "url": OAUTH_URIS_EXTENSION, "extension": uris }));
            }
        }
        if !doc.clients.is_empty() || doc.forwarded_certificates.is_some() {
            services.push(json!({
                "coding": [{
                    "system": SECURITY_SERVICE_SYSTEM,
                    "code": "Certificates",
                    "display": "Certificates"
                }],
                "text": "Mutual TLS: client certificates of trusted clients only"
            }));
        }
        let mut security = json!({
            "cors": false,
            "service": services,
            "description": self.protections().join(" "),
        });
        if !extensions.is_empty() {
            if let Some(obj) = security.as_object_mut() {
                obj.insert("extension".into(), Value::Array(extensions));
            }
        }
        Ok(security)
    }

    /// Sets `rest.security` of every `server` entry of a CapabilityStatement (R4 JSON) to
    /// [`capability_security`](Self::capability_security), adding a `server` entry when there
    /// is none. Fails when the value is not a CapabilityStatement.
    pub fn patch_capability_statement(&self, statement: &mut Value) -> Result<(), PolicyError> {
        let security = self.capability_security()?;
        let not_cs = || {
            PolicyError::new(
                &self.origin,
                PolicyErrorKind::InvalidValue,
                "",
                "the document to patch is not a FHIR CapabilityStatement",
            )
        };
        let obj = statement.as_object_mut().ok_or_else(not_cs)?;
        if obj.get("resourceType").and_then(Value::as_str) != Some("CapabilityStatement") {
            return Err(not_cs());
        }
        let rest = obj
            .entry("rest")
            .or_insert_with(|| Value::Array(Vec::new()));
        let entries = rest.as_array_mut().ok_or_else(not_cs)?;
        let mut patched = false;
        for entry in entries.iter_mut() {
            if let Some(e) = entry.as_object_mut() {
                if e.get("mode").and_then(Value::as_str) == Some("server") {
                    e.insert("security".into(), security.clone());
                    patched = true;
                }
            }
        }
        if !patched {
            entries.push(json!({ "mode": "server", "security": security }));
        }
        Ok(())
    }

    /// One sentence per protection in force, for `rest.security.description`.
    pub fn protections(&self) -> Vec<String> {
        let doc = &self.document;
        let mut out = Vec::new();
        if doc.transport.require_tls.unwrap_or(true) {
            out.push("TLS is required; plain HTTP is refused.".to_owned());
        }
        if !doc.clients.is_empty() {
            out.push(format!(
                "Mutual TLS: only the {} trusted client(s) named in the policy are admitted.",
                doc.clients.len()
            ));
        }
        if let Some(t) = &doc.tokens {
            out.push(format!(
                "SMART on FHIR: signed access tokens from {} are required; SMART v1 and v2 scopes are enforced on every interaction, patient/ scopes only within the patient compartment.",
                t.issuer
            ));
        }
        out.push("Only the interactions declared in this statement are served; anything else is answered 404.".to_owned());
        if !doc.routes.sunsets.is_empty() {
            out.push("Deprecated API versions carry Deprecation and Sunset headers and are answered 410 after their sunset.".to_owned());
        }
        let requests = match &doc.budgets.requests {
            Some(r) => {
                r.0.map(|r| format!("{} per {} s", r.limit(), r.period().as_secs()))
            }
            None => Some("600 per 60 s".to_owned()),
        };
        if let Some(r) = requests {
            out.push(format!("Each client has a request budget ({r}, weighted by interaction) and a budget of resources returned; over budget, requests are answered 429."));
        }
        out.push("Request bodies and search parameters are validated against FHIR R4.".to_owned());
        if !doc.redaction.rules.is_empty() || !doc.redaction.labels.is_empty() {
            out.push("Responses are redacted per client; altered resources carry the REDACTED security label.".to_owned());
        }
        out.push("Every request is audited.".to_owned());
        out
    }
}
