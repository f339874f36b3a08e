//! What the budget layer decided, on every response's extensions for the audit layer.

use super::caps::CapRefusal;
use super::key::ClientKey;

/// The budget layer's decision about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetDecision {
    /// Whose budget was charged (`None` when the client could not be identified).
    pub key: Option<ClientKey>,
    /// The request's cost against the request budget.
    pub cost: u64,
    /// Resources counted in the response, when it was counted.
    pub resources_counted: Option<u64>,
    /// Resources charged to the budget (and sent).
    pub resources_charged: u64,
    /// The store was unavailable and a `danger_fail_open` setting let the request through.
    pub degraded: bool,
    /// The outcome.
    pub outcome: BudgetOutcome,
}

/// How a request fared against its budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetOutcome {
    /// Within every budget.
    Allowed,
    /// The response was cut to the resources the budget had left (or the `$everything` cap).
    Cut {
        /// Resources the inner service returned.
        counted: u64,
        /// Resources sent.
        kept: u64,
    },
    /// 429: the request budget cannot pay for this request now.
    RequestBudgetExhausted,
    /// 429: the resource budget is spent.
    ResourceBudgetExhausted,
    /// 429: the client has too many requests in flight.
    TooManyInFlight,
    /// 400: a per-request cap refused the request.
    Cap(CapRefusal),
    /// 502: the response was too large to be counted within the buffer cap.
    ResponseTooLarge,
    /// 502: the response could not be read to count its resources.
    Uncountable,
    /// 503: the budget store could not be asked (fail closed).
    StoreUnavailable,
    /// 403: no key source could identify the client.
    Unidentified,
    /// 500: no `FhirRequest` in the request extensions (the classify layer must run first).
    Misconfigured,
}
