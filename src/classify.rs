//! [`ClassifyLayer`]: classifies every request once and refuses what isn't FHIR.
//!
//! It is the first fhirwall layer inside audit: it puts the [`FhirRequest`] into the request
//! extensions for every later layer, and answers anything that is not a well-formed FHIR R4 REST
//! request with a 4xx `OperationOutcome` (fail closed). For batches, transactions and
//! `POST _search` it reads the body (up to [`Classifier::max_body_len`]) and hands the inner
//! service the same bytes.
//!
//! ```
//! use axum::{routing::get, Router};
//! use fhirwall::classify::ClassifyLayer;
//! use fhirwall::fhir::{Classifier, FhirRequest};
//!
//! async fn read(request: axum::extract::Request) -> String {
//!     let fhir = request.extensions().get::<FhirRequest>().unwrap();
//!     format!("{} {:?}", fhir.interaction(), fhir.id())
//! }
//!
//! let app: Router = Router::new()
//!     .route("/fhir/Patient/{id}", get(read))
//!     .layer(ClassifyLayer::new(Classifier::new("/fhir")));
//! ```
//!
//! With `Router::nest("/fhir", ...)`, axum strips the prefix before inner layers run: a layer on
//! the nested router sees `/Patient/1` and needs `Classifier::new("/")`.

use crate::body::{full_response, poll_read_bounded, BoxError, FhirBody, ReadError};
use crate::fhir::{Classification, Classifier, PendingBody, Unclassified, UnclassifiedKind};
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

#[cfg(doc)]
use crate::fhir::FhirRequest;

/// Layer that classifies requests with a [`Classifier`]; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ClassifyLayer {
    classifier: Arc<Classifier>,
}

impl ClassifyLayer {
    /// A layer using this classifier.
    pub fn new(classifier: Classifier) -> Self {
        ClassifyLayer {
            classifier: Arc::new(classifier),
        }
    }
}

impl<S> Layer<S> for ClassifyLayer {
    type Service = Classify<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Classify {
            inner,
            classifier: self.classifier.clone(),
        }
    }
}

/// The service of [`ClassifyLayer`].
#[derive(Clone, Debug)]
pub struct Classify<S> {
    inner: S,
    classifier: Arc<Classifier>,
}

impl<S> Classify<S> {
    /// The classifier in use.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Classify<S>
where
    S: Service<Request<FhirBody<ReqB>>, Response = Response<ResB>> + Clone,
    ReqB: Body<Data = Bytes>,
    ReqB::Error: Into<BoxError>,
{
    type Response = Response<FhirBody<ResB>>;
    type Error = S::Error;
    type Future = ClassifyFuture<S, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let classified = self
            .classifier
            .classify_head(&parts.method, &parts.uri, &parts.headers);
        let state = match classified {
            Err(refusal) => State::Refused {
                response: Some(refusal),
            },
            Ok(Classification::Done(fhir)) => {
                parts.extensions.insert(fhir);
                let request = Request::from_parts(parts, FhirBody::inner(body));
                State::Inner {
                    future: self.inner.call(request),
                }
            }
            Ok(Classification::NeedsBody(pending)) => {
                let limit = self.classifier.body_limit();
                let declared = parts
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if declared.is_some_and(|len| len > limit as u64) {
                    State::Refused {
                        response: Some(too_large()),
                    }
                } else {
                    // The service made ready by poll_ready is the one that must be called; it
                    // waits in the future while the body is read, and a clone takes its place.
                    let clone = self.inner.clone();
                    let service = std::mem::replace(&mut self.inner, clone);
                    State::Reading {
                        body,
                        buffer: Vec::new(),
                        limit,
                        waiting: Some(Waiting {
                            parts,
                            pending,
                            service,
                            classifier: self.classifier.clone(),
                        }),
                    }
                }
            }
        };
        ClassifyFuture { state }
    }
}

fn too_large() -> Unclassified {
    Unclassified::new(
        UnclassifiedKind::BodyTooLarge,
        "the request body is larger than allowed",
    )
}

struct Waiting<S> {
    parts: http::request::Parts,
    pending: PendingBody,
    service: S,
    classifier: Arc<Classifier>,
}

pin_project! {
    /// Response future of [`Classify`].
    pub struct ClassifyFuture<S, ReqB>
    where
        S: Service<Request<FhirBody<ReqB>>>,
    {
        #[pin]
        state: State<S, ReqB>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB>
    where
        S: Service<Request<FhirBody<ReqB>>>,
    {
        Refused { response: Option<Unclassified> },
        Reading {
            #[pin]
            body: ReqB,
            buffer: Vec<u8>,
            limit: usize,
            waiting: Option<Waiting<S>>,
        },
        Inner { #[pin] future: S::Future },
    }
}

impl<S, ReqB, ResB> Future for ClassifyFuture<S, ReqB>
where
    S: Service<Request<FhirBody<ReqB>>, Response = Response<ResB>>,
    ReqB: Body<Data = Bytes>,
    ReqB::Error: Into<BoxError>,
{
    type Output = Result<Response<FhirBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Refused { response } => {
                    let refusal = response.take().unwrap_or_else(too_large);
                    return Poll::Ready(Ok(refuse(refusal)));
                }
                StateProj::Inner { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(FhirBody::inner)));
                }
                StateProj::Reading {
                    mut body,
                    buffer,
                    limit,
                    waiting,
                } => {
                    match ready!(poll_read_bounded(body.as_mut(), cx, buffer, *limit)) {
                        Ok(()) => {}
                        Err(ReadError::TooLarge) => return Poll::Ready(Ok(refuse(too_large()))),
                        Err(ReadError::Unreadable) => {
                            return Poll::Ready(Ok(refuse(Unclassified::new(
                                UnclassifiedKind::BodyUnreadable,
                                "the request body could not be read",
                            ))));
                        }
                    }
                    let Some(Waiting {
                        mut parts,
                        pending,
                        mut service,
                        classifier,
                    }) = waiting.take()
                    else {
                        return Poll::Ready(Ok(refuse(too_large())));
                    };
                    let bytes = Bytes::from(std::mem::take(buffer));
                    match classifier.finish(pending, &bytes) {
                        Ok(fhir) => {
                            parts.extensions.insert(fhir);
                            let request = Request::from_parts(parts, FhirBody::full(bytes));
                            State::Inner {
                                future: service.call(request),
                            }
                        }
                        Err(refusal) => return Poll::Ready(Ok(refuse(refusal))),
                    }
                }
            };
            this.state.set(next);
        }
    }
}

fn refuse<B>(refusal: Unclassified) -> Response<FhirBody<B>> {
    let mut response = full_response(refusal.clone().into_response());
    // The audit layer reads why a request was refused from here.
    response.extensions_mut().insert(refusal);
    response
}
