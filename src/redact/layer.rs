//! [`RedactLayer`]: captures who is asking from the request, filters the response by policy.

use super::caller::{CallerExtractor, FromCallerExtension};
use super::compile::{Plan, Redactor};
use super::heads::{body_kind, compressed, hidden, refusal, wants_non_json, weaken_etag, BodyKind};
use super::outcome::{RedactError, Redacted};
use super::policy::Caller;
use super::search_guard;
use crate::body::{full_response, BoxError, Collected, FhirBody};
use crate::fhir::FhirRequest;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Why the layer refused to send a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedactRefusal {
    /// The client asked for, or the server sent, a format that can't be filtered (XML, RDF,
    /// HTML...): 406.
    NotAcceptable,
    /// The response is compressed (`Content-Encoding`): 500. Stack compression outside
    /// redaction.
    Compressed,
    /// The response is larger than the redaction limit: 500.
    TooLarge,
    /// The response body could not be read: 500.
    Unreadable,
    /// The response is not JSON (or not FHIR JSON) the redactor accepts: 500.
    Unparseable(RedactError),
    /// The request searches on an element this client may not see (a search oracle): 403.
    HiddenSearch,
}

/// What the layer did, on the response extensions for the audit layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedactDecision {
    /// No rule applies to this caller: the response passed unread.
    NotApplicable,
    /// The response had no body to filter (HEAD, 304, 204).
    NoBody,
    /// The body was read and nothing in it was selected.
    Unchanged,
    /// The body was redacted.
    Redacted {
        /// Resources altered.
        altered: usize,
        /// Resources withheld.
        hidden: usize,
    },
    /// The response was one resource the caller may not see; it was replaced by an
    /// `OperationOutcome`.
    Hidden,
    /// The response could not be filtered and was replaced by an `OperationOutcome`.
    Refused(RedactRefusal),
}

struct Shared {
    redactor: Redactor,
    extractors: Vec<Box<dyn CallerExtractor>>,
    hidden_status: StatusCode,
}

/// Layer that redacts every FHIR JSON response by a [`Redactor`]'s policy.
///
/// Place it inside the identity and SMART layers (it reads who is asking from the request
/// extensions) and inside any compression layer (a compressed body can't be filtered and is
/// refused).
///
/// ```
/// use axum::{routing::get, Router};
/// use fhirwall::redact::{Action, Policy, RedactLayer, Redactor, Rule};
///
/// let policy = Policy {
///     rules: vec![Rule::new(["Patient.telecom"], Action::Remove).unwrap()],
///     ..Policy::default()
/// };
/// let app: Router = Router::new()
///     .route("/fhir/Patient/{id}", get(|| async { "{}" }))
///     .layer(RedactLayer::new(Redactor::new(policy).unwrap()));
/// ```
#[derive(Clone)]
pub struct RedactLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for RedactLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactLayer")
            .field("redactor", &self.shared.redactor)
            .field("extractors", &self.shared.extractors.len())
            .field("hidden_status", &self.shared.hidden_status)
            .finish()
    }
}

impl RedactLayer {
    /// A layer with the default extractors: a [`Caller`] in the extensions, and (with their
    /// features) the mTLS [`TrustedClient`](crate::identity::TrustedClient) and the SMART
    /// [`AccessContext`](crate::smart::AccessContext). A hidden single resource answers 404.
    pub fn new(redactor: Redactor) -> Self {
        // Pushed to only when `mtls` or `smart` is compiled in.
        #[allow(unused_mut)]
        let mut extractors: Vec<Box<dyn CallerExtractor>> = vec![Box::new(FromCallerExtension)];
        #[cfg(feature = "mtls")]
        extractors.push(Box::new(super::caller::FromTrustedClient));
        #[cfg(feature = "smart")]
        extractors.push(Box::new(super::caller::FromAccessContext));
        RedactLayer {
            shared: Arc::new(Shared {
                redactor,
                extractors,
                hidden_status: StatusCode::NOT_FOUND,
            }),
        }
    }

    fn shared_mut(&mut self) -> Option<&mut Shared> {
        Arc::get_mut(&mut self.shared)
    }

    /// Adds an extractor (call before cloning the layer; a shared layer is left unchanged).
    pub fn extractor(mut self, extractor: impl CallerExtractor) -> Self {
        if let Some(shared) = self.shared_mut() {
            shared.extractors.push(Box::new(extractor));
        }
        self
    }

    /// The status of the `OperationOutcome` that replaces a single resource the caller may not
    /// see: 404 (default, the resource's existence is not revealed) or 403.
    pub fn hidden_status(mut self, status: StatusCode) -> Self {
        if let Some(shared) = self.shared_mut() {
            shared.hidden_status = status;
        }
        self
    }

    /// The caller this layer would see for a request with these extensions.
    pub fn caller(&self, extensions: &http::Extensions) -> Caller {
        caller_of(&self.shared, extensions)
    }
}

fn caller_of(shared: &Shared, extensions: &http::Extensions) -> Caller {
    let mut caller = Caller::anonymous();
    for e in &shared.extractors {
        e.extract(extensions, &mut caller);
    }
    shared.redactor.evaluate_predicates(extensions, &mut caller);
    caller
}

impl<S> Layer<S> for RedactLayer {
    type Service = Redact<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Redact {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`RedactLayer`].
#[derive(Clone)]
pub struct Redact<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for Redact<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redact")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Redact<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Body<Data = Bytes>,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<FhirBody<ResB>>;
    type Error = S::Error;
    type Future = RedactFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let caller = caller_of(&self.shared, request.extensions());
        let plan = self.shared.redactor.plan(&caller);
        if plan.is_empty() {
            return RedactFuture {
                state: State::Passthrough {
                    future: self.inner.call(request),
                },
            };
        }
        let hidden_search = request
            .extensions()
            .get::<FhirRequest>()
            .is_some_and(|fhir| search_guard::hidden_criterion(&plan, fhir).is_some());
        if hidden_search {
            return RedactFuture {
                state: State::Done {
                    response: Some(refusal(RedactRefusal::HiddenSearch)),
                },
            };
        }
        if wants_non_json(&request) {
            return RedactFuture {
                state: State::Done {
                    response: Some(refusal(RedactRefusal::NotAcceptable)),
                },
            };
        }
        let head = request.method() == Method::HEAD;
        // A budget layer outside that counts the response's resources asked for them: the
        // walk works them out on the way.
        #[cfg(feature = "limit")]
        let count = request
            .extensions()
            .get::<crate::body::CountWanted>()
            .is_some();
        #[cfg(not(feature = "limit"))]
        let count = false;
        RedactFuture {
            state: State::Calling {
                future: self.inner.call(request),
                plan: Some(plan),
                head,
                hidden_status: self.shared.hidden_status,
                count,
            },
        }
    }
}

pin_project! {
    /// Response future of [`Redact`].
    pub struct RedactFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Done { response: Option<Response<http_body_util::Full<Bytes>>> },
        Passthrough { #[pin] future: F },
        Calling { #[pin] future: F, plan: Option<Plan>, head: bool, hidden_status: StatusCode, count: bool },
        Reading {
            #[pin]
            body: B,
            collected: Collected,
            limit: usize,
            parts: Option<http::response::Parts>,
            plan: Option<Plan>,
            ndjson: bool,
            hidden_status: StatusCode,
            count: bool,
        },
    }
}

impl<F, B, E> Future for RedactFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<FhirBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Done { response } => {
                    let response = response
                        .take()
                        .unwrap_or_else(|| refusal(RedactRefusal::Unreadable));
                    return Poll::Ready(Ok(full_response(response)));
                }
                StateProj::Passthrough { future } => {
                    let mut response = ready!(future.poll(cx))?;
                    response
                        .extensions_mut()
                        .insert(RedactDecision::NotApplicable);
                    return Poll::Ready(Ok(response.map(FhirBody::inner)));
                }
                StateProj::Calling {
                    future,
                    plan,
                    head,
                    hidden_status,
                    count,
                } => {
                    let response = ready!(future.poll(cx))?;
                    let (mut parts, body) = response.into_parts();
                    let no_body = *head
                        || parts.status == StatusCode::NOT_MODIFIED
                        || parts.status == StatusCode::NO_CONTENT
                        || parts.status.is_informational();
                    if no_body {
                        // The headers describe a body the client would get redacted.
                        weaken_etag(&mut parts.headers);
                        if *head {
                            parts.headers.remove(CONTENT_LENGTH);
                        }
                        parts.extensions.insert(RedactDecision::NoBody);
                        // A HEAD body's size hint would still tell the unredacted length to a
                        // server that derives Content-Length from it.
                        let body = if *head {
                            FhirBody::full(Bytes::new())
                        } else {
                            FhirBody::inner(body)
                        };
                        let response = Response::from_parts(parts, body);
                        return Poll::Ready(Ok(response));
                    }
                    if compressed(&parts.headers) {
                        return Poll::Ready(Ok(full_response(refusal(RedactRefusal::Compressed))));
                    }
                    let ndjson = match body_kind(&parts.headers) {
                        BodyKind::Json => false,
                        BodyKind::Ndjson => true,
                        BodyKind::Other => {
                            return Poll::Ready(Ok(full_response(refusal(
                                RedactRefusal::NotAcceptable,
                            ))))
                        }
                    };
                    let Some(plan) = plan.take() else {
                        return Poll::Ready(Ok(full_response(refusal(RedactRefusal::Unreadable))));
                    };
                    let limit = plan.redactor.body_limit();
                    let declared = parts
                        .headers
                        .get(CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let at_least = body.size_hint().lower();
                    if declared.is_some_and(|len| len > limit as u64) || at_least > limit as u64 {
                        return Poll::Ready(Ok(full_response(refusal(RedactRefusal::TooLarge))));
                    }
                    // The length the body says it has, to collect it into one buffer of that
                    // size (never more than the limit).
                    let expected = declared.unwrap_or(0).max(at_least).min(limit as u64);
                    State::Reading {
                        body,
                        collected: Collected::new(usize::try_from(expected).unwrap_or(limit)),
                        limit,
                        parts: Some(parts),
                        plan: Some(plan),
                        ndjson,
                        hidden_status: *hidden_status,
                        count: *count,
                    }
                }
                StateProj::Reading {
                    mut body,
                    collected,
                    limit,
                    parts,
                    plan,
                    ndjson,
                    hidden_status,
                    count,
                } => {
                    loop {
                        match ready!(body.as_mut().poll_frame(cx)) {
                            None => break,
                            Some(Ok(frame)) => {
                                if let Ok(data) = frame.into_data() {
                                    if collected.len() + data.len() > *limit {
                                        return Poll::Ready(Ok(full_response(refusal(
                                            RedactRefusal::TooLarge,
                                        ))));
                                    }
                                    collected.push(data);
                                }
                            }
                            Some(Err(_)) => {
                                return Poll::Ready(Ok(full_response(refusal(
                                    RedactRefusal::Unreadable,
                                ))))
                            }
                        }
                    }
                    let (Some(mut parts), Some(plan)) = (parts.take(), plan.take()) else {
                        return Poll::Ready(Ok(full_response(refusal(RedactRefusal::Unreadable))));
                    };
                    let bytes = collected.take();
                    let result = if *ndjson {
                        plan.redact_ndjson(&bytes).map(|r| (r, None))
                    } else {
                        plan.redact_counted(&bytes, *count)
                    };
                    let response = match result {
                        Err(e) => full_response(refusal(RedactRefusal::Unparseable(e))),
                        Ok((Redacted::Hidden, _)) => full_response(hidden(*hidden_status)),
                        Ok((Redacted::Unchanged, counted)) => {
                            parts.extensions.insert(RedactDecision::Unchanged);
                            #[cfg(feature = "limit")]
                            if let Some(n) = counted {
                                parts
                                    .extensions
                                    .insert(crate::body::CountedBody::new(vec![bytes.clone()], n));
                            }
                            let _ = counted;
                            Response::from_parts(parts, FhirBody::full(bytes))
                        }
                        Ok((
                            Redacted::Changed {
                                body,
                                altered,
                                hidden,
                            },
                            counted,
                        )) => {
                            let headers = &mut parts.headers;
                            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
                            weaken_etag(headers);
                            for name in ["content-md5", "digest", "content-digest", "repr-digest"] {
                                headers.remove(name);
                            }
                            parts
                                .extensions
                                .insert(RedactDecision::Redacted { altered, hidden });
                            // The chunks it was written in, one frame each: joining them would
                            // hold the output twice.
                            let frames = body.into_frames();
                            #[cfg(feature = "limit")]
                            if let Some(n) = counted {
                                parts
                                    .extensions
                                    .insert(crate::body::CountedBody::new(frames.clone(), n));
                            }
                            let _ = counted;
                            Response::from_parts(parts, FhirBody::frames(frames))
                        }
                    };
                    return Poll::Ready(Ok(response));
                }
            };
            this.state.set(next);
        }
    }
}
