//! The declared-route inventory: what the service exposes, and nothing else.
//!
//! A route is declared as a FHIR interaction on a resource type, a system interaction, an
//! operation, or an extra non-FHIR route (`GET /health`). Requests are classified with the
//! same [`Classifier`] as [`ClassifyLayer`](crate::classify::ClassifyLayer); whatever isn't
//! declared is answered 404 before any handler runs, and marked as a probe for the audit layer.
//!
//! The inventory is built from the service's CapabilityStatement, and
//! [`drift`](RouteInventory::drift) compares an inventory with one, so the published
//! documentation and what is reachable can't silently part ways.

use crate::fhir::{
    Classification, Classifier, FhirRequest, Interaction, OperationLevel, ResourceType,
};
use http::{HeaderMap, Method, Uri};
use plain::{is_plain_id, plain_read_headers};
use serde_json::Value;
use std::collections::BTreeSet;

/// A CapabilityStatement that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// Not JSON, or not a CapabilityStatement.
    #[error("not a FHIR CapabilityStatement")]
    NotCapabilityStatement,
    /// It names a resource type R4 doesn't have.
    #[error("unknown resource type {0:?} in the CapabilityStatement")]
    UnknownResourceType(String),
    /// It names an interaction R4 doesn't have.
    #[error("unknown interaction {0:?} in the CapabilityStatement")]
    UnknownInteraction(String),
}

/// The bit of each interaction in a declaration mask.
const fn bit(interaction: Interaction) -> u32 {
    1 << match interaction {
        Interaction::Read => 0,
        Interaction::VRead => 1,
        Interaction::Update => 2,
        Interaction::Patch => 3,
        Interaction::Delete => 4,
        Interaction::HistoryInstance => 5,
        Interaction::HistoryType => 6,
        Interaction::HistorySystem => 7,
        Interaction::Create => 8,
        Interaction::SearchType => 9,
        Interaction::SearchSystem => 10,
        Interaction::SearchCompartment => 11,
        Interaction::Capabilities => 12,
        Interaction::Batch => 13,
        Interaction::Transaction => 14,
        Interaction::Operation => 15,
        Interaction::SmartConfiguration => 16,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DeclaredOperation {
    name: String,
    /// `None` for a system-level operation.
    resource_type: Option<ResourceType>,
}

/// What the service exposes: declared routes, everything else refused with 404 (see
/// [`crate::firewall`]).
///
/// Defaults: FHIR base `/fhir`, nothing declared but `GET [base]/metadata` (FHIR R4 §3.1.0.1:
/// every server answers it).
///
/// ```
/// use fhirwall::firewall::RouteInventory;
/// use fhirwall::fhir::{Interaction, ResourceType};
/// use http::{HeaderMap, Method};
///
/// let routes = RouteInventory::new("/fhir")
///     .declare(ResourceType::Patient, [Interaction::Read, Interaction::SearchType])
///     .extra(Method::GET, "/health");
/// let h = HeaderMap::new();
/// assert!(routes.permits(&Method::GET, &"/fhir/Patient/1".parse().unwrap(), &h));
/// assert!(routes.permits(&Method::GET, &"/health".parse().unwrap(), &h));
/// assert!(!routes.permits(&Method::DELETE, &"/fhir/Patient/1".parse().unwrap(), &h));
/// assert!(!routes.permits(&Method::GET, &"/fhir/Observation/1".parse().unwrap(), &h));
/// assert!(!routes.permits(&Method::GET, &"/debug/vars".parse().unwrap(), &h));
/// ```
#[derive(Clone, Debug)]
pub struct RouteInventory {
    bases: Vec<Classifier>,
    /// For each base: whether [`quick_at`](Self::quick_at) may judge paths under it (its
    /// classifier's URI length limit admits every path the quick shapes can have).
    quick_bases: Vec<bool>,
    /// Declared interactions by type: a mask at each type's index (its place in
    /// [`ResourceType::ALL`]), so a request's type is found without hashing.
    types: Vec<u32>,
    system: u32,
    operations: BTreeSet<DeclaredOperation>,
    compartments: BTreeSet<ResourceType>,
    extra: Vec<(Method, String)>,
}

impl RouteInventory {
    /// An inventory for a FHIR API under `base_path`, declaring only `metadata`.
    pub fn new(base_path: &str) -> Self {
        let classifier = Classifier::new(base_path);
        RouteInventory {
            quick_bases: vec![quick_eligible(&classifier)],
            bases: vec![classifier],
            types: vec![0; ResourceType::ALL.len()],
            system: bit(Interaction::Capabilities),
            operations: BTreeSet::new(),
            compartments: BTreeSet::new(),
            extra: Vec::new(),
        }
    }

    /// Also serves the same declared FHIR routes under another base path (such as a
    /// deprecated `/fhir-v0`; give it a [`Sunset`](super::Sunset) too).
    pub fn alias_base(mut self, base_path: &str) -> Self {
        let classifier = Classifier::new(base_path);
        self.quick_bases.push(quick_eligible(&classifier));
        self.bases.push(classifier);
        self
    }

    /// Uses this classifier for the primary base (to match the limits of the
    /// `ClassifyLayer` behind the firewall).
    pub fn classifier(mut self, classifier: Classifier) -> Self {
        if let Some(first) = self.quick_bases.first_mut() {
            *first = quick_eligible(&classifier);
        }
        if let Some(first) = self.bases.first_mut() {
            *first = classifier;
        }
        self
    }

    /// Declares interactions on a resource type (type-level ones, such as `Create` and
    /// `SearchType`, included).
    pub fn declare(
        mut self,
        resource_type: ResourceType,
        interactions: impl IntoIterator<Item = Interaction>,
    ) -> Self {
        if let Some(mask) = self.types.get_mut(type_index(resource_type)) {
            for i in interactions {
                *mask |= bit(i);
            }
        }
        self
    }

    /// Declares system-level interactions (`SearchSystem`, `HistorySystem`, `Batch`,
    /// `Transaction`, `SmartConfiguration`).
    pub fn declare_system(mut self, interactions: impl IntoIterator<Item = Interaction>) -> Self {
        for i in interactions {
            self.system |= bit(i);
        }
        self
    }

    /// Declares an operation (`name` without `$`): on a resource type (type and instance
    /// level), or at system level with `None`.
    pub fn operation(mut self, name: &str, resource_type: Option<ResourceType>) -> Self {
        self.operations.insert(DeclaredOperation {
            name: name.trim_start_matches('$').to_owned(),
            resource_type,
        });
        self
    }

    /// Declares compartment searches in the compartment of this type (`Patient/1/Observation`
    /// is then reachable where `Observation` declares `SearchType`).
    pub fn compartment(mut self, resource_type: ResourceType) -> Self {
        self.compartments.insert(resource_type);
        self
    }

    /// Declares a non-FHIR route: this method on exactly this path (`HEAD` follows `GET`).
    pub fn extra(mut self, method: Method, path: &str) -> Self {
        self.extra.push((method, path.to_owned()));
        self
    }

    /// An inventory declaring exactly what a CapabilityStatement (R4 JSON) lists in its
    /// `server` rest entries: each resource's interactions and operations, the system
    /// interactions and operations, and the compartments.
    pub fn from_capability_statement(
        base_path: &str,
        json: &[u8],
    ) -> Result<Self, CapabilityError> {
        let cs: Value =
            serde_json::from_slice(json).map_err(|_| CapabilityError::NotCapabilityStatement)?;
        if cs.get("resourceType").and_then(Value::as_str) != Some("CapabilityStatement") {
            return Err(CapabilityError::NotCapabilityStatement);
        }
        let mut inv = RouteInventory::new(base_path);
        let rests = cs.get("rest").and_then(Value::as_array);
        for rest in rests.into_iter().flatten() {
            if rest.get("mode").and_then(Value::as_str) != Some("server") {
                continue;
            }
            for resource in array(rest, "resource") {
                let name = resource.get("type").and_then(Value::as_str).unwrap_or("");
                let rt = ResourceType::from_name(name)
                    .ok_or_else(|| CapabilityError::UnknownResourceType(clip(name)))?;
                let mut mask = 0;
                for code in codes(resource, "interaction") {
                    let i = Interaction::from_restful_code(&Interaction::TYPE_RESTFUL, code)
                        .ok_or_else(|| CapabilityError::UnknownInteraction(clip(code)))?;
                    mask |= bit(i);
                }
                if let Some(m) = inv.types.get_mut(type_index(rt)) {
                    *m |= mask;
                }
                for name in operation_names(resource) {
                    inv = inv.operation(name, Some(rt));
                }
            }
            for code in codes(rest, "interaction") {
                let i = Interaction::from_restful_code(&Interaction::SYSTEM_RESTFUL, code)
                    .ok_or_else(|| CapabilityError::UnknownInteraction(clip(code)))?;
                inv.system |= bit(i);
            }
            for name in operation_names(rest) {
                inv = inv.operation(name, None);
            }
            for url in array(rest, "compartment").filter_map(Value::as_str) {
                let name = url.rsplit('/').next().unwrap_or("");
                // Canonical URLs name the compartment in lower case (`…/patient`).
                let mut chars = name.chars();
                let capitalised: String = chars
                    .next()
                    .map(|c| c.to_ascii_uppercase())
                    .into_iter()
                    .chain(chars)
                    .collect();
                let rt = ResourceType::from_name(&capitalised)
                    .ok_or_else(|| CapabilityError::UnknownResourceType(clip(name)))?;
                inv.compartments.insert(rt);
            }
        }
        Ok(inv)
    }

    /// The differences between this inventory's FHIR routes and a CapabilityStatement's, one
    /// line each: `reachable but undocumented: …` or `documented but unreachable: …`. Empty
    /// when they agree. Extra non-FHIR routes are not compared.
    pub fn drift(&self, capability_statement: &[u8]) -> Result<Vec<String>, CapabilityError> {
        let base = self.bases.first().map_or("/fhir", |c| c.base_path());
        let documented = RouteInventory::from_capability_statement(base, capability_statement)?;
        let ours = self.listing();
        let theirs = documented.listing();
        let mut out: Vec<String> = ours
            .difference(&theirs)
            .map(|r| format!("reachable but undocumented: {r}"))
            .collect();
        out.extend(
            theirs
                .difference(&ours)
                .map(|r| format!("documented but unreachable: {r}")),
        );
        Ok(out)
    }

    /// Every declared FHIR route, one line each (`Patient read`, `system batch`,
    /// `$everything on Patient`, `compartment Patient`).
    pub fn listing(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (rt, mask) in ResourceType::ALL.iter().zip(&self.types) {
            for i in Interaction::TYPE_RESTFUL {
                if mask & bit(i) != 0 {
                    out.insert(format!("{} {}", rt.as_str(), i.as_str()));
                }
            }
        }
        for i in Interaction::SYSTEM_RESTFUL {
            if self.system & bit(i) != 0 {
                out.insert(format!("system {}", i.as_str()));
            }
        }
        for op in &self.operations {
            match op.resource_type {
                Some(rt) => out.insert(format!("${} on {}", op.name, rt.as_str())),
                None => out.insert(format!("${} on system", op.name)),
            };
        }
        for rt in &self.compartments {
            out.insert(format!("compartment {}", rt.as_str()));
        }
        out
    }

    /// Whether the request is to a declared route.
    pub fn permits(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
        self.check(method, uri, headers) != RouteCheck::Undeclared
    }

    pub(crate) fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> RouteCheck {
        self.check_at(method, uri, uri.path(), headers)
    }

    /// [`check`](Self::check) with `uri.path()` worked out by the caller (it is not free:
    /// an empty path reads as `/`).
    #[inline]
    pub(crate) fn check_at(
        &self,
        method: &Method,
        uri: &Uri,
        path: &str,
        headers: &HeaderMap,
    ) -> RouteCheck {
        for (m, p) in &self.extra {
            // The path first: a length compare rejects it for almost every request.
            if p == path && (m == method || (*m == Method::GET && method == Method::HEAD)) {
                return RouteCheck::Declared;
            }
        }
        // The quick shapes admit no `%` (a type name, a plain id, a base without one), so
        // only the rest is searched for one.
        match self.quick_at(method, uri, path, headers) {
            Some(quick) => quick,
            None => self.check_classified(method, uri, headers),
        }
    }

    /// What [`quick_at`](Self::quick_at) leaves: out of line, so the quick path's callers keep a
    /// small stack frame (the classifier's is large, and saving it costs on every request).
    #[inline(never)]
    fn check_classified(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> RouteCheck {
        // No FHIR path needs a percent-escape: types, ids, `_history`, `$op` are all
        // unreserved characters. An escape is someone hoping two parsers disagree.
        if uri.path().contains('%') {
            return RouteCheck::Undeclared;
        }
        self.classified(method, uri, headers)
    }

    /// [`quick_at`](Self::quick_at) for the tests.
    #[cfg(test)]
    fn quick(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<RouteCheck> {
        self.quick_at(method, uri, uri.path(), headers)
    }

    /// The two shapes most requests have, `GET`/`HEAD` of `[base]/[type]/[id]` (read) and
    /// `[base]/[type]` (search), with no query and no method-override header, judged without
    /// building a [`FhirRequest`]. `None` for anything else, which the classifier judges.
    /// `path` is `uri.path()`.
    ///
    /// The property test `quick_agrees_with_the_classifier` holds this to the classifier's
    /// answer on generated requests.
    #[inline]
    fn quick_at(
        &self,
        method: &Method,
        uri: &Uri,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<RouteCheck> {
        if (*method != Method::GET && *method != Method::HEAD)
            || uri.query().is_some_and(|q| !q.is_empty())
            || !plain_read_headers(headers)
        {
            return None;
        }
        let (i, base) = self.base_for(path)?;
        if !self.quick_bases.get(i).copied().unwrap_or(false) {
            return None;
        }
        let rest = path.get(base.len()..)?.strip_prefix('/')?;
        // A byte scan: `split_once` goes through the generic pattern machinery.
        let (ty, id) = match rest.bytes().position(|b| b == b'/') {
            Some(at) => (rest.get(..at)?, Some(rest.get(at + 1..)?)),
            None => (rest, None),
        };
        let rt = ResourceType::from_name(ty)?;
        let interaction = match id {
            None => Interaction::SearchType,
            Some(id) if is_plain_id(id) => Interaction::Read,
            Some(_) => return None,
        };
        Some(if self.type_declares(rt, interaction) {
            RouteCheck::Declared
        } else {
            RouteCheck::Undeclared
        })
    }

    /// The index and path of the base `path` is under (the longest when aliases nest; of
    /// equal ones the last, as the classifier's choice in [`classified`](Self::classified)).
    #[inline]
    fn base_for(&self, path: &str) -> Option<(usize, &str)> {
        // A plain loop: the iterator chain's closures cost more than the few bases it visits.
        let mut longest: Option<(usize, &str)> = None;
        for (i, c) in self.bases.iter().enumerate() {
            let base = c.base_path();
            if super::allowlist::under(path, base)
                && longest.is_none_or(|(_, l)| base.len() >= l.len())
            {
                longest = Some((i, base));
            }
        }
        longest
    }

    /// The classifier's judgement of the route.
    fn classified(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> RouteCheck {
        let path = uri.path();
        let Some(classifier) = self
            .bases
            .iter()
            .filter(|c| super::allowlist::under(path, c.base_path()))
            .max_by_key(|c| c.base_path().len())
        else {
            return RouteCheck::Undeclared;
        };
        match classifier.classify_head(method, uri, headers) {
            Ok(Classification::Done(request)) => self.declared(&request),
            Ok(Classification::NeedsBody(pending)) => self.declared(pending.request()),
            Err(refusal) => {
                use crate::fhir::UnclassifiedKind as K;
                match refusal.kind() {
                    // The route is readable, but the request is malformed in another way: judge
                    // the route alone, and let the ClassifyLayer behind refuse the rest with
                    // the precise reason.
                    K::BadQuery | K::UriTooLong | K::UnsupportedMediaType => {
                        self.route_alone(classifier, method, path, headers)
                    }
                    _ => RouteCheck::Undeclared,
                }
            }
        }
    }

    /// The route of a request whose query or content type is at fault (an error path, so the
    /// copies don't matter).
    fn route_alone(
        &self,
        classifier: &Classifier,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> RouteCheck {
        let Ok(uri) = Uri::try_from(path) else {
            return RouteCheck::Undeclared;
        };
        let mut headers = headers.clone();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        match classifier.classify_head(method, &uri, &headers) {
            Ok(Classification::Done(request)) => self.declared(&request),
            Ok(Classification::NeedsBody(pending)) => self.declared(pending.request()),
            Err(_) => RouteCheck::Undeclared,
        }
        .malformed()
    }

    fn declared(&self, request: &FhirRequest) -> RouteCheck {
        let interaction = request.interaction();
        let ok = match interaction {
            Interaction::Capabilities
            | Interaction::SearchSystem
            | Interaction::HistorySystem
            | Interaction::SmartConfiguration => self.system & bit(interaction) != 0,
            // The head can't tell a batch from a transaction; either declared lets the body
            // be read, and the entries are classified by the ClassifyLayer.
            Interaction::Batch | Interaction::Transaction => {
                self.system & (bit(Interaction::Batch) | bit(Interaction::Transaction)) != 0
            }
            Interaction::Operation => match request.operation() {
                Some(op) => {
                    let rt = match op.level {
                        OperationLevel::System => None,
                        OperationLevel::Type | OperationLevel::Instance => request.resource_type(),
                    };
                    self.operations
                        .iter()
                        .any(|d| d.name == op.name && d.resource_type == rt)
                }
                None => false,
            },
            Interaction::SearchCompartment => match request.compartment() {
                Some(c) if self.compartments.contains(&c.resource_type) => match c.target {
                    Some(t) => self.type_declares(t, Interaction::SearchType),
                    None => true,
                },
                _ => false,
            },
            other => request
                .resource_type()
                .is_some_and(|t| self.type_declares(t, other)),
        };
        if ok {
            RouteCheck::Declared
        } else {
            RouteCheck::Undeclared
        }
    }

    #[inline]
    fn type_declares(&self, rt: ResourceType, interaction: Interaction) -> bool {
        self.types
            .get(type_index(rt))
            .is_some_and(|m| m & bit(interaction) != 0)
    }
}

/// A type's place in [`ResourceType::ALL`] (the enum is declared in that order; a unit test
/// holds it there).
fn type_index(rt: ResourceType) -> usize {
    rt as usize
}

/// Whether the classifier accepts the longest path [`RouteInventory::quick_at`] judges
/// (`[base]/<longest type name>/<64-character id>`): a classifier configured with a shorter URI
/// limit refuses some of them, so its base is left to the classifier. So is a base with a `%`,
/// which every path under it is refused for.
fn quick_eligible(classifier: &Classifier) -> bool {
    if classifier.base_path().contains('%') {
        return false;
    }
    let Some(longest) = ResourceType::ALL
        .iter()
        .max_by_key(|t| t.as_str().len())
        .map(|t| t.as_str())
    else {
        return false;
    };
    let path = format!("{}/{longest}/{}", classifier.base_path(), "a".repeat(64));
    let Ok(uri) = Uri::try_from(path) else {
        return false;
    };
    matches!(
        classifier.classify_head(&Method::GET, &uri, &HeaderMap::new()),
        Ok(Classification::Done(_))
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteCheck {
    Declared,
    Undeclared,
    /// A declared route with a malformed query or content type.
    Malformed,
}

impl RouteCheck {
    fn malformed(self) -> Self {
        match self {
            RouteCheck::Declared => RouteCheck::Malformed,
            other => other,
        }
    }
}

fn array<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> + 'a {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn codes<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a str> + 'a {
    array(v, key).filter_map(|i| i.get("code").and_then(Value::as_str))
}

fn operation_names(v: &Value) -> impl Iterator<Item = &str> + '_ {
    array(v, "operation").filter_map(|o| o.get("name").and_then(Value::as_str))
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

mod plain;
#[cfg(test)]
mod tests;
