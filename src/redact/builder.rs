//! [`RedactorBuilder`]: registers the custom predicates a policy names, then checks the whole
//! policy before a [`Redactor`] is made.

use super::check;
use super::compile::{compile_rule, Inner, PolicyError, Predicate, Redactor, MAX_DEPTH_CEILING};
use super::policy::{Caller, Policy};
use http::Extensions;
use std::fmt;
use std::sync::Arc;

/// Builds a [`Redactor`]: registers the custom predicates a policy names, then checks the
/// whole policy at [`build`](RedactorBuilder::build).
///
/// A name the policy uses must be known when it is built: a typo in a predicate name would
/// otherwise disable a `when` rule for everyone, silently.
///
/// ```
/// use fhirwall::redact::{Action, Caller, CallerMatch, Policy, Redactor, Rule};
///
/// let policy = Policy {
///     rules: vec![Rule::new(["Patient.telecom"], Action::Remove)
///         .unwrap()
///         .except(CallerMatch { predicates: vec!["on-call".into()], ..Default::default() })],
///     ..Policy::default()
/// };
/// assert!(Redactor::new(policy.clone()).is_err()); // "on-call" is not registered
/// let redactor = Redactor::builder(policy)
///     .predicate("on-call", |ext: &http::Extensions, _: &Caller| ext.get::<u8>().is_some())
///     .build()
///     .unwrap();
/// # let _ = redactor;
/// ```
#[must_use = "call build() to get the Redactor"]
pub struct RedactorBuilder {
    pub(super) policy: Policy,
    pub(super) predicates: Vec<(String, Arc<Predicate>)>,
    pub(super) declared: Vec<String>,
    pub(super) max_body: usize,
    pub(super) max_depth: usize,
}

impl fmt::Debug for RedactorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactorBuilder")
            .field("policy", &self.policy)
            .field(
                "predicates",
                &self.predicates.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("declared", &self.declared)
            .finish()
    }
}

impl RedactorBuilder {
    /// Registers a named custom predicate that [`CallerMatch::predicates`](super::CallerMatch::predicates) can refer to. It
    /// runs on the request, before the inner service is called.
    pub fn predicate(
        mut self,
        name: impl Into<String>,
        predicate: impl Fn(&Extensions, &Caller) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicates.push((name.into(), Arc::new(predicate)));
        self
    }

    /// Declares a predicate name that something else puts into [`Caller::predicates`] (a
    /// [`CallerExtractor`](super::CallerExtractor), or a [`Caller`] in the request
    /// extensions), so the policy may use it.
    pub fn declare_predicate(mut self, name: impl Into<String>) -> Self {
        self.declared.push(name.into());
        self
    }

    /// The largest body read for redaction (default [`DEFAULT_MAX_BODY`](super::DEFAULT_MAX_BODY)).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The deepest JSON nesting accepted (default [`DEFAULT_MAX_DEPTH`](super::DEFAULT_MAX_DEPTH), at most
    /// [`MAX_DEPTH_CEILING`]).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth.clamp(1, MAX_DEPTH_CEILING);
        self
    }

    /// Checks and compiles the policy: paths against the R4 tables, mask values against the
    /// elements' types, and every client name, scope and predicate name (an unknown predicate
    /// is an error naming the rule and the name).
    pub fn build(self) -> Result<Redactor, PolicyError> {
        let policy = self.policy;
        let known: Vec<String> = self
            .predicates
            .iter()
            .map(|(n, _)| n.clone())
            .chain(self.declared.iter().cloned())
            .collect();
        check::check_names(&policy, &known).map_err(PolicyError)?;
        let mut selectors = Vec::new();
        for (index, rule) in policy.rules.iter().enumerate() {
            compile_rule(index, rule, &mut selectors)?;
        }
        Ok(Redactor {
            inner: Arc::new(Inner {
                policy,
                selectors,
                predicates: self.predicates,
                max_body: self.max_body,
                max_depth: self.max_depth,
                plans: Default::default(),
            }),
        })
    }
}
