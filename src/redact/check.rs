//! The build-time checks that keep a policy from silently matching nothing: every path must
//! name R4 elements, every filter field must exist, every predicate must be known and every
//! scope must be written the way callers' scopes are.

use super::path::{ElementPath, Step};
use super::policy::{Action, CallerMatch, Policy};
use crate::fhir::tables::{self, ElementDef};
use crate::fhir::ResourceType;
use std::collections::HashSet;
use std::sync::OnceLock;

/// The R4 element definition `root` + `steps` names, following data types
/// (`Patient.name.family` is `HumanName.family`) and content references; `Ok(None)` when the
/// steps go through `descendants()` (checked by [`check_loose`] instead).
pub(super) fn resolve(root: &str, steps: &[Step]) -> Result<Option<&'static ElementDef>, String> {
    if ResourceType::from_name(root).is_none() {
        return Err(format!("unknown resource type {root}"));
    }
    let mut current = root.to_string();
    let mut def: Option<&'static ElementDef> = None;
    for step in steps {
        let Step::Element { name, choice, .. } = step else {
            return Ok(None);
        };
        let seg = segment(name, *choice);
        let (path, found) = child(&current, def, &seg)
            .ok_or_else(|| format!("no element {seg} under {current}"))?;
        def = Some(found);
        current = found
            .content_reference
            .map(|r| r.trim_start_matches('#').to_string())
            .unwrap_or(path);
    }
    Ok(def)
}

fn segment(name: &str, choice: bool) -> String {
    if choice {
        format!("{name}[x]")
    } else {
        name.to_string()
    }
}

/// The element `seg` under `current` (an element path), directly or through its data type.
fn child(
    current: &str,
    def: Option<&'static ElementDef>,
    seg: &str,
) -> Option<(String, &'static ElementDef)> {
    let direct = format!("{current}.{seg}");
    if let Some(found) = tables::element(&direct) {
        return Some((direct, found));
    }
    let ty = match def?.types {
        [one] if !matches!(*one, "BackboneElement" | "Element") => *one,
        _ => return None,
    };
    let via_type = format!("{ty}.{seg}");
    tables::element(&via_type).map(|d| (via_type, d))
}

/// Every element name (`family`, `value[x]`) of every resource and of every data type they
/// use, for the steps that follow `descendants()` or a `*` root.
fn element_names() -> &'static HashSet<&'static str> {
    static NAMES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = HashSet::new();
        let mut seen: HashSet<&'static str> = HashSet::new();
        let mut todo: Vec<&'static str> = ResourceType::ALL.iter().map(|r| r.as_str()).collect();
        while let Some(ty) = todo.pop() {
            if !seen.insert(ty) {
                continue;
            }
            for e in tables::type_elements(ty).unwrap_or(&[]) {
                if let Some((_, last)) = e.path.rsplit_once('.') {
                    names.insert(last);
                }
                todo.extend(e.types.iter().copied().filter(|t| !t.contains('/')));
            }
        }
        names
    })
}

/// Checks a path the tables can't follow to one definition (`*` root or `descendants()`):
/// with a `*` root and no `descendants()`, some resource type must have the path; after
/// `descendants()`, every name must be an R4 element name somewhere.
fn check_loose(path: &ElementPath) -> Result<(), String> {
    let steps = path.steps();
    let loose_from = match steps.iter().position(|s| *s == Step::Descendants) {
        Some(i) => i,
        None => {
            let any = ResourceType::ALL
                .iter()
                .any(|rt| resolve(rt.as_str(), steps).is_ok());
            return if any {
                Ok(())
            } else {
                Err(format!("{path}: no resource type has this element"))
            };
        }
    };
    if let Some(root) = path.root() {
        resolve(root, steps.get(..loose_from).unwrap_or(&[]))
            .map_err(|e| format!("{path}: {e}"))?;
    }
    for step in steps.get(loose_from..).unwrap_or(&[]) {
        if let Step::Element {
            name,
            choice,
            filter,
        } = step
        {
            let seg = segment(name, *choice);
            if !element_names().contains(seg.as_str()) {
                return Err(format!("{path}: no R4 element is named {seg}"));
            }
            if let Some(f) = filter {
                if !element_names().contains(f.field.as_str()) {
                    return Err(format!("{path}: no R4 element is named {}", f.field));
                }
            }
        }
    }
    Ok(())
}

/// Checks one path: its elements and its `where()` fields exist in R4. Returns the definition
/// of the selected element when the tables can follow the path to one.
pub(super) fn check_path(path: &ElementPath) -> Result<Option<&'static ElementDef>, String> {
    let Some(root) = path
        .root()
        .filter(|_| !path.steps().contains(&Step::Descendants))
    else {
        check_loose(path)?;
        return Ok(None);
    };
    let steps = path.steps();
    // A filter's field must be a member of the element it filters, or it matches nothing.
    for (i, step) in steps.iter().enumerate() {
        let Step::Element {
            filter: Some(f), ..
        } = step
        else {
            continue;
        };
        let mut with_field = steps.get(..=i).unwrap_or(&[]).to_vec();
        with_field.push(Step::Element {
            name: f.field.clone(),
            choice: false,
            filter: None,
        });
        resolve(root, &with_field)
            .map_err(|_| format!("{path}: where({}=...) names no element", f.field))?;
    }
    resolve(root, steps).map_err(|e| format!("{path}: {e}"))
}

/// The names a [`CallerMatch`] may use: `predicates` are the registered and declared predicate
/// names.
pub(super) fn check_callers(m: &CallerMatch, predicates: &[String]) -> Result<(), String> {
    if let Some(c) = m
        .clients
        .iter()
        .find(|c| c.trim().is_empty() || c.trim() != c.as_str())
    {
        return Err(format!("client name {c:?} is empty or padded"));
    }
    if let Some(p) = m.predicates.iter().find(|p| !predicates.contains(p)) {
        return Err(format!(
            "unknown predicate {p:?} (register it with RedactorBuilder::predicate or declare it \
             with RedactorBuilder::declare_predicate)"
        ));
    }
    for s in &m.scopes {
        check_scope(s)?;
    }
    Ok(())
}

/// A scope is compared as text with the caller's granted scopes, which
/// [`FromAccessContext`](super::FromAccessContext) writes in SMART v2 syntax: a scope written
/// any other way (`patient/Observation.read`) would never match.
#[cfg(feature = "smart")]
fn check_scope(s: &str) -> Result<(), String> {
    match crate::smart::Scope::parse(s) {
        Ok(scope) if scope.to_string() == s => Ok(()),
        Ok(scope) => Err(format!(
            "scope {s:?} never matches as written: callers' scopes read {:?}",
            scope.to_string()
        )),
        Err(e) => Err(format!("scope {s:?} is not a SMART scope: {e}")),
    }
}

#[cfg(not(feature = "smart"))]
fn check_scope(s: &str) -> Result<(), String> {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return Err(format!("scope {s:?} is empty or has spaces"));
    }
    Ok(())
}

/// Every caller name, predicate and scope of the policy (rules' `when`/`except`, label rules'
/// `except`), and the label rules themselves.
pub(super) fn check_names(policy: &Policy, predicates: &[String]) -> Result<(), String> {
    for (i, rule) in policy.rules.iter().enumerate() {
        for m in rule.when.iter().chain(rule.except.iter()) {
            check_callers(m, predicates).map_err(|e| format!("rule {i}: {e}"))?;
        }
        if rule.action == Action::RemoveResource && rule.resources.is_empty() {
            return Err(format!("rule {i}: remove_resource names no resource type"));
        }
        if rule.action != Action::RemoveResource && rule.paths.is_empty() {
            return Err(format!("rule {i}: the rule selects no path"));
        }
    }
    for (i, label) in policy.labels.iter().enumerate() {
        check_callers(&label.except, predicates).map_err(|e| format!("label rule {i}: {e}"))?;
        if label.codes.is_empty() || label.codes.iter().any(|c| c.trim().is_empty()) {
            return Err(format!(
                "label rule {i}: codes must be listed and not empty"
            ));
        }
        if label.system.as_ref().is_some_and(|s| s.trim().is_empty()) {
            return Err(format!("label rule {i}: the system is empty"));
        }
    }
    Ok(())
}
