//! Trusted-client identity over mutual TLS (feature `mtls`).
//!
//! fhirwall knows which trusted client is on the other end of every connection, and refuses
//! everyone else before any FHIR work happens.
//!
//! - [`ClientIdentity`]: the facts of a verified client certificate (subject, SANs, issuer,
//!   serial, validity, SHA-256 thumbprint in hex and RFC 8705 `x5t#S256` form, SPKI pin).
//! - [`TrustPolicy`]: which certificates belong to which named [`TrustedClient`] (by SPKI pin,
//!   thumbprint, SAN URI or DNS, exact or a bounded wildcard, subject DN, or issuing CA), held
//!   in a [`TrustPolicyHandle`] so it can be replaced at run time without dropping
//!   connections.
//! - [`TrustedClientLayer`]: the tower layer that enforces it.
//! - [`forwarded`]: certificates forwarded by a TLS-terminating proxy (Envoy XFCC, RFC 9440
//!   `Client-Cert`, nginx URL-escaped PEM), only from configured proxy addresses, verified
//!   again here.
//! - With the `rustls` feature: `ServerTlsConfig` (a hardened rustls server configuration)
//!   and `TlsServer` (serves any tower or axum service, putting each connection's
//!   certificates into its requests, parsed once per connection).
//!
//! ```
//! use axum::{routing::get, Extension, Router};
//! use fhirwall::identity::{ClientMatch, TrustPolicy, TrustedClient, TrustedClientLayer};
//!
//! async fn metadata(Extension(client): Extension<TrustedClient>) -> String {
//!     format!("hello, {}", client.name())
//! }
//!
//! let policy = TrustPolicy::builder()
//!     .allow("lab-ingest", ClientMatch::san_uri("spiffe://lab.example/ns/prod/sa/ingest")?)
//!     .allow("payers", ClientMatch::san_dns("*.payer.example")?)
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/fhir/metadata", get(metadata))
//!     .layer(TrustedClientLayer::new(policy));
//! # Ok::<(), fhirwall::identity::PolicyError>(())
//! ```
//!
//! ## Outcomes
//!
//! | situation | outcome |
//! |---|---|
//! | trusted client | passes, with `Arc<ClientIdentity>`, [`CertificateThumbprint`](crate::net::CertificateThumbprint) and [`TrustedClient`] in the request extensions |
//! | no certificate, `ClientAuth::Required` (rustls) | handshake refused, TLS alert `certificate_required` (TLS 1.3) or `handshake_failure` (1.2) |
//! | certificate from another CA | handshake refused, alert `unknown_ca`; via a proxy header: 401 `unknown` |
//! | expired / not yet valid | handshake refused, alert `certificate_expired`; past the TLS stack or via a proxy header: 401 `expired` / `unknown` |
//! | wrong key usage (no `clientAuth`) | handshake refused, alert `unsupported_certificate`; past the TLS stack or via a proxy header: 401 `unknown` |
//! | revoked (CRL) | handshake refused, alert `certificate_revoked`; via a proxy header: 401 `unknown` |
//! | no certificate, `ClientAuth::Optional`, or a trusted proxy without the header | 401 `login` |
//! | valid, but no policy rule matches | 403 `forbidden` |
//! | malformed forwarded header from a trusted proxy | 400 `structure` |
//! | forwarded header from anyone else | removed; the request is judged on its own TLS certificate |
//!
//! Every refusal by the layer is an `OperationOutcome` (see [`IdentityRefusal`]) and every
//! response carries an [`IdentityDecision`] in its extensions. The 401s carry no
//! `WWW-Authenticate` header: no HTTP authentication scheme exists for TLS client
//! certificates, and the certificate can only be offered on a new connection.
//!
//! ## Extension types
//!
//! The identity is shared as `Arc<ClientIdentity>` (not `ClientIdentity`): it is parsed once
//! per connection and each request holds a reference, so read it with
//! `extensions.get::<Arc<ClientIdentity>>()` or axum's `Extension<Arc<ClientIdentity>>`.

mod client;
mod decision;
pub mod forwarded;
mod layer;
mod name;
mod peer;
mod policy;
#[cfg(feature = "rustls")]
mod server;
#[cfg(feature = "rustls")]
mod tls;

pub use client::{CertificateParseError, ClientIdentity, Validity};
pub use decision::{CertificateSource, IdentityDecision, IdentityRefusal};
pub use forwarded::{ForwardedCertificates, ForwardedFormat};
pub use layer::{TrustedClientFuture, TrustedClientLayer, TrustedClientService};
pub use name::{BadDistinguishedName, DistinguishedName};
pub use peer::{ConnectionIdentity, PeerCertificates, WithConnectionIdentity};
pub use policy::{
    ClientMatch, MatchedBy, PolicyError, TrustPolicy, TrustPolicyBuilder, TrustPolicyHandle,
    TrustedClient,
};
#[cfg(feature = "rustls")]
pub use server::{
    TlsServer, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};
#[cfg(feature = "rustls")]
pub use tls::{
    hardened_crypto_provider, ClientAuth, ClientCaRoots, ServerTlsConfig, TlsSetupError,
    WebPkiChainVerifier,
};

#[cfg(test)]
mod tests;
