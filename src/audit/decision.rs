//! The shared decision record: which layer decided a request's fate, and why.
//!
//! Any layer (fhirwall's or your own) puts a [`LayerDecision`] on the response extensions; the
//! audit layer records the one the response carries. Layers that keep their own decision type
//! (such as [`Unclassified`](crate::fhir::Unclassified)) are read by the audit layer directly.

use std::borrow::Cow;

/// What a layer decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecisionOutcome {
    /// The request was let through.
    Allowed,
    /// The request was refused with a response of the layer's own.
    Refused,
}

impl DecisionOutcome {
    /// `allowed` or `refused`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecisionOutcome::Allowed => "allowed",
            DecisionOutcome::Refused => "refused",
        }
    }
}

/// One layer's decision about a request, put on the response extensions for the audit layer.
///
/// `reason` is a short stable code (`ip-not-allowed`, `undeclared-route` …), never request
/// data that could carry a secret.
///
/// ```
/// use fhirwall::audit::{DecisionOutcome, LayerDecision};
///
/// let mut response = http::Response::new(());
/// response
///     .extensions_mut()
///     .insert(LayerDecision::refused("my-layer", "weekend"));
/// let decision = response.extensions().get::<LayerDecision>().unwrap();
/// assert_eq!(decision.outcome, DecisionOutcome::Refused);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDecision {
    /// The deciding layer (`firewall`, `classify`, `identity`, `smart` …).
    pub layer: &'static str,
    /// Allowed or refused.
    pub outcome: DecisionOutcome,
    /// Why, as a short stable code.
    pub reason: Cow<'static, str>,
}

impl LayerDecision {
    /// A refusal by `layer` for `reason`.
    pub fn refused(layer: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        LayerDecision {
            layer,
            outcome: DecisionOutcome::Refused,
            reason: reason.into(),
        }
    }

    /// A pass by `layer`, with a note (`reason`) on why.
    pub fn allowed(layer: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        LayerDecision {
            layer,
            outcome: DecisionOutcome::Allowed,
            reason: reason.into(),
        }
    }
}

/// How many resources a response returned, when a layer that read the body knows it (put on
/// the response extensions; recorded by the audit layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourcesReturned(pub usize);

/// How many redactions a layer applied to the response (elements removed or masked,
/// resources withheld), put on the response extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redactions(pub usize);

/// The refusal a response carries, from any layer fhirwall knows, with the deciding layer.
///
/// Order: a [`LayerDecision`] marked refused wins (it is the generic extension point), then the
/// known decision types of the layers compiled in.
pub(crate) fn refusal_of(extensions: &http::Extensions) -> Option<LayerDecision> {
    if let Some(d) = extensions.get::<LayerDecision>() {
        if d.outcome == DecisionOutcome::Refused {
            return Some(d.clone());
        }
    }
    #[cfg(feature = "firewall")]
    if let Some(r) = extensions
        .get::<crate::firewall::FirewallDecision>()
        .and_then(|d| d.refusal())
    {
        return Some(LayerDecision::refused("firewall", r.as_str()));
    }
    if let Some(u) = extensions.get::<crate::fhir::Unclassified>() {
        return Some(LayerDecision::refused("classify", u.kind().as_str()));
    }
    #[cfg(feature = "mtls")]
    if let Some(reason) = extensions
        .get::<crate::identity::IdentityDecision>()
        .and_then(|d| d.refusal())
    {
        return Some(LayerDecision::refused("identity", identity_code(reason)));
    }
    #[cfg(feature = "smart")]
    if let Some(kind) = extensions
        .get::<crate::smart::SmartDecision>()
        .and_then(|d| d.refused)
    {
        return Some(LayerDecision::refused("smart", kind.as_str()));
    }
    None
}

/// Whether the response answers a probe: a hit on an undeclared route or a path no FHIR
/// interaction has.
pub(crate) fn is_probe(extensions: &http::Extensions) -> bool {
    #[cfg(feature = "firewall")]
    if extensions
        .get::<crate::firewall::FirewallDecision>()
        .is_some_and(|d| d.is_probe())
    {
        return true;
    }
    use crate::fhir::UnclassifiedKind as K;
    extensions
        .get::<crate::fhir::Unclassified>()
        .is_some_and(|u| {
            matches!(
                u.kind(),
                K::OutsideBasePath | K::UnknownRoute | K::UnknownResourceType | K::BadPath
            )
        })
}

#[cfg(feature = "mtls")]
fn identity_code(reason: crate::identity::IdentityRefusal) -> Cow<'static, str> {
    // The Debug name is a stable enum variant name; kebab-case it for the record.
    let name = format!("{reason:?}");
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}
