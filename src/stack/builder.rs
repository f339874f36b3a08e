//! [`FhirwallBuilder`]: collects the configured layers, checks them against each other, and
//! builds a [`Fhirwall`].

use super::chain::{DefaultStore, Fhirwall};
use super::error::StackError;
use crate::classify::ClassifyLayer;
use crate::fhir::Classifier;
use std::fmt;
use std::marker::PhantomData;

#[cfg(feature = "audit")]
use crate::audit::{AuditCaptureLayer, AuditLayer};
#[cfg(feature = "firewall")]
use crate::firewall::{FirewallBuilder, FirewallLayer, RouteInventory};
#[cfg(feature = "mtls")]
use crate::identity::TrustedClientLayer;
#[cfg(feature = "limit")]
use crate::limit::{BudgetLayer, BudgetStore};
#[cfg(feature = "redact")]
use crate::redact::RedactLayer;
#[cfg(feature = "smart")]
use crate::smart::{CertificateBinding, SmartLayer};
#[cfg(feature = "validate")]
use crate::validate::ValidateLayer;

/// Builds a [`Fhirwall`]: give it each layer you want, configured with that layer's own
/// builder, and [`build`](Self::build) puts them in [`Fhirwall::ORDER`].
///
/// Defaults, and why they are safe:
///
/// - **Classification is always on**, with [`Classifier::new("/fhir")`](Classifier::new) and
///   its limits, unless [`classifier`](Self::classifier) gives another: anything that is not a
///   well-formed FHIR R4 REST request is refused before a later layer or the handler sees it.
/// - **A layer not given is not there** (a pass-through costing one `match`); nothing is
///   switched on behind your back, and a stack with no layer at all is refused
///   ([`StackError::NoLayers`]).
/// - **The audit layer describes requests with the stack's classifier** (same base path), and
///   its [`AuditCaptureLayer`](crate::audit::AuditCaptureLayer) is placed innermost so the
///   record names the trusted client and token that were established. An audit layer always
///   has a sink: [`AuditLayer::new`](crate::audit::AuditLayer::new) takes one.
/// - **The firewall runs twice**: its edge checks outermost, and its client-scoped rules
///   (client networks, access windows) after identity and smart, where the client is known.
/// - **Certificate binding** (RFC 8705) is the SMART layer's own setting
///   ([`CertificateBinding::WhenPresent`](crate::smart::CertificateBinding) by default) unless
///   [`certificate_binding`](Self::certificate_binding) sets it; settings that contradict the
///   rest of the stack are refused (see [`StackError`]).
/// - **The SMART layer always enforces the patient compartment** under `patient/` scopes
///   (there is no switch to turn it off, so no contradiction to check); loosening it takes
///   `AuthzPolicy::danger_allow_patient_search`.
/// - **Compression goes outside** the `Fhirwall` layer: the smart, budget and redaction layers
///   read response bodies and refuse a compressed one (fail closed, 500/502) rather than pass it
///   unread. The builder has no compression hook, so it can't be put inside by mistake.
///
/// Request bodies are read from the network at most once: the first layer that needs the
/// whole body (classification for batches, transactions and `POST _search`; smart or
/// validation for writes) buffers it and hands the next ones the same bytes in memory.
pub struct FhirwallBuilder<St = DefaultStore> {
    classifier: Classifier,
    #[cfg(feature = "audit")]
    audit: Option<AuditLayer>,
    #[cfg(feature = "audit")]
    capture: Option<AuditCaptureLayer>,
    #[cfg(feature = "firewall")]
    firewall: Option<(RouteInventory, FirewallLayer)>,
    #[cfg(feature = "mtls")]
    identity: Option<TrustedClientLayer>,
    #[cfg(feature = "smart")]
    smart: Option<SmartLayer>,
    #[cfg(feature = "smart")]
    binding: Option<CertificateBinding>,
    #[cfg(feature = "limit")]
    budgets: Option<BudgetLayer<St>>,
    #[cfg(feature = "validate")]
    validate: Option<ValidateLayer>,
    #[cfg(feature = "redact")]
    redact: Option<RedactLayer>,
    store: PhantomData<fn() -> St>,
}

impl<St> fmt::Debug for FhirwallBuilder<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FhirwallBuilder")
            .field("base_path", &self.classifier.base_path())
            .finish_non_exhaustive()
    }
}

impl Default for FhirwallBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl FhirwallBuilder {
    /// The defaults above: classification of `/fhir`, no layer yet.
    pub fn new() -> Self {
        FhirwallBuilder {
            classifier: Classifier::new("/fhir"),
            #[cfg(feature = "audit")]
            audit: None,
            #[cfg(feature = "audit")]
            capture: None,
            #[cfg(feature = "firewall")]
            firewall: None,
            #[cfg(feature = "mtls")]
            identity: None,
            #[cfg(feature = "smart")]
            smart: None,
            #[cfg(feature = "smart")]
            binding: None,
            #[cfg(feature = "limit")]
            budgets: None,
            #[cfg(feature = "validate")]
            validate: None,
            #[cfg(feature = "redact")]
            redact: None,
            store: PhantomData,
        }
    }
}

impl<St> FhirwallBuilder<St> {
    /// The classifier of the stack's FHIR base (default `Classifier::new("/fhir")`). With
    /// axum's `Router::nest`, inner layers see paths without the prefix: use
    /// `Classifier::new("/")` there.
    pub fn classifier(mut self, classifier: Classifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// Records every request, refusals included, with this audit layer (outermost).
    #[cfg(feature = "audit")]
    pub fn audit(mut self, audit: AuditLayer) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Captures the client for the audit record with this layer instead of
    /// `AuditCaptureLayer::new()`; needs [`audit`](Self::audit).
    #[cfg(feature = "audit")]
    pub fn audit_capture(mut self, capture: AuditCaptureLayer) -> Self {
        self.capture = Some(capture);
        self
    }

    /// A firewall exposing exactly `routes`, with the rest of its settings from `configure`
    /// (pass `|firewall| firewall` for none). The inventory is checked at
    /// [`build`](Self::build): it must declare something and serve the stack's base.
    ///
    /// ```
    /// use fhirwall::fhir::{Interaction, ResourceType};
    /// use fhirwall::firewall::{IpRule, RouteInventory};
    /// use fhirwall::stack::Fhirwall;
    ///
    /// let routes = RouteInventory::new("/fhir").declare(ResourceType::Patient, [Interaction::Read]);
    /// let stack = Fhirwall::builder()
    ///     .firewall(routes, |firewall| firewall.allow(IpRule::allow(["127.0.0.0/8"]).unwrap()))
    ///     .build()?;
    /// # Ok::<(), fhirwall::stack::StackError>(())
    /// ```
    #[cfg(feature = "firewall")]
    pub fn firewall(
        mut self,
        routes: RouteInventory,
        configure: impl FnOnce(FirewallBuilder) -> FirewallBuilder,
    ) -> Self {
        let layer = configure(FirewallLayer::builder(routes.clone())).build();
        self.firewall = Some((routes, layer));
        self
    }

    /// Admits only trusted clients (mutual TLS or forwarded certificates).
    #[cfg(feature = "mtls")]
    pub fn identity(mut self, identity: TrustedClientLayer) -> Self {
        self.identity = Some(identity);
        self
    }

    /// SMART on FHIR tokens, scopes and the patient compartment.
    #[cfg(feature = "smart")]
    pub fn smart(mut self, smart: SmartLayer) -> Self {
        self.smart = Some(smart);
        self
    }

    /// Sets the SMART layer's RFC 8705 certificate binding, checked against the rest of the
    /// stack at [`build`](Self::build): `Required` needs [`identity`](Self::identity), `Off`
    /// is refused next to it.
    #[cfg(feature = "smart")]
    pub fn certificate_binding(mut self, mode: CertificateBinding) -> Self {
        self.binding = Some(mode);
        self
    }

    /// Per-client query budgets, in whichever store the layer was built with; the stack's
    /// type follows the store (`Fhirwall<RedisStore>` for Redis).
    #[cfg(feature = "limit")]
    pub fn budgets<St2: BudgetStore>(self, budgets: BudgetLayer<St2>) -> FhirwallBuilder<St2> {
        FhirwallBuilder {
            classifier: self.classifier,
            #[cfg(feature = "audit")]
            audit: self.audit,
            #[cfg(feature = "audit")]
            capture: self.capture,
            #[cfg(feature = "firewall")]
            firewall: self.firewall,
            #[cfg(feature = "mtls")]
            identity: self.identity,
            #[cfg(feature = "smart")]
            smart: self.smart,
            #[cfg(feature = "smart")]
            binding: self.binding,
            budgets: Some(budgets),
            #[cfg(feature = "validate")]
            validate: self.validate,
            #[cfg(feature = "redact")]
            redact: self.redact,
            store: PhantomData,
        }
    }

    /// Request-side validation.
    #[cfg(feature = "validate")]
    pub fn validate(mut self, validate: ValidateLayer) -> Self {
        self.validate = Some(validate);
        self
    }

    /// Response-side redaction.
    #[cfg(feature = "redact")]
    pub fn redact(mut self, redact: RedactLayer) -> Self {
        self.redact = Some(redact);
        self
    }

    /// Checks the layers against each other and builds the stack.
    pub fn build(self) -> Result<Fhirwall<St>, StackError> {
        #[allow(unused_mut)]
        let mut any = false;
        #[cfg(feature = "audit")]
        {
            any |= self.audit.is_some();
        }
        #[cfg(feature = "firewall")]
        {
            any |= self.firewall.is_some();
        }
        #[cfg(feature = "mtls")]
        {
            any |= self.identity.is_some();
        }
        #[cfg(feature = "smart")]
        {
            any |= self.smart.is_some();
        }
        #[cfg(feature = "limit")]
        {
            any |= self.budgets.is_some();
        }
        #[cfg(feature = "validate")]
        {
            any |= self.validate.is_some();
        }
        #[cfg(feature = "redact")]
        {
            any |= self.redact.is_some();
        }
        if !any {
            return Err(StackError::NoLayers);
        }

        #[cfg(feature = "audit")]
        let audit = match (self.audit, self.capture) {
            (None, Some(_)) => return Err(StackError::CaptureWithoutAudit),
            (None, None) => None,
            (Some(audit), capture) => Some((
                audit.classifier(self.classifier.clone()),
                capture.unwrap_or_default(),
            )),
        };

        #[cfg(feature = "firewall")]
        let firewall = match self.firewall {
            None => None,
            Some((routes, edge)) => {
                check_routes(&routes, &self.classifier)?;
                let client = edge.client_rules();
                Some((edge, client))
            }
        };

        #[cfg(feature = "smart")]
        let smart = {
            #[cfg(feature = "mtls")]
            let identity = self.identity.is_some();
            #[cfg(not(feature = "mtls"))]
            let identity = false;
            match (self.smart, self.binding) {
                (None, Some(_)) => return Err(StackError::BindingWithoutSmart),
                (None, None) => None,
                (Some(smart), None) => Some(smart),
                (Some(smart), Some(mode)) => {
                    if mode == CertificateBinding::Required && !identity {
                        return Err(StackError::BoundTokensWithoutIdentity);
                    }
                    #[cfg(feature = "mtls")]
                    if mode == CertificateBinding::Off && identity {
                        return Err(StackError::BindingOffWithIdentity);
                    }
                    Some(smart.certificate_binding(mode))
                }
            }
        };

        Ok(Fhirwall {
            classify: ClassifyLayer::new(self.classifier),
            #[cfg(feature = "audit")]
            audit,
            #[cfg(feature = "firewall")]
            firewall,
            #[cfg(feature = "mtls")]
            identity: self.identity,
            #[cfg(feature = "smart")]
            token_gate: smart.as_ref().map(SmartLayer::token_gate),
            #[cfg(feature = "smart")]
            smart,
            #[cfg(feature = "limit")]
            budgets: self.budgets,
            #[cfg(feature = "validate")]
            validate: self.validate,
            #[cfg(feature = "redact")]
            redact: self.redact,
            store: PhantomData,
        })
    }
}

/// The inventory must declare more than `metadata` and answer under the stack's base.
#[cfg(feature = "firewall")]
fn check_routes(routes: &RouteInventory, classifier: &Classifier) -> Result<(), StackError> {
    let listing = routes.listing();
    if listing.iter().all(|route| route == "system capabilities") {
        return Err(StackError::EmptyRouteInventory);
    }
    let base = classifier.base_path();
    let metadata = format!("{}/metadata", base.trim_end_matches('/'));
    let permitted = metadata
        .parse::<http::Uri>()
        .map(|uri| routes.permits(&http::Method::GET, &uri, &http::HeaderMap::new()))
        .unwrap_or(false);
    if !permitted {
        return Err(StackError::FirewallBaseMismatch {
            base: base.to_owned(),
        });
    }
    Ok(())
}
