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
    index: TypeIndex,
}

/// Which resource scopes name which type, built as scopes are added (once per token: the set
/// is cached with the token), so a request looks at the scopes of its type and the wildcard
/// scopes instead of every scope of the token, and answers "does a scope without conditions
/// cover this?" with one bit test.
#[derive(Clone, Default, PartialEq, Eq)]
struct TypeIndex {
    /// (type, index in `resource`), sorted.
    typed: Vec<(ResourceType, usize)>,
    /// Per type (its place in [`ResourceType::ALL`]): its range in `typed`, and which
    /// permission sets its unconditional scopes cover. Empty until a typed scope is added.
    slots: Vec<TypeSlot>,
    /// Indexes of the `*` scopes, in claim order.
    wildcard: Vec<usize>,
    /// Which permission sets the unconditional `*` scopes cover.
    wildcard_covers: Covers,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct TypeSlot {
    start: usize,
    end: usize,
    covers: Covers,
}

/// A set of permission sets: bit `n` is set when some scope's permissions contain the set whose
/// bits are `n` (so `needed` is covered by one scope exactly when bit `needed` is set).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Covers(u32);

impl Covers {
    fn add(&mut self, granted: Permissions) {
        let granted = u32::from(granted.bits());
        for n in 0..32u32 {
            if n & !granted == 0 {
                self.0 |= 1 << n;
            }
        }
    }

    fn covers(self, needed: Permissions) -> bool {
        self.0
            .checked_shr(u32::from(needed.bits()))
            .is_some_and(|b| b & 1 == 1)
    }
}

/// A type's place in [`ResourceType::ALL`] (the enum is declared in that order; a unit test
/// in `type_facts` holds it there).
fn type_index(rt: ResourceType) -> usize {
    rt as usize
}

impl TypeIndex {
    fn add(&mut self, scope: &ResourceScope, index: usize) {
        let Some(rt) = scope.resource_type() else {
            self.wildcard.push(index);
            if scope.is_unconditional() {
                self.wildcard_covers.add(scope.permissions());
            }
            return;
        };
        let at = self.typed.partition_point(|e| *e < (rt, index));
        self.typed.insert(at, (rt, index));
        if self.slots.is_empty() {
            self.slots = vec![TypeSlot::default(); ResourceType::ALL.len()];
        }
        // The ranges after the new entry shift by one; rebuilt whole, as adding is rare.
        let mut at = 0;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            slot.start = at;
            while self.typed.get(at).is_some_and(|(t, _)| type_index(*t) == i) {
                at += 1;
            }
            slot.end = at;
        }
        if scope.is_unconditional() {
            if let Some(slot) = self.slots.get_mut(type_index(rt)) {
                slot.covers.add(scope.permissions());
            }
        }
    }

    /// The indexes of the scopes that match `rt`: its own, then the wildcards.
    fn of(&self, rt: ResourceType) -> impl Iterator<Item = usize> + '_ {
        let own = self
            .slots
            .get(type_index(rt))
            .and_then(|s| self.typed.get(s.start..s.end))
            .unwrap_or_default();
        own.iter()
            .map(|(_, i)| *i)
            .chain(self.wildcard.iter().copied())
    }

    /// Whether a scope without conditions covers `needed` on `rt`.
    fn covers_unconditionally(&self, rt: ResourceType, needed: Permissions) -> bool {
        self.wildcard_covers.covers(needed)
            || self
                .slots
                .get(type_index(rt))
                .is_some_and(|s| s.covers.covers(needed))
    }
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
                    self.index.add(&r, self.resource.len());
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

    /// The resource scopes that match `rt` (its own and `*`), with their index in
    /// [`resource_scopes`](Self::resource_scopes); not in claim order.
    #[inline]
    pub(crate) fn scopes_for(
        &self,
        rt: ResourceType,
    ) -> impl Iterator<Item = (usize, &ResourceScope)> + '_ {
        self.index
            .of(rt)
            .filter_map(|i| self.resource.get(i).map(|s| (i, s)))
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
        self.scopes_for(rt).any(|(_, s)| s.covers(rt, needed))
    }

    /// Whether a scope without conditions (not `patient/`, not granular) covers `needed` on
    /// `rt`.
    #[inline]
    pub fn grants_unconditionally(&self, rt: ResourceType, needed: Permissions) -> bool {
        self.index.covers_unconditionally(rt, needed)
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
    fn type_index_finds_own_and_wildcard_scopes() {
        let set = ScopeSet::parse(
            "user/Observation.r patient/*.s user/Patient.r system/Observation.c user/*.d",
            MalformedScopes::RefuseToken,
        )
        .unwrap();
        let of = |rt| {
            let mut v: Vec<usize> = set.scopes_for(rt).map(|(i, _)| i).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(of(ResourceType::Observation), [0, 1, 3, 4]);
        assert_eq!(of(ResourceType::Patient), [1, 2, 4]);
        assert_eq!(of(ResourceType::Condition), [1, 4]);
    }

    proptest::proptest! {
        /// The index finds exactly the scopes a scan over every scope finds, and its
        /// unconditional answer is the scan's for every permission set.
        #[test]
        fn type_index_matches_a_scan(
            scopes in proptest::collection::vec(
                (0..3usize, 0..5usize, proptest::bool::ANY, 1..32u8),
                0..24,
            ),
            probe in 0..5usize,
        ) {
            const TYPES: [&str; 5] = ["Patient", "Observation", "Condition", "Encounter", "*"];
            const CONTEXTS: [&str; 3] = ["patient", "user", "system"];
            let text: Vec<String> = scopes
                .iter()
                .map(|(c, t, _, p)| {
                    let perms: String = "cruds"
                        .chars()
                        .enumerate()
                        .filter(|(i, _)| p & (1 << i) != 0)
                        .map(|(_, ch)| ch)
                        .collect();
                    format!(
                        "{}/{}.{perms}",
                        CONTEXTS.get(*c).unwrap(),
                        TYPES.get(*t).unwrap()
                    )
                })
                .collect();
            let set = ScopeSet::parse(&text.join(" "), MalformedScopes::RefuseToken).unwrap();
            let rt = ResourceType::from_name(TYPES.get(probe).unwrap()).unwrap_or(ResourceType::Goal);
            let mut indexed: Vec<usize> = set.scopes_for(rt).map(|(i, _)| i).collect();
            indexed.sort_unstable();
            let scanned: Vec<usize> = set
                .resource_scopes()
                .iter()
                .enumerate()
                .filter(|(_, s)| s.matches_type(rt))
                .map(|(i, _)| i)
                .collect();
            proptest::prop_assert_eq!(indexed, scanned);
            for bits in 1..32u8 {
                let needed = ["c", "r", "u", "d", "s"]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, l)| *l)
                    .collect::<String>();
                let needed = Permissions::parse_v2(&needed).unwrap();
                let scan = set
                    .resource_scopes()
                    .iter()
                    .any(|s| s.is_unconditional() && s.covers(rt, needed));
                proptest::prop_assert_eq!(set.grants_unconditionally(rt, needed), scan);
            }
        }
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
