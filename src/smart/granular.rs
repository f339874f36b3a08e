//! Granular scope conditions (`patient/Observation.rs?category=...|laboratory`), on requests and
//! on resources.
//!
//! On a search, a granular scope allows the request when the request itself carries every one
//! of the scope's parameters with values among the scope's (so the server applies them). On a
//! resource (a read, an included resource, a resource being written), each condition is
//! checked on the element paths of the search parameter: token, reference and URI parameters
//! can be checked; a condition that can't be checked does not hold (fail closed).

use super::compartment::values_at;
use super::scope::{ResourceScope, ScopeParam};
use crate::fhir::tables::{self, SearchParamType};
use crate::fhir::{Query, ResourceType};
use serde_json::Value;

/// Whether `query` already carries every condition of `scope`: for each scope parameter, one
/// plain (unmodified, unchained) request parameter of the same name whose values are all among
/// the scope's values.
pub(crate) fn implied_by(scope: &ResourceScope, query: &Query) -> bool {
    scope.params().iter().all(|sp| {
        query.get(sp.name()).any(|p| {
            p.modifier().is_none()
                && !p.is_chained()
                && p.values().len() > 0
                && p.values()
                    .all(|v| sp.values().iter().any(|allowed| *allowed == v.text()))
        })
    })
}

/// Whether every condition of `scope` holds for `resource` (of type `rt`).
pub(crate) fn holds(scope: &ResourceScope, rt: ResourceType, resource: &Value) -> bool {
    scope
        .params()
        .iter()
        .all(|sp| param_holds(sp, rt, resource))
}

fn param_holds(sp: &ScopeParam, rt: ResourceType, resource: &Value) -> bool {
    let Some(def) = tables::search_param(rt, sp.name()) else {
        return false;
    };
    if def.paths.is_empty() {
        return false;
    }
    let mut found = Vec::new();
    for path in def.paths {
        values_at(resource, path, &mut found);
    }
    found.iter().any(|element| {
        sp.values().iter().any(|wanted| match def.kind {
            SearchParamType::Token => token_matches(element, wanted),
            SearchParamType::Reference => element
                .get("reference")
                .and_then(Value::as_str)
                .is_some_and(|r| r == wanted),
            SearchParamType::Uri => element.as_str().is_some_and(|u| u == wanted),
            _ => false,
        })
    })
}

/// FHIR R4 §3.1.1.4.10 token matching: `code`, `system|code`, `|code` (no system), `system|`.
fn token_matches(element: &Value, wanted: &str) -> bool {
    let (system, code) = match split_token(wanted) {
        Some((s, c)) => (Some(s), c),
        None => (None, wanted),
    };
    let pair_matches = |sys: Option<&str>, value: Option<&str>| -> bool {
        match system {
            None => value == Some(code),
            Some("") => sys.is_none() && value == Some(code),
            Some(s) if code.is_empty() => sys == Some(s),
            Some(s) => sys == Some(s) && value == Some(code),
        }
    };
    match element {
        Value::String(s) => system.is_none_or(str::is_empty) && s == code,
        Value::Bool(b) => system.is_none() && code == if *b { "true" } else { "false" },
        Value::Object(map) => {
            if let Some(Value::Array(codings)) = map.get("coding") {
                return codings.iter().any(|c| {
                    pair_matches(
                        c.get("system").and_then(Value::as_str),
                        c.get("code").and_then(Value::as_str),
                    )
                });
            }
            let sys = map.get("system").and_then(Value::as_str);
            let value = map
                .get("code")
                .or_else(|| map.get("value"))
                .and_then(Value::as_str);
            pair_matches(sys, value)
        }
        _ => false,
    }
}

/// Splits `system|code` on the first unescaped `|`; scope values are already unescaped, so a
/// plain split is right.
fn split_token(value: &str) -> Option<(&str, &str)> {
    value.split_once('|')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smart::Scope;
    use serde_json::json;

    const LAB: &str = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

    fn scope(s: &str) -> ResourceScope {
        Scope::parse(s).unwrap().as_resource().unwrap().clone()
    }

    #[test]
    fn request_implies_scope() {
        // SMART App Launch 2.2 §"Finer-grained resource constraints using search parameters".
        let s = scope(&format!("patient/Observation.rs?category={LAB}"));
        let q = |text: &str| Query::parse(text, 10).unwrap();
        assert!(implied_by(&s, &q(&format!("category={LAB}&code=1"))));
        assert!(!implied_by(&s, &q("category=laboratory")));
        assert!(!implied_by(&s, &q(&format!("category={LAB},http://x|y"))));
        assert!(!implied_by(&s, &q(&format!("category:not={LAB}"))));
        assert!(!implied_by(&s, &q("code=1")));
    }

    #[test]
    fn resource_holds() {
        let s = scope(&format!("patient/Observation.rs?category={LAB}"));
        let lab = json!({"resourceType": "Observation", "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}]});
        let vitals = json!({"resourceType": "Observation", "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]});
        assert!(holds(&s, ResourceType::Observation, &lab));
        assert!(!holds(&s, ResourceType::Observation, &vitals));
        assert!(!holds(
            &s,
            ResourceType::Observation,
            &json!({"resourceType": "Observation"})
        ));
        let status = scope("user/Observation.rs?status=final,amended");
        assert!(holds(
            &status,
            ResourceType::Observation,
            &json!({"status": "final"})
        ));
        assert!(!holds(
            &status,
            ResourceType::Observation,
            &json!({"status": "preliminary"})
        ));
    }

    #[test]
    fn token_forms() {
        let coding = json!({"coding": [{"system": "s", "code": "c"}]});
        assert!(token_matches(&coding, "c"));
        assert!(token_matches(&coding, "s|c"));
        assert!(token_matches(&coding, "s|"));
        assert!(!token_matches(&coding, "|c"));
        assert!(!token_matches(&coding, "t|c"));
        let bare = json!({"coding": [{"code": "c"}]});
        assert!(token_matches(&bare, "|c"));
    }
}
