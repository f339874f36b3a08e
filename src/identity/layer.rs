//! [`TrustedClientLayer`]: refuses every request that doesn't come from a trusted client.

use super::client::{ClientIdentity, Validity};
use super::decision::{CertificateSource, IdentityDecision, IdentityRefusal};
use super::forwarded::{Extracted, ForwardedCertificates, STRIPPED_HEADERS};
use super::peer::PeerCertificates;
use super::policy::TrustPolicyHandle;
use crate::body::FhirBody;
use crate::net::{remote_addr, CertificateThumbprint};
use http::header::HeaderName;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};
use tower_layer::Layer;
use tower_service::Service;

/// Layer that lets through only requests from clients the [`TrustPolicy`] trusts; see the
/// [module docs](super).
///
/// For each request it:
///
/// 1. takes the client certificate: from a trusted proxy's header when
///    [`forwarded`](Self::forwarded) is set and the peer is one of its proxies, else from the
///    connection (`Arc<ClientIdentity>` put there by the TLS server, or [`PeerCertificates`],
///    parsed then);
/// 2. removes every forwarded-certificate header (the [`STRIPPED_HEADERS`] and any added with
///    [`strip_header`](Self::strip_header));
/// 3. refuses certificates outside their validity window or not meant for client
///    authentication, even if the TLS stack accepted them;
/// 4. asks the trust policy which client it is.
///
/// An allowed request reaches the service with `Arc<ClientIdentity>`,
/// [`CertificateThumbprint`] and [`TrustedClient`](super::TrustedClient) in its extensions.
/// Every response, refusals included, carries the [`IdentityDecision`] in its extensions.
///
/// [`TrustPolicy`]: super::TrustPolicy
#[derive(Clone, Debug)]
pub struct TrustedClientLayer {
    config: Arc<Config>,
}

#[derive(Clone, Debug)]
struct Config {
    policy: TrustPolicyHandle,
    forwarded: Option<Arc<ForwardedCertificates>>,
    strip: Vec<HeaderName>,
    leeway: Duration,
}

impl TrustedClientLayer {
    /// A layer enforcing this policy (a [`TrustPolicy`](super::TrustPolicy), or a
    /// [`TrustPolicyHandle`] to replace it at run time). Defaults: forwarded certificates
    /// off, no validity leeway.
    pub fn new(policy: impl Into<TrustPolicyHandle>) -> Self {
        TrustedClientLayer {
            config: Arc::new(Config {
                policy: policy.into(),
                forwarded: None,
                strip: STRIPPED_HEADERS
                    .iter()
                    .map(|h| HeaderName::from_static(h))
                    .collect(),
                leeway: Duration::ZERO,
            }),
        }
    }

    /// Believes client certificates forwarded by these proxies (off by default).
    pub fn forwarded(mut self, forwarded: ForwardedCertificates) -> Self {
        let config = Arc::make_mut(&mut self.config);
        let name = forwarded.header_name().clone();
        if !config.strip.contains(&name) {
            config.strip.push(name);
        }
        config.forwarded = Some(Arc::new(forwarded));
        self
    }

    /// Also removes this header from every request (for a proxy header name of your own).
    pub fn strip_header(mut self, name: HeaderName) -> Self {
        let config = Arc::make_mut(&mut self.config);
        if !config.strip.contains(&name) {
            config.strip.push(name);
        }
        self
    }

    /// Clock skew allowed when checking `notBefore` and `notAfter` (default zero: the TLS
    /// stack allows none either).
    pub fn validity_leeway(mut self, leeway: Duration) -> Self {
        Arc::make_mut(&mut self.config).leeway = leeway;
        self
    }

    /// The policy handle, to replace the policy at run time.
    pub fn policy(&self) -> &TrustPolicyHandle {
        &self.config.policy
    }
}

impl<S> Layer<S> for TrustedClientLayer {
    type Service = TrustedClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TrustedClientService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`TrustedClientLayer`].
#[derive(Clone, Debug)]
pub struct TrustedClientService<S> {
    inner: S,
    config: Arc<Config>,
}

type Refusal = (
    IdentityRefusal,
    Option<CertificateSource>,
    Option<CertificateThumbprint>,
);

impl Config {
    fn certificate(
        &self,
        request: &Request<impl Sized>,
        now: SystemTime,
    ) -> Result<(Arc<ClientIdentity>, CertificateSource), Refusal> {
        let extensions = request.extensions();
        let proxy = self.forwarded.as_ref().filter(|forwarded| {
            remote_addr(extensions).is_some_and(|addr| forwarded.is_trusted(addr.ip()))
        });
        if let Some(forwarded) = proxy {
            // From a trusted proxy only the forwarded certificate counts: the connection's
            // own certificate, if any, is the proxy's.
            let source = forwarded.source();
            return match forwarded.extract(request.headers(), now) {
                Extracted::Verified(identity) => Ok((identity, source)),
                Extracted::None => Err((IdentityRefusal::MissingCertificate, None, None)),
                Extracted::Refused(reason, thumbprint) => Err((reason, Some(source), thumbprint)),
            };
        }
        if let Some(identity) = extensions.get::<Arc<ClientIdentity>>() {
            return Ok((identity.clone(), CertificateSource::Tls));
        }
        let Some(leaf) = extensions
            .get::<PeerCertificates>()
            .and_then(PeerCertificates::leaf)
        else {
            return Err((IdentityRefusal::MissingCertificate, None, None));
        };
        match ClientIdentity::from_der(leaf) {
            Ok(identity) => Ok((Arc::new(identity), CertificateSource::Tls)),
            Err(_) => Err((
                IdentityRefusal::UnreadableCertificate,
                Some(CertificateSource::Tls),
                Some(super::peer::thumbprint_of(leaf)),
            )),
        }
    }

    fn decide<B>(&self, request: &mut Request<B>) -> Result<IdentityDecision, IdentityDecision> {
        let now = SystemTime::now();
        let found = self.certificate(request, now);
        let headers = request.headers_mut();
        // One pass over the request's few header names is cheaper than hashing every name on
        // the strip list, and almost no request has one.
        if headers.keys().any(|name| self.strip.contains(name)) {
            for name in &self.strip {
                headers.remove(name);
            }
        }
        let refused = |(reason, source, thumbprint): Refusal| IdentityDecision::Refused {
            reason,
            source,
            thumbprint,
        };
        let (identity, source) = found.map_err(refused)?;
        let thumbprint = identity.thumbprint();
        let refuse = |reason| refused((reason, Some(source), Some(thumbprint)));
        match identity.validity_at(now, self.leeway) {
            Validity::Valid => {}
            Validity::Expired => return Err(refuse(IdentityRefusal::Expired)),
            Validity::NotYetValid => return Err(refuse(IdentityRefusal::NotYetValid)),
        }
        if !identity.allows_client_auth() {
            return Err(refuse(IdentityRefusal::WrongKeyUsage));
        }
        let Some((client, matched_by)) = self.policy.evaluate(&identity) else {
            return Err(refuse(IdentityRefusal::NotAllowed));
        };
        let extensions = request.extensions_mut();
        if source != CertificateSource::Tls {
            extensions.remove::<PeerCertificates>();
        }
        // The TLS server already put these in; each insert is an allocation, so only what is
        // missing or different is written.
        if extensions.get::<CertificateThumbprint>() != Some(&thumbprint) {
            extensions.insert(thumbprint);
        }
        if !extensions
            .get::<Arc<ClientIdentity>>()
            .is_some_and(|present| Arc::ptr_eq(present, &identity))
        {
            extensions.insert(identity);
        }
        extensions.insert(client.clone());
        Ok(IdentityDecision::Allowed {
            client,
            matched_by,
            source,
            thumbprint,
        })
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for TrustedClientService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<FhirBody<ResB>>;
    type Error = S::Error;
    type Future = TrustedClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqB>) -> Self::Future {
        let state = match self.config.decide(&mut request) {
            Ok(decision) => State::Inner {
                future: self.inner.call(request),
                decision: Some(decision),
            },
            Err(decision) => State::Refused {
                decision: Some(decision),
            },
        };
        TrustedClientFuture { state }
    }
}

pin_project! {
    /// Response future of [`TrustedClientService`].
    pub struct TrustedClientFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Refused { decision: Option<IdentityDecision> },
        Inner { #[pin] future: F, decision: Option<IdentityDecision> },
    }
}

impl<F, B, E> Future for TrustedClientFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<FhirBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Refused { decision } => {
                let decision = decision.take().unwrap_or(IdentityDecision::Refused {
                    reason: IdentityRefusal::MissingCertificate,
                    source: None,
                    thumbprint: None,
                });
                let reason = decision
                    .refusal()
                    .unwrap_or(IdentityRefusal::MissingCertificate);
                let mut response = reason.to_response();
                response.extensions_mut().insert(decision);
                Poll::Ready(Ok(response))
            }
            StateProj::Inner { future, decision } => {
                let response = ready!(future.poll(cx))?;
                let mut response = response.map(FhirBody::inner);
                if let Some(decision) = decision.take() {
                    response.extensions_mut().insert(decision);
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}
