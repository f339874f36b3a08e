//! [`NoteDecisions`]: names the budget, validation and redaction layers in the audit record.
//!
//! The audit layer knows the decision types of the firewall, classification, identity and
//! smart layers; the budget, validation and redaction layers put their own decision types on
//! the response. Inside the stack this service, just inside audit, turns a refusal by one of
//! them into a refused [`LayerDecision`] (`limit`, `validate`, `redact`), so the record names
//! the layer that decided rather than the handler. An existing refused `LayerDecision` is kept.
//! It also copies the redaction count and the resources the budget counted into the audit
//! record's [`Redactions`](crate::audit::Redactions) and
//! [`ResourcesReturned`](crate::audit::ResourcesReturned) when no layer set them.

use crate::audit::{DecisionOutcome, LayerDecision};
use http::{Extensions, Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tower_service::Service;

/// Service, just inside the audit layer of a [`Fhirwall`](super::Fhirwall), that adds a refused
/// [`LayerDecision`] (`limit`, `validate`, `redact`) for refusals the audit layer would
/// otherwise attribute to the handler, and the [`Redactions`](crate::audit::Redactions) and
/// [`ResourcesReturned`](crate::audit::ResourcesReturned) counts when no layer set them.
#[derive(Clone, Debug)]
pub struct NoteDecisions<S> {
    inner: S,
}

impl<S> NoteDecisions<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        NoteDecisions { inner }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for NoteDecisions<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = NoteFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        NoteFuture {
            future: self.inner.call(request),
        }
    }
}

pin_project! {
    /// Response future of [`NoteDecisions`].
    pub struct NoteFuture<F> {
        #[pin]
        future: F,
    }
}

impl<F, B, E> Future for NoteFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.project().future.poll(cx))?;
        note(response.extensions_mut());
        Poll::Ready(Ok(response))
    }
}

fn note(extensions: &mut Extensions) {
    counts(extensions);
    if extensions
        .get::<LayerDecision>()
        .is_some_and(|d| d.outcome == DecisionOutcome::Refused)
    {
        return;
    }
    if let Some(decision) = refusal(extensions) {
        extensions.insert(decision);
    }
}

/// The counts the audit record carries, from the redaction and budget decisions.
#[allow(unused_variables)]
fn counts(extensions: &mut Extensions) {
    #[cfg(feature = "redact")]
    if extensions.get::<crate::audit::Redactions>().is_none() {
        if let Some(crate::redact::RedactDecision::Redacted { altered, hidden }) =
            extensions.get::<crate::redact::RedactDecision>()
        {
            let total = altered.saturating_add(*hidden);
            extensions.insert(crate::audit::Redactions(total));
        }
    }
    #[cfg(feature = "limit")]
    if extensions
        .get::<crate::audit::ResourcesReturned>()
        .is_none()
    {
        let counted = extensions
            .get::<crate::limit::BudgetDecision>()
            .and_then(|d| d.resources_counted);
        if let Some(n) = counted {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            extensions.insert(crate::audit::ResourcesReturned(n));
        }
    }
}

#[allow(unused_variables)]
fn refusal(extensions: &Extensions) -> Option<LayerDecision> {
    #[cfg(feature = "redact")]
    {
        use crate::redact::{RedactDecision, RedactRefusal};
        match extensions.get::<RedactDecision>() {
            Some(RedactDecision::Hidden) => {
                return Some(LayerDecision::refused("redact", "hidden"))
            }
            Some(RedactDecision::Refused(why)) => {
                let reason = match why {
                    RedactRefusal::NotAcceptable => "not-acceptable",
                    RedactRefusal::Compressed => "compressed",
                    RedactRefusal::TooLarge => "too-large",
                    RedactRefusal::Unreadable => "unreadable",
                    _ => "unfilterable",
                };
                return Some(LayerDecision::refused("redact", reason));
            }
            _ => {}
        }
    }
    #[cfg(feature = "validate")]
    {
        use crate::validate::ValidationDecision;
        match extensions.get::<ValidationDecision>() {
            Some(ValidationDecision::Refused(rejection)) => {
                let reason = match rejection.status().as_u16() {
                    406 => "not-acceptable",
                    413 => "too-large",
                    415 => "unsupported-media-type",
                    422 => "unprocessable",
                    _ => "invalid",
                };
                return Some(LayerDecision::refused("validate", reason));
            }
            Some(ValidationDecision::Misconfigured) => {
                return Some(LayerDecision::refused("validate", "misconfigured"))
            }
            _ => {}
        }
    }
    #[cfg(feature = "limit")]
    {
        use crate::limit::{BudgetDecision, BudgetOutcome, CapRefusal};
        if let Some(BudgetDecision { outcome, .. }) = extensions.get::<BudgetDecision>() {
            let reason = match outcome {
                BudgetOutcome::Allowed | BudgetOutcome::Cut { .. } => return None,
                BudgetOutcome::RequestBudgetExhausted => "request-budget-exhausted",
                BudgetOutcome::ResourceBudgetExhausted => "resource-budget-exhausted",
                BudgetOutcome::TooManyInFlight => "too-many-in-flight",
                BudgetOutcome::Cap(CapRefusal::CountTooLarge) => "count-too-large",
                BudgetOutcome::Cap(CapRefusal::PageTooDeep) => "page-too-deep",
                BudgetOutcome::Cap(_) => "cap",
                BudgetOutcome::ResponseTooLarge => "response-too-large",
                BudgetOutcome::Uncountable => "uncountable",
                BudgetOutcome::StoreUnavailable => "store-unavailable",
                BudgetOutcome::Unidentified => "unidentified",
                _ => "refused",
            };
            return Some(LayerDecision::refused("limit", reason));
        }
    }
    None
}
