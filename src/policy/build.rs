//! The whole stack from a policy, through [`FhirwallBuilder`](crate::stack::FhirwallBuilder).

use super::StoreKind;
use super::{Policy, PolicyError, PolicyErrorKind};
use crate::fhir::Classifier;
use crate::limit::{BudgetStore, MemoryStore};
use crate::stack::{Fhirwall, StackError};

impl Policy {
    /// Checks the settings that are about several sections at once, and builds each layer's
    /// configuration once (so that a policy that loads also builds).
    pub(crate) fn check(&self) -> Result<(), PolicyError> {
        let ctx = self.ctx();
        let doc = &self.document;
        let base = self.base_path();
        if !base.starts_with('/') {
            return Err(ctx.invalid(
                "service.base_path",
                format!("{base:?} is not an absolute path"),
            ));
        }
        let authenticates =
            !doc.clients.is_empty() || doc.forwarded_certificates.is_some() || doc.tokens.is_some();
        if !authenticates && !doc.service.danger_no_authentication {
            return Err(ctx.err(
                PolicyErrorKind::MissingKey,
                "",
                "the policy authenticates no one: add [[clients]] (mutual TLS) or [tokens] (SMART), or set service.danger_no_authentication = true",
            ));
        }
        if authenticates && doc.service.danger_no_authentication {
            return Err(ctx.contradiction(
                "service.danger_no_authentication",
                "danger_no_authentication = true, but the policy has [[clients]] or [tokens]",
            ));
        }
        let identity = !doc.clients.is_empty() || doc.forwarded_certificates.is_some();
        if let Some(binding) = doc.authorization.certificate_binding {
            use super::BindingName;
            let key = "authorization.certificate_binding";
            if doc.tokens.is_none() {
                return Err(ctx.contradiction(
                    key,
                    "certificate binding is about tokens, but there is no [tokens] section",
                ));
            }
            if binding == BindingName::Required && !identity {
                return Err(ctx.contradiction(
                    key,
                    "certificate-bound tokens are required (RFC 8705), but no [[clients]] or [forwarded_certificates] establish a client certificate, so every token would be refused",
                ));
            }
            if binding == BindingName::Off && identity {
                return Err(ctx.contradiction(
                    key,
                    "certificate binding is off next to mutual TLS: a token bound to one client's certificate would be accepted from another",
                ));
            }
        }
        if doc.smart_configuration.is_some() && doc.tokens.is_none() {
            return Err(ctx.contradiction(
                "smart_configuration",
                "a SMART configuration is published by the SMART layer, but there is no [tokens] section",
            ));
        }
        let store = &doc.budgets.store;
        match store.kind {
            StoreKind::Memory => {
                for (set, key) in [
                    (store.redis_url.is_some(), "budgets.store.redis_url"),
                    (store.redis_prefix.is_some(), "budgets.store.redis_prefix"),
                    (
                        store.redis_timeout_ms.is_some(),
                        "budgets.store.redis_timeout_ms",
                    ),
                ] {
                    if set {
                        return Err(ctx.contradiction(key, "a Redis setting with kind = \"memory\": set kind = \"redis\" or remove it"));
                    }
                }
            }
            StoreKind::Redis => {
                if store.redis_url.is_none() {
                    return Err(ctx.err(PolicyErrorKind::MissingKey, "budgets.store", "kind = \"redis\" needs redis_url = { env = \"...\" } or { file = \"...\" }"));
                }
                if cfg!(not(feature = "redis")) {
                    return Err(ctx.err(
                        PolicyErrorKind::Build,
                        "budgets.store.kind",
                        "the Redis store needs fhirwall's feature \"redis\"",
                    ));
                }
            }
        }
        let validation_count = doc.validation.max_count.unwrap_or(100);
        if let Some(cap) = doc.budgets.caps.max_count {
            if cap > validation_count && doc.budgets.caps.count_mode == super::CountModeName::Lower
            {
                return Err(ctx.contradiction(
                    "budgets.caps.max_count",
                    format!("the budget lowers _count to {cap}, but validation refuses any _count above {validation_count} (validation.max_count) first"),
                ));
            }
        }
        self.stack_with(MemoryStore::new(1)).map(|_| ())
    }

    /// The whole stack with in-memory budgets ([`memory_store`](Self::memory_store)).
    ///
    /// Every section becomes its layer: `[audit]`, the firewall (`[network]`, `[transport]`,
    /// `[routes]`, client networks and windows), identity (`[[clients]]`,
    /// `[forwarded_certificates]`), SMART (`[tokens]`, `[authorization]`,
    /// `[smart_configuration]`), budgets, validation and redaction, in the stack's order.
    pub fn build(&self) -> Result<Fhirwall, PolicyError> {
        if self.store_kind() == StoreKind::Redis {
            return Err(self.ctx().err(
                PolicyErrorKind::Build,
                "budgets.store.kind",
                "the Redis store connects asynchronously: build with Policy::build_redis().await",
            ));
        }
        self.stack_with(self.memory_store())
    }

    /// The whole stack with budgets in `store` (a store shared across reloads keeps the
    /// clients' budgets).
    pub fn build_with_store<St: BudgetStore>(
        &self,
        store: St,
    ) -> Result<Fhirwall<St>, PolicyError> {
        self.stack_with(store)
    }

    /// Connects to the Redis of `[budgets.store]` and builds the whole stack on it.
    #[cfg(feature = "redis")]
    pub async fn build_redis(&self) -> Result<Fhirwall<crate::limit::RedisStore>, PolicyError> {
        let store = self.redis_store().await?;
        self.stack_with(store)
    }

    /// Connects to the Redis of `[budgets.store]`.
    #[cfg(feature = "redis")]
    pub async fn redis_store(&self) -> Result<crate::limit::RedisStore, PolicyError> {
        use super::WhenUnavailableName;
        use crate::limit::{RedisStore, RedisStoreConfig};
        let ctx = self.ctx();
        let s = &self.document.budgets.store;
        let url = s
            .redis_url
            .as_ref()
            .and_then(|r| r.value())
            .and_then(|v| v.expose_str())
            .ok_or_else(|| {
                ctx.err(
                    PolicyErrorKind::MissingKey,
                    "budgets.store.redis_url",
                    "no Redis URL (UTF-8) was given",
                )
            })?;
        let mut config = RedisStoreConfig::default();
        if let Some(prefix) = &s.redis_prefix {
            config = config.prefix(prefix.clone());
        }
        if let Some(ms) = s.redis_timeout_ms {
            config = config.timeout(std::time::Duration::from_millis(ms));
        }
        config = match s.when_unavailable {
            WhenUnavailableName::FailClosed => config,
            WhenUnavailableName::FallBackToLocal => config.fall_back_to_local(self.memory_store()),
            WhenUnavailableName::DangerFailOpen => config.danger_fail_open(),
        };
        // The error text of the client may quote the URL, and the URL may hold a password.
        RedisStore::connect(url, config).await.map_err(|_| {
            ctx.err(
                PolicyErrorKind::Build,
                "budgets.store.redis_url",
                "could not connect to Redis",
            )
        })
    }

    fn stack_with<St: BudgetStore>(&self, store: St) -> Result<Fhirwall<St>, PolicyError> {
        let classifier = self
            .document
            .routes
            .aliases
            .iter()
            .fold(Classifier::new(self.base_path()), |c, alias| c.alias(alias));
        let mut b = Fhirwall::builder()
            .classifier(classifier)
            .audit(self.audit_layer()?);
        let settings = self.firewall_settings()?;
        b = b.firewall(self.route_inventory()?, move |f| settings.apply(f));
        if let Some(identity) = self.identity_layer()? {
            b = b.identity(identity);
        }
        if let Some(smart) = self.smart_layer()? {
            b = b.smart(smart);
            if let Some(mode) = self.certificate_binding() {
                b = b.certificate_binding(mode);
            }
        }
        let b = b
            .validate(self.validate_layer()?)
            .redact(self.redact_layer()?)
            .budgets(self.budget_layer_with(store)?);
        b.build().map_err(|e| self.stack_error(&e))
    }

    fn stack_error(&self, e: &StackError) -> PolicyError {
        let key = match e {
            StackError::EmptyRouteInventory | StackError::FirewallBaseMismatch { .. } => "routes",
            StackError::BoundTokensWithoutIdentity
            | StackError::BindingOffWithIdentity
            | StackError::BindingWithoutSmart => "authorization.certificate_binding",
            _ => "",
        };
        let message = match e {
            StackError::EmptyRouteInventory => "no FHIR route is declared besides metadata, so every request would be refused: list [[routes.resources]] or give routes.capability_statement".to_owned(),
            other => other.to_string(),
        };
        self.ctx().err(PolicyErrorKind::Contradiction, key, message)
    }
}
