//! The scopes of one token ([`ScopeSet`]), read from its scope claim.
//!
//! Every scope counts: access is the union of what the resource scopes grant, never the first
//! match. A malformed scope refuses the whole token by default
//! ([`MalformedScopes::RefuseToken`]); [`MalformedScopes::DropScope`] drops that one scope and
//! keeps the rest, but never turns it into a narrower scope.
//!
//! ```
//! use fhirwall::smart::{MalformedScopes, Permissions, ScopeSet};
//! use fhirwall::fhir::ResourceType;
//!
//! let scopes = ScopeSet::parse("openid fhirUser patient/Observation.rs user/Patient.read", MalformedScopes::RefuseToken).unwrap();
//! assert_eq!(scopes.resource_scopes().len(), 2);
//! assert!(scopes.grants_any(ResourceType::Patient, Permissions::READ));
//! assert!(!scopes.grants_any(ResourceType::Condition, Permissions::READ));
//!
//! assert!(ScopeSet::parse("patient/*.rs patient/Observation.rsXYZ", MalformedScopes::RefuseToken).is_err());
//! let kept = ScopeSet::parse("patient/*.rs patient/Observation.rsXYZ", MalformedScopes::DropScope).unwrap();
//! assert_eq!((kept.resource_scopes().len(), kept.dropped()), (1, 1));
//! ```

use super::scope::{Permissions, ResourceScope, Scope, ScopeContext, ScopeError};
use crate::fhir::ResourceType;
use serde_json::Value;
use std::fmt;

/// The most scopes a token may carry (default of [`ScopeSet::from_claim`]).
pub const MAX_SCOPES: usize = 256;

/// What to do with a malformed scope in a token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MalformedScopes {
    /// Refuse the token (the default): the client asked for something this server does not
    /// understand, and any reading of it could grant more or less than was meant.
    #[default]
    RefuseToken,
    /// Drop the malformed scope and keep the others. The dropped scope grants nothing; it is
    /// never reinterpreted as a narrower one.
    DropScope,
}

/// Why a token's scopes were refused: the index of the offending scope and the rule broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("scope {index}: {error}")]
pub struct ScopeSetError {
    /// The position of the scope in the claim (0 for claim-level errors).
    pub index: usize,
    /// What is wrong with it.
    pub error: ScopeError,
}

/// The parsed scopes of one token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ScopeSet {
    resource: Vec<ResourceScope>,
    other: Vec<Scope>,
    dropped: usize,
    has_patient: bool,
}

impl ScopeSet {
    /// No scopes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-separated scope string (RFC 6749 §3.3). Runs of spaces are allowed;
    /// any other whitespace makes the scope it is in malformed.
    pub fn parse(text: &str, malformed: MalformedScopes) -> Result<ScopeSet, ScopeSetError> {
        Self::from_iter_str(text.split(' ').filter(|s| !s.is_empty()), malformed)
    }

    /// Reads a scope claim: a space-separated string, or an array of strings (one scope
    /// each, as some vendors' `scp` claims are). A missing claim is `None` here and an empty
    /// set to the caller.
    pub fn from_claim(
        claim: &Value,
        malformed: MalformedScopes,
    ) -> Result<ScopeSet, ScopeSetError> {
        let claim_error = ScopeSetError {
            index: 0,
            error: ScopeError::BadClaim,
        };
        match claim {
            Value::String(s) => Self::parse(s, malformed),
            Value::Array(items) => {
                let mut strings = Vec::with_capacity(items.len());
                for item in items {
                    strings.push(item.as_str().ok_or(claim_error)?);
                }
                Self::from_iter_str(strings.into_iter(), malformed)
            }
            _ => Err(claim_error),
        }
    }

    fn from_iter_str<'a>(
        scopes: impl Iterator<Item = &'a str>,
        malformed: MalformedScopes,
    ) -> Result<ScopeSet, ScopeSetError> {
        let mut set = ScopeSet::new();
        for (index, text) in scopes.enumerate() {
            if index >= MAX_SCOPES {
                return Err(ScopeSetError {
                    index,
                    error: ScopeError::TooMany,
                });
            }
            match Scope::parse(text) {
                Ok(scope) => set.push(scope),
                Err(error) => match malformed {
                    MalformedScopes::RefuseToken => return Err(ScopeSetError { index, error }),
                    MalformedScopes::DropScope => set.dropped += 1,
                },
            }
        }
        Ok(set)
    }

    /// Adds a scope (a duplicate of a scope already there is not added twice).
    pub fn push(&mut self, scope: Scope) {
        match scope {
            Scope::Resource(r) => {
                if !self.resource.contains(&r) {
                    self.has_patient |= r.context() == ScopeContext::Patient;
                    self.resource.push(r);
                }
            }
            other => {
                if !self.other.contains(&other) {
                    self.other.push(other);
                }
            }
        }
    }

    /// The resource scopes, in claim order.
    #[inline]
    pub fn resource_scopes(&self) -> &[ResourceScope] {
        &self.resource
    }

    /// The scopes that grant no data access (`openid`, `launch/patient`, extensions ...).
    pub fn other_scopes(&self) -> &[Scope] {
        &self.other
    }

    /// How many malformed scopes [`MalformedScopes::DropScope`] dropped.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Whether any resource scope is a `patient/` scope.
    #[inline]
    pub fn has_patient_scopes(&self) -> bool {
        self.has_patient
    }

    /// Whether some scope covers `needed` on `rt`, conditions (patient compartment, granular
    /// parameters) aside. A quick "could this ever be allowed?" test.
    pub fn grants_any(&self, rt: ResourceType, needed: Permissions) -> bool {
        self.resource.iter().any(|s| s.covers(rt, needed))
    }

    /// Whether a scope without conditions (not `patient/`, not granular) covers `needed` on
    /// `rt`.
    #[inline]
    pub fn grants_unconditionally(&self, rt: ResourceType, needed: Permissions) -> bool {
        self.resource
            .iter()
            .any(|s| s.is_unconditional() && s.covers(rt, needed))
    }

    /// Whether a scope without conditions covers `needed` on every type (`user/*.rs`).
    pub fn grants_every_type_unconditionally(&self, needed: Permissions) -> bool {
        self.resource.iter().any(|s| {
            s.is_unconditional() && s.resource_type().is_none() && s.permissions().contains(needed)
        })
    }

    /// Whether the token has this non-resource scope (`Scope::OfflineAccess`,
    /// `Scope::LaunchContext("patient".into())` ...).
    pub fn contains_other(&self, scope: &Scope) -> bool {
        self.other.contains(scope)
    }

    /// The number of scopes, resource and other.
    pub fn len(&self) -> usize {
        self.resource.len() + self.other.len()
    }

    /// Whether there are no scopes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for ScopeSet {
    /// The scopes space-separated, resource scopes in v2 syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in self
            .resource
            .iter()
            .map(|r| r as &dyn fmt::Display)
            .chain(self.other.iter().map(|o| o as &dyn fmt::Display))
        {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            s.fmt(f)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({self}")?;
        if self.dropped > 0 {
            write!(f, ", {} dropped", self.dropped)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_shapes() {
        let set = ScopeSet::from_claim(
            &serde_json::json!(["patient/*.rs", "openid"]),
            MalformedScopes::RefuseToken,
        )
        .unwrap();
        assert_eq!(set.len(), 2);
        assert!(ScopeSet::from_claim(
            &serde_json::json!(["patient/*.rs", 1]),
            MalformedScopes::DropScope
        )
        .is_err());
        assert!(
            ScopeSet::from_claim(&serde_json::json!({"a": 1}), MalformedScopes::DropScope).is_err()
        );
        // An array element is one scope: a space inside it is malformed.
        assert!(ScopeSet::from_claim(
            &serde_json::json!(["patient/*.rs user/*.rs"]),
            MalformedScopes::RefuseToken
        )
        .is_err());
    }

    #[test]
    fn tab_is_not_a_separator() {
        assert!(ScopeSet::parse("patient/*.rs\tuser/*.rs", MalformedScopes::RefuseToken).is_err());
        assert_eq!(
            ScopeSet::parse("  patient/*.rs   user/*.rs ", MalformedScopes::RefuseToken)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn union_not_first_match() {
        let set = ScopeSet::parse(
            "patient/Observation.r patient/Observation.s",
            MalformedScopes::RefuseToken,
        )
        .unwrap();
        assert!(set.grants_any(ResourceType::Observation, Permissions::SEARCH));
        assert!(set.grants_any(ResourceType::Observation, Permissions::READ));
    }
}
