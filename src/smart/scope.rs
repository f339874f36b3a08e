//! One SMART scope (SMART App Launch 2.2 §"Scopes for requesting FHIR resources").
//!
//! A resource scope is `<context>/<type>.<permissions>[?<param>=<value>&...]`:
//!
//! - context: `patient`, `user` or `system` (case-sensitive);
//! - type: an R4 resource type or `*`;
//! - permissions: SMART v2 `c r u d s`, in that order, at least one and none twice; or SMART v1
//!   `read`, `write`, `*`, read as the v2 `rs`, `cud` and `cruds` (§"Scopes for requesting FHIR
//!   resources", table "SMART 1.0 to 2.0 scope mapping");
//! - a granular v2 scope narrows the grant with search parameters of the type: AND between
//!   parameters, OR between the comma-separated values of one (FHIR R4 §3.1.1).
//!
//! `openid`, `fhirUser`, `profile`, `launch`, `launch/<context>`, `offline_access` and
//! `online_access` are recognised; any other scope without a resource context is an extension
//! scope. Neither kind grants data access.
//!
//! Parsing never "salvages": `patient/Observation.rsXYZ` is an error, not `patient/Observation.rs`.
//!
//! ```
//! use fhirwall::smart::{Permissions, Scope, ScopeContext};
//!
//! let scope: Scope = "patient/Observation.read".parse().unwrap();
//! let resource = scope.as_resource().unwrap();
//! assert_eq!(resource.context(), ScopeContext::Patient);
//! assert_eq!(resource.permissions(), Permissions::READ | Permissions::SEARCH);
//! assert_eq!(scope.to_string(), "patient/Observation.rs");
//!
//! assert!("patient/Observation.dus".parse::<Scope>().is_err());
//! assert!("launch/patient".parse::<Scope>().unwrap().as_resource().is_none());
//! ```

use crate::fhir::tables::{self, SearchParamType};
use crate::fhir::{ParamKind, Query, ResourceType};
use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::str::FromStr;

/// The longest scope string accepted, in bytes.
pub const MAX_SCOPE_LEN: usize = 1024;

/// Most parameters one granular scope may carry.
const MAX_SCOPE_PARAMS: usize = 16;

/// The context of a resource scope: whose data it reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeContext {
    /// `patient/`: the data of the patient(s) in context only.
    Patient,
    /// `user/`: what the signed-in user may see.
    User,
    /// `system/`: a backend service with no user (SMART Backend Services).
    System,
}

impl ScopeContext {
    /// The prefix as written, without the `/`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScopeContext::Patient => "patient",
            ScopeContext::User => "user",
            ScopeContext::System => "system",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "patient" => Some(ScopeContext::Patient),
            "user" => Some(ScopeContext::User),
            "system" => Some(ScopeContext::System),
            _ => None,
        }
    }
}

impl fmt::Display for ScopeContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of SMART v2 permissions: `c`reate, `r`ead, `u`pdate, `d`elete, `s`earch.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    /// No permission.
    pub const NONE: Permissions = Permissions(0);
    /// `c`: create.
    pub const CREATE: Permissions = Permissions(1);
    /// `r`: read, vread, instance history.
    pub const READ: Permissions = Permissions(2);
    /// `u`: update, patch.
    pub const UPDATE: Permissions = Permissions(4);
    /// `d`: delete.
    pub const DELETE: Permissions = Permissions(8);
    /// `s`: search, type and system history.
    pub const SEARCH: Permissions = Permissions(16);
    /// `cruds`: everything.
    pub const ALL: Permissions = Permissions(31);

    const LETTERS: [(u8, char); 5] = [(1, 'c'), (2, 'r'), (4, 'u'), (8, 'd'), (16, 's')];

    /// The permission bits (`c` = 1 … `s` = 16).
    pub(crate) const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every permission of `other` is in `self`.
    pub const fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` share a permission.
    pub const fn intersects(self, other: Permissions) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether there is no permission.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets together.
    pub const fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// Parses v2 permissions: `c r u d s` in this order, at least one, none repeated.
    ///
    /// ```
    /// use fhirwall::smart::Permissions;
    /// assert_eq!(Permissions::parse_v2("rs"), Some(Permissions::READ | Permissions::SEARCH));
    /// assert_eq!(Permissions::parse_v2("sr"), None);
    /// assert_eq!(Permissions::parse_v2(""), None);
    /// ```
    pub fn parse_v2(text: &str) -> Option<Permissions> {
        let mut bits = 0u8;
        let mut next = 0usize;
        for c in text.chars() {
            let at = Self::LETTERS
                .iter()
                .skip(next)
                .position(|&(_, letter)| letter == c)?;
            let (bit, _) = Self::LETTERS.get(next + at)?;
            bits |= bit;
            next += at + 1;
        }
        (bits != 0).then_some(Permissions(bits))
    }
}

impl BitOr for Permissions {
    type Output = Permissions;
    fn bitor(self, rhs: Permissions) -> Permissions {
        self.union(rhs)
    }
}

impl BitOrAssign for Permissions {
    fn bitor_assign(&mut self, rhs: Permissions) {
        *self = self.union(rhs);
    }
}

impl fmt::Display for Permissions {
    /// The v2 letters in order (`rs`), or `-` for none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (bit, letter) in Self::LETTERS {
            if self.0 & bit != 0 {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permissions({self})")
    }
}

/// Which SMART version's syntax a resource scope was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScopeVersion {
    /// `.read`, `.write`, `.*`.
    V1,
    /// `.cruds` letters.
    V2,
}

/// One condition of a granular scope: a search parameter of the type and its OR-ed values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScopeParam {
    name: String,
    kind: SearchParamType,
    values: Vec<String>,
}

impl ScopeParam {
    /// The search parameter's code (`category`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parameter's type, from the R4 search parameter table.
    pub fn kind(&self) -> SearchParamType {
        self.kind
    }

    /// The OR-ed values, FHIR escapes removed
    /// (`http://terminology.hl7.org/CodeSystem/observation-category|laboratory`).
    pub fn values(&self) -> &[String] {
        &self.values
    }
}

/// A scope for FHIR resources: context, type, permissions and granular conditions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceScope {
    context: ScopeContext,
    resource_type: Option<ResourceType>,
    permissions: Permissions,
    version: ScopeVersion,
    params: Vec<ScopeParam>,
    query: Option<String>,
}

impl ResourceScope {
    /// The context (`patient`, `user`, `system`).
    pub fn context(&self) -> ScopeContext {
        self.context
    }

    /// The resource type; `None` for `*`.
    pub fn resource_type(&self) -> Option<ResourceType> {
        self.resource_type
    }

    /// The permissions, v1 scopes already mapped to v2.
    pub fn permissions(&self) -> Permissions {
        self.permissions
    }

    /// The syntax the scope was written in.
    pub fn version(&self) -> ScopeVersion {
        self.version
    }

    /// The granular conditions, all of which must hold (empty for a plain scope).
    pub fn params(&self) -> &[ScopeParam] {
        &self.params
    }

    /// Whether the scope has granular conditions.
    pub fn is_granular(&self) -> bool {
        !self.params.is_empty()
    }

    /// Whether the scope is about resources of type `rt`.
    #[inline]
    pub fn matches_type(&self, rt: ResourceType) -> bool {
        self.resource_type.is_none_or(|t| t == rt)
    }

    /// Whether the scope's type and permissions cover `needed` on `rt` (conditions aside).
    #[inline]
    pub fn covers(&self, rt: ResourceType, needed: Permissions) -> bool {
        self.permissions.contains(needed) && self.matches_type(rt)
    }

    /// Whether the scope grants without conditions: not `patient/`, not granular.
    #[inline]
    pub fn is_unconditional(&self) -> bool {
        self.context != ScopeContext::Patient && self.params.is_empty()
    }

    /// The scope with other permissions, in v2 syntax (for `insufficient_scope` hints).
    pub(crate) fn describe(
        context: ScopeContext,
        rt: Option<ResourceType>,
        permissions: Permissions,
    ) -> String {
        let ty = rt.map_or("*", ResourceType::as_str);
        format!("{context}/{ty}.{permissions}")
    }
}

impl fmt::Display for ResourceScope {
    /// The scope in SMART v2 syntax (`patient/*.rs` for `patient/*.read`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ty = self.resource_type.map_or("*", ResourceType::as_str);
        write!(f, "{}/{ty}.{}", self.context, self.permissions)?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

/// A SMART scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// A scope for FHIR resources.
    Resource(ResourceScope),
    /// `openid` (OpenID Connect).
    OpenId,
    /// `fhirUser`: the user's FHIR resource in the id token.
    FhirUser,
    /// `profile`: the SMART v1 spelling of `fhirUser`.
    Profile,
    /// `launch`: an EHR launch.
    Launch,
    /// `launch/<name>`: a standalone launch asking for a context (`launch/patient`).
    LaunchContext(String),
    /// `offline_access`: a refresh token that outlives the session.
    OfflineAccess,
    /// `online_access`: a refresh token while the user is online.
    OnlineAccess,
    /// Any other scope (a vendor's or an extension's): recognised and ignored for data access.
    Other(String),
}

impl Scope {
    /// Parses one scope; the grammar is in the [`smart`](crate::smart#scopes) module docs.
    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        if text.is_empty() {
            return Err(ScopeError::Empty);
        }
        if text.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong);
        }
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
        if !text
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        {
            return Err(ScopeError::BadCharacter);
        }
        match text {
            "openid" => return Ok(Scope::OpenId),
            "fhirUser" => return Ok(Scope::FhirUser),
            "profile" => return Ok(Scope::Profile),
            "launch" => return Ok(Scope::Launch),
            "offline_access" => return Ok(Scope::OfflineAccess),
            "online_access" => return Ok(Scope::OnlineAccess),
            _ => {}
        }
        if let Some(name) = text.strip_prefix("launch/") {
            if name.is_empty() || name.contains(['/', '?', '.']) {
                return Err(ScopeError::BadLaunchContext);
            }
            return Ok(Scope::LaunchContext(name.to_owned()));
        }
        let Some((prefix, rest)) = text.split_once('/') else {
            return Ok(Scope::Other(text.to_owned()));
        };
        match ScopeContext::from_prefix(prefix) {
            Some(context) => parse_resource(context, rest).map(Scope::Resource),
            // `Patient/*.read` or `USER/...` is a misspelt resource scope, not an extension:
            // ignoring it would silently change what the client asked for.
            None if ScopeContext::from_prefix(&prefix.to_ascii_lowercase()).is_some() => {
                Err(ScopeError::BadContext)
            }
            None => Ok(Scope::Other(text.to_owned())),
        }
    }

    /// The resource scope, if this is one.
    pub fn as_resource(&self) -> Option<&ResourceScope> {
        match self {
            Scope::Resource(r) => Some(r),
            _ => None,
        }
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Resource(r) => r.fmt(f),
            Scope::OpenId => f.write_str("openid"),
            Scope::FhirUser => f.write_str("fhirUser"),
            Scope::Profile => f.write_str("profile"),
            Scope::Launch => f.write_str("launch"),
            Scope::LaunchContext(name) => write!(f, "launch/{name}"),
            Scope::OfflineAccess => f.write_str("offline_access"),
            Scope::OnlineAccess => f.write_str("online_access"),
            Scope::Other(text) => f.write_str(text),
        }
    }
}

/// Why a scope is malformed. The messages name the rule broken, never the scope's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// An empty scope.
    #[error("a scope is empty")]
    Empty,
    /// Longer than [`MAX_SCOPE_LEN`].
    #[error("a scope is longer than allowed")]
    TooLong,
    /// A character RFC 6749 §3.3 does not allow in a scope.
    #[error("a scope has a character RFC 6749 does not allow")]
    BadCharacter,
    /// A context prefix in the wrong letter case (`Patient/`).
    #[error("a scope's context is not patient, user or system")]
    BadContext,
    /// `launch/` without a valid name.
    #[error("a launch context scope is malformed")]
    BadLaunchContext,
    /// A resource scope without `.permissions`.
    #[error("a resource scope has no permissions")]
    MissingPermissions,
    /// Not an R4 resource type nor `*`.
    #[error("a resource scope names an unknown resource type")]
    UnknownResourceType,
    /// Not `read`/`write`/`*` nor v2 `cruds` letters in order without repeats.
    #[error("a resource scope's permissions are malformed")]
    BadPermissions,
    /// A `?query` on a v1 scope (granular scopes are SMART v2 only).
    #[error("a SMART v1 scope cannot be granular")]
    GranularV1,
    /// A granular query that is empty, unparseable, or uses something other than plain search
    /// parameters of the type (modifiers, chains, result parameters, unknown parameters).
    #[error("a granular scope's parameters are malformed")]
    BadGranularQuery,
    /// The scope claim is neither a string nor an array of strings.
    #[error("the scope claim is not a string or an array of strings")]
    BadClaim,
    /// More scopes than allowed.
    #[error("the token has more scopes than allowed")]
    TooMany,
}

fn parse_resource(context: ScopeContext, rest: &str) -> Result<ResourceScope, ScopeError> {
    let (head, query) = match rest.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (rest, None),
    };
    let (ty, perms) = head
        .rsplit_once('.')
        .ok_or(ScopeError::MissingPermissions)?;
    let resource_type = match ty {
        "*" => None,
        name => Some(ResourceType::from_name(name).ok_or(ScopeError::UnknownResourceType)?),
    };
    let (permissions, version) = match perms {
        "read" => (Permissions::READ | Permissions::SEARCH, ScopeVersion::V1),
        "write" => (
            Permissions::CREATE | Permissions::UPDATE | Permissions::DELETE,
            ScopeVersion::V1,
        ),
        "*" => (Permissions::ALL, ScopeVersion::V1),
        letters => (
            Permissions::parse_v2(letters).ok_or(ScopeError::BadPermissions)?,
            ScopeVersion::V2,
        ),
    };
    let params = match query {
        None => Vec::new(),
        Some(_) if version == ScopeVersion::V1 => return Err(ScopeError::GranularV1),
        Some(query) => parse_granular(resource_type, query)?,
    };
    Ok(ResourceScope {
        context,
        resource_type,
        permissions,
        version,
        params,
        query: query.map(str::to_owned),
    })
}

fn parse_granular(rt: Option<ResourceType>, query: &str) -> Result<Vec<ScopeParam>, ScopeError> {
    let bad = ScopeError::BadGranularQuery;
    // A second `?` means the scope was built by string concatenation gone wrong.
    if query.is_empty() || query.contains('?') {
        return Err(bad);
    }
    let parsed = Query::parse(query, MAX_SCOPE_PARAMS).map_err(|_| bad)?;
    let mut params = Vec::with_capacity(parsed.len());
    for p in parsed.params() {
        if p.kind() != ParamKind::Search || p.modifier().is_some() || p.is_chained() {
            return Err(bad);
        }
        let def = match rt {
            Some(rt) => tables::search_param(rt, p.name()),
            None => tables::common_search_param(p.name()),
        }
        .ok_or(bad)?;
        // A condition must be checkable on a resource: parameters without element paths
        // (`_text`, `_content`, `_list`, composites, specials) are not.
        if def.paths.is_empty()
            || matches!(
                def.kind,
                SearchParamType::Special | SearchParamType::Composite
            )
        {
            return Err(bad);
        }
        let values: Vec<String> = p.values().map(|v| v.text().into_owned()).collect();
        if values.is_empty() || values.iter().any(String::is_empty) {
            return Err(bad);
        }
        params.push(ScopeParam {
            name: p.name().to_owned(),
            kind: def.kind,
            values,
        });
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(s: &str) -> ResourceScope {
        Scope::parse(s).unwrap().as_resource().unwrap().clone()
    }

    #[test]
    fn v1_maps_to_v2() {
        // SMART App Launch 2.2 §"Scopes for requesting FHIR resources": v1 → v2 table.
        assert_eq!(resource("patient/*.read").to_string(), "patient/*.rs");
        assert_eq!(
            resource("user/Observation.write").to_string(),
            "user/Observation.cud"
        );
        assert_eq!(
            resource("system/Patient.*").to_string(),
            "system/Patient.cruds"
        );
    }

    #[test]
    fn v2_order_is_enforced() {
        for bad in [
            "patient/*.sr",
            "patient/*.rr",
            "patient/*.",
            "patient/*.dus",
            "patient/*.rsXYZ",
            "patient/*.R",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        for good in [
            "c", "r", "u", "d", "s", "cr", "rs", "cud", "cruds", "crds", "us",
        ] {
            assert!(Permissions::parse_v2(good).is_some(), "{good}");
        }
    }

    #[test]
    fn granular() {
        let s = resource("patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory,vital-signs&status=final");
        assert_eq!(s.params().len(), 2);
        assert_eq!(s.params()[0].values().len(), 2);
        assert!(Scope::parse("patient/Observation.rs?nope=1").is_err());
        assert!(Scope::parse("patient/Observation.read?category=x").is_err());
        assert!(Scope::parse("patient/Observation.rs?category:not=x").is_err());
        assert!(Scope::parse("patient/Observation.rs?_count=1").is_err());
        assert!(Scope::parse("patient/Observation.rs?").is_err());
        assert!(Scope::parse("patient/*.rs?_security=R").is_ok());
        assert!(Scope::parse("patient/*.rs?category=x").is_err());
    }

    #[test]
    fn non_resource_scopes() {
        assert_eq!(
            Scope::parse("launch/patient").unwrap(),
            Scope::LaunchContext("patient".into())
        );
        assert_eq!(
            Scope::parse("offline_access").unwrap(),
            Scope::OfflineAccess
        );
        assert_eq!(
            Scope::parse("smart/orchestrate_launch").unwrap(),
            Scope::Other("smart/orchestrate_launch".into())
        );
        assert_eq!(Scope::parse("Patient/*.read"), Err(ScopeError::BadContext));
    }
}
