//! [`BudgetFuture`]: the budget layer's response future, from admission through counting and
//! charging the resources of the response.

use super::body::BudgetBody;
use super::caps::{self, CapRefusal};
use super::ctx::{Counting, Ctx};
use super::decision::BudgetOutcome;
use super::form::{self, RewritableBody};
use super::gcra::Verdict;
use super::layer::OverBudget;
use super::response::{self, BodyKind, Parsed};
use super::store::{Admission, BudgetStore, StoreUnavailable};
use crate::body::{poll_read_bounded, BoxError, Collected, ReadError};
use crate::fhir::IssueType;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tower_service::Service;

impl<St> Ctx<St> {
    pub(super) fn done<S, ReqB, ResB>(
        self,
        response: Response<Full<Bytes>>,
        outcome: BudgetOutcome,
    ) -> BudgetFuture<S, St, ReqB, ResB>
    where
        S: Service<Request<ReqB>>,
        St: BudgetStore,
    {
        let mut ctx = self;
        let response = ctx.finish(response.map(BudgetBody::full_body), outcome, None, 0);
        BudgetFuture {
            state: State::Done {
                response: Some(response),
            },
            ctx,
        }
    }
}

/// A response held while its resources are charged.
enum Held<B> {
    Whole(Response<B>),
    Buffered {
        head: http::response::Parts,
        bytes: Bytes,
        kind: BodyKind,
        counted: u64,
    },
}

pin_project! {
    /// Response future of [`Budget`].
    pub struct BudgetFuture<S, St, ReqB, ResB>
    where
        S: Service<Request<ReqB>>,
        St: BudgetStore,
    {
        #[pin]
        state: State<S, St, ReqB, ResB>,
        ctx: Ctx<St>,
    }
}

pin_project! {
    #[project = StateProj]
    pub(super) enum State<S, St, ReqB, ResB>
    where
        S: Service<Request<ReqB>>,
        St: BudgetStore,
    {
        Done { response: Option<Response<BudgetBody<ResB>>> },
        Lowering {
            #[pin]
            body: ReqB,
            buffer: Vec<u8>,
            waiting: Option<(http::request::Parts, S)>,
            cap: u32,
        },
        Admitting {
            #[pin]
            future: St::Admit,
            waiting: Option<(Request<ReqB>, S)>,
        },
        Inner { #[pin] future: S::Future },
        Buffering {
            #[pin]
            body: ResB,
            buffer: Collected,
            head: Option<http::response::Parts>,
            kind: BodyKind,
        },
        Taking {
            #[pin]
            future: St::Take,
            held: Option<Held<ResB>>,
        },
    }
}

impl<S, St, ReqB, ResB> BudgetFuture<S, St, ReqB, ResB>
where
    S: Service<Request<ReqB>>,
    St: BudgetStore,
{
    pub(super) fn new(state: State<S, St, ReqB, ResB>, ctx: Ctx<St>) -> Self {
        BudgetFuture { state, ctx }
    }
}

impl<S, St, ReqB, ResB> Future for BudgetFuture<S, St, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    St: BudgetStore,
    ReqB: RewritableBody,
    ResB: Body<Data = Bytes>,
    ResB::Error: Into<BoxError>,
{
    type Output = Result<Response<BudgetBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let ctx = this.ctx;
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Done { response } => {
                    let response = match response.take() {
                        Some(r) => r,
                        None => ctx.refuse(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            IssueType::Exception,
                            "the server is misconfigured",
                            BudgetOutcome::Misconfigured,
                        ),
                    };
                    return Poll::Ready(Ok(response));
                }
                StateProj::Lowering {
                    mut body,
                    buffer,
                    waiting,
                    cap,
                } => {
                    let limit = ctx.shared.config.max_buffer;
                    let read = ready!(poll_read_bounded(body.as_mut(), cx, buffer, limit));
                    match lowered(ctx, read, std::mem::take(buffer), waiting.take(), *cap) {
                        Ok(state) => state,
                        Err(response) => return Poll::Ready(Ok(response)),
                    }
                }
                StateProj::Admitting { future, waiting } => {
                    let admitted = ready!(future.poll(cx));
                    match admit(ctx, admitted) {
                        Err(response) => return Poll::Ready(Ok(response)),
                        Ok(()) => {
                            let Some((request, mut service)) = waiting.take() else {
                                return Poll::Ready(Ok(ctx.refuse(
                                    StatusCode::INTERNAL_SERVER_ERROR,
                                    IssueType::Exception,
                                    "the server is misconfigured",
                                    BudgetOutcome::Misconfigured,
                                )));
                            };
                            State::Inner {
                                future: service.call(request),
                            }
                        }
                    }
                }
                StateProj::Inner { future } => {
                    let response = ready!(future.poll(cx))?;
                    match after_inner(ctx, response) {
                        Ok(state) => state,
                        Err(response) => return Poll::Ready(Ok(response)),
                    }
                }
                StateProj::Buffering {
                    mut body,
                    buffer,
                    head,
                    kind,
                } => {
                    loop {
                        match ready!(body.as_mut().poll_frame(cx)) {
                            None => break,
                            Some(Ok(frame)) => {
                                if let Ok(data) = frame.into_data() {
                                    if buffer.len().saturating_add(data.len())
                                        > ctx.shared.config.max_buffer
                                    {
                                        return Poll::Ready(Ok(too_large(ctx)));
                                    }
                                    // A body in one frame is kept as it is, not copied.
                                    buffer.push(data);
                                }
                            }
                            Some(Err(_)) => {
                                return Poll::Ready(Ok(uncountable(ctx)));
                            }
                        }
                    }
                    let Some(head) = head.take() else {
                        return Poll::Ready(Ok(uncountable(ctx)));
                    };
                    let bytes = buffer.take();
                    match counted(ctx, head, bytes, *kind) {
                        Ok(state) => state,
                        Err(response) => return Poll::Ready(Ok(response)),
                    }
                }
                StateProj::Taking { future, held } => {
                    let taken = ready!(future.poll(cx));
                    let Some(held) = held.take() else {
                        return Poll::Ready(Ok(uncountable(ctx)));
                    };
                    return Poll::Ready(Ok(charged(ctx, taken, held)));
                }
            };
            this.state.set(next);
        }
    }
}

type Refused<B> = Response<BudgetBody<B>>;

/// After the form of a `POST _search` was read: lowers its `_count`, then asks the budget.
// The refusal is moved once into the future's output; boxing it would allocate for nothing.
#[allow(clippy::result_large_err)]
fn lowered<S, St, ReqB, ResB>(
    ctx: &mut Ctx<St>,
    read: Result<(), ReadError>,
    form: Vec<u8>,
    waiting: Option<(http::request::Parts, S)>,
    cap: u32,
) -> Result<State<S, St, ReqB, ResB>, Refused<ResB>>
where
    S: Service<Request<ReqB>>,
    St: BudgetStore,
    ReqB: RewritableBody,
{
    let (Some((mut parts, service)), Some(key)) = (waiting, ctx.key.clone()) else {
        return Err(ctx.refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueType::Exception,
            "the server is misconfigured",
            BudgetOutcome::Misconfigured,
        ));
    };
    let lowered = read
        .map_err(|_| CapRefusal::Malformed)
        .and_then(|()| form::lower_post_count(&mut parts, Bytes::from(form), cap));
    match lowered {
        Ok(form) => Ok(State::Admitting {
            future: ctx.admit(&key),
            waiting: Some((Request::from_parts(parts, ReqB::from_bytes(form)), service)),
        }),
        Err(refusal) => {
            let (code, text) = caps::refusal_text(refusal);
            Err(ctx.refuse(
                StatusCode::BAD_REQUEST,
                code,
                text,
                BudgetOutcome::Cap(refusal),
            ))
        }
    }
}

// The refusal is moved once into the future's output; boxing it would allocate for nothing.
#[allow(clippy::result_large_err)]
pub(super) fn admit<St, B>(
    ctx: &mut Ctx<St>,
    admitted: Result<Admission, StoreUnavailable>,
) -> Result<(), Refused<B>> {
    let admission = match admitted {
        Ok(a) => a,
        Err(StoreUnavailable) => {
            return Err(ctx.refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                IssueType::Transient,
                "the query budget cannot be checked right now; try again later",
                BudgetOutcome::StoreUnavailable,
            ))
        }
    };
    ctx.degraded = admission.degraded;
    ctx.snapshot.requests = ctx.requests.zip(admission.request);
    ctx.snapshot.resources = ctx.resources.zip(admission.resources);
    if let Some(res) = admission.resources.filter(|v| !v.allowed) {
        return Err(ctx.throttle(
            "the client's budget of resources returned is spent",
            res.retry_after,
            BudgetOutcome::ResourceBudgetExhausted,
        ));
    }
    if let Some(req) = admission.request.filter(|v| !v.allowed) {
        return Err(ctx.throttle(
            "the client's request budget is spent",
            req.retry_after,
            BudgetOutcome::RequestBudgetExhausted,
        ));
    }
    Ok(())
}

fn too_large<St, B>(ctx: &mut Ctx<St>) -> Refused<B> {
    ctx.refuse(
        StatusCode::BAD_GATEWAY,
        IssueType::TooCostly,
        "the response is too large to be counted against the query budget; ask for smaller pages",
        BudgetOutcome::ResponseTooLarge,
    )
}

fn uncountable<St, B>(ctx: &mut Ctx<St>) -> Refused<B> {
    ctx.refuse(
        StatusCode::BAD_GATEWAY,
        IssueType::Exception,
        "the response could not be counted against the query budget",
        BudgetOutcome::Uncountable,
    )
}

// The refusal is moved once into the future's output; boxing it would allocate for nothing.
#[allow(clippy::result_large_err)]
fn after_inner<S, St, ReqB, ResB>(
    ctx: &mut Ctx<St>,
    response: Response<ResB>,
) -> Result<State<S, St, ReqB, ResB>, Refused<ResB>>
where
    S: Service<Request<ReqB>>,
    St: BudgetStore,
{
    let counting = if response.status().is_success() {
        ctx.counting
    } else {
        Counting::None
    };
    let Some(key) = ctx.key.clone() else {
        return Err(uncountable(ctx));
    };
    match counting {
        Counting::None => Err(ctx.finish(
            response.map(BudgetBody::inner),
            BudgetOutcome::Allowed,
            None,
            0,
        )),
        Counting::One => match ctx.resources {
            None => Err(ctx.finish(
                response.map(BudgetBody::inner),
                BudgetOutcome::Allowed,
                Some(1),
                0,
            )),
            Some(rate) => Ok(State::Taking {
                future: ctx.shared.store.take(&key, rate, 1, false),
                held: Some(Held::Whole(response)),
            }),
        },
        Counting::Buffer => {
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            // A 202 (such as a `$export` kick-off) or a 204 without a body returns no
            // resources; a 200 always has a body to count.
            let status = response.status();
            if status == StatusCode::NO_CONTENT
                || (status != StatusCode::OK && content_type.is_none())
            {
                return Err(ctx.finish(
                    response.map(BudgetBody::inner),
                    BudgetOutcome::Allowed,
                    Some(0),
                    0,
                ));
            }
            let Some(kind) = BodyKind::from_content_type(content_type) else {
                return Err(uncountable(ctx));
            };
            let declared = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > ctx.shared.config.max_buffer as u64) {
                return Err(too_large(ctx));
            }
            let (head, body) = response.into_parts();
            let expected = declared.map_or(0, |n| usize::try_from(n).unwrap_or(0));
            Ok(State::Buffering {
                body,
                buffer: Collected::new(expected),
                head: Some(head),
                kind,
            })
        }
    }
}

// The refusal is moved once into the future's output; boxing it would allocate for nothing.
#[allow(clippy::result_large_err)]
fn counted<S, St, ReqB, ResB>(
    ctx: &mut Ctx<St>,
    #[allow(unused_mut)] mut head: http::response::Parts,
    bytes: Bytes,
    kind: BodyKind,
) -> Result<State<S, St, ReqB, ResB>, Refused<ResB>>
where
    S: Service<Request<ReqB>>,
    St: BudgetStore,
{
    // Counted already by the redaction layer inside, for these very bytes: no second scan.
    #[cfg(feature = "redact")]
    let known = head
        .extensions
        .remove::<crate::body::CountedBody>()
        .filter(|_| kind == BodyKind::Json)
        .and_then(|c| c.count_of(&bytes));
    #[cfg(not(feature = "redact"))]
    let known = None;
    let Some(count) = known.or_else(|| super::count::count(&bytes, kind).ok()) else {
        return Err(uncountable(ctx));
    };
    let config = &ctx.shared.config;
    let cap = if ctx.everything {
        config.caps.everything_max
    } else {
        None
    };
    let mut wanted = cap.map_or(count, |c| count.min(c));
    if wanted < count && config.over_budget == OverBudget::Refuse {
        return Err(ctx.refuse(
            StatusCode::BAD_REQUEST,
            IssueType::TooCostly,
            "$everything returned more resources than allowed",
            BudgetOutcome::Cap(CapRefusal::CountTooLarge),
        ));
    }
    let held = Held::Buffered {
        head,
        bytes,
        kind,
        counted: count,
    };
    match (ctx.resources, ctx.key.clone()) {
        (Some(rate), Some(key)) if wanted > 0 => {
            let up_to = config.over_budget == OverBudget::Cut;
            Ok(State::Taking {
                future: ctx.shared.store.take(&key, rate, wanted, up_to),
                held: Some(held),
            })
        }
        _ => {
            wanted = wanted.min(count);
            let granted = Verdict {
                granted: wanted,
                allowed: true,
                remaining: 0,
                reset: Duration::ZERO,
                retry_after: Duration::ZERO,
            };
            Err(release(ctx, granted, held))
        }
    }
}

fn charged<St, B>(
    ctx: &mut Ctx<St>,
    taken: Result<Verdict, StoreUnavailable>,
    held: Held<B>,
) -> Refused<B> {
    let verdict = match taken {
        Ok(v) => v,
        Err(StoreUnavailable) => {
            return ctx.refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                IssueType::Transient,
                "the query budget cannot be checked right now; try again later",
                BudgetOutcome::StoreUnavailable,
            )
        }
    };
    if let Some(rate) = ctx.resources {
        ctx.snapshot.resources = Some((rate, verdict));
    }
    release(ctx, verdict, held)
}

/// Sends what the budget paid for.
fn release<St, B>(ctx: &mut Ctx<St>, verdict: Verdict, held: Held<B>) -> Refused<B> {
    let wanted = match &held {
        Held::Whole(_) => 1,
        Held::Buffered { counted, .. } => *counted,
    };
    if verdict.granted == 0 && wanted > 0 {
        return ctx.throttle(
            "the client's budget of resources returned is spent",
            verdict.retry_after,
            BudgetOutcome::ResourceBudgetExhausted,
        );
    }
    match held {
        Held::Whole(response) => ctx.finish(
            response.map(BudgetBody::inner),
            BudgetOutcome::Allowed,
            Some(1),
            1,
        ),
        Held::Buffered {
            mut head,
            bytes,
            kind,
            counted,
        } => {
            if verdict.granted >= counted {
                let response = Response::from_parts(head, BudgetBody::full(bytes));
                return ctx.finish(response, BudgetOutcome::Allowed, Some(counted), counted);
            }
            let cut = response::parse(&bytes, kind)
                .ok()
                .and_then(|parsed: Parsed<'_>| response::cut(&parsed, verdict.granted));
            let Some(cut) = cut else {
                return uncountable(ctx);
            };
            head.headers.remove(header::CONTENT_LENGTH);
            let response = Response::from_parts(head, BudgetBody::full(Bytes::from(cut)));
            ctx.finish(
                response,
                BudgetOutcome::Cut {
                    counted,
                    kept: verdict.granted,
                },
                Some(counted),
                verdict.granted,
            )
        }
    }
}
