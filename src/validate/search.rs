//! Search parameters against the generated R4 registry (FHIR R4 §3.1.1 "Search").
//!
//! Every parameter must be known for the searched type (or be one of the result parameters),
//! use a modifier its type allows, and carry values of its type's syntax; `_count`, chains,
//! repeats, OR-lists and includes are bounded; the costly or open-ended parameters (`_has`,
//! `_filter`, `_query`, `_content`, `_text`, wildcard includes) are off unless configured.

use super::primitives;
use super::problem::{Problem, ProblemClass, Rejection};
use super::ValidateConfig;
use crate::fhir::tables::{self, SearchParamDef, SearchParamType};
use crate::fhir::{IssueType, ParamKind, Query, QueryParam, ResourceType, SearchValue};
use std::borrow::Cow;

/// Checks every parameter of `query`, a search of `resource_type` (`None` for a system-level
/// search). `lenient` is whether the client sent `Prefer: handling=lenient`.
///
/// ```
/// use fhirwall::fhir::{Query, ResourceType};
/// use fhirwall::validate::{check_search, ValidateConfig};
///
/// let config = ValidateConfig::new();
/// let ok = Query::parse("code=http://loinc.org|8480-6&date=ge2020-01-01&_count=10", 100).unwrap();
/// assert!(check_search(&ok, Some(ResourceType::Observation), false, &config).is_ok());
/// let bad = Query::parse("gender:exact=female&_count=1000", 100).unwrap();
/// let refusal = check_search(&bad, Some(ResourceType::Patient), false, &config).unwrap_err();
/// assert_eq!(refusal.problems().len(), 2);
/// ```
pub fn check_search(
    query: &Query,
    resource_type: Option<ResourceType>,
    lenient: bool,
    cfg: &ValidateConfig,
) -> Result<(), Rejection> {
    let mut c = SearchChecker {
        cfg,
        rt: resource_type,
        lenient: lenient && cfg.allow_lenient,
        problems: Vec::new(),
    };
    for (i, p) in query.params().enumerate() {
        c.param(&p);
        if p.kind() == ParamKind::Search || p.kind() == ParamKind::Has {
            let repeats = query
                .params()
                .take(i)
                .filter(|o| o.name() == p.name())
                .count();
            if repeats == cfg.max_repeats {
                c.refuse(
                    &p,
                    IssueType::TooCostly,
                    "the parameter is repeated too often",
                );
            }
        }
        if p.values().len() > cfg.max_values {
            c.refuse(
                &p,
                IssueType::TooCostly,
                "the parameter has too many values",
            );
        }
    }
    if c.problems.is_empty() {
        Ok(())
    } else {
        Err(Rejection::new(c.problems))
    }
}

struct SearchChecker<'c> {
    cfg: &'c ValidateConfig,
    rt: Option<ResourceType>,
    lenient: bool,
    problems: Vec<Problem>,
}

/// The parameter as written, for the `expression`.
fn written(p: &QueryParam<'_>) -> String {
    let mut s = p.name().to_owned();
    if let Some(m) = p.modifier() {
        s.push(':');
        s.push_str(m);
    }
    if let Some(c) = p.chain() {
        s.push('.');
        s.push_str(c);
    }
    s.chars().take(128).collect()
}

fn one_of(value: &str, allowed: &[&str]) -> bool {
    allowed.contains(&value)
}

/// A comparison prefix (FHIR R4 §3.1.1.4.1.1), only for number, date and quantity.
fn strip_prefix(value: &str) -> &str {
    const PREFIXES: [&str; 9] = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"];
    match value.get(..2) {
        Some(p) if PREFIXES.contains(&p) => value.get(2..).unwrap_or_default(),
        _ => value,
    }
}

fn no_space(s: &str) -> bool {
    !s.is_empty() && !s.bytes().any(|b| b.is_ascii_whitespace())
}

fn modifier_allowed(kind: SearchParamType, modifier: &str) -> bool {
    if modifier == "missing" {
        return true;
    }
    match kind {
        SearchParamType::String => one_of(modifier, &["exact", "contains"]),
        SearchParamType::Token => one_of(
            modifier,
            &["text", "not", "above", "below", "in", "not-in", "of-type"],
        ),
        SearchParamType::Reference => one_of(modifier, &["identifier", "above", "below"]),
        SearchParamType::Uri => one_of(modifier, &["above", "below"]),
        _ => false,
    }
}

impl SearchChecker<'_> {
    fn refuse(&mut self, p: &QueryParam<'_>, code: IssueType, text: impl Into<Cow<'static, str>>) {
        if self.problems.len() < self.cfg.max_problems {
            self.problems.push(Problem::new(
                ProblemClass::Structure,
                code,
                text,
                written(p),
            ));
        }
    }

    fn unknown(&mut self, p: &QueryParam<'_>) {
        if !self.lenient {
            self.refuse(
                p,
                IssueType::NotSupported,
                "unknown search parameter for this resource type",
            );
        }
    }

    fn disabled(&mut self, p: &QueryParam<'_>) {
        self.refuse(
            p,
            IssueType::NotSupported,
            "this search parameter is not enabled",
        );
    }

    fn no_modifier(&mut self, p: &QueryParam<'_>) -> bool {
        if p.modifier().is_some() || p.is_chained() {
            self.refuse(p, IssueType::Invalid, "this parameter takes no modifier");
            return false;
        }
        true
    }

    fn each_value(&mut self, p: &QueryParam<'_>, ok: impl Fn(&str) -> bool) {
        if p.values().len() == 0 {
            self.refuse(p, IssueType::Value, "the parameter has no value");
            return;
        }
        if !p.values().all(|v| ok(&v.text())) {
            self.refuse(p, IssueType::Value, "invalid value for this parameter");
        }
    }

    fn param(&mut self, p: &QueryParam<'_>) {
        match p.kind() {
            ParamKind::Search => self.search(p),
            ParamKind::Has if self.cfg.allow_has => {
                if p.modifier().is_none_or(|m| m.split(':').count() < 3) {
                    self.refuse(p, IssueType::Invalid, "_has needs Type:reference:parameter");
                }
            }
            ParamKind::Has => self.disabled(p),
            ParamKind::Filter if self.cfg.allow_filter => {}
            ParamKind::NamedQuery if self.cfg.allow_named_query => {}
            ParamKind::Filter | ParamKind::NamedQuery => self.disabled(p),
            // Checked by content negotiation (406).
            ParamKind::Format => {
                self.no_modifier(p);
            }
            ParamKind::Count => {
                if self.no_modifier(p) {
                    match p.raw_value().parse::<u32>() {
                        Ok(n) if n <= self.cfg.max_count => {}
                        Ok(_) => self.refuse(p, IssueType::TooCostly, "_count is above the limit"),
                        Err(_) => self.refuse(p, IssueType::Value, "_count must be a number"),
                    }
                }
            }
            ParamKind::Pretty => self.fixed(p, &["true", "false"]),
            ParamKind::Summary => self.fixed(p, &["true", "text", "data", "count", "false"]),
            ParamKind::Total => self.fixed(p, &["none", "estimate", "accurate"]),
            ParamKind::Contained => self.fixed(p, &["true", "false", "both"]),
            ParamKind::ContainedType => self.fixed(p, &["container", "contained"]),
            ParamKind::Type => {
                if self.no_modifier(p) {
                    self.each_value(p, |v| ResourceType::from_name(v).is_some());
                }
            }
            ParamKind::Since | ParamKind::At => {
                if self.no_modifier(p) {
                    self.each_value(p, |v| primitives::search_date(v.as_bytes()));
                }
            }
            ParamKind::Elements => {
                if self.no_modifier(p) {
                    let rt = self.rt;
                    self.each_value(p, |v| element_name_ok(rt, v));
                }
            }
            ParamKind::Sort => {
                if self.no_modifier(p) {
                    let rt = self.rt;
                    self.each_value(p, |v| {
                        let name = v.strip_prefix('-').unwrap_or(v);
                        lookup(rt, name).is_some()
                    });
                }
            }
            ParamKind::Include | ParamKind::RevInclude => self.include(p),
            ParamKind::OtherControl => {
                if !self.cfg.control_params.iter().any(|c| c == p.name()) {
                    self.unknown(p);
                }
            }
        }
    }

    fn fixed(&mut self, p: &QueryParam<'_>, allowed: &[&str]) {
        if self.no_modifier(p) && !one_of(p.raw_value(), allowed) {
            self.refuse(p, IssueType::Value, "invalid value for this parameter");
        }
    }

    fn include(&mut self, p: &QueryParam<'_>) {
        if p.is_chained()
            || p.modifier()
                .is_some_and(|m| !one_of(m, &["iterate", "recurse"]))
        {
            self.refuse(p, IssueType::Invalid, "_include takes only :iterate");
            return;
        }
        let wildcard_ok = self.cfg.include_wildcard;
        let values: Vec<SearchValue<'_>> = p.values().collect();
        if values.is_empty() {
            self.refuse(p, IssueType::Value, "the parameter has no value");
        }
        for v in values {
            let text = v.text();
            let mut parts = text.split(':');
            let (source, param, target) = (parts.next(), parts.next(), parts.next());
            if text == "*" || param == Some("*") {
                if !wildcard_ok {
                    self.refuse(p, IssueType::TooCostly, "wildcard includes are not allowed");
                }
                continue;
            }
            let source = source.and_then(ResourceType::from_name);
            let def = source
                .zip(param)
                .and_then(|(s, n)| tables::search_param(s, n));
            let ok = parts.next().is_none()
                && def.is_some_and(|d| {
                    d.kind == SearchParamType::Reference
                        && target.is_none_or(|t| {
                            ResourceType::from_name(t)
                                .is_some_and(|t| d.any_target || d.targets.contains(&t))
                        })
                });
            if !ok {
                self.refuse(
                    p,
                    IssueType::Value,
                    "an include must name a reference parameter: Type:parameter[:Target]",
                );
            }
        }
    }

    fn search(&mut self, p: &QueryParam<'_>) {
        let name = p.name();
        if matches!(name, "_text" | "_content") && !self.cfg.allow_text_search {
            self.disabled(p);
            return;
        }
        let Some(def) = lookup(self.rt, name) else {
            self.unknown(p);
            return;
        };
        let mut def = def;
        let mut type_modifier = None;
        if let Some(m) = p.modifier() {
            if def.kind == SearchParamType::Reference {
                if let Some(t) = ResourceType::from_name(m) {
                    if !(def.any_target || def.targets.contains(&t)) {
                        self.refuse(
                            p,
                            IssueType::Invalid,
                            "the reference cannot point to this type",
                        );
                        return;
                    }
                    type_modifier = Some(t);
                }
            }
            if type_modifier.is_none() && !modifier_allowed(def.kind, m) {
                self.refuse(
                    p,
                    IssueType::Invalid,
                    "this modifier is not allowed for the parameter's type",
                );
                return;
            }
        }
        if let Some(chain) = p.chain() {
            match self.chain(def, type_modifier, chain) {
                Ok(last) => def = last,
                Err(why) => {
                    self.refuse(p, IssueType::Invalid, why);
                    return;
                }
            }
        }
        let modifier = if p.is_chained() { None } else { p.modifier() };
        match modifier {
            Some("missing") => return self.each_value(p, |v| one_of(v, &["true", "false"])),
            Some("text") => return self.each_value(p, |v| !v.is_empty()),
            Some("in" | "not-in" | "above" | "below") if def.kind != SearchParamType::Reference => {
                return self.each_value(p, no_space)
            }
            Some("identifier") => {
                return self.token_values(p, 2);
            }
            Some("of-type") => return self.token_values(p, 3),
            _ => {}
        }
        let typed = type_modifier.is_some();
        match def.kind {
            SearchParamType::Number => {
                self.each_value(p, |v| primitives::valid("decimal", strip_prefix(v)))
            }
            SearchParamType::Date => {
                self.each_value(p, |v| primitives::search_date(strip_prefix(v).as_bytes()))
            }
            SearchParamType::Quantity => self.quantity(p),
            SearchParamType::Token => self.token_values(p, 2),
            SearchParamType::Reference => self.reference(p, def, typed),
            SearchParamType::Uri => self.each_value(p, no_space),
            SearchParamType::Composite => {
                if p.values().len() == 0 || !p.values().all(|v| v.split('$').len() >= 2) {
                    self.refuse(p, IssueType::Value, "a composite value is a$b");
                }
            }
            SearchParamType::String | SearchParamType::Special => {
                self.each_value(p, |v| !v.is_empty())
            }
        }
    }

    fn token_values(&mut self, p: &QueryParam<'_>, max_parts: usize) {
        if p.values().len() == 0 {
            self.refuse(p, IssueType::Value, "the parameter has no value");
            return;
        }
        let ok = p.values().all(|v| {
            let parts = v.split('|');
            parts.len() <= max_parts
                && !v.raw().is_empty()
                && v.raw() != "|"
                && parts
                    .first()
                    .is_none_or(|s| parts.len() == 1 || s.is_empty() || no_space(s))
        });
        if !ok {
            self.refuse(p, IssueType::Value, "a token is [system]|[code]");
        }
    }

    fn quantity(&mut self, p: &QueryParam<'_>) {
        if p.values().len() == 0 {
            self.refuse(p, IssueType::Value, "the parameter has no value");
            return;
        }
        let ok = p.values().all(|v| {
            let parts = v.split('|');
            let number = parts
                .first()
                .is_some_and(|n| primitives::valid("decimal", strip_prefix(n)));
            number
                && (parts.len() == 1
                    || (parts.len() == 3
                        && parts.get(1).is_some_and(|s| s.is_empty() || no_space(s))))
        });
        if !ok {
            self.refuse(
                p,
                IssueType::Value,
                "a quantity is [prefix]number[|system|code]",
            );
        }
    }

    fn reference(&mut self, p: &QueryParam<'_>, def: &SearchParamDef, typed: bool) {
        let ok = |v: &str| {
            if typed || !v.contains('/') {
                return primitives::id(v.as_bytes());
            }
            if v.contains("://") {
                return no_space(v);
            }
            let mut parts = v.split('/');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(t), Some(id), None) => {
                    ResourceType::from_name(t)
                        .is_some_and(|t| def.any_target || def.targets.contains(&t))
                        && primitives::id(id.as_bytes())
                }
                _ => false,
            }
        };
        self.each_value(p, ok);
    }

    /// Follows a chain (`subject:Patient.organization.name`) through reference parameters;
    /// returns the last parameter, whose type the value has.
    fn chain(
        &self,
        first: &'static SearchParamDef,
        type_modifier: Option<ResourceType>,
        chain: &str,
    ) -> Result<&'static SearchParamDef, &'static str> {
        if first.kind != SearchParamType::Reference {
            return Err("only reference parameters can be chained");
        }
        if chain.split('.').count() > self.cfg.max_chain_depth {
            return Err("the chain is longer than allowed");
        }
        let mut targets: Vec<ResourceType> = match type_modifier {
            Some(t) => vec![t],
            None if first.targets.is_empty() => ResourceType::ALL.to_vec(),
            None => first.targets.to_vec(),
        };
        let mut last = first;
        let mut segments = chain.split('.').peekable();
        while let Some(segment) = segments.next() {
            let (name, ty) = match segment.split_once(':') {
                Some((n, t)) => (
                    n,
                    Some(ResourceType::from_name(t).ok_or("unknown type in chain")?),
                ),
                None => (segment, None),
            };
            let defs: Vec<&'static SearchParamDef> = targets
                .iter()
                .filter_map(|t| tables::search_param(*t, name))
                .collect();
            let Some(def) = defs.first().copied() else {
                return Err("the chained parameter is unknown for the referenced types");
            };
            last = def;
            if segments.peek().is_some() {
                if def.kind != SearchParamType::Reference {
                    return Err("only reference parameters can be chained");
                }
                targets = match ty {
                    Some(t) => vec![t],
                    None => {
                        let mut all: Vec<ResourceType> = defs
                            .iter()
                            .flat_map(|d| d.targets.iter().copied())
                            .collect();
                        all.sort_unstable_by_key(|t| t.as_str());
                        all.dedup();
                        all
                    }
                };
            } else if ty.is_some() {
                return Err("a type modifier must be followed by a chained parameter");
            }
        }
        Ok(last)
    }
}

/// The search parameter `name` of `rt`, or a common one for a system search.
fn lookup(rt: Option<ResourceType>, name: &str) -> Option<&'static SearchParamDef> {
    match rt {
        Some(rt) => tables::search_param(rt, name),
        None => tables::common_search_param(name),
    }
}

/// `_elements` names a top-level element of the type (`name`, or a choice stem `value`).
fn element_name_ok(rt: Option<ResourceType>, name: &str) -> bool {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let Some(rt) = rt else {
        return true;
    };
    tables::element(&format!("{}.{name}", rt.as_str())).is_some()
        || tables::element(&format!("{}.{name}[x]", rt.as_str())).is_some()
}
