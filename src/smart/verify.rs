//! The seam between token verification and authorization.

use super::VerifiedClaims;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The future of a verification that could not be answered from the cache.
///
/// Boxed because key fetching and introspection are I/O that each verifier does its own way;
/// the cached path ([`VerifyToken::verify_cached`]) allocates nothing.
pub type TokenFuture =
    Pin<Box<dyn Future<Output = Result<Arc<VerifiedClaims>, TokenRejection>> + Send + 'static>>;

/// Turns a bearer token into verified claims.
pub trait VerifyToken: Send + Sync + 'static {
    /// Answers from the verified-token cache, if the token is there and still valid; `None`
    /// means "not cached, call [`verify`](Self::verify)".
    fn verify_cached(&self, token: &str) -> Option<Result<Arc<VerifiedClaims>, TokenRejection>>;

    /// Verifies the token fully (signature or introspection, issuer, audience, time window) and
    /// caches the result.
    fn verify(&self, token: &str) -> TokenFuture;
}

/// How a token was refused, in the terms of RFC 6750 §3.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenRejectionKind {
    /// `invalid_token` (401): expired, revoked, malformed, badly signed, wrong issuer or
    /// audience, or not bound to the presented certificate.
    InvalidToken,
    /// `invalid_request` (400): the request itself is malformed, such as a token in the query.
    InvalidRequest,
    /// The keys or the introspection endpoint could not be reached (503): the token could not be
    /// checked, so it is refused.
    Unavailable,
}

/// Why a token was refused. `reason` is a fixed sentence safe to show a client: it never holds
/// token contents, key ids or internal errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRejection {
    /// The RFC 6750 error class.
    pub kind: TokenRejectionKind,
    /// A fixed, client-safe sentence (`"the token has expired"`).
    pub reason: &'static str,
}

impl TokenRejection {
    /// An `invalid_token` refusal.
    pub const fn invalid_token(reason: &'static str) -> Self {
        TokenRejection {
            kind: TokenRejectionKind::InvalidToken,
            reason,
        }
    }
}
