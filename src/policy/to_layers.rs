//! `[validation]`, `[redaction]`, `[budgets]` and `[audit]` → their layers.

use super::{
    CountModeName, CreateIdName, KeySourceName, OverBudgetName, SinkKind, StoreKind,
    ValuePolicyName,
};
use super::{Policy, PolicyError, PolicyErrorKind};
use crate::audit::{
    AuditLayer, AuditRecord, AuditSink, JsonLinesFile, NonBlocking, ParamPolicy, TracingSink,
    ValuePolicy,
};
use crate::limit::{
    BudgetLayer, BudgetStore, Caps, ClientKey, CostTable, CountCapMode, KeyExtractor, KeySource,
    MemoryStore, OverBudget, PageParam, Rate,
};
use crate::redact::{RedactLayer, Redactor};
use crate::smart::Scope;
use crate::validate::{CreateId, ValidateConfig, ValidateLayer};
use std::sync::Arc;

impl Policy {
    /// The validator's settings of `[validation]`.
    pub fn validate_config(&self) -> Result<ValidateConfig, PolicyError> {
        let v = &self.document.validation;
        let mut c = ValidateConfig::new();
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(x) = v.$field { c = c.$field(x); })* };
        }
        set!(
            max_body_bytes,
            max_depth,
            max_problems,
            accept_plain_json,
            max_count,
            max_chain_depth,
            max_repeats,
            max_values,
            max_query_len
        );
        c = c.create_id(match v.create_id {
            CreateIdName::Ignore => CreateId::Ignore,
            CreateIdName::Refuse => CreateId::Refuse,
        });
        for base in self
            .document
            .service
            .base_url
            .iter()
            .map(|u| &u.0)
            .chain(&v.reference_bases)
        {
            c = c.reference_base(base.clone());
        }
        if v.danger_allow_any_absolute_reference {
            c = c.danger_allow_any_absolute_reference();
        }
        if v.danger_allow_include_wildcard {
            c = c.danger_allow_include_wildcard();
        }
        c = c
            .allow_lenient_handling(v.allow_lenient_handling)
            .allow_has(v.allow_has)
            .allow_filter(v.allow_filter)
            .allow_named_query(v.allow_named_query)
            .allow_text_search(v.allow_text_search);
        for p in &v.control_params {
            c = c.control_param(p.clone());
        }
        Ok(c)
    }

    /// The validation layer of `[validation]`.
    pub fn validate_layer(&self) -> Result<ValidateLayer, PolicyError> {
        Ok(ValidateLayer::new(self.validate_config()?))
    }

    /// The redactor of `[redaction]`: every path checked against the R4 definitions, every
    /// scope in a caller match checked as a SMART scope.
    pub fn redactor(&self) -> Result<Redactor, PolicyError> {
        let ctx = self.ctx();
        let r = &self.document.redaction;
        let scopes = r
            .rules
            .iter()
            .enumerate()
            .flat_map(|(i, rule)| {
                [("when", &rule.when), ("except", &rule.except)]
                    .into_iter()
                    .filter_map(move |(which, m)| {
                        m.as_ref()
                            .map(|m| (format!("redaction.rules[{i}].{which}"), m))
                    })
            })
            .chain(
                r.labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (format!("redaction.labels[{i}].except"), &l.except)),
            );
        for (key, m) in scopes {
            for (j, scope) in m.scopes.iter().enumerate() {
                if let Err(e) = Scope::parse(scope) {
                    return Err(ctx.invalid(
                        &format!("{key}.scopes[{j}]"),
                        format!("{scope:?} is not a SMART scope: {e}"),
                    ));
                }
            }
            if !m.predicates.is_empty() {
                return Err(ctx.invalid(
                    &format!("{key}.predicates"),
                    "custom predicates are registered in code; a policy file can't name them",
                ));
            }
        }
        // Each path alone first, so that a bad one is reported at its own line.
        for (i, rule) in r.rules.iter().enumerate() {
            for (j, path) in rule.paths.iter().enumerate() {
                let mut single = rule.clone();
                single.paths = vec![path.clone()];
                let one = crate::redact::Policy {
                    rules: vec![single],
                    ..crate::redact::Policy::default()
                };
                if let Err(e) = Redactor::new(one) {
                    let text = e.to_string();
                    let reason = text
                        .split_once("rule 0: ")
                        .map_or(text.as_str(), |(_, m)| m);
                    return Err(ctx.invalid(&format!("redaction.rules[{i}].paths[{j}]"), reason));
                }
            }
        }
        let policy = crate::redact::Policy {
            rules: r.rules.clone(),
            labels: r.labels.clone(),
            suppressed_note: r.suppressed_note.unwrap_or(true),
        };
        let mut redactor =
            Redactor::new(policy).map_err(|e| ctx.invalid("redaction.rules", e.to_string()))?;
        if let Some(n) = r.max_body_bytes {
            redactor = redactor.max_body(n);
        }
        Ok(redactor)
    }

    /// The redaction layer.
    pub fn redact_layer(&self) -> Result<RedactLayer, PolicyError> {
        let mut layer = RedactLayer::new(self.redactor()?);
        if let Some(status) = self.document.redaction.hidden_status {
            layer = layer.hidden_status(status.0);
        }
        Ok(layer)
    }

    /// The in-memory budget store of `[budgets.store]` (`max_keys`).
    pub fn memory_store(&self) -> MemoryStore {
        MemoryStore::new(
            self.document
                .budgets
                .store
                .max_keys
                .unwrap_or(crate::limit::DEFAULT_MAX_KEYS),
        )
    }

    /// The budget layer of `[budgets]` over `store`.
    pub fn budget_layer_with<St: BudgetStore>(
        &self,
        store: St,
    ) -> Result<BudgetLayer<St>, PolicyError> {
        let ctx = self.ctx();
        let b = &self.document.budgets;
        let mut layer = BudgetLayer::new(store);
        let burst = |rate: Rate, burst: Option<u64>| match burst {
            Some(n) => rate.with_burst(n),
            None => rate,
        };
        match &b.requests {
            Some(spec) => layer = layer.requests(spec.0.map(|r| burst(r, b.requests_burst))),
            None if b.requests_burst.is_some() => {
                layer = layer.requests(Some(burst(Rate::per_minute(600), b.requests_burst)));
            }
            None => {}
        }
        match &b.resources {
            Some(spec) => layer = layer.resources(spec.0.map(|r| burst(r, b.resources_burst))),
            None if b.resources_burst.is_some() => {
                layer = layer.resources(Some(burst(Rate::per_hour(10_000), b.resources_burst)));
            }
            None => {}
        }
        for (key, rate, burst) in [
            ("budgets.requests_burst", &b.requests, b.requests_burst),
            ("budgets.resources_burst", &b.resources, b.resources_burst),
        ] {
            if matches!(rate, Some(s) if s.0.is_none()) && burst.is_some() {
                return Err(
                    ctx.contradiction(key, "a burst was given for a budget that is \"off\"")
                );
            }
            if burst == Some(0) {
                return Err(ctx.invalid(key, "a burst of 0 would refuse everything"));
            }
        }
        layer = layer.over_budget(match b.over_budget {
            OverBudgetName::Cut => OverBudget::Cut,
            OverBudgetName::Refuse => OverBudget::Refuse,
        });
        if let Some(n) = b.max_in_flight {
            layer = layer.max_in_flight((n > 0).then_some(n));
        }
        if let Some(n) = b.max_buffer_bytes {
            layer = layer.max_buffer(n);
        }
        let mut costs = CostTable::default();
        let c = &b.costs;
        if let Some(n) = c.read {
            costs = costs.read(n);
        }
        if let Some(n) = c.search {
            costs = costs.search(n);
        }
        if let Some(n) = c.write {
            costs = costs.write(n);
        }
        if let Some(n) = c.other_operation {
            costs = costs.other_operation(n);
        }
        for (name, n) in &c.operations {
            costs = costs.operation(name.trim_start_matches('$'), *n);
        }
        layer = layer.costs(costs);
        let cap = &b.caps;
        let mut caps = Caps::default();
        let off = |n: u64| (n > 0).then_some(n);
        if let Some(n) = cap.max_count {
            let mode = match cap.count_mode {
                CountModeName::Lower => CountCapMode::Lower,
                CountModeName::Refuse => CountCapMode::Refuse,
            };
            caps = caps.max_count((n > 0).then_some(n), mode);
        } else if cap.count_mode == CountModeName::Refuse {
            caps = caps.max_count(Some(100), CountCapMode::Refuse);
        }
        if let Some(n) = cap.max_page_depth {
            caps = caps.max_page_depth(off(n));
        }
        if let Some(n) = cap.everything_max {
            caps = caps.everything_max(off(n));
        }
        if let Some(n) = cap.default_page_size {
            caps = caps.default_page_size(n);
        }
        if cap.page_offset_params.is_some() || !cap.page_number_params.is_empty() {
            let offsets = cap
                .page_offset_params
                .clone()
                .unwrap_or_else(|| vec!["_offset".to_owned(), "_getpagesoffset".to_owned()]);
            caps = caps.paging(
                offsets.into_iter().map(PageParam::Offset).chain(
                    cap.page_number_params
                        .iter()
                        .cloned()
                        .map(PageParam::Number),
                ),
            );
        }
        layer = layer.caps(caps);
        if !b.keys.is_empty() || !b.groups.is_empty() {
            let mut keys = if b.keys.is_empty() {
                KeyExtractor::default()
            } else {
                let proxies = self.trusted_proxies()?;
                KeyExtractor::new(b.keys.iter().map(|k| match k {
                    KeySourceName::TrustedClient => KeySource::TrustedClient,
                    KeySourceName::SmartClient => KeySource::SmartClient,
                    KeySourceName::PeerIp => KeySource::PeerIp(proxies.clone()),
                }))
            };
            for (i, group) in b.groups.iter().enumerate() {
                let mut members = Vec::new();
                for (j, m) in group.members.iter().enumerate() {
                    let key = format!("budgets.groups[{i}].members[{j}]");
                    let (kind, value) = m
                        .split_once(':')
                        .filter(|(k, _)| matches!(*k, "mtls" | "smart" | "ip"))
                        .ok_or_else(|| {
                            ctx.invalid(
                                &key,
                                format!(
                                    "{m:?} is not mtls:<name>, smart:<client_id> or ip:<address>"
                                ),
                            )
                        })?;
                    members.push(
                        ClientKey::new(kind, value)
                            .ok_or_else(|| ctx.invalid(&key, "not a usable client key"))?,
                    );
                }
                keys = keys.group(&group.name, members);
            }
            layer = layer.keys(keys);
        }
        Ok(layer)
    }

    /// The budget layer over an in-memory store ([`memory_store`](Self::memory_store)); with
    /// `budgets.store.kind = "redis"` use [`build_redis`](Self::build_redis) instead.
    pub fn budget_layer(&self) -> Result<BudgetLayer<MemoryStore>, PolicyError> {
        self.budget_layer_with(self.memory_store())
    }

    pub(crate) fn store_kind(&self) -> StoreKind {
        self.document.budgets.store.kind
    }

    /// The audit layer of `[audit]`.
    pub fn audit_layer(&self) -> Result<AuditLayer, PolicyError> {
        let ctx = self.ctx();
        let a = &self.document.audit;
        let mut sinks: Vec<Arc<dyn AuditSink>> = Vec::new();
        for (i, s) in a.sinks.iter().enumerate() {
            let key = format!("audit.sinks[{i}]");
            let sink: Arc<dyn AuditSink> = match s.kind {
                SinkKind::Tracing => {
                    if s.path.is_some() || s.max_bytes.is_some() || s.keep.is_some() {
                        return Err(ctx.contradiction(
                            &key,
                            "a tracing sink takes no path, max_bytes or keep",
                        ));
                    }
                    Arc::new(TracingSink)
                }
                SinkKind::JsonLines => {
                    let path = s.path.as_ref().ok_or_else(|| {
                        ctx.err(
                            PolicyErrorKind::MissingKey,
                            &key,
                            "a json_lines sink needs a path",
                        )
                    })?;
                    let full = ctx.path(path);
                    let mut file = JsonLinesFile::create(&full).map_err(|e| {
                        ctx.invalid(
                            &format!("{key}.path"),
                            format!(
                                "cannot open {}: {}",
                                full.display(),
                                super::secret::io_reason(&e)
                            ),
                        )
                    })?;
                    if let Some(n) = s.max_bytes {
                        file = file.max_bytes(n);
                    }
                    if let Some(n) = s.keep {
                        file = file.keep(n);
                    }
                    Arc::new(file)
                }
            };
            let sink = match s.queue {
                Some(n) => Arc::new(NonBlocking::with_capacity(sink, n)) as Arc<dyn AuditSink>,
                None => sink,
            };
            sinks.push(sink);
        }
        let sink: Arc<dyn AuditSink> = if sinks.len() > 1 {
            Arc::new(Fanout(sinks))
        } else {
            sinks.pop().unwrap_or_else(|| Arc::new(TracingSink))
        };
        let mut params = ParamPolicy::default()
            .identifying(a.identifying_params.iter().cloned())
            .identifying_values(match a.identifying_values {
                ValuePolicyName::Hash => ValuePolicy::Hash,
                ValuePolicyName::Keep => ValuePolicy::Keep,
                ValuePolicyName::Drop => ValuePolicy::Drop,
            });
        if let Some(salt) = a.salt.as_ref().and_then(|s| s.value()) {
            params = params.salt(salt.expose());
        }
        Ok(AuditLayer::new(sink)
            .params(params)
            .trusted_proxies(self.trusted_proxies()?))
    }
}

/// Every record to several sinks.
struct Fanout(Vec<Arc<dyn AuditSink>>);

impl AuditSink for Fanout {
    fn record(&self, record: AuditRecord) {
        let mut sinks = self.0.iter().peekable();
        while let Some(sink) = sinks.next() {
            if sinks.peek().is_some() {
                sink.record(record.clone());
            } else {
                sink.record(record);
                return;
            }
        }
    }
}
