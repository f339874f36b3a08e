//! [`ValidateLayer`]: the tower side of the validator.

use super::negotiate::{self, BodyKind};
use super::problem::{Problem, ProblemClass, Rejection};
use super::{check_json, check_resource, check_search, CreateId, ValidateConfig};
use crate::body::{full_response, poll_read_bounded, BoxError, FhirBody, ReadError};
use crate::fhir::{FhirRequest, Interaction, IssueType, OperationOutcome, Query};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// The validator's verdict, put on every response's extensions for the audit layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationDecision {
    /// The request passed every check and was handed on.
    Passed,
    /// The request was refused with these problems.
    Refused(Rejection),
    /// No [`FhirRequest`] was in the extensions: `ClassifyLayer` is missing (500).
    Misconfigured,
}

/// Layer that validates requests before the handler sees them; see the [module docs](super).
#[derive(Clone, Debug)]
pub struct ValidateLayer {
    config: Arc<ValidateConfig>,
}

impl ValidateLayer {
    /// A layer with this configuration.
    pub fn new(config: ValidateConfig) -> Self {
        ValidateLayer {
            config: Arc::new(config),
        }
    }
}

impl Default for ValidateLayer {
    fn default() -> Self {
        ValidateLayer::new(ValidateConfig::default())
    }
}

impl<S> Layer<S> for ValidateLayer {
    type Service = Validate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Validate {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`ValidateLayer`].
#[derive(Clone, Debug)]
pub struct Validate<S> {
    inner: S,
    config: Arc<ValidateConfig>,
}

/// The body an interaction carries, if the validator reads it.
fn body_kind(fhir: &FhirRequest, headers: &HeaderMap) -> Option<BodyKind> {
    let empty = headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    match fhir.interaction() {
        Interaction::Create
        | Interaction::Update
        | Interaction::Batch
        | Interaction::Transaction => Some(BodyKind::Resource),
        Interaction::Patch => Some(BodyKind::Patch),
        i if i.is_search() && fhir.is_search_via_post() => Some(BodyKind::Form),
        Interaction::Operation if fhir.method() == Method::POST && !empty => {
            Some(BodyKind::Resource)
        }
        _ => None,
    }
}

fn lenient(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("handling=lenient"))
}

/// Everything checked before the body: format negotiation, query length and parameters.
fn check_head(
    cfg: &ValidateConfig,
    fhir: &FhirRequest,
    parts: &http::request::Parts,
) -> Result<(), Rejection> {
    negotiate::accept(&parts.headers, fhir.query().format(), cfg.accept_plain_json)
        .map_err(Rejection::one)?;
    let url_query = parts.uri.query().unwrap_or_default();
    if url_query.len() > cfg.max_query_len {
        return Err(Rejection::one(Problem::new(
            ProblemClass::Structure,
            IssueType::TooLong,
            "the query is longer than allowed",
            "",
        )));
    }
    if fhir.is_search_via_post() {
        // A parameter in both the URL and the form body: servers disagree on which wins.
        let url = Query::parse(url_query, usize::MAX).unwrap_or_default();
        for p in url.params() {
            let in_url = url.get(p.name()).count();
            if fhir.query().get(p.name()).count() > in_url {
                return Err(Rejection::one(Problem::new(
                    ProblemClass::Structure,
                    IssueType::Duplicate,
                    "the parameter is given both in the URL and in the POST body",
                    p.name().to_owned(),
                )));
            }
        }
    }
    let lenient = lenient(&parts.headers);
    match fhir.interaction() {
        Interaction::Operation | Interaction::Capabilities | Interaction::SmartConfiguration => {}
        Interaction::Create => {
            if let Some(condition) = fhir.condition() {
                check_search(condition, fhir.resource_type(), lenient, cfg)?;
            }
            check_search(fhir.query(), fhir.resource_type(), lenient, cfg)?;
        }
        _ => check_search(fhir.query(), fhir.resource_type(), lenient, cfg)?,
    }
    Ok(())
}

/// Checks a body read in full.
fn check_body(
    cfg: &ValidateConfig,
    fhir: &FhirRequest,
    kind: BodyKind,
    body: &[u8],
) -> Result<(), Rejection> {
    if kind == BodyKind::Patch {
        // JSON Patch (RFC 6902): an array of operations; hostile-JSON checks only.
        check_json(body, cfg.max_depth).map_err(|e| {
            Rejection::one(Problem::new(
                ProblemClass::Structure,
                IssueType::Structure,
                format!("{} (at byte {})", e.kind.text(), e.offset),
                "",
            ))
        })?;
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
            return Err(Rejection::one(Problem::new(
                ProblemClass::Structure,
                IssueType::Structure,
                "a JSON Patch is an array of operations",
                "",
            )));
        }
        return Ok(());
    }
    let checked = check_resource(body, cfg)?;
    let rt = checked.resource_type;
    let problem = |class, code, text: &'static str, expression: String| {
        Err(Rejection::one(Problem::new(class, code, text, expression)))
    };
    match fhir.interaction() {
        Interaction::Create | Interaction::Update | Interaction::Patch
            if fhir.resource_type().is_some_and(|t| t != rt) =>
        {
            return problem(
                ProblemClass::Structure,
                IssueType::Invalid,
                "the resourceType does not match the URL",
                format!("{}.resourceType", rt.as_str()),
            );
        }
        Interaction::Update if !fhir.is_conditional() && fhir.id() != checked.id.as_deref() => {
            // FHIR R4 §3.1.0.4 "update": the body's id must be present and match the URL.
            return problem(
                ProblemClass::Structure,
                IssueType::Invalid,
                "the id in the body must match the id in the URL",
                format!("{}.id", rt.as_str()),
            );
        }
        Interaction::Create if checked.id.is_some() && cfg.create_id == CreateId::Refuse => {
            return problem(
                ProblemClass::Rule,
                IssueType::Invalid,
                "a create must not carry an id",
                format!("{}.id", rt.as_str()),
            );
        }
        _ => {}
    }
    Ok(())
}

fn misconfigured<B>() -> Response<FhirBody<B>> {
    let mut response = full_response(
        OperationOutcome::error(IssueType::Exception, "fhirwall is misconfigured")
            .into_response(StatusCode::INTERNAL_SERVER_ERROR),
    );
    response
        .extensions_mut()
        .insert(ValidationDecision::Misconfigured);
    response
}

fn refuse<B>(rejection: Rejection) -> Response<FhirBody<B>> {
    let mut response = full_response(rejection.clone().into_response());
    response
        .extensions_mut()
        .insert(ValidationDecision::Refused(rejection));
    response
}

fn too_large() -> Rejection {
    Rejection::one(Problem::new(
        ProblemClass::TooLarge,
        IssueType::TooLong,
        "the request body is larger than allowed",
        "",
    ))
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Validate<S>
where
    S: Service<Request<FhirBody<ReqB>>, Response = Response<ResB>> + Clone,
    ReqB: Body<Data = Bytes>,
    ReqB::Error: Into<BoxError>,
{
    type Response = Response<FhirBody<ResB>>;
    type Error = S::Error;
    type Future = ValidateFuture<S, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let cfg = &self.config;
        let refused = |response| ValidateFuture {
            state: State::Refused {
                response: Some(response),
            },
        };
        let Some(fhir) = parts.extensions.get::<FhirRequest>() else {
            return refused(Refusal::Misconfigured);
        };
        if let Err(rejection) = check_head(cfg, fhir, &parts) {
            return refused(Refusal::Rejected(rejection));
        }
        let Some(kind) = body_kind(fhir, &parts.headers) else {
            let request = Request::from_parts(parts, FhirBody::inner(body));
            return ValidateFuture {
                state: State::Inner {
                    future: self.inner.call(request),
                },
            };
        };
        let kind = match negotiate::content_type(&parts.headers, kind, cfg.accept_plain_json) {
            Ok(kind) => kind,
            Err(problem) => return refused(Refusal::Rejected(Rejection::one(problem))),
        };
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > cfg.max_body_bytes as u64) {
            return refused(Refusal::Rejected(too_large()));
        }
        if kind == BodyKind::Form {
            // The classifier already read the form into the query checked above.
            let request = Request::from_parts(parts, FhirBody::inner(body));
            return ValidateFuture {
                state: State::Inner {
                    future: self.inner.call(request),
                },
            };
        }
        // The service made ready by poll_ready is the one that must be called; it waits in the
        // future while the body is read, and a clone takes its place.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        ValidateFuture {
            state: State::Reading {
                body,
                buffer: Vec::new(),
                waiting: Some(Waiting {
                    parts,
                    kind,
                    service,
                    config: self.config.clone(),
                }),
            },
        }
    }
}

/// Why a request is refused before its body is read.
#[derive(Debug)]
enum Refusal {
    Misconfigured,
    Rejected(Rejection),
}

struct Waiting<S> {
    parts: http::request::Parts,
    kind: BodyKind,
    service: S,
    config: Arc<ValidateConfig>,
}

pin_project! {
    /// Response future of [`Validate`].
    pub struct ValidateFuture<S, ReqB>
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
        Refused { response: Option<Refusal> },
        Reading {
            #[pin]
            body: ReqB,
            buffer: Vec<u8>,
            waiting: Option<Waiting<S>>,
        },
        Inner { #[pin] future: S::Future },
    }
}

impl<S, ReqB, ResB> Future for ValidateFuture<S, ReqB>
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
                    return Poll::Ready(Ok(match response.take() {
                        Some(Refusal::Rejected(rejection)) => refuse(rejection),
                        _ => misconfigured(),
                    }));
                }
                StateProj::Inner { future } => {
                    let mut response = ready!(future.poll(cx))?;
                    if response.extensions().get::<ValidationDecision>().is_none() {
                        response.extensions_mut().insert(ValidationDecision::Passed);
                    }
                    return Poll::Ready(Ok(response.map(FhirBody::inner)));
                }
                StateProj::Reading {
                    mut body,
                    buffer,
                    waiting,
                } => {
                    let limit = waiting.as_ref().map_or(0, |w| w.config.max_body_bytes);
                    match ready!(poll_read_bounded(body.as_mut(), cx, buffer, limit)) {
                        Ok(()) => {}
                        Err(ReadError::TooLarge) => return Poll::Ready(Ok(refuse(too_large()))),
                        Err(ReadError::Unreadable) => {
                            return Poll::Ready(Ok(refuse(Rejection::one(Problem::new(
                                ProblemClass::Structure,
                                IssueType::Structure,
                                "the request body could not be read",
                                "",
                            )))));
                        }
                    }
                    let Some(Waiting {
                        parts,
                        kind,
                        mut service,
                        config,
                    }) = waiting.take()
                    else {
                        return Poll::Ready(Ok(misconfigured()));
                    };
                    let bytes = Bytes::from(std::mem::take(buffer));
                    let Some(fhir) = parts.extensions.get::<FhirRequest>() else {
                        return Poll::Ready(Ok(misconfigured()));
                    };
                    if let Err(rejection) = check_body(&config, fhir, kind, &bytes) {
                        return Poll::Ready(Ok(refuse(rejection)));
                    }
                    let request = Request::from_parts(parts, FhirBody::full(bytes));
                    State::Inner {
                        future: service.call(request),
                    }
                }
            };
            this.state.set(next);
        }
    }
}
