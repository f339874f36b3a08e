//! `[[clients]]` and `[forwarded_certificates]` → the identity layer.

use super::{Ctx, Policy, PolicyError, PolicyErrorKind};
use crate::identity::{ClientMatch, TrustPolicy, TrustedClientLayer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

impl Policy {
    /// The trust policy of `[[clients]]`: each client's certificate rules, any one of them
    /// (or all at once with `match_all = true`).
    pub fn trust_policy(&self) -> Result<TrustPolicy, PolicyError> {
        let ctx = self.ctx();
        let mut builder = TrustPolicy::builder();
        let mut seen: Vec<&str> = Vec::new();
        for (i, client) in self.document.clients.iter().enumerate() {
            let at = format!("clients[{i}]");
            if seen.contains(&client.name.as_str()) {
                return Err(ctx.contradiction(
                    &format!("{at}.name"),
                    format!(
                        "client {:?} is defined twice; give one [[clients]] entry all its rules",
                        client.name
                    ),
                ));
            }
            seen.push(&client.name);
            let rules = client_rules(&ctx, &at, client)?;
            if rules.is_empty() {
                return Err(ctx.err(
                    PolicyErrorKind::MissingKey,
                    &at,
                    format!(
                        "client {:?} has no certificate rule (spki_pins, thumbprints, san_uris, san_dns, san_emails, subjects, issuers or issued_by)",
                        client.name
                    ),
                ));
            }
            if client.match_all {
                let all = ClientMatch::all(rules).map_err(|e| ctx.invalid(&at, e.to_string()))?;
                builder = builder.allow(client.name.clone(), all);
            } else {
                for rule in rules {
                    builder = builder.allow(client.name.clone(), rule);
                }
            }
        }
        builder
            .build()
            .map_err(|e| ctx.invalid("clients", e.to_string()))
    }

    /// The identity layer: `None` when the policy has neither `[[clients]]` nor
    /// `[forwarded_certificates]`.
    pub fn identity_layer(&self) -> Result<Option<TrustedClientLayer>, PolicyError> {
        let doc = &self.document;
        if doc.clients.is_empty() && doc.forwarded_certificates.is_none() {
            return Ok(None);
        }
        let layer = TrustedClientLayer::new(self.trust_policy()?);
        let layer = match &doc.forwarded_certificates {
            None => layer,
            Some(spec) => layer.forwarded(self.forwarded(spec)?),
        };
        Ok(Some(layer))
    }

    #[cfg(feature = "rustls")]
    fn forwarded(
        &self,
        spec: &super::ForwardedCertificatesSpec,
    ) -> Result<crate::identity::forwarded::ForwardedCertificates, PolicyError> {
        use super::ForwardedFormatName;
        use crate::identity::forwarded::{ForwardedCertificates, ForwardedFormat};
        use crate::identity::ClientCaRoots;
        let ctx = self.ctx();
        let key = "forwarded_certificates";
        if spec.proxies.is_empty() {
            return Err(ctx.invalid(
                &format!("{key}.proxies"),
                "forwarded certificates need at least one trusted proxy network",
            ));
        }
        let proxies = crate::net::TrustedProxies::new(spec.proxies.iter().map(|c| c.0.as_str()))
            .map_err(|e| ctx.invalid(&format!("{key}.proxies"), e.to_string()))?;
        let pem = ctx.read(&format!("{key}.client_ca_file"), &spec.client_ca_file)?;
        let mut roots = ClientCaRoots::from_pem(&pem)
            .map_err(|e| ctx.invalid(&format!("{key}.client_ca_file"), e.to_string()))?;
        for (i, crl) in spec.crl_files.iter().enumerate() {
            let at = format!("{key}.crl_files[{i}]");
            let pem = ctx.read(&at, crl)?;
            roots = roots
                .with_crl_pem(&pem)
                .map_err(|e| ctx.invalid(&at, e.to_string()))?;
        }
        let verifier = roots
            .chain_verifier()
            .map_err(|e| ctx.invalid(&format!("{key}.client_ca_file"), e.to_string()))?;
        let format = match spec.format {
            ForwardedFormatName::Xfcc => ForwardedFormat::Xfcc,
            ForwardedFormatName::ClientCert => ForwardedFormat::ClientCert,
            ForwardedFormatName::EscapedPem => ForwardedFormat::EscapedPem,
        };
        if spec.header.is_some() && spec.format != ForwardedFormatName::EscapedPem {
            return Err(ctx.contradiction(
                &format!("{key}.header"),
                "header names the header of format = \"escaped_pem\" only",
            ));
        }
        let mut forwarded = ForwardedCertificates::new(proxies, format, verifier);
        if let Some(header) = &spec.header {
            forwarded = forwarded.escaped_pem_header(header.0.clone());
        }
        if let Some(capacity) = spec.cache_capacity {
            forwarded = forwarded.cache_capacity(capacity);
        }
        Ok(forwarded)
    }

    #[cfg(not(feature = "rustls"))]
    fn forwarded(
        &self,
        _: &super::ForwardedCertificatesSpec,
    ) -> Result<crate::identity::forwarded::ForwardedCertificates, PolicyError> {
        Err(self.ctx().err(
            PolicyErrorKind::Build,
            "forwarded_certificates",
            "forwarded certificates are verified with webpki: build fhirwall with feature \"rustls\"",
        ))
    }
}

fn client_rules(
    ctx: &Ctx<'_>,
    at: &str,
    client: &super::TrustedClientSpec,
) -> Result<Vec<ClientMatch>, PolicyError> {
    type Make = fn(&str) -> Result<ClientMatch, crate::identity::PolicyError>;
    let lists: [(&str, &Vec<String>, Make); 7] = [
        ("spki_pins", &client.spki_pins, ClientMatch::spki_pin),
        ("thumbprints", &client.thumbprints, ClientMatch::thumbprint),
        ("san_uris", &client.san_uris, ClientMatch::san_uri),
        ("san_dns", &client.san_dns, ClientMatch::san_dns),
        ("san_emails", &client.san_emails, ClientMatch::san_email),
        ("subjects", &client.subjects, ClientMatch::subject),
        ("issuers", &client.issuers, ClientMatch::issuer),
    ];
    let mut rules = Vec::new();
    for (field, values, make) in lists {
        for (j, value) in values.iter().enumerate() {
            let key = format!("{at}.{field}[{j}]");
            rules.push(make(value).map_err(|e| ctx.invalid(&key, e.to_string()))?);
        }
    }
    for (j, path) in client.issued_by.iter().enumerate() {
        let key = format!("{at}.issued_by[{j}]");
        let bytes = ctx.read(&key, path)?;
        let der = if bytes.starts_with(b"-----BEGIN") {
            CertificateDer::from_pem_slice(&bytes)
                .map_err(|_| ctx.invalid(&key, "the file holds no PEM certificate"))?
                .to_vec()
        } else {
            bytes
        };
        rules.push(ClientMatch::issued_by(&der).map_err(|e| ctx.invalid(&key, e.to_string()))?);
    }
    Ok(rules)
}
