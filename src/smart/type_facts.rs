//! Facts about each resource type that authorization needs on every request, computed once
//! from the generated R4 tables: the search parameters that can name a patient, and the
//! parameter a search is narrowed by. A request then finds them by the type's index instead of
//! searching the tables by string.

use crate::fhir::tables::{self, SearchParamDef, SearchParamType};
use crate::fhir::ResourceType;
use std::sync::OnceLock;

struct TypeFacts {
    /// The type's own reference parameters that may point at a Patient.
    patient_refs: Vec<&'static SearchParamDef>,
    /// See [`narrowing_param`].
    narrowing: Option<&'static str>,
}

fn facts(rt: ResourceType) -> Option<&'static TypeFacts> {
    static TABLE: OnceLock<Vec<TypeFacts>> = OnceLock::new();
    TABLE
        .get_or_init(|| ResourceType::ALL.iter().map(|&rt| compute(rt)).collect())
        .get(type_index(rt))
}

/// A type's place in [`ResourceType::ALL`] (the enum is declared in that order; a unit test
/// holds it there).
fn type_index(rt: ResourceType) -> usize {
    rt as usize
}

fn compute(rt: ResourceType) -> TypeFacts {
    TypeFacts {
        patient_refs: tables::search_params_for(rt)
            .iter()
            .filter(|d| is_patient_reference(d))
            .collect(),
        narrowing: compute_narrowing_param(rt),
    }
}

/// A reference parameter whose target may be a Patient.
pub(crate) fn is_patient_reference(def: &SearchParamDef) -> bool {
    def.kind == SearchParamType::Reference
        && (def.any_target || def.targets.contains(&ResourceType::Patient))
}

/// The definition of search parameter `name` of `rt` when it is a reference that may name a
/// patient, as [`tables::search_param`] would find it.
///
/// The common parameters every type has (`_id`, `_list` …) all start with `_`; such names
/// take the tables' own lookup, so the answer is the same as looking every name up there.
pub(crate) fn patient_reference_param(
    rt: ResourceType,
    name: &str,
) -> Option<&'static SearchParamDef> {
    if name.starts_with('_') {
        return tables::search_param(rt, name).filter(|d| is_patient_reference(d));
    }
    facts(rt)?
        .patient_refs
        .iter()
        .find(|d| d.code == name)
        .copied()
}

/// The compartment parameter used to narrow searches of `rt` (`_id` for Patient).
pub(crate) fn narrowing_param(rt: ResourceType) -> Option<&'static str> {
    facts(rt)?.narrowing
}

fn compute_narrowing_param(rt: ResourceType) -> Option<&'static str> {
    if rt == ResourceType::Patient {
        return Some("_id");
    }
    let params = tables::patient_compartment(rt)?;
    for preferred in [
        "patient",
        "subject",
        "beneficiary",
        "member",
        "individual",
        "actor",
    ] {
        if let Some(p) = params.iter().find(|p| p.code == preferred) {
            return Some(p.code);
        }
    }
    params.first().map(|p| p.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_index_is_the_place_in_all() {
        for (i, rt) in ResourceType::ALL.iter().enumerate() {
            assert_eq!(type_index(*rt), i, "{rt:?}");
        }
    }

    /// The table answers what the tables' own lookup answers, for every type and every
    /// parameter name a type or the common parameters have (FHIR R4 §3.1.1.4).
    #[test]
    fn patient_reference_param_agrees_with_search_param() {
        let common = [
            "_id",
            "_lastUpdated",
            "_tag",
            "_profile",
            "_security",
            "_source",
            "_text",
            "_content",
            "_filter",
            "_query",
            "_has",
            "_list",
            "_type",
        ];
        for rt in ResourceType::ALL {
            let own = tables::search_params_for(rt).iter().map(|d| d.code);
            for name in own
                .chain(common)
                .chain(["nonesuch", "subject", "patient", "_x"])
            {
                let slow = tables::search_param(rt, name).filter(|d| is_patient_reference(d));
                let fast = patient_reference_param(rt, name);
                assert_eq!(
                    fast.map(|d| d as *const SearchParamDef),
                    slow.map(|d| d as *const SearchParamDef),
                    "{rt:?} {name}"
                );
            }
        }
    }

    #[test]
    fn common_parameters_start_with_underscore() {
        // What `patient_reference_param` relies on: a name without `_` is never common.
        for rt in [ResourceType::Observation, ResourceType::Patient] {
            for d in tables::search_params_for(rt) {
                if tables::common_search_param(d.code).is_some() {
                    assert!(d.code.starts_with('_'), "{}", d.code);
                }
            }
        }
        assert!(tables::common_search_param("subject").is_none());
    }
}
