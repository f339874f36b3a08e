//! RFC 8705 §3: certificate-bound access tokens.
//!
//! A token with `cnf.x5t#S256` may only be used on a connection whose client certificate has
//! that SHA-256 thumbprint (base64url of the DER's hash). The thumbprint of the connection's
//! certificate comes from [`CertificateThumbprint`] in the request extensions, put there by the
//! `identity` layer or your own TLS code; the comparison is constant time.
//!
//! ```
//! use fhirwall::net::CertificateThumbprint;
//! use fhirwall::smart::{AccessContext, CertificateBinding, ScopeSet};
//! use http::Extensions;
//!
//! let ctx = AccessContext::new(ScopeSet::new()).with_certificate_thumbprint([7; 32]);
//! let mut extensions = Extensions::new();
//! assert!(CertificateBinding::WhenPresent.check(&ctx, &extensions).is_err());
//! extensions.insert(CertificateThumbprint([7; 32]));
//! assert!(CertificateBinding::WhenPresent.check(&ctx, &extensions).is_ok());
//! extensions.insert(CertificateThumbprint([8; 32]));
//! assert!(CertificateBinding::WhenPresent.check(&ctx, &extensions).is_err());
//! ```

use super::context::AccessContext;
use super::decision::{Refusal, RefusalKind};
use crate::net::CertificateThumbprint;
use http::Extensions;
use subtle::ConstantTimeEq;

/// When tokens must be bound to the client certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CertificateBinding {
    /// Binding is not checked. Only for deployments where no token is ever certificate-bound
    /// and mTLS is not used.
    Off,
    /// A token with `cnf.x5t#S256` must match the connection's certificate; tokens without it
    /// are accepted (the default).
    #[default]
    WhenPresent,
    /// Every token must carry `cnf.x5t#S256` and match the connection's certificate.
    Required,
}

impl CertificateBinding {
    /// Checks the token of `ctx` against the certificate thumbprint in `extensions`.
    pub fn check(self, ctx: &AccessContext, extensions: &Extensions) -> Result<(), Refusal> {
        let bound = match (self, ctx.certificate_thumbprint()) {
            (CertificateBinding::Off, _) => return Ok(()),
            (CertificateBinding::WhenPresent, None) => return Ok(()),
            (CertificateBinding::Required, None) => {
                return Err(Refusal::new(
                    RefusalKind::InvalidToken,
                    "the token is not bound to a client certificate",
                ))
            }
            (_, Some(bound)) => bound,
        };
        match extensions.get::<CertificateThumbprint>() {
            Some(presented) if thumbprints_match(bound, &presented.0) => Ok(()),
            Some(_) => Err(Refusal::new(
                RefusalKind::InvalidToken,
                "the token is bound to another client certificate",
            )),
            None => Err(Refusal::new(
                RefusalKind::InvalidToken,
                "the token is bound to a client certificate that was not presented",
            )),
        }
    }
}

/// Constant-time comparison of two SHA-256 thumbprints.
pub fn thumbprints_match(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}
