//! [`Redactor`]: a [`Policy`] checked against the R4 tables and ready to run, and the
//! [`Plan`] it makes for one caller.

use super::builder::RedactorBuilder;
use super::check;
use super::member::RootKeys;
use super::path::Step;
use super::policy::{Action, Caller, CallerMatch, LabelRule, Policy, Required, Rule};
use crate::fhir::tables::ElementDef;
use crate::fhir::ResourceType;
use http::Extensions;
use std::fmt;
use std::sync::Arc;

/// Default largest body the redactor reads: 16 MiB.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;
/// Default deepest JSON nesting accepted: 100 (FHIR resources rarely pass 20).
pub const DEFAULT_MAX_DEPTH: usize = 100;
/// The hard ceiling on [`Redactor::max_depth`], keeping the walk's recursion shallow.
pub const MAX_DEPTH_CEILING: usize = 512;

/// Why a policy was refused when compiled. The text names the rule and path at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid redaction policy: {0}")]
pub struct PolicyError(pub String);

/// What a custom predicate sees: the request extensions (where the identity and SMART layers
/// put who is asking) and the caller built so far.
pub type Predicate = dyn Fn(&Extensions, &Caller) -> bool + Send + Sync;

/// An element action after compilation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ElemAction {
    Remove,
    /// Masks; the bytes of the fixed value, if any.
    Mask(Option<Vec<u8>>),
    YearOnly,
}

#[derive(Clone, Debug)]
pub(crate) struct Selector {
    pub(crate) root: Option<String>,
    pub(crate) steps: Vec<Step>,
    pub(crate) action: ElemAction,
    /// Remove on a required element masks instead.
    pub(crate) required: bool,
    pub(crate) rule: usize,
}

pub(crate) struct Inner {
    pub(crate) policy: Policy,
    pub(crate) selectors: Vec<Selector>,
    pub(crate) predicates: Vec<(String, Arc<Predicate>)>,
    pub(crate) max_body: usize,
    pub(crate) max_depth: usize,
    /// The plans made so far, by which rules and label rules apply: callers fall into a few
    /// groups, so a request finds its plan made instead of building one.
    pub(crate) plans: PlanCache,
}

/// The most distinct plans kept; past this (many rules naming many different callers) plans
/// are built per request, as before there was a cache.
const MAX_CACHED_PLANS: usize = 64;

/// Plans by the set of rules and label rules that apply (one bit each, policies of at most
/// 128 rules and label rules).
#[derive(Default)]
pub(crate) struct PlanCache(std::sync::RwLock<Vec<(u128, Arc<Compiled>)>>);

impl PlanCache {
    fn get(&self, key: u128) -> Option<Arc<Compiled>> {
        let plans = self.0.read().ok()?;
        plans
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, c)| c.clone())
    }

    fn put(&self, key: u128, compiled: &Arc<Compiled>) {
        if let Ok(mut plans) = self.0.write() {
            if plans.len() < MAX_CACHED_PLANS && plans.iter().all(|(k, _)| *k != key) {
                plans.push((key, compiled.clone()));
            }
        }
    }
}

/// A compiled redaction [`Policy`]; cheap to clone (shared behind an `Arc`).
///
/// ```
/// use fhirwall::redact::{Action, Caller, Policy, Redacted, Redactor, Rule};
///
/// let policy = Policy {
///     rules: vec![Rule::new(["Patient.telecom"], Action::Remove).unwrap()],
///     ..Policy::default()
/// };
/// let redactor = Redactor::new(policy).unwrap();
/// let plan = redactor.plan(&Caller::anonymous());
/// let out = plan.redact(br#"{"resourceType":"Patient","telecom":[{"value":"1"}],"active":true}"#).unwrap();
/// let Redacted::Changed { body, .. } = out else { panic!() };
/// assert_eq!(
///     std::str::from_utf8(&body.to_vec()).unwrap(),
///     r#"{"resourceType":"Patient","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"REDACTED"}]},"active":true}"#
/// );
/// ```
#[derive(Clone)]
pub struct Redactor {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("policy", &self.inner.policy)
            .field(
                "predicates",
                &self
                    .inner
                    .predicates
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
            .field("max_body", &self.inner.max_body)
            .field("max_depth", &self.inner.max_depth)
            .finish()
    }
}

fn mask_value_fits(def: Option<&ElementDef>, value: &serde_json::Value) -> bool {
    let Some(def) = def else {
        return !value.is_object() && !value.is_array() && !value.is_null();
    };
    def.types.iter().any(|t| match *t {
        "boolean" => value.is_boolean(),
        "integer" | "positiveInt" | "unsignedInt" => value.is_i64() || value.is_u64(),
        "decimal" => value.is_number(),
        "string" | "code" | "uri" | "url" | "canonical" | "id" | "oid" | "uuid" | "markdown"
        | "base64Binary" | "date" | "dateTime" | "instant" | "time" => value.is_string(),
        _ => false,
    })
}

impl Redactor {
    /// Compiles a policy: every path must name an R4 element of its root type (so a typo can't
    /// silently disable a redaction), and mask values must fit the element's type. The same
    /// as `Redactor::builder(policy).build()`: a policy naming a custom predicate is refused
    /// here, as no predicate is registered yet; use [`Redactor::builder`] for those.
    pub fn new(policy: Policy) -> Result<Self, PolicyError> {
        Redactor::builder(policy).build()
    }

    /// A builder, to register custom predicates before the policy is checked.
    pub fn builder(policy: Policy) -> RedactorBuilder {
        RedactorBuilder {
            policy,
            predicates: Vec::new(),
            declared: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        // Builders run before the redactor is shared; a shared one is copied first.
        if Arc::get_mut(&mut self.inner).is_none() {
            let copy = Inner {
                policy: self.inner.policy.clone(),
                selectors: self.inner.selectors.clone(),
                predicates: self.inner.predicates.clone(),
                max_body: self.inner.max_body,
                max_depth: self.inner.max_depth,
                plans: PlanCache::default(),
            };
            self.inner = Arc::new(copy);
        }
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner,
            None => unreachable_inner(),
        }
    }

    /// Registers one more named custom predicate on a built redactor. It runs on the request,
    /// before the inner service is called. The policy was checked when built, so it can't refer
    /// to this one: register predicates the policy names with [`RedactorBuilder::predicate`].
    pub fn predicate(
        mut self,
        name: impl Into<String>,
        predicate: impl Fn(&Extensions, &Caller) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.inner_mut()
            .predicates
            .push((name.into(), Arc::new(predicate)));
        self
    }

    /// The largest body read for redaction (default [`DEFAULT_MAX_BODY`]); a larger one is
    /// refused, never passed on.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.inner_mut().max_body = bytes;
        self
    }

    /// The deepest JSON nesting accepted (default [`DEFAULT_MAX_DEPTH`], at most
    /// [`MAX_DEPTH_CEILING`]).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.inner_mut().max_depth = depth.clamp(1, MAX_DEPTH_CEILING);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The configured body limit.
    pub fn body_limit(&self) -> usize {
        self.inner.max_body
    }

    /// Fills in `caller.predicates` with the registered predicates that hold for this request.
    pub fn evaluate_predicates(&self, extensions: &Extensions, caller: &mut Caller) {
        for (name, predicate) in &self.inner.predicates {
            if predicate(extensions, caller) && !caller.predicates.contains(name) {
                caller.predicates.push(name.clone());
            }
        }
    }

    /// What this policy does for this caller.
    pub fn plan(&self, caller: &Caller) -> Plan {
        let policy = &self.inner.policy;
        let applies = |rule: &Rule| {
            rule.when.as_ref().is_none_or(|w| caller.matches(w))
                && !rule
                    .except
                    .as_ref()
                    .is_some_and(|e| !e.is_empty() && caller.matches(e))
        };
        let counted = policy.rules.len() + policy.labels.len() <= 128;
        let mut key = 0u128;
        if counted {
            let labels = policy.labels.iter().map(|l| !excepted(caller, &l.except));
            for (bit, on) in policy.rules.iter().map(applies).chain(labels).enumerate() {
                key |= u128::from(on) << bit;
            }
            if let Some(compiled) = self.inner.plans.get(key) {
                return Plan {
                    redactor: self.clone(),
                    compiled,
                };
            }
        }
        let active: Vec<bool> = policy.rules.iter().map(applies).collect();
        let selectors: Vec<usize> = self
            .inner
            .selectors
            .iter()
            .enumerate()
            .filter(|(_, s)| active.get(s.rule).copied().unwrap_or(false))
            .map(|(i, _)| i)
            .collect();
        let hidden_types = policy
            .rules
            .iter()
            .zip(&active)
            .filter(|(r, a)| **a && r.action == Action::RemoveResource)
            .flat_map(|(r, _)| r.resources.iter().cloned())
            .collect();
        let labels = policy
            .labels
            .iter()
            .enumerate()
            .filter(|(_, l)| !excepted(caller, &l.except))
            .map(|(i, _)| i)
            .collect();
        let root_of = |i: &usize| self.inner.selectors.get(*i).and_then(|s| s.root.as_deref());
        let any_root: Vec<usize> = selectors
            .iter()
            .copied()
            .filter(|i| root_of(i).is_none())
            .collect();
        let mut by_root: Vec<(String, Vec<usize>)> = Vec::new();
        for i in &selectors {
            if let Some(root) = root_of(i) {
                if by_root.iter().all(|(r, _)| r != root) {
                    // In policy order, the `*` selectors among them: merged actions keep the
                    // first of two of the same strength.
                    let for_root = selectors
                        .iter()
                        .copied()
                        .filter(|j| root_of(j).is_none_or(|r| r == root))
                        .collect();
                    by_root.push((root.to_string(), for_root));
                }
            }
        }
        let all = &self.inner.selectors;
        let compiled = Arc::new(Compiled {
            selectors,
            hidden_types,
            labels,
            any_keys: RootKeys::new(all, &any_root),
            any_root,
            by_root: by_root
                .into_iter()
                .map(|(root, states)| {
                    let keys = RootKeys::new(all, &states);
                    (root, states, keys)
                })
                .collect(),
        });
        if counted {
            self.inner.plans.put(key, &compiled);
        }
        Plan {
            redactor: self.clone(),
            compiled,
        }
    }
}

fn excepted(caller: &Caller, except: &CallerMatch) -> bool {
    !except.is_empty() && caller.matches(except)
}

#[cold]
fn unreachable_inner() -> ! {
    // `Arc::get_mut` succeeds right after a fresh `Arc::new`; this is never reached.
    std::process::abort()
}

pub(super) fn compile_rule(
    index: usize,
    rule: &Rule,
    out: &mut Vec<Selector>,
) -> Result<(), PolicyError> {
    let err = |m: String| PolicyError(format!("rule {index}: {m}"));
    if rule.action == Action::RemoveResource {
        if !rule.paths.is_empty() {
            return Err(err("remove_resource takes resources, not paths".into()));
        }
        for t in &rule.resources {
            if t != "*" && ResourceType::from_name(t).is_none() {
                return Err(err(format!("unknown resource type {t}")));
            }
        }
        return Ok(());
    }
    if !rule.resources.is_empty() {
        return Err(err("element rules name their type in their paths".into()));
    }
    for path in &rule.paths {
        if let [Step::Element { name, .. }, rest @ ..] = path.steps() {
            let security =
                matches!(rest.first(), Some(Step::Element { name, .. }) if name == "security");
            if name == "meta" && (rest.is_empty() || security) {
                return Err(err(format!(
                    "{path}: meta.security carries the REDACTED label"
                )));
            }
        }
        let def = check::check_path(path).map_err(err)?;
        let action = match &rule.action {
            Action::Remove => ElemAction::Remove,
            Action::YearOnly => {
                if let Some(d) = def {
                    if !d.types.iter().any(|t| matches!(*t, "date" | "dateTime")) {
                        return Err(err(format!("{path}: year_only needs a date or dateTime")));
                    }
                }
                ElemAction::YearOnly
            }
            Action::Mask { value: None } => ElemAction::Mask(None),
            Action::Mask { value: Some(v) } => {
                if !mask_value_fits(def, v) {
                    return Err(err(format!("{path}: the mask value does not fit the type")));
                }
                let bytes = serde_json::to_vec(v).map_err(|_| err("bad mask value".into()))?;
                ElemAction::Mask(Some(bytes))
            }
            Action::RemoveResource => continue,
        };
        out.push(Selector {
            root: path.root().map(str::to_string),
            steps: path.steps().to_vec(),
            action,
            required: rule.required == Required::Mask && def.is_some_and(|d| d.min >= 1),
            rule: index,
        });
    }
    Ok(())
}

/// What the policy does for one caller: the element selectors and visibility rules that
/// apply. Made on the request by [`Redactor::plan`], run on the response.
#[derive(Clone, Debug)]
pub struct Plan {
    pub(crate) redactor: Redactor,
    pub(crate) compiled: Arc<Compiled>,
}

/// The part of a [`Plan`] that depends on the caller, shared by every caller to whom the same
/// rules apply.
#[derive(Debug)]
pub(crate) struct Compiled {
    selectors: Vec<usize>,
    hidden_types: Vec<String>,
    labels: Vec<usize>,
    /// The selectors with a `*` root, for a resource of a type no selector names.
    any_root: Vec<usize>,
    /// [`Compiled::any_root`] tabled by key.
    any_keys: RootKeys,
    /// For each type a selector names: its selectors and the `*` ones, in policy order, and
    /// them tabled by key.
    by_root: Vec<(String, Vec<usize>, RootKeys)>,
}

impl Plan {
    /// Whether nothing applies to this caller (responses pass untouched, unbuffered).
    pub fn is_empty(&self) -> bool {
        let c = &self.compiled;
        c.selectors.is_empty() && c.hidden_types.is_empty() && c.labels.is_empty()
    }

    /// Whether this plan may withhold whole resources (by type or by label).
    pub(crate) fn can_hide(&self) -> bool {
        !self.compiled.hidden_types.is_empty() || !self.compiled.labels.is_empty()
    }

    /// Whether any element selector applies to this caller.
    pub(crate) fn has_selectors(&self) -> bool {
        !self.compiled.selectors.is_empty()
    }

    /// The selectors that apply to a resource of type `rt`, in policy order, and them tabled
    /// by key.
    pub(crate) fn selectors_for(&self, rt: &[u8]) -> (&[usize], &RootKeys) {
        let c = &self.compiled;
        c.by_root
            .iter()
            .find(|(r, _, _)| r.as_bytes() == rt)
            .map_or((&c.any_root, &c.any_keys), |(_, v, k)| (v, k))
    }

    /// The root type of each selector that applies (`None` for `*`).
    pub(crate) fn selector_roots(&self) -> impl Iterator<Item = Option<&str>> {
        self.selectors_with_root().map(|(root, _)| root)
    }

    /// Each selector that applies: its root type (`None` for `*`) and its steps.
    pub(crate) fn selectors_with_root(&self) -> impl Iterator<Item = (Option<&str>, &[Step])> {
        self.compiled
            .selectors
            .iter()
            .filter_map(|&i| self.selector(i))
            .map(|s| (s.root.as_deref(), s.steps.as_slice()))
    }

    #[inline]
    pub(crate) fn selector(&self, i: usize) -> Option<&Selector> {
        self.redactor.inner.selectors.get(i)
    }

    pub(crate) fn label_rules(&self) -> impl Iterator<Item = &LabelRule> {
        self.compiled
            .labels
            .iter()
            .filter_map(|&i| self.redactor.inner.policy.labels.get(i))
    }

    pub(crate) fn hides_type(&self, rt: &[u8]) -> bool {
        self.compiled
            .hidden_types
            .iter()
            .any(|t| t == "*" || t.as_bytes() == rt)
    }
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
