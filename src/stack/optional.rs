//! [`Optional`]: a layer's service when the layer is configured, a pass-through when it is not,
//! with one type for both so the whole stack is one named type without boxing.

use crate::body::FhirBody;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tower_service::Service;

/// How a layer changes the body types on its way in and out, so that [`Optional`] can give a
/// left-out layer the same shape: the inner service then sees the same request type, and the
/// caller gets the same response type, whether the layer is there or not.
pub trait BodyShape {
    /// The request body the inner service receives when the request had body `B`.
    type Req<B>;
    /// The response body handed out when the inner service answered with body `B`.
    type Res<B>;
    /// Wraps a request as the layer would (without doing any of its work).
    fn request<B>(request: Request<B>) -> Request<Self::Req<B>>;
    /// Wraps a response as the layer would (without doing any of its work).
    fn response<B>(response: Response<B>) -> Response<Self::Res<B>>;
}

/// A layer that leaves both bodies as they are (audit).
#[derive(Clone, Copy, Debug)]
pub enum Unchanged {}

impl BodyShape for Unchanged {
    type Req<B> = B;
    type Res<B> = B;
    fn request<B>(request: Request<B>) -> Request<B> {
        request
    }
    fn response<B>(response: Response<B>) -> Response<B> {
        response
    }
}

/// A layer that answers with [`FhirBody`] (firewall, identity, redact).
#[derive(Clone, Copy, Debug)]
pub enum WrapResponse {}

impl BodyShape for WrapResponse {
    type Req<B> = B;
    type Res<B> = FhirBody<B>;
    fn request<B>(request: Request<B>) -> Request<B> {
        request
    }
    fn response<B>(response: Response<B>) -> Response<FhirBody<B>> {
        response.map(FhirBody::inner)
    }
}

/// A layer that may buffer the request body and answers with [`FhirBody`] (smart, validate).
#[derive(Clone, Copy, Debug)]
pub enum WrapBoth {}

impl BodyShape for WrapBoth {
    type Req<B> = FhirBody<B>;
    type Res<B> = FhirBody<B>;
    fn request<B>(request: Request<B>) -> Request<FhirBody<B>> {
        request.map(FhirBody::inner)
    }
    fn response<B>(response: Response<B>) -> Response<FhirBody<B>> {
        response.map(FhirBody::inner)
    }
}

/// The budget layer's shape: the request as it is, the response in a
/// [`BudgetBody`](crate::limit::BudgetBody).
#[cfg(feature = "limit")]
#[derive(Clone, Copy, Debug)]
pub enum Budgeted {}

#[cfg(feature = "limit")]
impl BodyShape for Budgeted {
    type Req<B> = B;
    type Res<B> = crate::limit::BudgetBody<B>;
    fn request<B>(request: Request<B>) -> Request<B> {
        request
    }
    fn response<B>(response: Response<B>) -> Response<crate::limit::BudgetBody<B>> {
        response.map(crate::limit::BudgetBody::inner)
    }
}

/// The service of a layer that may be left out: `On` runs the layer's service `A`, `Off` calls
/// the inner service `S` directly, with the bodies wrapped as `M` says (no buffering, no work).
pub struct Optional<A, S, M> {
    either: Either<A, S>,
    shape: PhantomData<fn() -> M>,
}

#[derive(Clone, Debug)]
enum Either<A, S> {
    On(A),
    Off(S),
}

impl<A, S, M> Optional<A, S, M> {
    /// The layer's service.
    pub fn on(service: A) -> Self {
        Optional {
            either: Either::On(service),
            shape: PhantomData,
        }
    }

    /// No layer: requests go straight to `inner`.
    pub fn off(inner: S) -> Self {
        Optional {
            either: Either::Off(inner),
            shape: PhantomData,
        }
    }

    /// Whether the layer is there.
    pub fn is_on(&self) -> bool {
        matches!(self.either, Either::On(_))
    }
}

impl<A: Clone, S: Clone, M> Clone for Optional<A, S, M> {
    fn clone(&self) -> Self {
        Optional {
            either: self.either.clone(),
            shape: PhantomData,
        }
    }
}

impl<A: fmt::Debug, S: fmt::Debug, M> fmt::Debug for Optional<A, S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.either {
            Either::On(a) => f.debug_tuple("Optional::On").field(a).finish(),
            Either::Off(s) => f.debug_tuple("Optional::Off").field(s).finish(),
        }
    }
}

impl<A, S, M, ReqB, ResB> Service<Request<ReqB>> for Optional<A, S, M>
where
    M: BodyShape,
    S: Service<Request<M::Req<ReqB>>, Response = Response<ResB>>,
    A: Service<Request<ReqB>, Response = Response<M::Res<ResB>>, Error = S::Error>,
{
    type Response = Response<M::Res<ResB>>;
    type Error = S::Error;
    type Future = OptionalFuture<A::Future, S::Future, M>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &mut self.either {
            Either::On(a) => a.poll_ready(cx),
            Either::Off(s) => s.poll_ready(cx),
        }
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let state = match &mut self.either {
            Either::On(a) => State::On {
                future: a.call(request),
            },
            Either::Off(s) => State::Off {
                future: s.call(M::request(request)),
            },
        };
        OptionalFuture {
            state,
            shape: PhantomData,
        }
    }
}

pin_project! {
    /// Response future of [`Optional`].
    pub struct OptionalFuture<FA, FS, M> {
        #[pin]
        state: State<FA, FS>,
        shape: PhantomData<fn() -> M>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<FA, FS> {
        On { #[pin] future: FA },
        Off { #[pin] future: FS },
    }
}

impl<FA, FS, M, ResB, E> Future for OptionalFuture<FA, FS, M>
where
    M: BodyShape,
    FS: Future<Output = Result<Response<ResB>, E>>,
    FA: Future<Output = Result<Response<M::Res<ResB>>, E>>,
{
    type Output = Result<Response<M::Res<ResB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::On { future } => future.poll(cx),
            StateProj::Off { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(M::response(response)))
            }
        }
    }
}
