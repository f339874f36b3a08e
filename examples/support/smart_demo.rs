//! A throwaway SMART authorization server for the gateway demo: a signing key generated at
//! start, its JWK Set, a [`JwtVerifier`] that trusts it, and demo access tokens.
//!
//! This is a module, not an example target. The gateway includes it (the `smart` feature
//! must be on, as it is by default):
//!
//! ```ignore
//! #[cfg(feature = "smart")]
//! #[path = "support/smart_demo.rs"]
//! mod smart_demo;
//!
//! let demo = smart_demo::DemoIssuer::generate(
//!     "http://127.0.0.1:8080/demo-issuer", // iss of every demo token
//!     "http://127.0.0.1:8080/fhir",        // aud: the FHIR base URL the gateway serves
//! )?;
//! // 1. Hand the verifier to the SMART layer.
//! let verifier = demo.verifier();
//! // 2. Serve the public keys, without a token, at demo.jwks_path() ("/demo-issuer/jwks.json"),
//! //    and advertise demo.jwks_uri() as `jwks_uri` in .well-known/smart-configuration.
//! let jwks_json: String = demo.jwks_json().to_owned();
//! // 3. Print ready-to-use tokens (valid 8 hours).
//! for (who, token) in demo.sample_tokens("example")? {
//!     println!("{who}:\n  curl -H 'Authorization: Bearer {token}' http://127.0.0.1:8080/fhir/Patient/example");
//! }
//! // Or any claims:
//! let token = demo.mint(&smart_demo::DemoToken::new("my-app").scope("patient/Observation.rs").patient("example"))?;
//! ```
//!
//! The private key lives only in this process and dies with it; every restart invalidates the
//! tokens printed before. Never use this outside a demo: anyone who reads the process memory
//! (or this code's output) can act as any user.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use fhirwall::smart::token::{JwtVerifier, KeySet};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a demo token is valid.
pub const DEMO_TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// The laboratory category of Observation (for the lab system's granular scope).
pub const LABORATORY: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

/// The claims of one demo token. `exp` is 8 hours from minting unless changed.
#[derive(Clone, Debug)]
pub struct DemoToken {
    client_id: String,
    scope: String,
    subject: Option<String>,
    patient: Option<String>,
    fhir_user: Option<String>,
    lifetime: Duration,
    extra: Map<String, Value>,
}

impl DemoToken {
    /// A token for this client, with no scope yet.
    pub fn new(client_id: &str) -> Self {
        DemoToken {
            client_id: client_id.to_owned(),
            scope: String::new(),
            subject: None,
            patient: None,
            fhir_user: None,
            lifetime: DEMO_TOKEN_LIFETIME,
            extra: Map::new(),
        }
    }

    /// A patient-facing app: `launch/patient openid fhirUser patient/*.rs`, in the context of
    /// `patient`, whose own `fhirUser` is `Patient/{patient}`.
    pub fn patient_app(patient: &str) -> Self {
        DemoToken::new("demo-patient-app")
            .scope("launch/patient openid fhirUser patient/*.rs")
            .patient(patient)
            .fhir_user(&format!("Patient/{patient}"))
            .subject(&format!("patient-{patient}"))
    }

    /// A clinician's app: `openid fhirUser user/*.cruds`, as `Practitioner/{practitioner}`.
    pub fn clinician(practitioner: &str) -> Self {
        DemoToken::new("demo-clinician-app")
            .scope("openid fhirUser user/*.cruds")
            .fhir_user(&format!("Practitioner/{practitioner}"))
            .subject(&format!("practitioner-{practitioner}"))
    }

    /// A lab system (backend services): create and search laboratory Observations only.
    pub fn lab_system() -> Self {
        DemoToken::new("demo-lab-system")
            .scope(&format!("system/Observation.cs?category={LABORATORY}"))
            .subject("demo-lab-system")
    }

    /// The `scope` claim (space-separated).
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = scope.to_owned();
        self
    }

    /// The `patient` claim (the launch context).
    pub fn patient(mut self, patient: &str) -> Self {
        self.patient = Some(patient.to_owned());
        self
    }

    /// The `fhirUser` claim (`Patient/1`, `Practitioner/2`...).
    pub fn fhir_user(mut self, fhir_user: &str) -> Self {
        self.fhir_user = Some(fhir_user.to_owned());
        self
    }

    /// The `sub` claim (defaults to the client id).
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }

    /// How long the token is valid (default [`DEMO_TOKEN_LIFETIME`]).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Any other claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }
}

/// The demo issuer: an ES256 key pair made at start, and what the gateway needs from it.
pub struct DemoIssuer {
    issuer: String,
    audience: String,
    kid: String,
    signing: jsonwebtoken::EncodingKey,
    jwks_json: String,
    verifier: JwtVerifier,
    minted: AtomicU64,
}

impl DemoIssuer {
    /// Generates a P-256 key pair; `issuer` is the `iss` of the tokens and `audience` the
    /// FHIR base URL they are for.
    pub fn generate(issuer: &str, audience: &str) -> Result<Self, String> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| format!("cannot generate the demo key: {e}"))?;
        let signing = jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())
            .map_err(|e| format!("cannot load the demo key: {e}"))?;
        // The public key as an uncompressed point: 0x04 || x || y.
        let point = pair.public_key_raw();
        let (x, y) = match point {
            [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => return Err("unexpected P-256 public key encoding".to_owned()),
        };
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        // kid: the RFC 7638 JWK thumbprint (members in lexicographic order, no spaces).
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let jwks_json = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "alg": "ES256", "use": "sig",
        }]})
        .to_string();
        let keys = KeySet::from_jwks(&jwks_json).map_err(|e| format!("demo JWKS: {e}"))?;
        let verifier = JwtVerifier::builder()
            .issuer(issuer)
            .audience(audience)
            .require_typ("at+jwt")
            .keys(keys)
            .build()
            .map_err(|e| format!("demo verifier: {e}"))?;
        Ok(DemoIssuer {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            kid,
            signing,
            jwks_json,
            verifier,
            minted: AtomicU64::new(0),
        })
    }

    /// The `iss` of the demo tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` of the demo tokens (the FHIR base URL).
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// A verifier that trusts exactly this issuer's key (a clone shares its token cache).
    pub fn verifier(&self) -> JwtVerifier {
        self.verifier.clone()
    }

    /// The public JWK Set to serve (`application/jwk-set+json`), without a token.
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// Where the JWK Set is expected: `{issuer}/jwks.json`.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks.json", self.issuer.trim_end_matches('/'))
    }

    /// The path part of [`jwks_uri`](Self::jwks_uri), for the gateway's router.
    pub fn jwks_path(&self) -> String {
        self.jwks_uri()
            .parse::<http::Uri>()
            .map_or_else(|_| "/jwks.json".to_owned(), |uri| uri.path().to_owned())
    }

    /// Signs a demo token (ES256, `typ` `at+jwt`, RFC 9068 claims plus SMART's `patient`
    /// and `fhirUser`).
    pub fn mint(&self, token: &DemoToken) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the clock is before 1970")?
            .as_secs();
        let serial = self.minted.fetch_add(1, Ordering::Relaxed);
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("aud".into(), json!(self.audience));
        claims.insert(
            "sub".into(),
            json!(token.subject.as_deref().unwrap_or(&token.client_id)),
        );
        claims.insert("client_id".into(), json!(token.client_id));
        claims.insert("scope".into(), json!(token.scope));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + token.lifetime.as_secs()));
        claims.insert("jti".into(), json!(format!("demo-{now}-{serial}")));
        if let Some(patient) = &token.patient {
            claims.insert("patient".into(), json!(patient));
        }
        if let Some(fhir_user) = &token.fhir_user {
            claims.insert("fhirUser".into(), json!(fhir_user));
        }
        for (name, value) in &token.extra {
            claims.insert(name.clone(), value.clone());
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &Value::Object(claims), &self.signing)
            .map_err(|e| format!("cannot sign the demo token: {e}"))
    }

    /// The three demo tokens of the walkthrough: a patient app for `patient`, a clinician
    /// and a lab system.
    pub fn sample_tokens(&self, patient: &str) -> Result<Vec<(&'static str, String)>, String> {
        Ok(vec![
            (
                "patient app (patient/*.rs)",
                self.mint(&DemoToken::patient_app(patient))?,
            ),
            (
                "clinician (user/*.cruds)",
                self.mint(&DemoToken::clinician("example"))?,
            ),
            (
                "lab system (system/Observation.cs, laboratory only)",
                self.mint(&DemoToken::lab_system())?,
            ),
        ])
    }
}

impl std::fmt::Debug for DemoIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}
