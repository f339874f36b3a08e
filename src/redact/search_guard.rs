//! Searches on what the caller may not see.
//!
//! Removing an element from every response is not enough if the caller may still search on
//! it: `Patient?identifier=http://hl7.org/fhir/sid/us-ssn|999-12-3456` answers "yes, and it is
//! this patient" even when the SSN itself never leaves the server (a search oracle). So before
//! the request goes on, every search criterion the request carries (its query, its
//! `If-None-Exist` condition, and those of each batch or transaction entry) is compared with
//! the element selectors that apply to the caller: a criterion whose element is one the caller
//! loses, or lies inside or around one, is refused with 403. Chained and reverse-chained
//! (`_has`) parameters are judged by their last parameter on every type the policy redacts,
//! `_sort` by the parameters it sorts on, and `_text`, `_content` and `_filter` (free text,
//! free expressions) whenever anything of the searched type is redacted.
//!
//! A selector filtered by `system` (`identifier.where(system='…us-ssn')`) only blocks a token
//! search that could match that system: `identifier=http://hospital/mrn|123` stays allowed,
//! `identifier=999-12-3456` (any system) does not.

use super::compile::Plan;
use super::path::Step;
use crate::fhir::tables::{self, SearchParamDef};
use crate::fhir::{FhirRequest, ParamKind, Query, QueryParam, ResourceType};

/// The first criterion of `request` that searches on something `plan` hides, by parameter
/// name; `None` when there is none.
pub(crate) fn hidden_criterion(plan: &Plan, request: &FhirRequest) -> Option<String> {
    if !plan.has_selectors() {
        return None;
    }
    let mut found = check_query(plan, request.resource_type(), request.query());
    if found.is_none() {
        if let Some(condition) = request.condition() {
            found = check_query(plan, request.resource_type(), condition);
        }
    }
    if found.is_none() {
        found = request
            .entries()
            .iter()
            .find_map(|entry| hidden_criterion(plan, &entry.request));
    }
    found
}

fn check_query(plan: &Plan, rt: Option<ResourceType>, query: &Query) -> Option<String> {
    query
        .params()
        .find(|param| param_touches(plan, rt, param))
        .map(|param| param.name().to_owned())
}

fn param_touches(plan: &Plan, rt: Option<ResourceType>, param: &QueryParam<'_>) -> bool {
    match param.kind() {
        ParamKind::Search => {}
        ParamKind::Has => {
            // `_has:Observation:patient:code=x`: the last name, on the named type.
            let chain = param.modifier().unwrap_or_default();
            let mut parts = chain.split(':');
            let ty = parts.next().and_then(ResourceType::from_name);
            let last = chain.rsplit(':').next().unwrap_or_default();
            return name_touches(plan, ty, last, Some(param));
        }
        ParamKind::Sort => {
            return param.values().any(|v| {
                let name = v.raw().trim_start_matches('-');
                name_touches(plan, rt, name, None)
            });
        }
        ParamKind::Filter => return type_redacted(plan, rt),
        _ => return false,
    }
    let name = param.name();
    if matches!(name, "_text" | "_content") {
        return type_redacted(plan, rt);
    }
    if let Some(chain) = param.chain() {
        // `subject:Patient.identifier=x` or `subject.organization.name=x`: the last
        // parameter, on any type the policy redacts (the chain's target is not known here).
        let last = chain.rsplit('.').next().unwrap_or_default();
        return name_touches(plan, None, last, Some(param));
    }
    name_touches(plan, rt, name, Some(param))
}

/// Whether anything at all of `rt` (or of any type, for a system search) is redacted.
fn type_redacted(plan: &Plan, rt: Option<ResourceType>) -> bool {
    plan.selector_roots()
        .any(|root| root.is_none() || rt.is_none() || root == rt.map(ResourceType::as_str))
}

/// Whether searching on parameter `name` of `rt` (every redacted type when `None`) reaches an
/// element a selector of `plan` removes or masks.
fn name_touches(
    plan: &Plan,
    rt: Option<ResourceType>,
    name: &str,
    param: Option<&QueryParam<'_>>,
) -> bool {
    let name = name.split(':').next().unwrap_or_default();
    plan.selectors_with_root().any(|(root, steps)| {
        let types: Vec<ResourceType> = match (root, rt) {
            (Some(r), Some(t)) if r == t.as_str() => vec![t],
            (Some(_), Some(_)) => return false,
            (Some(r), None) => ResourceType::from_name(r).into_iter().collect(),
            (None, Some(t)) => vec![t],
            // A `*` selector on a system-wide search: the common parameters only.
            (None, None) => Vec::new(),
        };
        let defs: Vec<&'static SearchParamDef> = if types.is_empty() {
            tables::common_search_param(name).into_iter().collect()
        } else {
            types
                .iter()
                .filter_map(|t| {
                    tables::search_param(*t, name).or_else(|| tables::common_search_param(name))
                })
                .collect()
        };
        defs.iter()
            .any(|def| def_touches(def, steps, param.filter(|_| types.len() <= 1)))
    })
}

fn def_touches(def: &SearchParamDef, steps: &[Step], param: Option<&QueryParam<'_>>) -> bool {
    if def.paths.is_empty() {
        // No element path recorded (an expression too complex to reduce): assume it reaches.
        return true;
    }
    // `subject:identifier=...` searches the reference's identifier, not the reference.
    let by_identifier = param.and_then(|p| p.modifier()) == Some("identifier");
    def.paths.iter().any(|path| {
        let mut segments: Vec<&str> = path.split('.').collect();
        if by_identifier {
            segments.push("identifier");
        }
        overlaps(steps, &segments, def.kind) && !excluded_by_system(steps, &segments, def, param)
    })
}

/// Whether a selector's element path and a search path overlap: one is a prefix of the other.
/// After `descendants()`, the rest of the selector may start at any depth of the search path,
/// but must meet it: a search on `code` is not a search on `*.descendants().identifier`.
fn overlaps(steps: &[Step], segments: &[&str], kind: tables::SearchParamType) -> bool {
    for (i, step) in steps.iter().enumerate() {
        let Some(segment) = segments.get(i) else {
            return ends_above(steps.get(i..).unwrap_or_default(), kind);
        };
        match step {
            Step::Descendants => {
                let rest = steps.get(i + 1..).unwrap_or_default();
                let below = segments.get(i..).unwrap_or_default();
                return (0..below.len()).any(|j| {
                    let tail = below.get(j..).unwrap_or_default();
                    starts_alike(rest.first(), tail.first()) && overlaps(rest, tail, kind)
                });
            }
            Step::Element { .. } => {
                if !starts_alike(Some(step), Some(segment)) {
                    return false;
                }
            }
        }
    }
    // The selector ends at or above the searched element.
    true
}

fn starts_alike(step: Option<&Step>, segment: Option<&&str>) -> bool {
    match (step, segment) {
        (Some(Step::Element { name, choice, .. }), Some(segment)) => {
            if *choice {
                segment.starts_with(name.as_str())
            } else {
                *segment == name
            }
        }
        (Some(Step::Descendants), Some(_)) => true,
        _ => false,
    }
}

/// The search path ends above the selected element (`subject` searched, `subject.display`
/// removed): the search reaches it unless the search type never reads it. A reference search
/// compares `reference` (and `identifier` with the `:identifier` modifier, added to the path
/// above), never `display`.
fn ends_above(remaining: &[Step], kind: tables::SearchParamType) -> bool {
    let first = match remaining.first() {
        Some(Step::Element { name, .. }) => name.as_str(),
        _ => return true,
    };
    !(kind == tables::SearchParamType::Reference && first == "display")
}

/// A selector that keeps only the repetitions with one `system`
/// (`identifier.where(system='x')`), against a token search whose every value names another
/// system: that search can't match the removed repetitions.
fn excluded_by_system(
    steps: &[Step],
    segments: &[&str],
    def: &SearchParamDef,
    param: Option<&QueryParam<'_>>,
) -> bool {
    let Some(param) = param else {
        return false;
    };
    if def.kind != tables::SearchParamType::Token || param.modifier().is_some() {
        return false;
    }
    if steps.len() != segments.len() {
        return false;
    }
    let Some(Step::Element {
        filter: Some(filter),
        ..
    }) = steps.last()
    else {
        return false;
    };
    if filter.field != "system" {
        return false;
    }
    param.values().all(|value| {
        let parts = value.split('|');
        parts.len() >= 2 && parts.first().is_some_and(|system| system != &filter.value)
    })
}

#[cfg(test)]
mod tests {
    use super::hidden_criterion;
    use crate::fhir::Classifier;
    use crate::redact::{Action, Caller, Policy, Redactor, Rule};
    use http::{HeaderMap, Method, Uri};

    fn refused(uri: &str) -> Option<String> {
        refused_by(uri, false)
    }

    /// The demo's research policy: identifiers anywhere, patient names in references.
    fn refused_research(uri: &str) -> Option<String> {
        refused_by(uri, true)
    }

    fn refused_by(uri: &str, research: bool) -> Option<String> {
        let research_rules = [
            "*.descendants().identifier",
            "*.descendants().subject.display",
        ];
        let policy = if research {
            Policy {
                rules: vec![Rule::new(research_rules, Action::Remove).unwrap()],
                ..Policy::default()
            }
        } else {
            Policy {
                rules: vec![
                    Rule::new(
                        ["Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')"],
                        Action::Remove,
                    )
                    .unwrap(),
                    Rule::new(["Patient.telecom", "Observation.value[x]"], Action::Remove).unwrap(),
                ],
                ..Policy::default()
            }
        };
        let redactor = Redactor::new(policy).unwrap();
        let plan = redactor.plan(&Caller::anonymous());
        let uri: Uri = uri.parse().unwrap();
        let request = Classifier::new("/fhir")
            .classify(&Method::GET, &uri, &HeaderMap::new(), b"")
            .unwrap();
        hidden_criterion(&plan, &request)
    }

    #[test]
    fn searches_on_hidden_elements_are_found() {
        let ssn = "/fhir/Patient?identifier=http://hl7.org/fhir/sid/us-ssn%7C999-12-3456";
        assert_eq!(refused(ssn).as_deref(), Some("identifier"));
        assert!(refused("/fhir/Patient?identifier=999-12-3456").is_some());
        assert!(refused("/fhir/Patient?identifier:of-type=x%7CSS%7C1").is_some());
        assert!(refused("/fhir/Patient?phone=555").is_some());
        assert!(refused("/fhir/Patient?telecom=555").is_some());
        assert!(refused("/fhir/Patient?_sort=-telecom").is_some());
        assert!(refused("/fhir/Observation?value-quantity=5").is_some());
        assert!(refused("/fhir/Observation?subject:Patient.identifier=1").is_some());
        assert!(refused("/fhir/Observation?subject.telecom=1").is_some());
        assert!(refused("/fhir/Patient?_text=x").is_some());
        // `*.descendants().identifier`, at any depth.
        assert!(refused_research("/fhir/Encounter?identifier=1").is_some());
        assert!(refused_research("/fhir/Patient?identifier=x%7C1").is_some());
        assert!(refused_research("/fhir/Observation?subject:identifier=1").is_some());
    }

    #[test]
    fn other_searches_pass() {
        let mrn = "/fhir/Patient?identifier=http://hospital.example/mrn%7C1";
        assert_eq!(refused(mrn), None);
        assert_eq!(refused("/fhir/Patient?identifier=%7C1"), None);
        assert_eq!(refused("/fhir/Patient?name=smith&_sort=name"), None);
        assert_eq!(refused("/fhir/Observation?code=8480-6&patient=pat-1"), None);
        assert_eq!(refused("/fhir/Patient/pat-1"), None);
        // Searches that never reach an identifier or a display.
        assert_eq!(refused_research("/fhir/Encounter?status=finished"), None);
        assert_eq!(
            refused_research("/fhir/Observation?subject=Patient/pat-1"),
            None
        );
        assert_eq!(
            refused_research("/fhir/Observation?code=8480-6&date=2020"),
            None
        );
    }
}
