//! The demo FHIR server behind fhirwall's `gateway` example and whole-stack tests.
//!
//! **This is a demo and test server, not a production FHIR server.** It keeps everything in
//! memory, implements a useful but small part of the FHIR R4 REST API, and exists so that
//! fhirwall's layers have something realistic to protect:
//!
//! * [`MemoryStore`]: a versioned in-memory store (vread, `_history`, tombstones for deletes).
//! * [`sample::load`]: deterministic sample data: patients (one carrying a US SSN), encounters,
//!   laboratory and vital-signs observations, conditions, medication requests, practitioners
//!   and organizations.
//! * [`router`]: an axum FHIR R4 JSON server over a store: `metadata`, read, vread, history,
//!   strict search (paging, `_include`, `_revinclude`, `_summary=count`), compartment search,
//!   `Patient/[id]/$everything`, create (also conditional), update, delete, batch and
//!   transaction.
//! * [`upstream_router`]: instead of the store, forward everything to an existing FHIR server.
//!
//! Every error is a FHIR `OperationOutcome` built with [`fhirwall::fhir::OperationOutcome`].
#![warn(missing_docs)]

mod bundle;
mod capability;
mod compartment;
mod interact;
mod matching;
mod params;
mod proxy;
mod response;
mod routes;
pub mod sample;
mod search;
mod store;
mod time;
mod transaction;
mod write;

pub use proxy::{upstream_router, ProxyConfig, ProxyError};
pub use routes::router;
pub use store::{MemoryStore, StoreError};

use std::net::SocketAddr;

/// Where the demo server lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoConfig {
    /// The path prefix the FHIR API answers under (default `/fhir`; `""` or `/` for the root).
    pub base_path: String,
    /// The absolute base URL clients see, used in `fullUrl`, `Location` and paging links
    /// (default `http://127.0.0.1:8080/fhir`).
    pub base_url: String,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            base_path: "/fhir".into(),
            base_url: "http://127.0.0.1:8080/fhir".into(),
        }
    }
}

impl DemoConfig {
    /// The configuration for a server listening on `addr` under `base_path`:
    /// `base_url` is `http://{addr}{base_path}`.
    pub fn for_address(addr: SocketAddr, base_path: &str) -> Self {
        let base_path = routes::normalize_base_path(base_path);
        DemoConfig {
            base_url: format!("http://{addr}{base_path}"),
            base_path,
        }
    }

    fn base_path_or_root(&self) -> &str {
        if self.base_path.is_empty() {
            "/"
        } else {
            &self.base_path
        }
    }
}
