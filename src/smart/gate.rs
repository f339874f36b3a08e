//! [`TokenGateLayer`]: the bearer token checked before anyone reads a request body.
//!
//! [`SmartLayer`] authorizes the classified request, and classifying a batch, a transaction or
//! a `POST _search` means reading its body first. Without a gate in front of classification, a
//! client with no token, or a forged one, could make the server buffer a body up to the
//! classifier's limit, and hold the request open while the body trickles in, before hearing
//! 401. The gate answers 401 (RFC 6750 §3.1) for every request that carries a body without a
//! valid token, before any of the body is read. Requests without a body go straight on: the
//! [`SmartLayer`] after classification checks their token anyway, and the gate would only
//! repeat it. For requests it lets through, the verdict stays in the verifier's cache, so the
//! [`SmartLayer`] that follows finds it there instead of verifying the signature again.
//!
//! [`Fhirwall`](crate::stack::Fhirwall) puts the gate of its smart layer just before
//! classification; stacking by hand, take it from [`SmartLayer::token_gate`]:
//!
//! ```
//! use axum::{routing::post, Router};
//! use fhirwall::classify::ClassifyLayer;
//! use fhirwall::fhir::Classifier;
//! use fhirwall::smart::{SmartLayer, TokenFuture, TokenRejection, VerifiedClaims, VerifyToken};
//! use std::sync::Arc;
//!
//! struct Nobody;
//! impl VerifyToken for Nobody {
//!     fn verify_cached(&self, _: &str) -> Option<Result<Arc<VerifiedClaims>, TokenRejection>> {
//!         Some(Err(TokenRejection::invalid_token("unknown token")))
//!     }
//!     fn verify(&self, _: &str) -> TokenFuture {
//!         Box::pin(async { Err(TokenRejection::invalid_token("unknown token")) })
//!     }
//! }
//!
//! let smart = SmartLayer::new(Nobody);
//! let app: Router = Router::new()
//!     .route("/fhir", post(|| async { "{}" }))
//!     .layer(smart.clone())                                  // authorization
//!     .layer(ClassifyLayer::new(Classifier::new("/fhir")))   // may read the body
//!     .layer(smart.token_gate());                            // 401 before that
//! ```

use super::challenge::refusal_response;
use super::decision::{Refusal, RefusalKind, SmartDecision};
use super::layer::rejection;
use super::{token, TokenFuture, VerifyToken};
use crate::body::{full_response, FhirBody};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Refuses requests that carry a body without a valid bearer token, before the body is read.
/// See [`SmartLayer::token_gate`](super::SmartLayer::token_gate) and the `smart` module docs.
#[derive(Clone)]
pub struct TokenGateLayer {
    verifier: Arc<dyn VerifyToken>,
    realm: Arc<str>,
}

impl std::fmt::Debug for TokenGateLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGateLayer")
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl TokenGateLayer {
    pub(crate) fn new(verifier: Arc<dyn VerifyToken>, realm: &str) -> Self {
        TokenGateLayer {
            verifier,
            realm: Arc::from(realm),
        }
    }
}

impl<S> Layer<S> for TokenGateLayer {
    type Service = TokenGate<S>;

    fn layer(&self, inner: S) -> TokenGate<S> {
        TokenGate {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`TokenGateLayer`].
#[derive(Clone, Debug)]
pub struct TokenGate<S> {
    inner: S,
    layer: TokenGateLayer,
}

/// Whether the request may have a body. The body's own end-of-stream flag is what counts
/// (an HTTP/2 request can send DATA frames without `Content-Length`); the headers are read
/// too, so a body type that can't tell is treated as having one when they say so.
fn has_body<B: Body>(request: &Request<B>) -> bool {
    let headers = request.headers();
    !request.body().is_end_stream()
        || headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes() != b"0")
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for TokenGate<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    ReqB: Body,
{
    type Response = Response<FhirBody<ResB>>;
    type Error = S::Error;
    type Future = TokenGateFuture<S, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        if !has_body(&request) {
            return TokenGateFuture::inner(self.inner.call(request));
        }
        let token = match token::bearer_token(request.headers(), request.uri()) {
            Ok(Some(token)) => token,
            Ok(None) => {
                let refusal = Refusal::new(RefusalKind::NoToken, "a bearer token is required");
                return TokenGateFuture::refused(&refusal, &self.layer.realm);
            }
            Err(r) => return TokenGateFuture::refused(&rejection(&r), &self.layer.realm),
        };
        match self.layer.verifier.verify_cached(token) {
            Some(Ok(_)) => TokenGateFuture::inner(self.inner.call(request)),
            Some(Err(r)) => TokenGateFuture::refused(&rejection(&r), &self.layer.realm),
            None => {
                let verifying = self.layer.verifier.verify(token);
                // The service that was made ready goes with the request; a clone stays.
                let clone = self.inner.clone();
                let service = std::mem::replace(&mut self.inner, clone);
                TokenGateFuture {
                    state: GateState::Verifying {
                        verifying,
                        waiting: Some((request, service)),
                        realm: self.layer.realm.clone(),
                    },
                }
            }
        }
    }
}

pin_project! {
    /// Response future of [`TokenGate`].
    pub struct TokenGateFuture<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: GateState<S, ReqB>,
    }
}

pin_project! {
    #[project = GateProj]
    enum GateState<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        Refused { response: Option<Response<Full<Bytes>>>, decision: Option<SmartDecision> },
        Verifying {
            verifying: TokenFuture,
            waiting: Option<(Request<ReqB>, S)>,
            realm: Arc<str>,
        },
        Inner { #[pin] future: S::Future },
    }
}

impl<S, ReqB> TokenGateFuture<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    fn inner(future: S::Future) -> Self {
        TokenGateFuture {
            state: GateState::Inner { future },
        }
    }

    fn refused(refusal: &Refusal, realm: &str) -> Self {
        TokenGateFuture {
            state: GateState::Refused {
                response: Some(refusal_response(refusal, realm)),
                decision: Some(SmartDecision::refused(refusal.kind, None)),
            },
        }
    }
}

impl<S, ReqB, ResB> Future for TokenGateFuture<S, ReqB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Output = Result<Response<FhirBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                GateProj::Refused { response, decision } => {
                    let mut response = full_response(response.take().unwrap_or_else(|| {
                        refusal_response(&super::layer::misconfigured(), "fhirwall")
                    }));
                    if let Some(decision) = decision.take() {
                        // The audit layer records the refusal as SMART's.
                        response.extensions_mut().insert(decision);
                    }
                    return Poll::Ready(Ok(response));
                }
                GateProj::Inner { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(FhirBody::inner)));
                }
                GateProj::Verifying {
                    verifying,
                    waiting,
                    realm,
                } => {
                    let verdict = ready!(verifying.as_mut().poll(cx));
                    match (verdict, waiting.take()) {
                        (Ok(_), Some((request, mut service))) => GateState::Inner {
                            future: service.call(request),
                        },
                        (Err(r), _) => GateState::Refused {
                            response: Some(refusal_response(&rejection(&r), realm)),
                            decision: Some(SmartDecision::refused(rejection(&r).kind, None)),
                        },
                        (Ok(_), None) => GateState::Refused {
                            response: None,
                            decision: None,
                        },
                    }
                }
            };
            this.state.set(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::has_body;
    use bytes::Bytes;
    use http::Request;
    use http_body_util::{Empty, Full};

    #[test]
    fn a_body_is_seen_from_the_stream_or_the_headers() {
        let empty = Request::new(Empty::<Bytes>::new());
        assert!(!has_body(&empty));
        let full = Request::new(Full::new(Bytes::from_static(b"{}")));
        assert!(has_body(&full));
        let chunked = Request::builder()
            .header("transfer-encoding", "chunked")
            .body(Empty::<Bytes>::new())
            .unwrap();
        assert!(has_body(&chunked));
        let declared = Request::builder()
            .header("content-length", "12")
            .body(Empty::<Bytes>::new())
            .unwrap();
        assert!(has_body(&declared));
    }
}
