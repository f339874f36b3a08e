//! The redaction policy as plain data (serde), so a policy file can carry it.
//!
//! ```
//! use fhirwall::redact::{Action, CallerMatch, Policy, Rule};
//!
//! let policy: Policy = serde_json::from_value(serde_json::json!({
//!     "rules": [{
//!         "paths": ["Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')"],
//!         "action": {"kind": "remove"},
//!         "except": {"clients": ["care-team"]}
//!     }],
//!     "labels": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
//!                 "codes": ["R", "V"], "except": {"scopes": ["user/*.rs"]}}]
//! })).unwrap();
//! assert_eq!(policy.rules[0].action, Action::Remove);
//! ```

use super::path::{ElementPath, PathError};
use serde::{Deserialize, Serialize};

/// A whole redaction policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Element and resource rules, all applied (in order) to every resource they match.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Resource-level visibility by `meta.security` labels.
    #[serde(default)]
    pub labels: Vec<LabelRule>,
    /// Whether a searchset that lost entries gets an `OperationOutcome` entry (search mode
    /// `outcome`, issue code `suppressed`) saying how many were withheld. Default: `true`.
    #[serde(default = "yes")]
    pub suppressed_note: bool,
}

fn yes() -> bool {
    true
}

/// Which callers something applies to. An empty match (no field set) matches every caller;
/// otherwise a caller matches when it matches any one of the listed things.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerMatch {
    /// Client names (an mTLS trusted client's name or a token's `client_id`).
    #[serde(default)]
    pub clients: Vec<String>,
    /// Scopes, compared as strings with the caller's granted scopes (`user/*.rs`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Names of custom predicates registered with
    /// [`Redactor::predicate`](super::Redactor::predicate).
    #[serde(default)]
    pub predicates: Vec<String>,
}

impl CallerMatch {
    /// Whether nothing is listed (matches everyone).
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.scopes.is_empty() && self.predicates.is_empty()
    }

    /// A match on any of these client names.
    pub fn clients<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        CallerMatch {
            clients: names.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// A match on any of these scopes.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        CallerMatch {
            scopes: scopes.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }
}

/// One rule: for the callers it applies to, do `action` to what `paths` select in every
/// resource of the paths' root type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Resource types a [`Action::RemoveResource`] rule hides (`*` for all); ignored by the
    /// element actions, whose paths name their type.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The elements selected (see [`ElementPath`]).
    #[serde(default)]
    pub paths: Vec<ElementPath>,
    /// What to do with them.
    pub action: Action,
    /// The callers the rule applies to; absent: every caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<CallerMatch>,
    /// Callers the rule never applies to (checked after `when`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<CallerMatch>,
    /// What to do with a required element (cardinality min 1) that `remove` selects. Default:
    /// [`Required::Mask`], so the resource stays valid.
    #[serde(default)]
    pub required: Required,
}

impl Rule {
    /// A rule doing `action` to `paths` for every caller; fails on a path that doesn't parse
    /// (a typo must never silently drop a redaction).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(
        paths: I,
        action: Action,
    ) -> Result<Self, PathError> {
        Ok(Rule {
            resources: Vec::new(),
            paths: paths
                .into_iter()
                .map(|p| p.as_ref().parse())
                .collect::<Result<_, _>>()?,
            action,
            when: None,
            except: None,
            required: Required::Mask,
        })
    }

    /// A rule hiding whole resources of these types (`*` for all).
    pub fn remove_resources<I: IntoIterator<Item = S>, S: Into<String>>(types: I) -> Self {
        Rule {
            resources: types.into_iter().map(Into::into).collect(),
            paths: Vec::new(),
            action: Action::RemoveResource,
            when: None,
            except: None,
            required: Required::Mask,
        }
    }

    /// Applies the rule only to these callers.
    pub fn when(mut self, callers: CallerMatch) -> Self {
        self.when = Some(callers);
        self
    }

    /// Never applies the rule to these callers.
    pub fn except(mut self, callers: CallerMatch) -> Self {
        self.except = Some(callers);
        self
    }
}

/// What a rule does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Removes the selected elements (a required one is masked instead, see [`Required`]).
    Remove,
    /// Replaces the selected elements. A primitive gets `value` when one is given (it must be of
    /// the element's JSON kind: a string for string-like types, a number, a boolean); otherwise,
    /// and for complex elements, the element becomes a FHIR `data-absent-reason` extension
    /// with code `masked`, which is valid for every element.
    Mask {
        /// The fixed replacement of a primitive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<serde_json::Value>,
    },
    /// Keeps only the year of a `date` or `dateTime` (`1974-12-25` becomes `1974`).
    YearOnly,
    /// Removes whole resources of the rule's `resources` types.
    RemoveResource,
}

/// What happens to a required element (min 1) that a `remove` rule selects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Required {
    /// Mask it (data-absent-reason), keeping the resource valid.
    #[default]
    Mask,
    /// Remove it anyway.
    Remove,
}

/// Hides resources carrying any of these `meta.security` labels, except from the callers
/// listed in `except`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRule {
    /// The label's code system; absent: any system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The codes (`R`, `V`, `PSY`, `HIV`, `ETH`, ...).
    pub codes: Vec<String>,
    /// The callers who may still see such resources.
    #[serde(default)]
    pub except: CallerMatch,
}

/// Who is asking, as the redaction policy sees it: built from the request extensions by
/// [`CallerExtractor`](super::CallerExtractor)s before the request goes on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// Client names: the mTLS trusted client's name, the token's `client_id`.
    pub clients: Vec<String>,
    /// Granted scopes as strings.
    pub scopes: Vec<String>,
    /// Custom predicates that held for this request.
    pub predicates: Vec<String>,
}

impl Caller {
    /// A caller with no identity at all.
    pub fn anonymous() -> Self {
        Caller::default()
    }

    /// Adds a client name.
    pub fn with_client(mut self, name: impl Into<String>) -> Self {
        self.clients.push(name.into());
        self
    }

    /// Adds a scope.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Whether the caller matches `m` (an empty match matches everyone).
    pub fn matches(&self, m: &CallerMatch) -> bool {
        m.is_empty()
            || m.clients.iter().any(|c| self.clients.contains(c))
            || m.scopes.iter().any(|s| self.scopes.contains(s))
            || m.predicates.iter().any(|p| self.predicates.contains(p))
    }
}
