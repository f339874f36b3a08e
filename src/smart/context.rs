//! [`AccessContext`]: who the token speaks for and what it may reach, built from
//! [`VerifiedClaims`] by a [`ContextConfig`].
//!
//! Vendors put the patient context in different places, so its source is configurable
//! ([`PatientContextSource`]): a claim path (`patient`, `context.patient`, `patient_id`),
//! `fhirUser` when it is a Patient, or a header set by a trusted proxy. A token may carry more
//! than one patient (delegates, `Patient.link`). A token with `patient/` scopes and no patient
//! context is refused: there would be no compartment to hold it to.
//!
//! ```
//! use fhirwall::smart::{ContextConfig, PatientContextSource, VerifiedClaims};
//! use http::{Extensions, HeaderMap};
//!
//! let claims = serde_json::json!({
//!     "client_id": "growth-chart",
//!     "scope": "launch/patient patient/Observation.rs",
//!     "context": {"patient": "pat-1"}
//! });
//! let claims = VerifiedClaims::new(claims.as_object().unwrap().clone(), None);
//! let config = ContextConfig::new().patient_context(PatientContextSource::claim("context.patient"));
//! let ctx = config.build(&claims, &HeaderMap::new(), &Extensions::new()).unwrap();
//! assert_eq!(ctx.patients(), ["pat-1"]);
//! assert_eq!(ctx.client_id(), Some("growth-chart"));
//!
//! // The same token without a patient context is refused.
//! let bare = ContextConfig::new().patient_context(PatientContextSource::claim("patient"));
//! assert!(bare.build(&claims, &HeaderMap::new(), &Extensions::new()).is_err());
//! ```

use super::scope_set::{MalformedScopes, ScopeSet};
use super::VerifiedClaims;
use crate::fhir::ResourceType;
use crate::net::{remote_addr, TrustedProxies};
use base64::Engine;
use dashmap::DashMap;
use http::{Extensions, HeaderMap, HeaderName};
use serde_json::Value;
use std::sync::{Arc, OnceLock, Weak};

/// Most patients one token may put in context.
const MAX_PATIENTS: usize = 64;
/// Most tokens whose parsed grants are remembered (see [`ContextConfig::build`]).
const GRANT_CACHE: usize = 4096;

/// Parsed grants by the address of their claims, with a `Weak` to tell a reused address.
type GrantCache = DashMap<usize, (Weak<VerifiedClaims>, Arc<Grant>)>;

/// Where the patient context comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatientContextSource {
    /// A claim by dotted path (`patient`, `context.patient`, `patient_id`): a patient id, a
    /// `Patient/<id>` reference, or an array of them.
    Claim(String),
    /// The `fhirUser` claim, when it is a Patient (`Patient/123` or `https://.../Patient/123`).
    FhirUser,
    /// A header set by a proxy in front of fhirwall (comma-separated patient ids), believed only
    /// when the TCP peer is one of `proxies`; from anyone else it is ignored.
    ProxyHeader {
        /// The header's name.
        header: HeaderName,
        /// The proxies allowed to set it.
        proxies: TrustedProxies,
    },
}

impl PatientContextSource {
    /// [`PatientContextSource::Claim`] by path.
    pub fn claim(path: impl Into<String>) -> Self {
        PatientContextSource::Claim(path.into())
    }
}

/// Why a verified token could not become an access context. The reason is a fixed sentence
/// safe to show a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ContextError {
    /// What is wrong.
    pub reason: &'static str,
}

const fn refused(reason: &'static str) -> ContextError {
    ContextError { reason }
}

/// How claims become an [`AccessContext`].
///
/// Defaults: scope claim `scope`; malformed scopes refuse the token; patient context from the
/// `patient` claim; client id from `client_id`, else `azp`.
#[derive(Clone, Debug)]
pub struct ContextConfig {
    scope_claim: String,
    malformed: MalformedScopes,
    sources: Vec<PatientContextSource>,
    cache: Arc<GrantCache>,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            scope_claim: "scope".to_owned(),
            malformed: MalformedScopes::RefuseToken,
            sources: vec![PatientContextSource::claim("patient")],
            cache: Arc::new(DashMap::new()),
        }
    }
}

impl ContextConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The claim holding the scopes (default `scope`; Azure AD uses `scp`).
    pub fn scope_claim(mut self, name: impl Into<String>) -> Self {
        self.scope_claim = name.into();
        self
    }

    /// What a malformed scope does (default [`MalformedScopes::RefuseToken`]).
    pub fn malformed_scopes(mut self, policy: MalformedScopes) -> Self {
        self.malformed = policy;
        self
    }

    /// The one place the patient context comes from (replaces the default `patient` claim).
    pub fn patient_context(mut self, source: PatientContextSource) -> Self {
        self.sources = vec![source];
        self
    }

    /// Several places, tried in order: the first that yields a patient wins.
    pub fn patient_contexts(
        mut self,
        sources: impl IntoIterator<Item = PatientContextSource>,
    ) -> Self {
        self.sources = sources.into_iter().collect();
        self
    }

    /// Builds the access context of one request.
    ///
    /// The parts that depend only on the token (scopes, ids, claim-based patients) are parsed
    /// once per verified token and remembered while the verifier's cache holds the same
    /// `Arc<VerifiedClaims>`.
    pub fn build(
        &self,
        claims: &VerifiedClaims,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<AccessContext, ContextError> {
        let grant = Arc::new(self.grant(claims)?);
        self.finish(grant, headers, extensions)
    }

    /// [`build`](Self::build) for a shared claims value, with the token-only parts cached.
    pub fn build_shared(
        &self,
        claims: &Arc<VerifiedClaims>,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<AccessContext, ContextError> {
        let grant = match self.cached(claims) {
            Some(grant) => grant,
            None => {
                let grant = Arc::new(self.grant(claims)?);
                self.remember(claims, &grant);
                grant
            }
        };
        self.finish(grant, headers, extensions)
    }

    fn cached(&self, claims: &Arc<VerifiedClaims>) -> Option<Arc<Grant>> {
        let entry = self.cache.get(&(Arc::as_ptr(claims) as usize))?;
        let (weak, grant) = entry.value();
        // Pointer identity through a live Weak: a freed and reused address can't match.
        let strong = weak.upgrade()?;
        Arc::ptr_eq(&strong, claims).then(|| grant.clone())
    }

    fn remember(&self, claims: &Arc<VerifiedClaims>, grant: &Arc<Grant>) {
        if self.cache.len() >= GRANT_CACHE {
            self.cache.retain(|_, (weak, _)| weak.strong_count() > 0);
            if self.cache.len() >= GRANT_CACHE {
                self.cache.clear();
            }
        }
        self.cache.insert(
            Arc::as_ptr(claims) as usize,
            (Arc::downgrade(claims), grant.clone()),
        );
    }

    fn grant(&self, claims: &VerifiedClaims) -> Result<Grant, ContextError> {
        let scopes = match claims.get_path(&self.scope_claim) {
            None => ScopeSet::new(),
            Some(claim) => ScopeSet::from_claim(claim, self.malformed)
                .map_err(|_| refused("the token's scopes are malformed"))?,
        };
        let string_claim = |name: &str| -> Result<Option<String>, ContextError> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(refused("a token claim has the wrong type")),
            }
        };
        let client_id = match string_claim("client_id")? {
            Some(id) => Some(id),
            None => string_claim("azp")?,
        };
        let subject = string_claim("sub")?;
        let fhir_user = string_claim("fhirUser")?;
        let cnf_x5t_s256 = match claims.get("cnf") {
            None => None,
            Some(Value::Object(cnf)) => match cnf.get("x5t#S256") {
                None => None,
                Some(Value::String(t)) => Some(decode_thumbprint(t)?),
                Some(_) => return Err(refused("the token's certificate binding is malformed")),
            },
            Some(_) => return Err(refused("the token's certificate binding is malformed")),
        };
        let mut claim_patients = None;
        for source in &self.sources {
            let found = match source {
                PatientContextSource::Claim(path) => match claims.get_path(path) {
                    None | Some(Value::Null) => None,
                    Some(value) => Some(patients_from_claim(value)?),
                },
                PatientContextSource::FhirUser => match &fhir_user {
                    Some(user) => match fhir_user_reference(user) {
                        Some((ResourceType::Patient, id)) => Some(vec![id.to_owned()]),
                        _ => None,
                    },
                    None => None,
                },
                PatientContextSource::ProxyHeader { .. } => None,
            };
            if found.as_ref().is_some_and(|p| !p.is_empty()) {
                claim_patients = found;
                break;
            }
        }
        Ok(Grant {
            client_id,
            subject,
            fhir_user,
            claim_patients: claim_patients.map(Arc::from),
            scopes,
            expires_at: claims.expires_at(),
            cnf_x5t_s256,
            scope_strings: OnceLock::new(),
        })
    }

    fn finish(
        &self,
        grant: Arc<Grant>,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<AccessContext, ContextError> {
        let mut patients: Arc<[String]> = grant
            .claim_patients
            .clone()
            .unwrap_or_else(|| Arc::from([]));
        if patients.is_empty() {
            // Only header sources are left to try: they change from request to request.
            for source in &self.sources {
                if let PatientContextSource::ProxyHeader { header, proxies } = source {
                    let from_proxy =
                        remote_addr(extensions).is_some_and(|peer| proxies.is_trusted(peer.ip()));
                    if !from_proxy {
                        continue;
                    }
                    let mut values = headers.get_all(header).iter();
                    let (Some(value), None) = (values.next(), values.next()) else {
                        continue;
                    };
                    let value = value
                        .to_str()
                        .map_err(|_| refused("the proxy's patient context header is malformed"))?;
                    let ids = value
                        .split(',')
                        .map(|id| patient_id(id.trim()).map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .filter(|ids| ids.len() <= MAX_PATIENTS)
                        .ok_or(refused("the proxy's patient context header is malformed"))?;
                    if !ids.is_empty() {
                        patients = Arc::from(ids);
                        break;
                    }
                }
            }
        }
        if grant.scopes.has_patient_scopes() && patients.is_empty() {
            return Err(refused(
                "the token has patient scopes but no patient context",
            ));
        }
        Ok(AccessContext { grant, patients })
    }
}

fn decode_thumbprint(text: &str) -> Result<[u8; 32], ContextError> {
    let bad = refused("the token's certificate binding is malformed");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| bad)?;
    bytes.try_into().map_err(|_| bad)
}

fn patients_from_claim(value: &Value) -> Result<Vec<String>, ContextError> {
    let bad = refused("the token's patient context is malformed");
    let one = |v: &Value| -> Result<String, ContextError> {
        let text = v.as_str().ok_or(bad)?;
        let id = text.strip_prefix("Patient/").unwrap_or(text);
        patient_id(id).map(str::to_owned).ok_or(bad)
    };
    match value {
        Value::Array(items) if items.len() <= MAX_PATIENTS => items.iter().map(one).collect(),
        Value::Array(_) => Err(bad),
        other => Ok(vec![one(other)?]),
    }
}

/// A FHIR id (`[A-Za-z0-9\-\.]{1,64}`, FHIR R4 §2.24.0.1).
pub(crate) fn patient_id(id: &str) -> Option<&str> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then_some(id)
}

/// `Patient/123` or `https://host/fhir/Patient/123` → (Patient, "123").
fn fhir_user_reference(user: &str) -> Option<(ResourceType, &str)> {
    let mut parts = user.rsplit('/');
    let id = patient_id(parts.next()?)?;
    let ty = ResourceType::from_name(parts.next()?)?;
    Some((ty, id))
}

/// The token-only part of an access context.
#[derive(Clone, Debug)]
struct Grant {
    client_id: Option<String>,
    subject: Option<String>,
    fhir_user: Option<String>,
    claim_patients: Option<Arc<[String]>>,
    scopes: ScopeSet,
    expires_at: Option<u64>,
    cnf_x5t_s256: Option<[u8; 32]>,
    /// The scopes written out once, on first use: the grant lives as long as its token is
    /// cached, so a layer that wants strings (redaction) does not format them per request.
    scope_strings: OnceLock<Box<[String]>>,
}

/// What a verified token grants on this request: put in the request extensions by
/// [`SmartLayer`](super::SmartLayer) for later layers (budgets per client, audit, redaction).
///
/// Cheap to clone (two `Arc`s). `Debug` shows ids and scopes, never claim values beyond them.
#[derive(Clone)]
pub struct AccessContext {
    grant: Arc<Grant>,
    patients: Arc<[String]>,
}

impl AccessContext {
    /// A context with these scopes and nothing else, for tests and embedders that verify
    /// tokens their own way.
    pub fn new(scopes: ScopeSet) -> Self {
        AccessContext {
            grant: Arc::new(Grant {
                client_id: None,
                subject: None,
                fhir_user: None,
                claim_patients: None,
                scopes,
                expires_at: None,
                cnf_x5t_s256: None,
                scope_strings: OnceLock::new(),
            }),
            patients: Arc::from([]),
        }
    }

    /// The same context with these patients in context.
    pub fn with_patients<I, S>(mut self, patients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.patients = patients.into_iter().map(Into::into).collect();
        self
    }

    /// The same context with this client id.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.grant_mut().client_id = Some(client_id.into());
        self
    }

    /// The same context bound to a certificate (`cnf.x5t#S256`, the SHA-256 of its DER).
    pub fn with_certificate_thumbprint(mut self, thumbprint: [u8; 32]) -> Self {
        self.grant_mut().cnf_x5t_s256 = Some(thumbprint);
        self
    }

    fn grant_mut(&mut self) -> &mut Grant {
        let grant = Arc::make_mut(&mut self.grant);
        // What is about to change may be the scopes: their strings are written again.
        grant.scope_strings = OnceLock::new();
        grant
    }

    /// `client_id` (or `azp`).
    pub fn client_id(&self) -> Option<&str> {
        self.grant.client_id.as_deref()
    }

    /// `sub`.
    pub fn subject(&self) -> Option<&str> {
        self.grant.subject.as_deref()
    }

    /// `fhirUser`, as written (`Practitioner/123` or an absolute URL).
    pub fn fhir_user(&self) -> Option<&str> {
        self.grant.fhir_user.as_deref()
    }

    /// The patients in context (ids), empty when there is none.
    #[inline]
    pub fn patients(&self) -> &[String] {
        &self.patients
    }

    /// Whether `id` is one of the patients in context.
    #[inline]
    pub fn has_patient(&self, id: &str) -> bool {
        self.patients.iter().any(|p| p == id)
    }

    /// The granted scopes.
    #[inline]
    pub fn scopes(&self) -> &ScopeSet {
        &self.grant.scopes
    }

    /// The granted scopes as strings in SMART v2 syntax (`patient/Observation.rs`), resource
    /// scopes first, then the others (`openid`, `launch/patient`). Written once per token (the
    /// context's grant is cached with it), so reading them costs nothing per request.
    ///
    /// ```
    /// use fhirwall::smart::{AccessContext, MalformedScopes, ScopeSet};
    ///
    /// let granted = "openid patient/Observation.read";
    /// let scopes = ScopeSet::parse(granted, MalformedScopes::RefuseToken).unwrap();
    /// let ctx = AccessContext::new(scopes);
    /// assert_eq!(ctx.scope_strings(), ["patient/Observation.rs", "openid"]);
    /// ```
    pub fn scope_strings(&self) -> &[String] {
        self.grant.scope_strings.get_or_init(|| {
            let scopes = &self.grant.scopes;
            scopes
                .resource_scopes()
                .iter()
                .map(ToString::to_string)
                .chain(scopes.other_scopes().iter().map(ToString::to_string))
                .collect()
        })
    }

    /// `exp`, seconds since the Unix epoch.
    pub fn expires_at(&self) -> Option<u64> {
        self.grant.expires_at
    }

    /// `cnf.x5t#S256`, decoded (RFC 8705 §3.1).
    pub fn certificate_thumbprint(&self) -> Option<&[u8; 32]> {
        self.grant.cnf_x5t_s256.as_ref()
    }
}

impl std::fmt::Debug for AccessContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessContext")
            .field("client_id", &self.grant.client_id)
            .field("subject", &self.grant.subject)
            .field("fhir_user", &self.grant.fhir_user)
            .field("patients", &self.patients)
            .field("scopes", &self.grant.scopes)
            .field("expires_at", &self.grant.expires_at)
            .field("certificate_bound", &self.grant.cnf_x5t_s256.is_some())
            .finish()
    }
}
