//! [`SmartLayer`] and its service.

use super::binding::CertificateBinding;
use super::challenge::clean_realm;
use super::context::{AccessContext, ContextConfig};
use super::decision::{Authorized, Refusal, RefusalKind};
use super::future::SmartFuture;
use super::policy::AuthzPolicy;
use super::steps::Job;
use super::well_known::SmartConfiguration;
use super::{authorize, token, TokenRejection, TokenRejectionKind, VerifiedClaims, VerifyToken};
use crate::body::{BoxError, FhirBody};
use crate::fhir::{FhirRequest, Interaction, Query};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use http_body::Body;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Shared settings of a [`SmartLayer`] and its services.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) verifier: Arc<dyn VerifyToken>,
    pub(crate) context: ContextConfig,
    pub(crate) policy: AuthzPolicy,
    pub(crate) binding: CertificateBinding,
    pub(crate) realm: String,
    pub(crate) smart_configuration: Option<SmartConfiguration>,
    pub(crate) max_request_body: usize,
    pub(crate) max_response_body: usize,
}

/// SMART on FHIR authorization as a tower layer.
///
/// Per request: the [`FhirRequest`] from the extensions (put there by
/// [`ClassifyLayer`](crate::classify::ClassifyLayer), which must be outside this layer; without
/// it the request is refused with 500 rather than passed); the bearer token from the
/// `Authorization` header; the verified claims, from the verifier's cache without waiting or
/// through its [`TokenFuture`](super::TokenFuture); an [`AccessContext`]; the RFC 8705 binding;
/// [`authorize`](super::authorize). Then, as authorization asks: the search narrowed to the
/// patient compartment (the URI the inner service receives gets the compartment parameter),
/// the request body checked (up to [`SmartLayer::max_request_body`]), the stored resource read
/// first for an update or delete of one resource, and the response checked resource by
/// resource (up to [`SmartLayer::max_response_body`]). The [`AccessContext`] goes into the
/// request extensions, a [`SmartDecision`](super::SmartDecision) into the response extensions.
///
/// `metadata` needs no token; `.well-known/smart-configuration` is answered from
/// [`SmartLayer::smart_configuration`] when set (else passed on), without a token.
///
/// ```
/// use axum::{routing::get, Router};
/// use fhirwall::classify::ClassifyLayer;
/// use fhirwall::fhir::Classifier;
/// use fhirwall::smart::{AuthzPolicy, SmartLayer, TokenFuture, TokenRejection, VerifiedClaims, VerifyToken};
/// use std::sync::Arc;
///
/// /// A stand-in verifier; use `fhirwall::smart::token::JwtVerifier` in practice.
/// struct Nobody;
/// impl VerifyToken for Nobody {
///     fn verify_cached(&self, _: &str) -> Option<Result<Arc<VerifiedClaims>, TokenRejection>> {
///         Some(Err(TokenRejection::invalid_token("unknown token")))
///     }
///     fn verify(&self, _: &str) -> TokenFuture {
///         Box::pin(async { Err(TokenRejection::invalid_token("unknown token")) })
///     }
/// }
///
/// let app: Router = Router::new()
///     .route("/fhir/Patient/{id}", get(|| async { "{}" }))
///     .layer(SmartLayer::new(Nobody).realm("example-ehr").policy(AuthzPolicy::new()))
///     .layer(ClassifyLayer::new(Classifier::new("/fhir")));
/// ```
///
/// Defaults: realm `fhirwall`; [`ContextConfig::default`]; [`AuthzPolicy::default`];
/// [`CertificateBinding::WhenPresent`]; no SMART configuration document; request bodies checked
/// up to 4 MiB and responses up to 16 MiB (larger ones are refused, 413 and 502).
#[derive(Clone)]
pub struct SmartLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SmartLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartLayer")
            .field("realm", &self.shared.realm)
            .field("policy", &self.shared.policy)
            .field("binding", &self.shared.binding)
            .finish_non_exhaustive()
    }
}

impl SmartLayer {
    /// A layer verifying tokens with `verifier`.
    pub fn new(verifier: impl VerifyToken) -> Self {
        Self::with_verifier(Arc::new(verifier))
    }

    /// The [`TokenGateLayer`](super::TokenGateLayer) of this layer: the same verifier (and
    /// cache) and realm, to put before classification so that no request body is read for a
    /// client without a valid token.
    pub fn token_gate(&self) -> super::TokenGateLayer {
        super::TokenGateLayer::new(self.shared.verifier.clone(), &self.shared.realm)
    }

    /// A layer sharing a verifier (and its cache) with other code.
    pub fn with_verifier(verifier: Arc<dyn VerifyToken>) -> Self {
        SmartLayer {
            shared: Arc::new(Shared {
                verifier,
                context: ContextConfig::default(),
                policy: AuthzPolicy::default(),
                binding: CertificateBinding::default(),
                realm: "fhirwall".to_owned(),
                smart_configuration: None,
                max_request_body: 4 * 1024 * 1024,
                max_response_body: 16 * 1024 * 1024,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// The `realm` of `WWW-Authenticate` challenges (default `fhirwall`; `"` and `\` are
    /// removed).
    pub fn realm(self, realm: &str) -> Self {
        let realm = clean_realm(realm);
        self.edit(|s| s.realm = realm)
    }

    /// How claims become an [`AccessContext`] (scope claim, malformed scopes, patient context).
    pub fn context(self, config: ContextConfig) -> Self {
        self.edit(|s| s.context = config)
    }

    /// Authorization settings not in the token.
    pub fn policy(self, policy: AuthzPolicy) -> Self {
        self.edit(|s| s.policy = policy)
    }

    /// RFC 8705 certificate binding (default [`CertificateBinding::WhenPresent`]).
    pub fn certificate_binding(self, mode: CertificateBinding) -> Self {
        self.edit(|s| s.binding = mode)
    }

    /// Serves `.well-known/smart-configuration` from this document.
    pub fn smart_configuration(self, document: SmartConfiguration) -> Self {
        self.edit(|s| s.smart_configuration = Some(document))
    }

    /// Largest request body read to check a write (default 4 MiB).
    pub fn max_request_body(self, bytes: usize) -> Self {
        self.edit(|s| s.max_request_body = bytes)
    }

    /// Largest response body read to check a response (default 16 MiB).
    pub fn max_response_body(self, bytes: usize) -> Self {
        self.edit(|s| s.max_response_body = bytes)
    }
}

impl<S> Layer<S> for SmartLayer {
    type Service = Smart<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Smart {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`SmartLayer`]. The inner service must be `Clone`: a request that waits
/// (token verification, its body, the read before a write) takes the service made ready by
/// `poll_ready` with it and leaves a clone in its place.
#[derive(Clone)]
pub struct Smart<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Smart<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smart")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

pub(crate) fn rejection(rejection: &TokenRejection) -> Refusal {
    let kind = match rejection.kind {
        TokenRejectionKind::InvalidRequest => RefusalKind::InvalidRequest,
        TokenRejectionKind::Unavailable => RefusalKind::Unavailable,
        _ => RefusalKind::InvalidToken,
    };
    Refusal::new(kind, rejection.reason)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// From verified claims to an authorized, narrowed request head.
pub(crate) fn decide(
    shared: &Shared,
    parts: &mut http::request::Parts,
    claims: &Arc<VerifiedClaims>,
) -> Result<(AccessContext, Authorized), (Refusal, Option<String>)> {
    if claims.expires_at().is_some_and(|exp| exp <= now()) {
        return Err((
            Refusal::new(RefusalKind::InvalidToken, "the token has expired"),
            None,
        ));
    }
    let ctx = shared
        .context
        .build_shared(claims, &parts.headers, &parts.extensions)
        .map_err(|e| (Refusal::new(RefusalKind::InvalidToken, e.reason), None))?;
    let client = || ctx.client_id().map(str::to_owned);
    shared
        .binding
        .check(&ctx, &parts.extensions)
        .map_err(|r| (r, client()))?;
    let Some(fhir) = parts.extensions.get::<FhirRequest>() else {
        return Err((misconfigured(), client()));
    };
    let authorized = authorize(fhir, &ctx, &shared.policy).map_err(|r| (r, client()))?;
    narrow(parts, &authorized).map_err(|r| (r, client()))?;
    if authorized.response.is_some() {
        // The body is needed to check it: a 304 would have none.
        for name in ["if-none-match", "if-modified-since"] {
            parts.headers.remove(name);
        }
    }
    parts.extensions.insert(ctx.clone());
    Ok((ctx, authorized))
}

pub(crate) fn misconfigured() -> Refusal {
    Refusal::new(RefusalKind::Misconfigured, "fhirwall is misconfigured")
}

/// Applies the compartment narrowing to the URI, `If-None-Exist` and the classified request.
fn narrow(parts: &mut http::request::Parts, authorized: &Authorized) -> Result<(), Refusal> {
    if let Some(param) = authorized.narrowing() {
        let path_and_query = match parts.uri.query() {
            Some(q) if !q.is_empty() => format!("{}?{q}&{param}", parts.uri.path()),
            _ => format!("{}?{param}", parts.uri.path()),
        };
        let mut uri_parts = parts.uri.clone().into_parts();
        uri_parts.path_and_query = Some(path_and_query.parse().map_err(|_| misconfigured())?);
        parts.uri = Uri::from_parts(uri_parts).map_err(|_| misconfigured())?;
        if let Some(fhir) = parts.extensions.get_mut::<FhirRequest>() {
            let added = Query::parse(param, 4).map_err(|_| misconfigured())?;
            fhir.query.extend(added).map_err(|_| misconfigured())?;
        }
    }
    if let super::decision::BodyCheck::Bundle { rewrites, .. } = &authorized.body {
        if let Some(fhir) = parts.extensions.get_mut::<FhirRequest>() {
            for rewrite in rewrites {
                let Some(entry) = fhir.entries.iter_mut().find(|e| e.index == rewrite.index) else {
                    continue;
                };
                if let Some(param) = &rewrite.url {
                    let added = Query::parse(param, 4).map_err(|_| misconfigured())?;
                    entry
                        .request
                        .query
                        .extend(added)
                        .map_err(|_| misconfigured())?;
                }
                if let Some(param) = &rewrite.if_none_exist {
                    let added = Query::parse(param, 4).map_err(|_| misconfigured())?;
                    if let Some(condition) = entry.request.condition.as_mut() {
                        condition.extend(added).map_err(|_| misconfigured())?;
                    }
                }
            }
        }
    }
    if let Some(param) = &authorized.if_none_exist {
        let old = parts
            .headers
            .get("if-none-exist")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let new = super::write_check::append_query(old, param);
        let value = HeaderValue::from_str(&new).map_err(|_| misconfigured())?;
        parts
            .headers
            .insert(HeaderName::from_static("if-none-exist"), value);
        if let Some(fhir) = parts.extensions.get_mut::<FhirRequest>() {
            let condition = Query::parse(&new, 200).map_err(|_| misconfigured())?;
            fhir.condition = Some(condition);
        }
    }
    Ok(())
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Smart<S>
where
    S: Service<Request<FhirBody<ReqB>>, Response = Response<ResB>> + Clone,
    ReqB: Body<Data = Bytes>,
    ReqB::Error: Into<BoxError>,
    ResB: Body<Data = Bytes>,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<FhirBody<ResB>>;
    type Error = S::Error;
    type Future = SmartFuture<S, ReqB, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let interaction = match parts.extensions.get::<FhirRequest>() {
            Some(fhir) => fhir.interaction(),
            None => return SmartFuture::refused(misconfigured(), &self.shared, None),
        };
        match interaction {
            Interaction::SmartConfiguration => {
                if let Some(doc) = &self.shared.smart_configuration {
                    return SmartFuture::answered(doc.to_response());
                }
                return SmartFuture::public(
                    self.inner
                        .call(Request::from_parts(parts, FhirBody::inner(body))),
                );
            }
            Interaction::Capabilities => {
                return SmartFuture::public(
                    self.inner
                        .call(Request::from_parts(parts, FhirBody::inner(body))),
                );
            }
            _ => {}
        }
        let token = match token::bearer_token(&parts.headers, &parts.uri) {
            Ok(Some(token)) => token,
            Ok(None) => {
                return SmartFuture::refused(
                    Refusal::new(RefusalKind::NoToken, "a bearer token is required"),
                    &self.shared,
                    None,
                )
            }
            Err(r) => return SmartFuture::refused(rejection(&r), &self.shared, None),
        };
        let verified = self.shared.verifier.verify_cached(token);
        let claims = match verified {
            Some(Ok(claims)) => claims,
            Some(Err(r)) => return SmartFuture::refused(rejection(&r), &self.shared, None),
            None => {
                let future = self.shared.verifier.verify(token);
                let clone = self.inner.clone();
                let service = std::mem::replace(&mut self.inner, clone);
                return SmartFuture::verifying(future, parts, body, service, self.shared.clone());
            }
        };
        match decide(&self.shared, &mut parts, &claims) {
            Err((refusal, client)) => SmartFuture::refused(refusal, &self.shared, client),
            Ok((ctx, authorized)) => {
                if authorized.checks_body() || authorized.reads_before_write() {
                    let clone = self.inner.clone();
                    let service = std::mem::replace(&mut self.inner, clone);
                    SmartFuture::job(Job::new(
                        parts,
                        body,
                        service,
                        self.shared.clone(),
                        ctx,
                        authorized,
                    ))
                } else {
                    SmartFuture::call(
                        &mut self.inner,
                        parts,
                        body,
                        self.shared.clone(),
                        ctx,
                        authorized,
                    )
                }
            }
        }
    }
}
