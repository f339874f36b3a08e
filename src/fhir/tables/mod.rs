//! FHIR R4 tables generated from the official core package (`hl7.fhir.r4.core` 4.0.1).
//!
//! - [`ResourceType`]: the 146 concrete resource types.
//! - Search parameters (one row per resource type and code, plus the parameters of every
//!   resource): [`search_param`], [`common_search_param`], [`search_params_for`].
//! - The Patient compartment (FHIR R4 §2.23, CompartmentDefinition `patient`):
//!   [`patient_compartment`], [`patient_compartment_types`].
//! - The elements of every resource and data type snapshot, with cardinalities, types and
//!   required bindings: [`element`], [`children`], [`type_elements`]; the primitive types'
//!   regexes: [`primitive`]; the value sets of required bindings: [`value_set`].
//!
//! Everything is static data: lookups are binary searches over sorted tables, with nothing
//! parsed or built at run time. The tables are regenerated with
//! `cargo run -p xtask -- gen-tables` (and checked with `--check`).
//!
//! ```
//! use fhirwall::fhir::tables::{self, SearchParamType};
//! use fhirwall::fhir::ResourceType;
//!
//! let code = tables::search_param(ResourceType::Observation, "code").unwrap();
//! assert_eq!(code.kind, SearchParamType::Token);
//! assert_eq!(code.paths, ["code"]);
//!
//! // `_id` applies to every resource type.
//! assert!(tables::search_param(ResourceType::Patient, "_id").is_some());
//!
//! let gender = tables::element("Patient.gender").unwrap();
//! assert!(gender.required_binding.unwrap().contains("female"));
//! ```

mod resource_types;
mod types;

#[rustfmt::skip]
mod compartment;
#[rustfmt::skip]
mod elements;
#[rustfmt::skip]
mod search_params;
#[rustfmt::skip]
mod valuesets;

use std::iter;

pub use resource_types::ResourceType;
pub use types::{
    CompartmentParam, ElementDef, Max, PrimitiveDef, SearchParamDef, SearchParamType, ValueSetDef,
};

/// The search parameter `code` of resource type `rt`: the type's own parameters first, then the
/// parameters of every resource (`_id`, `_lastUpdated`, ...).
pub fn search_param(rt: ResourceType, code: &str) -> Option<&'static SearchParamDef> {
    let own = search_params_for(rt);
    match own.binary_search_by(|p| p.code.cmp(code)) {
        Ok(i) => own.get(i),
        Err(_) => common_search_param(code),
    }
}

/// A search parameter of every resource type (base `Resource` or `DomainResource`): `_id`,
/// `_lastUpdated`, `_tag`, `_profile`, `_security`, `_source`, `_text`, `_content`, `_filter`,
/// `_query`, and `_has`, `_list` and `_type` (defined by the search page, FHIR R4 §3.1.1).
pub fn common_search_param(code: &str) -> Option<&'static SearchParamDef> {
    let table = &search_params::COMMON_SEARCH_PARAMS;
    let i = table.binary_search_by(|p| p.code.cmp(code)).ok()?;
    table.get(i)
}

/// The search parameters of resource type `rt` itself (not the common ones), sorted by code.
pub fn search_params_for(rt: ResourceType) -> &'static [SearchParamDef] {
    let (start, end) = search_params::range(rt);
    search_params::SEARCH_PARAMS.get(start..end).unwrap_or(&[])
}

/// The number of distinct SearchParameter resources the search parameter tables come from.
///
/// The core package's examples of the SearchParameter resource and the few extension
/// parameters that declare no base type are left out.
pub fn search_param_count() -> usize {
    search_params::SEARCH_PARAMETER_COUNT
}

/// The parameters that put resources of type `rt` in a patient's compartment (FHIR R4 §2.23,
/// CompartmentDefinition `patient`), or `None` if `rt` is not in the Patient compartment.
///
/// `Patient` has a `{def}` parameter (path `id`) for the patient itself, besides `link`.
pub fn patient_compartment(rt: ResourceType) -> Option<&'static [CompartmentParam]> {
    let table = &compartment::PATIENT_COMPARTMENT;
    let i = table.binary_search_by(|(t, _)| t.cmp(&rt)).ok()?;
    table.get(i).map(|(_, params)| *params)
}

/// The resource types in the Patient compartment, sorted.
pub fn patient_compartment_types() -> &'static [ResourceType] {
    &compartment::PATIENT_COMPARTMENT_TYPES
}

/// The element with exactly this path, e.g. `"Patient.contact.name"` or
/// `"Observation.value[x]"`, of any resource or data type.
pub fn element(path: &str) -> Option<&'static ElementDef> {
    let table = &elements::ELEMENTS;
    let i = table.binary_search_by(|e| e.path.cmp(path)).ok()?;
    table.get(i)
}

/// The index range of the elements whose path starts with `prefix` followed by `.`.
fn descendants(prefix: &str) -> (usize, usize) {
    let table = &elements::ELEMENTS;
    let dot = prefix.bytes().chain(iter::once(b'.'));
    // Every path in the subtree sorts before `prefix` followed by `/`, the byte after `.`.
    let slash = prefix.bytes().chain(iter::once(b'/'));
    let start = table.partition_point(|e| e.path.bytes().lt(dot.clone()));
    let end = table.partition_point(|e| e.path.bytes().lt(slash.clone()));
    (start, end)
}

/// The direct children of the element at `parent` (e.g. `"Patient.contact"`), in path order.
///
/// Elements defined by a content reference (like `Questionnaire.item.item`) have no children
/// of their own: look up the children of the referenced element instead.
pub fn children(parent: &str) -> impl Iterator<Item = &'static ElementDef> {
    let (start, end) = descendants(parent);
    let skip = parent.len() + 1;
    elements::ELEMENTS
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .filter(move |e| e.path.get(skip..).is_some_and(|rest| !rest.contains('.')))
}

/// All the elements of one resource or data type (`"Patient"`, `"HumanName"`, `"string"`),
/// root first and then sorted by path; `None` for an unknown type.
pub fn type_elements(type_name: &str) -> Option<&'static [ElementDef]> {
    if type_name.contains('.') {
        return None;
    }
    let table = &elements::ELEMENTS;
    let root = table.binary_search_by(|e| e.path.cmp(type_name)).ok()?;
    let (start, end) = descendants(type_name);
    if start != root + 1 && start != end {
        return None;
    }
    table.get(root..end.max(root + 1))
}

/// The primitive type with this name (`"id"`, `"dateTime"`, ...).
pub fn primitive(name: &str) -> Option<&'static PrimitiveDef> {
    let table = &elements::PRIMITIVES;
    let i = table.binary_search_by(|p| p.name.cmp(name)).ok()?;
    table.get(i)
}

/// The expansion of a value set used by a required binding, by canonical URL (a `|version`
/// suffix is ignored).
pub fn value_set(url: &str) -> Option<&'static ValueSetDef> {
    let url = url.split('|').next().unwrap_or(url);
    let table = &valuesets::VALUE_SETS;
    let i = table.binary_search_by(|v| v.url.cmp(url)).ok()?;
    table.get(i).copied()
}
