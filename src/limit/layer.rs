//! [`BudgetLayer`]: the tower layer that enforces the budgets.

use super::body::BudgetBody;
use super::caps::{self, Caps};
use super::concurrency::InFlight;
use super::cost::CostTable;
use super::ctx::{Counting, Ctx};
use super::decision::BudgetOutcome;
use super::form::RewritableBody;
use super::future::{BudgetFuture, State};
use super::gcra::Rate;
use super::group::{ClientGroup, Groups};
use super::headers::{self, Snapshot};
use super::key::KeyExtractor;
use super::store::{BudgetStore, MemoryStore};
use crate::body::BoxError;
use crate::fhir::{FhirRequest, Interaction, IssueType};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_layer::Layer;
use tower_service::Service;

/// What happens when a response holds more resources than the budget has left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OverBudget {
    /// Send the resources the budget allows, drop the `next` link and add an
    /// `OperationOutcome` note (default).
    #[default]
    Cut,
    /// Refuse the whole response (429); nothing is charged.
    Refuse,
}

/// The default cap on a response buffered to be counted: 16 MiB.
pub const DEFAULT_MAX_BUFFER: usize = 16 * 1024 * 1024;

#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) keys: KeyExtractor,
    pub(super) requests: Option<Rate>,
    pub(super) costs: CostTable,
    pub(super) resources: Option<Rate>,
    pub(super) over_budget: OverBudget,
    pub(super) caps: Caps,
    pub(super) max_in_flight: Option<u32>,
    pub(super) max_buffer: usize,
    pub(super) groups: Groups,
}

#[derive(Clone, Debug)]
pub(super) struct Shared<St> {
    pub(super) config: Config,
    pub(super) store: St,
    pub(super) in_flight: InFlight,
}

/// Layer enforcing per-client budgets; see the [module docs](super).
///
/// Defaults: keys from [`KeyExtractor::default`]; a request budget of 600 cost units per
/// minute (burst 600) weighted by [`CostTable::default`]; a resource budget of 10,000
/// resources per hour (burst 2,000) with [`OverBudget::Cut`]; [`Caps::default`]; 8 requests
/// in flight per client; responses buffered up to [`DEFAULT_MAX_BUFFER`] to be counted.
#[derive(Clone, Debug)]
pub struct BudgetLayer<St = MemoryStore> {
    shared: Arc<Shared<St>>,
}

impl Default for BudgetLayer<MemoryStore> {
    fn default() -> Self {
        BudgetLayer::new(MemoryStore::default())
    }
}

impl<St: BudgetStore> BudgetLayer<St> {
    /// A layer keeping its budgets in `store`, with the defaults above.
    pub fn new(store: St) -> Self {
        BudgetLayer {
            shared: Arc::new(Shared {
                config: Config {
                    keys: KeyExtractor::default(),
                    requests: Some(Rate::per_minute(600)),
                    costs: CostTable::default(),
                    resources: Some(Rate::per_hour(10_000).with_burst(2_000)),
                    over_budget: OverBudget::Cut,
                    caps: Caps::default(),
                    max_in_flight: Some(8),
                    max_buffer: DEFAULT_MAX_BUFFER,
                    groups: Groups::default(),
                },
                store,
                in_flight: InFlight::default(),
            }),
        }
    }

    fn config(&mut self) -> &mut Config {
        &mut Arc::make_mut(&mut self.shared).config
    }

    /// Where client keys come from.
    pub fn keys(mut self, keys: KeyExtractor) -> Self {
        self.config().keys = keys;
        self
    }

    /// Gives a group of clients its own rates (see [`ClientGroup`]): one budget shared by the
    /// group, or the group's rates to each member. Clients in no group keep the layer's rates.
    pub fn group(mut self, group: ClientGroup) -> Self {
        self.config().groups.add(group);
        self
    }

    /// The request budget, in cost units (`None`: none).
    pub fn requests(mut self, rate: Option<Rate>) -> Self {
        self.config().requests = rate;
        self
    }

    /// The cost of each interaction.
    pub fn costs(mut self, costs: CostTable) -> Self {
        self.config().costs = costs;
        self
    }

    /// The resource budget, in resources returned (`None`: none).
    pub fn resources(mut self, rate: Option<Rate>) -> Self {
        self.config().resources = rate;
        self
    }

    /// What happens to a response larger than the resource budget left.
    pub fn over_budget(mut self, mode: OverBudget) -> Self {
        self.config().over_budget = mode;
        self
    }

    /// Per-request caps.
    pub fn caps(mut self, caps: Caps) -> Self {
        self.config().caps = caps;
        self
    }

    /// Requests in flight per client, counted in this process (`None`: no limit; `Some(0)`
    /// is taken as 1).
    pub fn max_in_flight(mut self, max: Option<u32>) -> Self {
        self.config().max_in_flight = max.map(|m| m.max(1));
        self
    }

    /// The largest response buffered to be counted; larger ones are refused (502).
    pub fn max_buffer(mut self, bytes: usize) -> Self {
        self.config().max_buffer = bytes;
        self
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.shared.store
    }
}

impl<S, St: BudgetStore> Layer<S> for BudgetLayer<St> {
    type Service = Budget<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        Budget {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`BudgetLayer`].
#[derive(Clone, Debug)]
pub struct Budget<S, St = MemoryStore> {
    inner: S,
    shared: Arc<Shared<St>>,
}

impl<S, St, ReqB, ResB> Service<Request<ReqB>> for Budget<S, St>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    St: BudgetStore,
    ReqB: RewritableBody,
    ResB: Body<Data = Bytes>,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<BudgetBody<ResB>>;
    type Error = S::Error;
    type Future = BudgetFuture<S, St, ReqB, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let shared = self.shared.clone();
        let config = &shared.config;
        let mut ctx = Ctx {
            shared: shared.clone(),
            key: None,
            cost: 0,
            counting: Counting::None,
            everything: false,
            snapshot: Snapshot::default(),
            guard: None,
            degraded: false,
            requests: config.requests,
            resources: config.resources,
        };
        let (mut parts, body) = request.into_parts();
        let Some(fhir) = parts.extensions.get::<FhirRequest>() else {
            return ctx.done(
                headers::refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    IssueType::Exception,
                    "the server is misconfigured",
                ),
                BudgetOutcome::Misconfigured,
            );
        };
        ctx.cost = config.costs.cost(fhir);
        let interaction = fhir.interaction();
        ctx.everything = interaction == Interaction::Operation
            && fhir.operation().is_some_and(|o| o.name == "everything");
        let Some(key) = config.keys.extract(&parts) else {
            return ctx.done(
                headers::refusal(
                    StatusCode::FORBIDDEN,
                    IssueType::Security,
                    "the client could not be identified for its query budget",
                ),
                BudgetOutcome::Unidentified,
            );
        };
        let Some((key, requests, resources)) =
            config
                .groups
                .resolve(key, config.requests, config.resources)
        else {
            return ctx.done(
                headers::refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    IssueType::Exception,
                    "the server is misconfigured",
                ),
                BudgetOutcome::Misconfigured,
            );
        };
        ctx.requests = requests;
        ctx.resources = resources;
        ctx.counting = counting(fhir, config, resources);
        #[cfg(feature = "redact")]
        if ctx.counting == Counting::Buffer {
            parts.extensions.insert(crate::body::CountWanted);
        }
        ctx.key = Some(key.clone());
        let lower_post = match caps::apply(&config.caps, &mut parts) {
            Ok(lower_post) => lower_post,
            Err(refusal) => {
                let (code, text) = caps::refusal_text(refusal);
                return ctx.done(
                    headers::refusal(StatusCode::BAD_REQUEST, code, text),
                    BudgetOutcome::Cap(refusal),
                );
            }
        };
        if let Some(max) = config.max_in_flight {
            match shared.in_flight.acquire(&key, max) {
                Ok((guard, used)) => {
                    ctx.guard = Some(guard);
                    ctx.snapshot.concurrency = Some((max, used));
                }
                Err(used) => {
                    ctx.snapshot.concurrency = Some((max, used));
                    let response = headers::throttled(
                        "too many requests in flight for this client",
                        Duration::from_secs(1),
                        &ctx.snapshot,
                    );
                    return ctx.done(response, BudgetOutcome::TooManyInFlight);
                }
            }
        }
        if lower_post.is_none() {
            if let Some(admitted) = ctx.admit_at_once(&key) {
                // Answered without waiting: the service made ready by poll_ready is called now.
                let state = match super::future::admit(&mut ctx, admitted) {
                    Err(response) => State::Done {
                        response: Some(response),
                    },
                    Ok(()) => State::Inner {
                        future: self.inner.call(Request::from_parts(parts, body)),
                    },
                };
                return BudgetFuture::new(state, ctx);
            }
        }
        // The service made ready by poll_ready is the one to call; a clone takes its place.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        if let Some(cap) = lower_post {
            // The caps come before the budget, as for a GET: the form is read and its
            // `_count` lowered first, and only then is the budget asked.
            return BudgetFuture::new(
                State::Lowering {
                    body,
                    buffer: Vec::new(),
                    waiting: Some((parts, service)),
                    cap,
                },
                ctx,
            );
        }
        let future = ctx.admit(&key);
        BudgetFuture::new(
            State::Admitting {
                future,
                waiting: Some((Request::from_parts(parts, body), service)),
            },
            ctx,
        )
    }
}

fn counting(fhir: &FhirRequest, config: &Config, resources: Option<Rate>) -> Counting {
    if fhir.method() == Method::HEAD {
        return Counting::None;
    }
    let everything_cap = config.caps.everything_max.is_some()
        && fhir.operation().is_some_and(|o| o.name == "everything");
    if resources.is_none() && !everything_cap {
        return Counting::None;
    }
    match fhir.interaction() {
        Interaction::Read | Interaction::VRead => Counting::One,
        Interaction::Capabilities
        | Interaction::SmartConfiguration
        | Interaction::Create
        | Interaction::Update
        | Interaction::Patch
        | Interaction::Delete => Counting::None,
        _ => Counting::Buffer,
    }
}
