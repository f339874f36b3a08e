//! The claims of a token that has been verified.

use serde_json::{Map, Value};

/// The claims of a bearer token whose signature (or introspection), issuer, audience and time
/// window have been checked.
///
/// `Debug` shows claim names only: claim values can carry personal data.
#[derive(Clone, PartialEq)]
pub struct VerifiedClaims {
    claims: Map<String, Value>,
    expires_at: Option<u64>,
}

impl VerifiedClaims {
    /// Claims that a verifier has checked; `expires_at` is the `exp` claim in seconds since the
    /// Unix epoch.
    pub fn new(claims: Map<String, Value>, expires_at: Option<u64>) -> Self {
        VerifiedClaims { claims, expires_at }
    }

    /// One claim by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// A claim by a dotted path (`context.patient`), for vendors that nest claims.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut value = self.claims.get(parts.next()?)?;
        for part in parts {
            value = value.as_object()?.get(part)?;
        }
        Some(value)
    }

    /// A string claim by name.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// Every claim.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// `exp`, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }
}

impl std::fmt::Debug for VerifiedClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedClaims")
            .field("claim_names", &self.claims.keys().collect::<Vec<_>>())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
