//! The per-request context the budget future carries: who is counted, at what cost and rates,
//! and how refusals and answers get their headers and decision.

use super::body::BudgetBody;
use super::concurrency::InFlightGuard;
use super::decision::{BudgetDecision, BudgetOutcome};
use super::gcra::Rate;
use super::headers::{self, Snapshot};
use super::key::ClientKey;
use super::layer::Shared;
use super::store::BudgetStore;
use crate::fhir::IssueType;
use http::{Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// How a response will be counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Counting {
    None,
    One,
    Buffer,
}

pub(super) struct Ctx<St> {
    pub(super) shared: Arc<Shared<St>>,
    pub(super) key: Option<ClientKey>,
    pub(super) cost: u64,
    pub(super) counting: Counting,
    pub(super) everything: bool,
    pub(super) snapshot: Snapshot,
    pub(super) guard: Option<InFlightGuard>,
    pub(super) degraded: bool,
    /// The client's rates: its group's, else the layer's.
    pub(super) requests: Option<Rate>,
    pub(super) resources: Option<Rate>,
}

impl<St: BudgetStore> Ctx<St> {
    /// Asks the store to admit the request. Only requests whose responses are counted wait
    /// for the resource budget: a client that has read its fill may still write.
    pub(super) fn admit(&self, key: &ClientKey) -> St::Admit {
        self.shared.store.admit(
            key,
            self.requests.map(|rate| (rate, self.cost)),
            self.resources.filter(|_| self.counting != Counting::None),
        )
    }

    /// [`admit`](Self::admit) when the store answers without waiting.
    pub(super) fn admit_at_once(
        &self,
        key: &ClientKey,
    ) -> Option<Result<super::store::Admission, super::store::StoreUnavailable>> {
        self.shared.store.admit_at_once(
            key,
            self.requests.map(|rate| (rate, self.cost)),
            self.resources.filter(|_| self.counting != Counting::None),
        )
    }
}

impl<St> Ctx<St> {
    pub(super) fn finish<B>(
        &mut self,
        mut response: Response<BudgetBody<B>>,
        outcome: BudgetOutcome,
        counted: Option<u64>,
        charged: u64,
    ) -> Response<BudgetBody<B>> {
        if response.headers().get(headers::RATELIMIT).is_none() {
            self.snapshot.apply(response.headers_mut());
        }
        response.extensions_mut().insert(BudgetDecision {
            key: self.key.clone(),
            cost: self.cost,
            resources_counted: counted,
            resources_charged: charged,
            degraded: self.degraded,
            outcome,
        });
        if let Some(guard) = self.guard.take() {
            response.body_mut().hold(guard);
        }
        response
    }

    pub(super) fn throttle<B>(
        &mut self,
        text: &'static str,
        retry: Duration,
        outcome: BudgetOutcome,
    ) -> Response<BudgetBody<B>> {
        let response = headers::throttled(text, retry, &self.snapshot);
        self.finish(response.map(BudgetBody::full_body), outcome, None, 0)
    }

    pub(super) fn refuse<B>(
        &mut self,
        status: StatusCode,
        code: IssueType,
        text: &'static str,
        outcome: BudgetOutcome,
    ) -> Response<BudgetBody<B>> {
        let response = headers::refusal(status, code, text);
        self.finish(response.map(BudgetBody::full_body), outcome, None, 0)
    }
}
