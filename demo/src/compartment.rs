//! The Patient compartment: `Patient/[id]/[type]`, `Patient/[id]/*` and `Patient/[id]/$everything`.

use crate::bundle::{self, Paging};
use crate::interact::search_bundle;
use crate::matching;
use crate::params;
use crate::response::{Failure, Reply};
use crate::search;
use crate::store::{Db, Lookup};
use crate::DemoConfig;
use fhirwall::fhir::ResourceType;
use serde_json::Value;
use std::collections::HashSet;

/// Resource types `$everything` follows references to (never other patients' data).
const SHARED_TYPES: &[&str] = &[
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Medication",
    "Device",
];

fn live_patient(db: &Db, id: &str) -> Result<(), Failure> {
    match db.lookup("Patient", id) {
        Lookup::Live(_) => Ok(()),
        Lookup::Deleted => Err(Failure::gone(format!("Patient/{id} has been deleted"))),
        Lookup::Missing => Err(Failure::not_found(format!("Patient/{id} is not known"))),
    }
}

/// `GET Patient/[id]/[type]` and `GET Patient/[id]/*`.
pub(crate) fn search(
    db: &Db,
    cfg: &DemoConfig,
    id: &str,
    ty: &str,
    params: &[(String, String)],
) -> Result<Reply, Failure> {
    live_patient(db, id)?;
    let base = cfg.base_url.as_str();
    let link_base = format!("{base}/Patient/{id}/{ty}");
    if ty == "*" {
        let query = search::parse(None, params, base)?;
        let mut matches = Vec::new();
        for t in std::iter::once("Patient").chain(params::compartment_types()) {
            if let Some(filter) = search::compartment_filter(t, id, base) {
                matches.extend(search::select(db, t, &[filter], base));
            }
        }
        return Ok(Reply::ok(search_bundle(
            db, cfg, &link_base, &query, &matches,
        )));
    }
    let filter = search::compartment_filter(ty, id, base).ok_or_else(|| {
        Failure::unsupported(format!("{ty} is not in this server's Patient compartment"))
    })?;
    let mut query = search::parse(Some(ty), params, base)?;
    query.filters.push(filter);
    let mut matches = search::select(db, ty, &query.filters, base);
    search::sort(&mut matches, &query.sort);
    Ok(Reply::ok(search_bundle(
        db, cfg, &link_base, &query, &matches,
    )))
}

/// Whether `resource` is about `Patient/id` (its `subject` or `patient`).
fn about_patient(resource: &Value, id: &str, base_url: &str) -> bool {
    ["subject", "patient"].iter().any(|path| {
        matching::collect(resource, path).iter().any(|el| {
            matching::local_target(el, base_url).is_some_and(|(t, i)| t == "Patient" && i == id)
        })
    })
}

/// Every `reference` string anywhere in a resource.
fn references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(obj) => {
            for (key, v) in obj {
                match (key.as_str(), v) {
                    ("reference", Value::String(r)) => out.push(r),
                    _ => references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// `GET Patient/[id]/$everything`: the patient, every resource about them, and the
/// practitioners and organizations those refer to.
pub(crate) fn everything(
    db: &Db,
    cfg: &DemoConfig,
    id: &str,
    params: &[(String, String)],
) -> Result<Reply, Failure> {
    live_patient(db, id)?;
    let base = cfg.base_url.as_str();
    let mut types: Option<HashSet<String>> = None;
    let mut rest = Vec::new();
    for (key, value) in params {
        match key.as_str() {
            "_type" => {
                let set = types.get_or_insert_with(HashSet::new);
                for t in value.split(',').filter(|t| !t.is_empty()) {
                    if ResourceType::from_name(t).is_none() {
                        return Err(Failure::invalid(format!(
                            "_type: unknown resource type {t:?}"
                        )));
                    }
                    set.insert(t.to_owned());
                }
            }
            "_count" | "_offset" | "_format" | "_pretty" => rest.push((key.clone(), value.clone())),
            k => {
                return Err(Failure::invalid(format!(
                    "unknown parameter {k:?} for $everything"
                )))
            }
        }
    }
    let mut query = search::parse(None, &rest, base)?;
    if !rest.iter().any(|(k, _)| k == "_count") {
        // Everything means everything, up to the page limit.
        query.count = search::MAX_COUNT;
    }
    let wanted = |resource: &Value| {
        let ty = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        types.as_ref().map_or(true, |set| set.contains(ty))
    };
    let mut matches: Vec<&Value> = db.get("Patient", id).into_iter().collect();
    matches.extend(
        db.live_all()
            .filter(|r| r.get("resourceType").and_then(Value::as_str) != Some("Patient"))
            .filter(|r| about_patient(r, id, base)),
    );
    matches.retain(|r| wanted(r));
    let page = bundle::page(&matches, query.count, query.offset);
    let mut seen = HashSet::new();
    let mut included = Vec::new();
    for resource in &page {
        let mut refs = Vec::new();
        references(resource, &mut refs);
        for reference in refs {
            let (Some(ty), rid) = matching::split_reference(reference, base) else {
                continue;
            };
            if !SHARED_TYPES.contains(&ty.as_str()) {
                continue;
            }
            if let Some(found) = db.get(&ty, &rid) {
                if wanted(found) && seen.insert((ty, rid)) {
                    included.push(found);
                }
            }
        }
    }
    let link_base = format!("{base}/Patient/{id}/$everything");
    let paging = Paging {
        link_base: &link_base,
        echo: &query.echo,
        count: query.count,
        offset: query.offset,
        total: matches.len(),
    };
    Ok(Reply::ok(bundle::searchset(
        base, &paging, &page, &included, "include",
    )))
}
