//! Per-client query budgets (feature `limit`): requests and FHIR resources returned, in memory
//! or shared across replicas through Redis (feature `redis`).
//!
//! A stolen token or a compromised partner should not be able to scrape a whole patient
//! population, and a flood should not take the API down. [`BudgetLayer`] counts, per client:
//!
//! - **requests**, weighted by interaction ([`CostTable`]: read 1, search 10, write 20,
//!   `$everything` 50, `$export` 100), against a [`Rate`];
//! - **resources returned**, counted in each response (searchset entries including
//!   `_include`d ones, NDJSON lines), so paging through everything is stopped even when each
//!   page is small; a response larger than what is left is cut to it, with its `next` link
//!   dropped and an `OperationOutcome` note ([`OverBudget::Cut`], default) or refused
//!   ([`OverBudget::Refuse`]) — never sent over budget. With a
//!   `redact::RedactLayer` inside (as in the `stack`), the redaction
//!   walk counts the resources of the body it writes and hands the count on, so the body is
//!   not read a second time; the count is used only for exactly the bytes it was made for;
//! - **hard caps per request** ([`Caps`]): `_count` (lowered or refused), page depth,
//!   `$everything` size;
//! - **requests in flight**, released when the response body ends or is dropped.
//!
//! Budgets use GCRA (see [`gcra`] for the exact semantics): a client may spend its burst at
//! once, then refills continuously at `limit` per `period`.
//!
//! Who is counted comes from a [`KeyExtractor`]: the mTLS trusted client's name, else the
//! SMART token's `client_id`, else the peer IP (believing `X-Forwarded-For` only from
//! [`TrustedProxies`](crate::net::TrustedProxies)), or your own [`KeySource::custom`]. Several
//! clients can share one budget with [`KeyExtractor::group`]; a [`ClientGroup`]
//! ([`BudgetLayer::group`]) gives a group its own rates, either one budget for the whole group
//! ([`Sharing::Shared`]) or the group's rates to each member ([`Sharing::PerMember`]).
//!
//! Over budget, the answer is `429 Too Many Requests` with `Retry-After` (seconds), the
//! `RateLimit-Policy` and `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers, and an
//! `OperationOutcome` coded `throttled`; allowed responses carry the `RateLimit` fields too.
//! Every response carries a [`BudgetDecision`] in its extensions.
//!
//! ```
//! use axum::{routing::get, Router};
//! use fhirwall::classify::ClassifyLayer;
//! use fhirwall::fhir::Classifier;
//! use fhirwall::limit::{BudgetLayer, Caps, KeyExtractor, KeySource, MemoryStore, Rate};
//! use fhirwall::net::TrustedProxies;
//! use tower::ServiceBuilder;
//!
//! let budgets = BudgetLayer::new(MemoryStore::new(100_000))
//!     .keys(KeyExtractor::new([KeySource::PeerIp(TrustedProxies::new(["10.0.0.0/8"])?)]))
//!     .requests(Some(Rate::per_minute(300)))
//!     .resources(Some(Rate::per_hour(5_000).with_burst(1_000)))
//!     .caps(Caps::default().max_page_depth(Some(10)));
//! let app: Router = Router::new()
//!     .route("/fhir/Patient", get(|| async { "{}" }))
//!     .layer(ServiceBuilder::new().layer(ClassifyLayer::new(Classifier::new("/fhir"))).layer(budgets));
//! # Ok::<(), fhirwall::net::BadCidr>(())
//! ```
//!
//! ## Stores
//!
//! [`MemoryStore`] keeps budgets in this process (lock-free compare-and-swap, bounded number
//! of clients). With the `redis` feature, `RedisStore` keeps them in Redis, one atomic Lua
//! script per decision on Redis' own clock, so every replica shares one budget; when Redis
//! can't be reached the layer fails closed (503 `transient`) unless told otherwise.
//! Requests in flight are always counted per process.
//!
//! ## Plugging in other identities
//!
//! Any request extension can key budgets through [`KeySource::custom`]:
//!
//! ```
//! use fhirwall::limit::{ClientKey, KeyExtractor, KeySource};
//!
//! #[derive(Clone)]
//! struct Tenant(String);
//! let keys = KeyExtractor::new([KeySource::custom(|parts| {
//!     parts.extensions.get::<Tenant>().and_then(|t| ClientKey::new("tenant", &t.0))
//! })]);
//! ```

mod body;
mod caps;
mod concurrency;
mod cost;
pub(crate) mod count;
mod ctx;
mod decision;
mod form;
mod future;
pub mod gcra;
mod group;
mod headers;
mod key;
mod layer;
#[cfg(feature = "redis")]
pub mod redis_store;
pub(crate) mod response;
mod scan;
mod store;

pub use body::BudgetBody;
pub use caps::{CapRefusal, Caps, CountCapMode, PageParam};
pub use concurrency::InFlightGuard;
pub use cost::CostTable;
pub use decision::{BudgetDecision, BudgetOutcome};
pub use form::RewritableBody;
pub use future::BudgetFuture;
pub use gcra::{Rate, Verdict};
pub use group::{ClientGroup, Sharing};
pub use headers::{RATELIMIT, RATELIMIT_POLICY};
pub use key::{ClientKey, KeyExtractor, KeySource, MAX_KEY_LEN};
pub use layer::{Budget, BudgetLayer, OverBudget, DEFAULT_MAX_BUFFER};
#[cfg(feature = "redis")]
pub use redis_store::{RedisConnectError, RedisStore, RedisStoreConfig, WhenUnavailable};
pub use store::{
    Admission, BudgetStore, Clock, MemoryStore, StoreUnavailable, SystemClock, DEFAULT_MAX_KEYS,
};
