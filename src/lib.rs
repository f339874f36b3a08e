//! # fhirwall
//!
//! Composable [tower](https://docs.rs/tower) layers that put a firewall around FHIR R4 REST APIs.
//!
//! Health APIs leak patient records through the same few holes again and again: broken
//! authentication and authorization, data shown to clients that should never see it, injected
//! or malformed input, floods and bulk scraping, sniffed plain-HTTP traffic, and forgotten
//! backdoor and "zombie" endpoints. Each fhirwall layer closes one of them, and every layer can
//! be stacked onto any axum or hyper service, or onto a gateway in front of an existing FHIR
//! server.
//!
//! ## The foundation
//!
//! Every layer works from the same three things, all in [`fhir`]:
//!
//! - [`fhir::FhirRequest`]: exactly which R4 interaction a request is (read, vread, update,
//!   patch, delete, history, create, search, capabilities, batch, transaction, operation),
//!   computed once by [`classify::ClassifyLayer`] and stored in the request extensions;
//! - the R4 tables in [`fhir::tables`], generated from the official definitions;
//! - one error format, [`fhir::OperationOutcome`], used by every refusal.
//!
//! ```
//! use axum::{routing::get, Router};
//! use fhirwall::classify::ClassifyLayer;
//! use fhirwall::fhir::Classifier;
//!
//! let app: Router = Router::new()
//!     .route("/fhir/metadata", get(|| async { "{}" }))
//!     .layer(ClassifyLayer::new(Classifier::new("/fhir")));
//! ```
//!
//! ## Features
//!
//! | feature    | default | module      | protection |
//! |------------|---------|-------------|------------|
//! | `mtls`     | yes     | `identity`  | trusted-client identity over mutual TLS |
//! | `smart`    | yes     | `smart`     | SMART on FHIR tokens, scopes and patient compartment |
//! | `redact`   | yes     | `redact`    | FHIR-aware response redaction |
//! | `validate` | yes     | `validate`  | FHIR R4 structure, search parameters, hostile JSON |
//! | `limit`    | yes     | `limit`     | per-client query budgets |
//! | `firewall` | yes     | `firewall`  | IP allowlists, declared routes, sunsets, transport rules |
//! | `audit`    | yes     | `audit`     | one audit record per request |
//! | `redis`    | no      | `limit`     | budgets shared across replicas through Redis |
//! | `jwks`     | no      | `smart`     | JWKS, discovery and introspection over HTTP |
//! | `policy`   | no      | `policy`    | the whole stack from one TOML policy file, reloadable |
//! | `schema`   | no      | `policy`    | the policy file's JSON Schema |
//! | `rustls`   | no      | `identity`  | a hardened TLS server with peer certificates per request |
//! | `axum`     | no      | `net`       | reads axum's `ConnectInfo` for the peer address |
//! | `full`     | no      |             | everything |
//!
//! The always-on foundation is [`fhir`], [`classify`], [`body`] and [`net`], and [`stack`]
//! assembles whichever layers are enabled.
//!
//! ## The whole stack
//!
//! [`stack::Fhirwall`] takes each layer, configured with its own builder, checks them against
//! each other and applies them in the recommended order ([`stack::Fhirwall::ORDER`], outermost
//! first): audit, firewall, identity, the SMART token gate, classify, smart, the firewall's
//! per-client rules, limit, validate, redact, and the audit capture just before your handlers.
//! With the `policy`
//! feature, the same stack comes from one TOML file (`policy::Policy::load(path)?.build()?`),
//! reloadable at run time (`policy::PolicyHandle`).
//!
//! ## Rules that hold everywhere
//!
//! - Fail closed: what cannot be parsed, classified or checked is refused with an
//!   `OperationOutcome` and the right status, never passed on.
//! - No panics on any input.
//! - A refusal is a response (`Response<FhirBody<B>>`), never an error of our own type.
//! - Nothing internal (tokens, keys, error chains) leaks into a response body.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(unreachable_pub)]

#[cfg(feature = "audit")]
pub mod audit;
pub mod body;
pub mod classify;
#[cfg(any(feature = "audit", feature = "limit"))]
mod decimal;
pub mod fhir;
#[cfg(feature = "firewall")]
pub mod firewall;
#[cfg(feature = "mtls")]
pub mod identity;
#[cfg(feature = "limit")]
pub mod limit;
pub mod net;
#[cfg(any(feature = "limit", feature = "smart"))]
mod plain_json;
#[cfg(feature = "policy")]
pub mod policy;
#[cfg(feature = "redact")]
pub mod redact;
#[cfg(feature = "smart")]
pub mod smart;
pub mod stack;
#[cfg(any(feature = "smart", feature = "validate"))]
mod unique_keys;
#[cfg(feature = "validate")]
pub mod validate;

// The README's examples compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
