//! SMART on FHIR authorization (feature `smart`): verified tokens, v1/v2/granular scopes, the
//! patient compartment, certificate-bound tokens and RFC 6750 challenges.
//!
//! The module has two halves that meet in [`VerifiedClaims`]:
//!
//! - token verification turns a bearer token into [`VerifiedClaims`] through the
//!   [`VerifyToken`] trait;
//! - authorization turns the claims into an access context and decides every FHIR interaction.

mod claims;
pub mod token;
mod verify;

pub use claims::VerifiedClaims;
pub use verify::{TokenFuture, TokenRejection, TokenRejectionKind, VerifyToken};
