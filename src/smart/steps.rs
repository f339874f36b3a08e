//! The pieces the response future of [`Smart`](super::Smart) moves between its states: a
//! request waiting for its token, an authorized request with checks to do, a response to check,
//! and the helpers that read bodies and build the read before a write.

use super::challenge;
use super::context::AccessContext;
use super::decision::{Authorized, Refusal, RefusalKind, ResponseCheck, SmartDecision};
use super::layer::Shared;
use crate::body::{full_response, FhirBody};
use crate::fhir::{FhirRequest, Interaction};
use bytes::Bytes;
use http::{Method, Request, Response, Uri};
use http_body::Body;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// A request waiting for its token to be verified.
pub(crate) struct Pending<S, ReqB> {
    pub(crate) parts: http::request::Parts,
    pub(crate) body: ReqB,
    pub(crate) service: S,
    pub(crate) shared: Arc<Shared>,
}

/// An authorized request with body or stored-resource checks still to do.
pub(crate) struct Job<S, ReqB> {
    pub(crate) parts: http::request::Parts,
    pub(crate) body: Option<ReqB>,
    pub(crate) bytes: Option<Bytes>,
    pub(crate) service: S,
    pub(crate) shared: Arc<Shared>,
    pub(crate) ctx: AccessContext,
    pub(crate) authorized: Authorized,
    pub(crate) head: bool,
}

impl<S, ReqB> Job<S, ReqB> {
    pub(crate) fn new(
        mut parts: http::request::Parts,
        body: ReqB,
        service: S,
        shared: Arc<Shared>,
        ctx: AccessContext,
        authorized: Authorized,
    ) -> Self {
        let head = head_as_get(&mut parts, &authorized);
        Job {
            parts,
            body: Some(body),
            bytes: None,
            service,
            shared,
            ctx,
            authorized,
            head,
        }
    }
}

/// A response still to check.
pub(crate) struct Check {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ctx: AccessContext,
    pub(crate) response: ResponseCheck,
    pub(crate) head: bool,
}

/// A `HEAD` whose response must be checked is sent on as `GET`: a body-less answer can't be
/// checked, and its status alone would reveal whether the resource exists.
pub(crate) fn head_as_get(parts: &mut http::request::Parts, authorized: &Authorized) -> bool {
    if parts.method == Method::HEAD && authorized.checks_response() {
        parts.method = Method::GET;
        true
    } else {
        false
    }
}

pub(crate) fn too_large() -> Refusal {
    Refusal::new(
        RefusalKind::TooLarge,
        "the request body is larger than fhirwall reads to check it",
    )
}

/// `GET` of the resource an update or delete targets, with the request's own headers minus
/// those about its body or conditions.
pub(crate) fn pre_read_request<B>(parts: &http::request::Parts) -> Option<Request<FhirBody<B>>> {
    let fhir = parts.extensions.get::<FhirRequest>()?;
    let mut read = FhirRequest::new(Method::GET, Interaction::Read);
    read.resource_type = Some(fhir.resource_type()?);
    read.id = Some(fhir.id()?.to_owned());
    let mut uri_parts = parts.uri.clone().into_parts();
    uri_parts.path_and_query = Some(parts.uri.path().parse().ok()?);
    let uri = Uri::from_parts(uri_parts).ok()?;
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .version(parts.version);
    for (name, value) in &parts.headers {
        let skip = matches!(
            name.as_str(),
            "content-type"
                | "content-length"
                | "transfer-encoding"
                | "if-match"
                | "if-none-match"
                | "if-none-exist"
                | "if-modified-since"
                | "prefer"
        );
        if !skip {
            builder = builder.header(name, value);
        }
    }
    let mut request = builder.body(FhirBody::full(Bytes::new())).ok()?;
    *request.extensions_mut() = parts.extensions.clone();
    request.extensions_mut().insert(read);
    Some(request)
}

pub(crate) enum Collected {
    Done,
    TooLarge,
    Failed,
}

pub(crate) fn poll_collect<B>(
    mut body: Pin<&mut B>,
    buffer: &mut Vec<u8>,
    limit: usize,
    cx: &mut Context<'_>,
) -> Poll<Collected>
where
    B: Body<Data = Bytes>,
{
    loop {
        match ready!(body.as_mut().poll_frame(cx)) {
            None => return Poll::Ready(Collected::Done),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if buffer.len() + data.len() > limit {
                        return Poll::Ready(Collected::TooLarge);
                    }
                    buffer.extend_from_slice(&data);
                }
            }
            Some(Err(_)) => return Poll::Ready(Collected::Failed),
        }
    }
}

pub(crate) fn with_decision<B>(
    mut response: Response<B>,
    decision: Option<SmartDecision>,
) -> Response<B> {
    if let Some(decision) = decision {
        response.extensions_mut().insert(decision);
    }
    response
}

pub(crate) fn refusal_response<B>(
    refusal: &Refusal,
    realm: &str,
    client_id: Option<String>,
) -> Response<FhirBody<B>> {
    let response = full_response(challenge::refusal_response(refusal, realm));
    with_decision(
        response,
        Some(SmartDecision::refused(refusal.kind, client_id)),
    )
}
