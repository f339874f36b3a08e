//! The Patient compartment under `patient/` scopes (FHIR R4 §2.23, CompartmentDefinition
//! `patient`, through the generated [`tables::patient_compartment`]).
//!
//! - **Membership of a resource.** A `Patient` belongs to patient `p` when its id is `p`. A
//!   resource of another compartment type belongs when the references at its compartment
//!   parameters' element paths name at least one patient in context and *no other patient*.
//!   This is stricter than the CompartmentDefinition, under which an Observation about patient
//!   B performed by patient A is in A's compartment too: fhirwall does not show B's data to A.
//!   A reference that cannot be resolved (another server's `.../Patient/x`, a `urn:uuid:`, an
//!   identifier-only `Patient` reference) counts as another patient's (fail closed).
//! - **Narrowing a search.** A search only `patient/` scopes allow gets one more parameter:
//!   the type's compartment parameter (`patient`, else `subject`, else the first in the table)
//!   set to the patients in context (`subject=Patient/pat-1`), or `_id` for `Patient`. The
//!   parameter is appended to the URI the inner service receives (and to the
//!   [`FhirRequest`](crate::fhir::FhirRequest) it reads), so servers that ignore it still have
//!   every result checked on the response.
//! - **Parameters naming another patient** (`subject=Patient/pat-2`, `Patient?_id=pat-2`) are
//!   refused, as are `_has`, chains, `_filter`, `_text`/`_content`, `_sort` outside the type's
//!   own parameters and named queries, unless [`AuthzPolicy::danger_allow_patient_search`].

use super::context::{patient_id, AccessContext};
use super::decision::Refusal;
use super::policy::{AuthzPolicy, PatientSearchFeature};
use crate::fhir::tables::{self, SearchParamType};
use crate::fhir::{ParamKind, Query, ResourceType};
use serde_json::Value;

/// The compartment parameter used to narrow searches of `rt` (`patient`, else `subject`, else
/// the first in the table; `_id` for Patient), from a table computed once.
pub(crate) fn narrowing_param(rt: ResourceType) -> Option<&'static str> {
    super::type_facts::narrowing_param(rt)
}

/// `subject=Patient/a,Patient/b` (or `_id=a,b`) for the patients in context.
pub(crate) fn narrowing(rt: ResourceType, ctx: &AccessContext) -> Option<String> {
    let param = narrowing_param(rt)?;
    if ctx.patients().is_empty() {
        return None;
    }
    let per_patient = if rt == ResourceType::Patient { 1 } else { 9 };
    let len = param.len()
        + ctx
            .patients()
            .iter()
            .map(|p| p.len() + per_patient)
            .sum::<usize>();
    let mut out = String::with_capacity(len);
    out.push_str(param);
    out.push('=');
    for (i, id) in ctx.patients().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if rt != ResourceType::Patient {
            out.push_str("Patient/");
        }
        out.push_str(id);
    }
    Some(out)
}

/// Whether `rt` can hold data `patient/` scopes reach: the Patient compartment, or a shared
/// type the policy allows (for reading only).
pub(crate) fn reachable(rt: ResourceType, policy: &AuthzPolicy, write: bool) -> bool {
    tables::patient_compartment(rt).is_some() || (!write && policy.is_shared(rt))
}

/// Refuses a search that only `patient/` scopes allow when it uses a feature that can reach
/// outside the compartment or names another patient.
pub(crate) fn check_patient_search(
    rt: Option<ResourceType>,
    query: &Query,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<(), Refusal> {
    let refuse = |feature: PatientSearchFeature, text: &'static str| {
        if policy.allows_patient_search(feature) {
            Ok(())
        } else {
            Err(Refusal::forbidden(text))
        }
    };
    for p in query.params() {
        match p.kind() {
            ParamKind::Has => refuse(
                PatientSearchFeature::Has,
                "_has is not allowed under patient scopes",
            )?,
            ParamKind::Filter => refuse(
                PatientSearchFeature::Filter,
                "_filter is not allowed under patient scopes",
            )?,
            ParamKind::NamedQuery => refuse(
                PatientSearchFeature::NamedQuery,
                "named queries are not allowed under patient scopes",
            )?,
            ParamKind::Sort => check_sort(rt, p.raw_value(), policy)?,
            ParamKind::Search => {
                match p.name() {
                    "_text" | "_content" => refuse(
                        PatientSearchFeature::Text,
                        "_text and _content are not allowed under patient scopes",
                    )?,
                    "_list" => refuse(
                        PatientSearchFeature::NamedQuery,
                        "_list is not allowed under patient scopes",
                    )?,
                    _ => {}
                }
                if p.is_chained() {
                    // A chain's value is about the other resource, not a reference.
                    refuse(
                        PatientSearchFeature::Chain,
                        "chained parameters are not allowed under patient scopes",
                    )?;
                } else if let Some(rt) = rt {
                    check_names_patient(rt, &p, ctx, policy)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_sort(rt: Option<ResourceType>, value: &str, policy: &AuthzPolicy) -> Result<(), Refusal> {
    if policy.allows_patient_search(PatientSearchFeature::Sort) {
        return Ok(());
    }
    let bad = || {
        Refusal::forbidden(
            "_sort is allowed under patient scopes only on the searched type's own parameters",
        )
    };
    let rt = rt.ok_or_else(bad)?;
    for key in value.split(',') {
        let code = key.strip_prefix('-').unwrap_or(key);
        let def = tables::search_param(rt, code).ok_or_else(bad)?;
        if code.contains('.')
            || matches!(
                def.kind,
                SearchParamType::Reference | SearchParamType::Special | SearchParamType::Composite
            )
            || def.paths.is_empty()
        {
            return Err(bad());
        }
    }
    Ok(())
}

/// Refuses a reference parameter whose value names a patient not in context.
fn check_names_patient(
    rt: ResourceType,
    p: &crate::fhir::QueryParam<'_>,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<(), Refusal> {
    let names_other = || {
        Err(Refusal::forbidden(
            "the search names a patient outside the token's patient context",
        ))
    };
    if rt == ResourceType::Patient && p.name() == "_id" {
        for v in p.values() {
            if !ctx.has_patient(&v.text()) {
                return names_other();
            }
        }
        return Ok(());
    }
    // Only a reference parameter that may point at a Patient can name another patient.
    if super::type_facts::patient_reference_param(rt, p.name()).is_none() {
        return Ok(());
    }
    // `subject:Group=...` is not about a patient; `:missing`, `:identifier` and the like
    // select by other means and the narrowing still applies.
    let bare_is_patient = match p.modifier() {
        None => true,
        Some("Patient") => true,
        Some(_) => return Ok(()),
    };
    for v in p.values() {
        let text = v.text();
        let text = text.split('|').next().unwrap_or_default();
        match classify_reference(text, &policy.base_urls) {
            RefTarget::Patient(id) if !ctx.has_patient(id) => return names_other(),
            RefTarget::ForeignPatient => return names_other(),
            RefTarget::Unresolved
                if bare_is_patient && patient_id(text).is_some_and(|id| !ctx.has_patient(id)) =>
            {
                return names_other()
            }
            _ => {}
        }
    }
    Ok(())
}

/// What a reference string points at, as far as the compartment is concerned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RefTarget<'a> {
    /// `Patient/<id>` on this server.
    Patient(&'a str),
    /// A resource of another type.
    Other,
    /// A Patient on another server (or one whose base is not configured).
    ForeignPatient,
    /// Not a literal `Type/id` reference: contained (`#x`), `urn:uuid:`, a bare id ...
    Unresolved,
}

/// Reads `[base/]Type/id[/_history/vid]`.
pub(crate) fn classify_reference<'a>(reference: &'a str, bases: &[String]) -> RefTarget<'a> {
    let mut rest = reference;
    if reference.contains("://") {
        let local = bases.iter().find_map(|b| {
            reference
                .strip_prefix(b.as_str())
                .and_then(|r| r.strip_prefix('/'))
        });
        match local {
            Some(r) => rest = r,
            None => {
                return if reference.contains("/Patient/") {
                    RefTarget::ForeignPatient
                } else {
                    RefTarget::Other
                }
            }
        }
    }
    let mut parts = rest.split('/');
    let (Some(ty), Some(id)) = (parts.next(), parts.next()) else {
        return RefTarget::Unresolved;
    };
    match (parts.next(), parts.next(), parts.next()) {
        (None, None, None) => {}
        (Some("_history"), Some(v), None) if patient_id(v).is_some() => {}
        _ => return RefTarget::Unresolved,
    }
    let (Some(rt), Some(id)) = (ResourceType::from_name(ty), patient_id(id)) else {
        return RefTarget::Unresolved;
    };
    if rt == ResourceType::Patient {
        RefTarget::Patient(id)
    } else {
        RefTarget::Other
    }
}

/// The values at a dotted element path, arrays flattened.
pub(crate) fn values_at<'a>(resource: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    let mut current: Vec<&Value> = vec![resource];
    for segment in path.split('.') {
        let mut next = Vec::new();
        for v in current {
            let child = match v {
                Value::Object(map) => map.get(segment),
                _ => None,
            };
            match child {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(other) => next.push(other),
                None => {}
            }
        }
        current = next;
    }
    out.extend(current);
}

/// Whether `resource` (of type `rt`) is in the compartment of the patients in context, by the
/// strict rule in the module docs. Shared types count when `write` is false.
pub(crate) fn in_compartment(
    rt: ResourceType,
    resource: &Value,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
    write: bool,
) -> bool {
    if rt == ResourceType::Patient {
        return resource
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| ctx.has_patient(id));
    }
    let Some(params) = tables::patient_compartment(rt) else {
        return !write && policy.is_shared(rt);
    };
    let mut refs = Vec::new();
    for p in params {
        for path in p.paths {
            values_at(resource, path, &mut refs);
        }
    }
    let mut mine = false;
    for r in refs {
        match patient_of(r, resource, &policy.base_urls) {
            Some(Some(id)) if ctx.has_patient(id) => mine = true,
            Some(_) => return false,
            None => {}
        }
    }
    mine
}

/// For a Reference element: `None` when it is not about a patient, `Some(Some(id))` for a
/// local patient, `Some(None)` for a patient that can't be resolved (or anything unreadable).
fn patient_of<'a>(
    element: &'a Value,
    resource: &'a Value,
    bases: &[String],
) -> Option<Option<&'a str>> {
    let Value::Object(map) = element else {
        // A reference element that is not an object is malformed: fail closed.
        return Some(None);
    };
    let declared = map.get("type").and_then(Value::as_str);
    let Some(reference) = map.get("reference") else {
        // Identifier- or display-only: about a patient only if it says so.
        return (declared == Some("Patient")).then_some(None);
    };
    let Some(reference) = reference.as_str() else {
        return Some(None);
    };
    match classify_reference(reference, bases) {
        RefTarget::Patient(id) => Some(Some(id)),
        RefTarget::Other => None,
        RefTarget::ForeignPatient => Some(None),
        RefTarget::Unresolved => {
            if let Some(local) = reference.strip_prefix('#') {
                let contained_type = resource
                    .get("contained")
                    .and_then(Value::as_array)
                    .and_then(|items| {
                        items
                            .iter()
                            .find(|c| c.get("id").and_then(Value::as_str) == Some(local))
                    })
                    .and_then(|c| c.get("resourceType"))
                    .and_then(Value::as_str);
                if contained_type.is_some_and(|t| t != "Patient") {
                    return None;
                }
            } else if declared.is_some_and(|t| t != "Patient") {
                return None;
            }
            Some(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smart::{MalformedScopes, ScopeSet};
    use serde_json::json;

    fn ctx() -> AccessContext {
        AccessContext::new(ScopeSet::parse("patient/*.rs", MalformedScopes::RefuseToken).unwrap())
            .with_patients(["pat-1"])
    }

    #[test]
    fn narrowing_params() {
        assert_eq!(
            narrowing(ResourceType::Observation, &ctx()).unwrap(),
            "subject=Patient/pat-1"
        );
        assert_eq!(
            narrowing(ResourceType::Condition, &ctx()).unwrap(),
            "patient=Patient/pat-1"
        );
        assert_eq!(
            narrowing(ResourceType::Patient, &ctx()).unwrap(),
            "_id=pat-1"
        );
        assert_eq!(
            narrowing(ResourceType::Coverage, &ctx()).unwrap(),
            "beneficiary=Patient/pat-1"
        );
        assert_eq!(narrowing(ResourceType::Practitioner, &ctx()), None);
    }

    #[test]
    fn references() {
        let bases = vec!["https://x/fhir".to_owned()];
        assert_eq!(
            classify_reference("Patient/1", &bases),
            RefTarget::Patient("1")
        );
        assert_eq!(
            classify_reference("Patient/1/_history/2", &bases),
            RefTarget::Patient("1")
        );
        assert_eq!(
            classify_reference("https://x/fhir/Patient/1", &bases),
            RefTarget::Patient("1")
        );
        assert_eq!(
            classify_reference("https://y/fhir/Patient/1", &bases),
            RefTarget::ForeignPatient
        );
        assert_eq!(classify_reference("Group/1", &bases), RefTarget::Other);
        assert_eq!(classify_reference("#p", &bases), RefTarget::Unresolved);
        assert_eq!(
            classify_reference("Patient/1/x", &bases),
            RefTarget::Unresolved
        );
    }

    #[test]
    fn strict_membership() {
        // FHIR R4 §2.23: both subject and performer put an Observation in a compartment;
        // fhirwall wants every patient named to be in context.
        let p = AuthzPolicy::new();
        let mine =
            json!({"resourceType": "Observation", "subject": {"reference": "Patient/pat-1"}});
        let theirs = json!({"resourceType": "Observation", "subject": {"reference": "Patient/pat-2"}, "performer": [{"reference": "Patient/pat-1"}]});
        let contained = json!({"resourceType": "Observation", "subject": {"reference": "#p"}, "contained": [{"resourceType": "Patient", "id": "p"}]});
        assert!(in_compartment(
            ResourceType::Observation,
            &mine,
            &ctx(),
            &p,
            false
        ));
        assert!(!in_compartment(
            ResourceType::Observation,
            &theirs,
            &ctx(),
            &p,
            false
        ));
        assert!(!in_compartment(
            ResourceType::Observation,
            &contained,
            &ctx(),
            &p,
            false
        ));
        assert!(!in_compartment(
            ResourceType::Observation,
            &json!({"resourceType": "Observation"}),
            &ctx(),
            &p,
            false
        ));
    }
}
