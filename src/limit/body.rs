//! The response body of [`Budget`](super::Budget): holds the client's in-flight slot until the
//! body has been sent or dropped.

use super::concurrency::InFlightGuard;
use crate::body::{BoxError, FhirBody};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project! {
    /// A [`FhirBody`] that releases the client's in-flight slot when it ends or is dropped.
    #[derive(Debug)]
    pub struct BudgetBody<B> {
        #[pin]
        body: FhirBody<B>,
        guard: Option<InFlightGuard>,
    }
}

impl<B> BudgetBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        BudgetBody {
            body: FhirBody::inner(body),
            guard: None,
        }
    }

    /// A body of these bytes.
    pub fn full(bytes: Bytes) -> Self {
        BudgetBody {
            body: FhirBody::full(bytes),
            guard: None,
        }
    }

    pub(crate) fn full_body(body: Full<Bytes>) -> Self {
        BudgetBody {
            body: FhirBody::from_full(body),
            guard: None,
        }
    }

    pub(crate) fn hold(&mut self, guard: InFlightGuard) {
        self.guard = Some(guard);
    }
}

impl<B> Body for BudgetBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.guard.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
