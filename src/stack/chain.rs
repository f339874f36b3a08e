//! [`Fhirwall`], the layer, and the named types of the service it builds.

#[allow(unused_imports)]
use super::optional::{BodyShape, Optional, Unchanged, WrapBoth, WrapResponse};
use crate::classify::{Classify, ClassifyLayer};
use std::fmt;
use std::marker::PhantomData;
use tower_layer::Layer;

#[cfg(feature = "audit")]
use super::decisions::NoteDecisions;
#[cfg(feature = "audit")]
use crate::audit::{Audit, AuditCapture, AuditCaptureLayer, AuditLayer};
#[cfg(feature = "firewall")]
use crate::firewall::{Firewall, FirewallLayer, SecurityHeaders};
#[cfg(feature = "mtls")]
use crate::identity::{TrustedClientLayer, TrustedClientService};
#[cfg(feature = "limit")]
use crate::limit::{Budget, BudgetLayer, BudgetStore};
#[cfg(feature = "redact")]
use crate::redact::{Redact, RedactLayer};
#[cfg(feature = "smart")]
use crate::smart::{Smart, SmartLayer, TokenGate, TokenGateLayer};
#[cfg(feature = "validate")]
use crate::validate::{Validate, ValidateLayer};

/// The budget store a [`Fhirwall`] uses unless told otherwise: the in-memory
/// [`MemoryStore`](crate::limit::MemoryStore).
#[cfg(feature = "limit")]
pub type DefaultStore = crate::limit::MemoryStore;
/// The budget store type parameter when the `limit` feature is off (there are no budgets).
#[cfg(not(feature = "limit"))]
pub type DefaultStore = ();

/// What a [`Fhirwall`]'s store type parameter must be: a
/// [`BudgetStore`](crate::limit::BudgetStore) with the `limit` feature, anything without it.
#[cfg(feature = "limit")]
pub trait StackStore: BudgetStore {}
#[cfg(feature = "limit")]
impl<T: BudgetStore> StackStore for T {}
/// What a [`Fhirwall`]'s store type parameter must be: anything, as the `limit` feature is off.
#[cfg(not(feature = "limit"))]
pub trait StackStore: Clone + Send + Sync + 'static {}
#[cfg(not(feature = "limit"))]
impl<T: Clone + Send + Sync + 'static> StackStore for T {}

/// Names the first of a pair; lets [`BudgetStep`] mention the store type even when the `limit`
/// feature is off (a type alias must use each of its parameters).
pub trait First {
    /// The first type.
    type Out;
}
impl<A, B> First for (A, B) {
    type Out = A;
}

/// The audit capture around the handler (innermost), when audit is on.
#[cfg(feature = "audit")]
pub type CaptureStep<S> = Optional<AuditCapture<S>, S, Unchanged>;
/// No audit capture (feature `audit` off).
#[cfg(not(feature = "audit"))]
pub type CaptureStep<S> = S;

/// The redaction step.
#[cfg(feature = "redact")]
pub type RedactStep<S> = Optional<Redact<S>, S, WrapResponse>;
/// No redaction step (feature `redact` off).
#[cfg(not(feature = "redact"))]
pub type RedactStep<S> = S;

/// The validation step.
#[cfg(feature = "validate")]
pub type ValidateStep<S> = Optional<Validate<S>, S, WrapBoth>;
/// No validation step (feature `validate` off).
#[cfg(not(feature = "validate"))]
pub type ValidateStep<S> = S;

/// The budget step.
#[cfg(feature = "limit")]
pub type BudgetStep<S, St> = Optional<Budget<S, St>, S, super::optional::Budgeted>;
/// No budget step (feature `limit` off).
#[cfg(not(feature = "limit"))]
pub type BudgetStep<S, St> = <(S, St) as First>::Out;

/// The firewall's client-scoped rules, where the client is known (inside identity and smart).
#[cfg(feature = "firewall")]
pub type ClientRulesStep<S> = Optional<SecurityHeaders<Firewall<S>>, S, WrapResponse>;
/// No client-scoped firewall rules (feature `firewall` off).
#[cfg(not(feature = "firewall"))]
pub type ClientRulesStep<S> = S;

/// The SMART step.
#[cfg(feature = "smart")]
pub type SmartStep<S> = Optional<Smart<S>, S, WrapBoth>;
/// No SMART step (feature `smart` off).
#[cfg(not(feature = "smart"))]
pub type SmartStep<S> = S;

/// The SMART token gate: 401 before classification reads a body, for requests without a
/// valid token.
#[cfg(feature = "smart")]
pub type GateStep<S> = Optional<TokenGate<S>, S, WrapResponse>;
/// No token gate (feature `smart` off).
#[cfg(not(feature = "smart"))]
pub type GateStep<S> = S;

/// The trusted-client (mTLS) step.
#[cfg(feature = "mtls")]
pub type IdentityStep<S> = Optional<TrustedClientService<S>, S, WrapResponse>;
/// No trusted-client step (feature `mtls` off).
#[cfg(not(feature = "mtls"))]
pub type IdentityStep<S> = S;

/// The firewall's edge checks (transport, addresses, routes, sunsets) and security headers.
#[cfg(feature = "firewall")]
pub type FirewallStep<S> = Optional<SecurityHeaders<Firewall<S>>, S, WrapResponse>;
/// No firewall step (feature `firewall` off).
#[cfg(not(feature = "firewall"))]
pub type FirewallStep<S> = S;

/// The audit step (outermost), with [`NoteDecisions`] just inside it.
#[cfg(feature = "audit")]
pub type AuditStep<S> = Optional<Audit<NoteDecisions<S>>, S, Unchanged>;
/// No audit step (feature `audit` off).
#[cfg(not(feature = "audit"))]
pub type AuditStep<S> = S;

/// The service [`Fhirwall`] wraps around `S`: every step of [`Fhirwall::ORDER`], each one an
/// [`Optional`] that is a pass-through when its layer was left out. No boxing anywhere.
pub type FhirwallService<S, St> = AuditStep<
    FirewallStep<
        IdentityStep<
            GateStep<
                Classify<
                    SmartStep<
                        ClientRulesStep<BudgetStep<ValidateStep<RedactStep<CaptureStep<S>>>, St>>,
                    >,
                >,
            >,
        >,
    >,
>;

/// The whole fhirwall stack as one [`Layer`]; built by [`Fhirwall::builder`], see the
/// [module docs](super).
///
/// `St` is the budget store ([`MemoryStore`](crate::limit::MemoryStore) unless
/// [`FhirwallBuilder::budgets`](super::FhirwallBuilder::budgets) was given another, such as
/// `RedisStore`). It stays a type parameter, rather than being erased behind a trait object,
/// so that every budget decision is a static call into the store and the store's futures are
/// not boxed. Clones share all state (caches, budgets, trust policy).
pub struct Fhirwall<St = DefaultStore> {
    pub(super) classify: ClassifyLayer,
    #[cfg(feature = "audit")]
    pub(super) audit: Option<(AuditLayer, AuditCaptureLayer)>,
    #[cfg(feature = "firewall")]
    pub(super) firewall: Option<(FirewallLayer, FirewallLayer)>,
    #[cfg(feature = "mtls")]
    pub(super) identity: Option<TrustedClientLayer>,
    #[cfg(feature = "smart")]
    pub(super) smart: Option<SmartLayer>,
    #[cfg(feature = "smart")]
    pub(super) token_gate: Option<TokenGateLayer>,
    #[cfg(feature = "limit")]
    pub(super) budgets: Option<BudgetLayer<St>>,
    #[cfg(feature = "validate")]
    pub(super) validate: Option<ValidateLayer>,
    #[cfg(feature = "redact")]
    pub(super) redact: Option<RedactLayer>,
    pub(super) store: PhantomData<fn() -> St>,
}

impl<St: Clone> Clone for Fhirwall<St> {
    fn clone(&self) -> Self {
        Fhirwall {
            classify: self.classify.clone(),
            #[cfg(feature = "audit")]
            audit: self.audit.clone(),
            #[cfg(feature = "firewall")]
            firewall: self.firewall.clone(),
            #[cfg(feature = "mtls")]
            identity: self.identity.clone(),
            #[cfg(feature = "smart")]
            smart: self.smart.clone(),
            #[cfg(feature = "smart")]
            token_gate: self.token_gate.clone(),
            #[cfg(feature = "limit")]
            budgets: self.budgets.clone(),
            #[cfg(feature = "validate")]
            validate: self.validate.clone(),
            #[cfg(feature = "redact")]
            redact: self.redact.clone(),
            store: PhantomData,
        }
    }
}

impl<St> fmt::Debug for Fhirwall<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fhirwall")
            .field("layers", &self.layers())
            .finish_non_exhaustive()
    }
}

impl Fhirwall {
    /// Every step of the stack, outermost first. A step whose layer was left out is a
    /// pass-through; `classify` is always there. To stack by hand, apply the layers in this
    /// order (with `tower::ServiceBuilder`, the first `.layer` call is the outermost; with
    /// axum's `Router::layer`, the last call is).
    ///
    /// - `audit`: [`AuditLayer`](crate::audit::AuditLayer), sees every outcome;
    /// - `firewall`: [`FirewallLayer`](crate::firewall::FirewallLayer), cheapest refusals
    ///   first, classifying with its own route inventory;
    /// - `identity`: [`TrustedClientLayer`](crate::identity::TrustedClientLayer), before any
    ///   body is read so an unknown client can't make the server buffer one;
    /// - `token gate`: the smart layer's [`TokenGateLayer`](crate::smart::TokenGateLayer),
    ///   401 for a request with a body but no valid token, for the same reason;
    /// - `classify`: [`ClassifyLayer`], the [`FhirRequest`](crate::fhir::FhirRequest) every
    ///   later layer reads;
    /// - `smart`: [`SmartLayer`](crate::smart::SmartLayer);
    /// - `firewall client rules`: `FirewallLayer::client_rules`, client networks and access
    ///   windows, now that the client is known;
    /// - `limit`: [`BudgetLayer`](crate::limit::BudgetLayer), keyed by the client the layers
    ///   above established;
    /// - `validate`: [`ValidateLayer`](crate::validate::ValidateLayer);
    /// - `redact`: [`RedactLayer`](crate::redact::RedactLayer), innermost so the budget counts
    ///   what the client really receives;
    /// - `audit capture`: [`AuditCaptureLayer`](crate::audit::AuditCaptureLayer), copies who
    ///   the client is onto the response for the audit record.
    pub const ORDER: &'static [&'static str] = &[
        "audit",
        "firewall",
        "identity",
        "token gate",
        "classify",
        "smart",
        "firewall client rules",
        "limit",
        "validate",
        "redact",
        "audit capture",
    ];

    /// A builder with nothing enabled but classification; see
    /// [`FhirwallBuilder`](super::FhirwallBuilder) for the defaults.
    pub fn builder() -> super::FhirwallBuilder {
        super::FhirwallBuilder::new()
    }
}

impl<St> Fhirwall<St> {
    /// The steps of [`Fhirwall::ORDER`] this stack runs, outermost first.
    pub fn layers(&self) -> Vec<&'static str> {
        let on = |name: &'static str| -> bool {
            match name {
                #[cfg(feature = "audit")]
                "audit" | "audit capture" => self.audit.is_some(),
                #[cfg(feature = "firewall")]
                "firewall" | "firewall client rules" => self.firewall.is_some(),
                #[cfg(feature = "mtls")]
                "identity" => self.identity.is_some(),
                "classify" => true,
                #[cfg(feature = "smart")]
                "smart" | "token gate" => self.smart.is_some(),
                #[cfg(feature = "limit")]
                "limit" => self.budgets.is_some(),
                #[cfg(feature = "validate")]
                "validate" => self.validate.is_some(),
                #[cfg(feature = "redact")]
                "redact" => self.redact.is_some(),
                _ => false,
            }
        };
        Fhirwall::ORDER.iter().copied().filter(|n| on(n)).collect()
    }

    /// The classification layer (its classifier's base path is the stack's FHIR base).
    pub fn classify_layer(&self) -> &ClassifyLayer {
        &self.classify
    }

    /// The budget layer, if any (its store, for instance, to inspect or share).
    #[cfg(feature = "limit")]
    pub fn budget_layer(&self) -> Option<&BudgetLayer<St>> {
        self.budgets.as_ref()
    }
}

#[allow(dead_code)]
fn step<L, S, M>(layer: Option<&L>, inner: S) -> Optional<L::Service, S, M>
where
    L: Layer<S>,
{
    match layer {
        Some(layer) => Optional::on(layer.layer(inner)),
        None => Optional::off(inner),
    }
}

impl<S, St: StackStore> Layer<S> for Fhirwall<St> {
    type Service = FhirwallService<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        #[cfg(feature = "audit")]
        let inner = step(self.audit.as_ref().map(|(_, capture)| capture), inner);
        #[cfg(feature = "redact")]
        let inner = step(self.redact.as_ref(), inner);
        #[cfg(feature = "validate")]
        let inner = step(self.validate.as_ref(), inner);
        #[cfg(feature = "limit")]
        let inner = step(self.budgets.as_ref(), inner);
        #[cfg(feature = "firewall")]
        let inner = step(self.firewall.as_ref().map(|(_, client)| client), inner);
        #[cfg(feature = "smart")]
        let inner = step(self.smart.as_ref(), inner);
        let inner = self.classify.layer(inner);
        #[cfg(feature = "smart")]
        let inner = step(self.token_gate.as_ref(), inner);
        #[cfg(feature = "mtls")]
        let inner = step(self.identity.as_ref(), inner);
        #[cfg(feature = "firewall")]
        let inner = step(self.firewall.as_ref().map(|(edge, _)| edge), inner);
        #[cfg(feature = "audit")]
        let inner = match &self.audit {
            Some((audit, _)) => Optional::on(audit.layer(NoteDecisions::new(inner))),
            None => Optional::off(inner),
        };
        inner
    }
}
