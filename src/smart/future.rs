//! The response future of [`Smart`](super::Smart): a state machine, one state per step that
//! may wait (token verification, request body, the read before a write, the inner service, the
//! response body).

use super::context::AccessContext;
use super::decision::{Authorized, Refusal, RefusalKind, SmartDecision, WriteRule};
use super::layer::{decide, misconfigured, rejection, Shared};
use super::response::{check_response, check_stored, uncheckable};
use super::steps::{
    head_as_get, poll_collect, pre_read_request, refusal_response, too_large, with_decision, Check,
    Collected, Job, Pending,
};
use super::write_check::check_body;
use super::{challenge, TokenFuture};
use crate::body::{full_response, BoxError, FhirBody};
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower_service::Service;

pin_project! {
    /// Response future of [`Smart`](super::Smart).
    pub struct SmartFuture<S, ReqB, ResB>
    where
        S: Service<Request<FhirBody<ReqB>>>,
    {
        #[pin]
        state: State<S, ReqB, ResB>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB, ResB>
    where
        S: Service<Request<FhirBody<ReqB>>>,
    {
        Answered {
            response: Option<Response<Full<Bytes>>>,
            decision: Option<SmartDecision>,
        },
        Public { #[pin] future: S::Future },
        Verifying {
            future: TokenFuture,
            pending: Option<Pending<S, ReqB>>,
        },
        ReadingBody {
            #[pin]
            body: ReqB,
            buffer: Vec<u8>,
            job: Option<Job<S, ReqB>>,
        },
        PreRead {
            #[pin]
            future: S::Future,
            job: Option<Job<S, ReqB>>,
        },
        PreReadBody {
            #[pin]
            body: ResB,
            buffer: Vec<u8>,
            job: Option<Job<S, ReqB>>,
        },
        WriteReady { job: Option<Job<S, ReqB>> },
        Inner {
            #[pin]
            future: S::Future,
            check: Option<Box<Check>>,
            decision: Option<SmartDecision>,
        },
        ReadingResponse {
            #[pin]
            body: ResB,
            buffer: Vec<u8>,
            head: Option<http::response::Parts>,
            check: Option<Box<Check>>,
            decision: Option<SmartDecision>,
        },
    }
}

fn refusal_state<S, ReqB, ResB>(
    refusal: &Refusal,
    shared: &Shared,
    client_id: Option<String>,
) -> State<S, ReqB, ResB>
where
    S: Service<Request<FhirBody<ReqB>>>,
{
    State::Answered {
        response: Some(challenge::refusal_response(refusal, &shared.realm)),
        decision: Some(SmartDecision::refused(refusal.kind, client_id)),
    }
}

impl<S, ReqB, ResB> SmartFuture<S, ReqB, ResB>
where
    S: Service<Request<FhirBody<ReqB>>>,
{
    pub(crate) fn refused(refusal: Refusal, shared: &Shared, client_id: Option<String>) -> Self {
        SmartFuture {
            state: refusal_state(&refusal, shared, client_id),
        }
    }

    pub(crate) fn answered(response: Response<Full<Bytes>>) -> Self {
        SmartFuture {
            state: State::Answered {
                response: Some(response),
                decision: Some(SmartDecision::allowed(None, true, false)),
            },
        }
    }

    pub(crate) fn public(future: S::Future) -> Self {
        SmartFuture {
            state: State::Public { future },
        }
    }

    pub(crate) fn verifying(
        future: TokenFuture,
        parts: http::request::Parts,
        body: ReqB,
        service: S,
        shared: Arc<Shared>,
    ) -> Self {
        SmartFuture {
            state: State::Verifying {
                future,
                pending: Some(Pending {
                    parts,
                    body,
                    service,
                    shared,
                }),
            },
        }
    }

    pub(crate) fn job(job: Job<S, ReqB>) -> Self {
        SmartFuture {
            state: start_job(job),
        }
    }

    /// The fast path: authorized without body or stored-resource checks, call now.
    pub(crate) fn call(
        service: &mut S,
        mut parts: http::request::Parts,
        body: ReqB,
        shared: Arc<Shared>,
        ctx: AccessContext,
        authorized: Authorized,
    ) -> Self {
        let head = head_as_get(&mut parts, &authorized);
        let decision = SmartDecision::allowed(
            ctx.client_id().map(str::to_owned),
            false,
            authorized.is_narrowed(),
        );
        let check = authorized.response.map(|response| {
            Box::new(Check {
                shared,
                ctx,
                response,
                head,
            })
        });
        let future = service.call(Request::from_parts(parts, FhirBody::inner(body)));
        SmartFuture {
            state: State::Inner {
                future,
                check,
                decision: Some(decision),
            },
        }
    }
}

fn start_job<S, ReqB, ResB>(mut job: Job<S, ReqB>) -> State<S, ReqB, ResB>
where
    S: Service<Request<FhirBody<ReqB>>>,
{
    if job.authorized.checks_body() && job.bytes.is_none() {
        let declared = job
            .parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > job.shared.max_request_body as u64) {
            return refusal_state(
                &too_large(),
                &job.shared,
                job.ctx.client_id().map(str::to_owned),
            );
        }
        if let Some(body) = job.body.take() {
            return State::ReadingBody {
                body,
                buffer: Vec::new(),
                job: Some(job),
            };
        }
    }
    if job.authorized.pre_read.is_some() {
        if let Some(request) = pre_read_request(&job.parts) {
            let future = job.service.call(request);
            return State::PreRead {
                future,
                job: Some(job),
            };
        }
        return refusal_state(
            &misconfigured(),
            &job.shared,
            job.ctx.client_id().map(str::to_owned),
        );
    }
    call_job(job)
}

fn call_job<S, ReqB, ResB>(job: Job<S, ReqB>) -> State<S, ReqB, ResB>
where
    S: Service<Request<FhirBody<ReqB>>>,
{
    let Job {
        parts,
        body,
        bytes,
        mut service,
        shared,
        ctx,
        authorized,
        head,
    } = job;
    let decision = SmartDecision::allowed(
        ctx.client_id().map(str::to_owned),
        false,
        authorized.is_narrowed(),
    );
    let mut parts = parts;
    let body = match (bytes, body) {
        (Some(bytes), _) => {
            // A rewritten batch is longer than the original, and no longer chunked.
            parts.headers.remove(TRANSFER_ENCODING);
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            FhirBody::full(bytes)
        }
        (None, Some(body)) => FhirBody::inner(body),
        (None, None) => FhirBody::full(Bytes::new()),
    };
    let check = authorized.response.map(|response| {
        Box::new(Check {
            shared,
            ctx,
            response,
            head,
        })
    });
    let future = service.call(Request::from_parts(parts, body));
    State::Inner {
        future,
        check,
        decision: Some(decision),
    }
}

impl<S, ReqB, ResB> Future for SmartFuture<S, ReqB, ResB>
where
    S: Service<Request<FhirBody<ReqB>>, Response = Response<ResB>>,
    ReqB: Body<Data = Bytes>,
    ReqB::Error: Into<BoxError>,
    ResB: Body<Data = Bytes>,
    ResB::Error: Into<BoxError>,
{
    type Output = Result<Response<FhirBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next: State<S, ReqB, ResB> = match this.state.as_mut().project() {
                StateProj::Answered { response, decision } => {
                    let response = response.take().unwrap_or_else(|| {
                        challenge::refusal_response(&misconfigured(), "fhirwall")
                    });
                    return Poll::Ready(Ok(with_decision(
                        full_response(response),
                        decision.take(),
                    )));
                }
                StateProj::Public { future } => {
                    let response = ready!(future.poll(cx))?;
                    let decision = SmartDecision::allowed(None, true, false);
                    return Poll::Ready(Ok(with_decision(
                        response.map(FhirBody::inner),
                        Some(decision),
                    )));
                }
                StateProj::Verifying { future, pending } => {
                    let verified = ready!(future.as_mut().poll(cx));
                    let Some(Pending {
                        mut parts,
                        body,
                        service,
                        shared,
                    }) = pending.take()
                    else {
                        return Poll::Ready(Ok(refusal_response(
                            &misconfigured(),
                            "fhirwall",
                            None,
                        )));
                    };
                    let claims = match verified {
                        Ok(claims) => claims,
                        Err(r) => {
                            return Poll::Ready(Ok(refusal_response(
                                &rejection(&r),
                                &shared.realm,
                                None,
                            )))
                        }
                    };
                    match decide(&shared, &mut parts, &claims) {
                        Err((refusal, client)) => {
                            return Poll::Ready(Ok(refusal_response(
                                &refusal,
                                &shared.realm,
                                client,
                            )))
                        }
                        Ok((ctx, authorized)) => {
                            start_job(Job::new(parts, body, service, shared, ctx, authorized))
                        }
                    }
                }
                StateProj::ReadingBody { body, buffer, job } => {
                    let limit = job.as_ref().map_or(0, |j| j.shared.max_request_body);
                    let collected = ready!(poll_collect(body, buffer, limit, cx));
                    let Some(mut job) = job.take() else {
                        return Poll::Ready(Ok(refusal_response(
                            &misconfigured(),
                            "fhirwall",
                            None,
                        )));
                    };
                    let client = job.ctx.client_id().map(str::to_owned);
                    match collected {
                        Collected::Done => {}
                        Collected::TooLarge => {
                            return Poll::Ready(Ok(refusal_response(
                                &too_large(),
                                &job.shared.realm,
                                client,
                            )))
                        }
                        Collected::Failed => {
                            let refusal = Refusal::new(
                                RefusalKind::InvalidRequest,
                                "the request body could not be read",
                            );
                            return Poll::Ready(Ok(refusal_response(
                                &refusal,
                                &job.shared.realm,
                                client,
                            )));
                        }
                    }
                    let bytes = Bytes::from(std::mem::take(buffer));
                    match check_body(&bytes, &job.authorized.body, &job.ctx, &job.shared.policy) {
                        Err(refusal) => {
                            return Poll::Ready(Ok(refusal_response(
                                &refusal,
                                &job.shared.realm,
                                client,
                            )))
                        }
                        Ok(Some(rewritten)) => job.bytes = Some(rewritten),
                        Ok(None) => job.bytes = Some(bytes),
                    }
                    start_job(job)
                }
                StateProj::PreRead { future, job } => {
                    let response = ready!(future.poll(cx))?;
                    let Some(job) = job.take() else {
                        return Poll::Ready(Ok(refusal_response(
                            &misconfigured(),
                            "fhirwall",
                            None,
                        )));
                    };
                    let status = response.status();
                    if status.is_success() {
                        State::PreReadBody {
                            body: response.into_body(),
                            buffer: Vec::new(),
                            job: Some(job),
                        }
                    } else if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                        // Nothing stored to protect: the write goes on (an update then creates).
                        State::WriteReady { job: Some(job) }
                    } else {
                        let client = job.ctx.client_id().map(str::to_owned);
                        return Poll::Ready(Ok(refusal_response(
                            &uncheckable(),
                            &job.shared.realm,
                            client,
                        )));
                    }
                }
                StateProj::PreReadBody { body, buffer, job } => {
                    let limit = job.as_ref().map_or(0, |j| j.shared.max_response_body);
                    let collected = ready!(poll_collect(body, buffer, limit, cx));
                    let Some(job) = job.take() else {
                        return Poll::Ready(Ok(refusal_response(
                            &misconfigured(),
                            "fhirwall",
                            None,
                        )));
                    };
                    let client = job.ctx.client_id().map(str::to_owned);
                    if !matches!(collected, Collected::Done) {
                        return Poll::Ready(Ok(refusal_response(
                            &uncheckable(),
                            &job.shared.realm,
                            client,
                        )));
                    }
                    let permission = job
                        .authorized
                        .pre_read
                        .as_ref()
                        .map(|r: &WriteRule| r.permission)
                        .unwrap_or_default();
                    if let Err(refusal) =
                        check_stored(buffer, permission, &job.ctx, &job.shared.policy)
                    {
                        return Poll::Ready(Ok(refusal_response(
                            &refusal,
                            &job.shared.realm,
                            client,
                        )));
                    }
                    State::WriteReady { job: Some(job) }
                }
                StateProj::WriteReady { job } => {
                    let Some(current) = job.as_mut() else {
                        return Poll::Ready(Ok(refusal_response(
                            &misconfigured(),
                            "fhirwall",
                            None,
                        )));
                    };
                    ready!(current.service.poll_ready(cx))?;
                    match job.take() {
                        Some(mut ready_job) => {
                            ready_job.authorized.pre_read = None;
                            call_job(ready_job)
                        }
                        None => {
                            return Poll::Ready(Ok(refusal_response(
                                &misconfigured(),
                                "fhirwall",
                                None,
                            )))
                        }
                    }
                }
                StateProj::Inner {
                    future,
                    check,
                    decision,
                } => {
                    let response = ready!(future.poll(cx))?;
                    let Some(check) = check.take() else {
                        return Poll::Ready(Ok(with_decision(
                            response.map(FhirBody::inner),
                            decision.take(),
                        )));
                    };
                    let status = response.status();
                    let client = check.ctx.client_id().map(str::to_owned);
                    if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                        // One answer for "not there" and "not yours", so existence doesn't leak.
                        let refusal = Refusal::hidden(check.shared.policy.hidden_status);
                        return Poll::Ready(Ok(refusal_response(
                            &refusal,
                            &check.shared.realm,
                            client,
                        )));
                    }
                    if !status.is_success() {
                        return Poll::Ready(Ok(with_decision(
                            response.map(FhirBody::inner),
                            decision.take(),
                        )));
                    }
                    let declared = response
                        .headers()
                        .get(CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    if declared.is_some_and(|len| len > check.shared.max_response_body as u64) {
                        return Poll::Ready(Ok(refusal_response(
                            &uncheckable(),
                            &check.shared.realm,
                            client,
                        )));
                    }
                    let (head, body) = response.into_parts();
                    State::ReadingResponse {
                        body,
                        buffer: Vec::new(),
                        head: Some(head),
                        check: Some(check),
                        decision: decision.take(),
                    }
                }
                StateProj::ReadingResponse {
                    body,
                    buffer,
                    head,
                    check,
                    decision,
                } => {
                    let limit = check.as_ref().map_or(0, |c| c.shared.max_response_body);
                    let collected = ready!(poll_collect(body, buffer, limit, cx));
                    let (Some(check), Some(mut head)) = (check.take(), head.take()) else {
                        return Poll::Ready(Ok(refusal_response(
                            &misconfigured(),
                            "fhirwall",
                            None,
                        )));
                    };
                    let client = check.ctx.client_id().map(str::to_owned);
                    if !matches!(collected, Collected::Done) {
                        return Poll::Ready(Ok(refusal_response(
                            &uncheckable(),
                            &check.shared.realm,
                            client,
                        )));
                    }
                    let bytes = std::mem::take(buffer);
                    let checked = match check_response(
                        &bytes,
                        &check.response,
                        &check.ctx,
                        &check.shared.policy,
                    ) {
                        Ok(checked) => checked,
                        Err(refusal) => {
                            return Poll::Ready(Ok(refusal_response(
                                &refusal,
                                &check.shared.realm,
                                client,
                            )))
                        }
                    };
                    let mut decision = decision.take();
                    if let Some(d) = decision.as_mut() {
                        d.withheld = checked.withheld;
                    }
                    let body = checked
                        .replacement
                        .map_or_else(|| Bytes::from(bytes), Bytes::from);
                    head.headers.remove(TRANSFER_ENCODING);
                    head.headers
                        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
                    let body = if check.head { Bytes::new() } else { body };
                    let response = Response::from_parts(head, FhirBody::full(body));
                    return Poll::Ready(Ok(with_decision(response, decision)));
                }
            };
            this.state.set(next);
        }
    }
}
