//! The firewall (feature `firewall`): IP allowlists, declared routes, sunsets, transport
//! rules and access windows.
//!
//! Breaches come through what nobody watches: undocumented endpoints, old API versions left
//! running, plain-HTTP access. [`FirewallLayer`] answers, in this order (cheapest first):
//!
//! | check | refusal |
//! |---|---|
//! | plain HTTP where TLS is required ([`TransportPolicy`]) | 403 `security` |
//! | client address not in the route group's [`IpRule`] | 403 `forbidden` |
//! | route not in the [`RouteInventory`] (a probe for a backdoor) | 404 `not-found` |
//! | prefix past its [`Sunset`] | 410 `not-supported` |
//! | trusted client outside its networks, or outside its [`AccessWindow`] | 403 `forbidden` |
//!
//! Every refusal is an `OperationOutcome` with a [`FirewallDecision`] on the response
//! extensions. Passed responses get the security headers ([`SecurityHeaders`]) and lose
//! `Server` and `X-Powered-By`; under a deprecated prefix they also get
//! `Deprecation`/`Sunset`/`Link` and [`FirewallDecision::Allowed`] (a pass on a live route
//! carries no decision: its absence costs nothing on every request).
//!
//! The client address comes from the connection ([`crate::net::remote_addr`]); forwarded
//! addresses and `X-Forwarded-Proto` only from [`TrustedProxies`](crate::net::TrustedProxies).
//!
//! ```
//! use axum::{routing::get, Router};
//! use fhirwall::fhir::{Interaction, ResourceType};
//! use fhirwall::firewall::{FirewallLayer, IpRule, RouteInventory, Sunset};
//! use http::Method;
//!
//! let routes = RouteInventory::new("/fhir")
//!     .alias_base("/fhir-v0")
//!     .declare(ResourceType::Patient, [Interaction::Read])
//!     .extra(Method::GET, "/health");
//! let firewall = FirewallLayer::builder(routes)
//!     .allow(IpRule::allow(["127.0.0.0/8", "::1/128"])?)
//!     .sunset(Sunset::new("/fhir-v0", 1_735_689_600, 1_782_864_000).successor("/fhir"))
//!     .build();
//! let app: Router = Router::new()
//!     .route("/fhir/Patient/{id}", get(|| async { "{}" }))
//!     .route("/health", get(|| async { "ok" }))
//!     .layer(firewall);
//! # Ok::<(), fhirwall::net::BadCidr>(())
//! ```

mod allowlist;
mod decision;
mod headers;
mod layer;
mod routes;
mod sunset;
mod transport;
mod window;

pub use allowlist::IpRule;
pub use decision::{FirewallDecision, FirewallRefusal};
pub use layer::{
    default_subjects, Firewall, FirewallBuilder, FirewallFuture, FirewallLayer, SecurityHeaders,
    SubjectsFn,
};
pub use routes::{CapabilityError, RouteInventory};
pub use sunset::{Clock, FixedClock, Sunset, SystemClock};
pub use transport::{PhiNoStore, TlsConnection, TransportPolicy};
pub use window::{AccessWindow, WindowError};
