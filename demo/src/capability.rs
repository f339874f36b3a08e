//! `GET [base]/metadata`: the CapabilityStatement.

use crate::params::{self, RICH_TYPES};
use crate::store::Db;
use crate::{time, DemoConfig};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

fn resource_entry(ty: &str) -> Value {
    let search_params: Vec<Value> = params::all(ty)
        .map(|d| json!({"name": d.name, "type": d.kind.as_str(), "documentation": d.doc}))
        .collect();
    let reference_params: Vec<&params::ParamDef> = params::all(ty)
        .filter(|d| d.kind == params::Kind::Reference)
        .collect();
    let includes: Vec<String> = reference_params
        .iter()
        .map(|d| format!("{ty}:{}", d.name))
        .collect();
    let mut revincludes: Vec<String> = Vec::new();
    for source in RICH_TYPES {
        for d in params::all(source).filter(|d| d.kind == params::Kind::Reference) {
            if d.targets.contains(&ty) {
                revincludes.push(format!("{source}:{}", d.name));
            }
        }
    }
    let mut entry = json!({
        "type": ty,
        "interaction": INTERACTIONS.iter().map(|code| json!({"code": code})).collect::<Vec<_>>(),
        "versioning": "versioned",
        "readHistory": true,
        "updateCreate": true,
        "conditionalCreate": true,
        "conditionalRead": "not-supported",
        "conditionalUpdate": false,
        "conditionalDelete": "not-supported",
        "searchInclude": includes,
        "searchRevInclude": revincludes,
        "searchParam": search_params,
    });
    if ty == "Patient" {
        if let Some(obj) = entry.as_object_mut() {
            obj.insert(
                "operation".into(),
                json!([{
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"
                }]),
            );
        }
    }
    entry
}

/// The server's CapabilityStatement: the types in the store plus the ones with search support.
pub(crate) fn statement(db: &Db, cfg: &DemoConfig) -> Value {
    let mut types: BTreeSet<&str> = RICH_TYPES.iter().copied().collect();
    types.extend(db.live_types());
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": time::format_instant(time::now_ms()),
        "publisher": "fhirwall demo",
        "kind": "instance",
        "software": {"name": "fhirwall-demo", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {
            "description": "fhirwall demo FHIR server (in-memory; not for production use)",
            "url": cfg.base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "rest": [{
            "mode": "server",
            "documentation": "Search is strict: unknown parameters are refused with 400. \
                Paging uses _count (default 20, max 500) and _offset.",
            "resource": types.iter().map(|ty| resource_entry(ty)).collect::<Vec<_>>(),
            "interaction": [
                {"code": "transaction"},
                {"code": "batch"},
                {"code": "history-system"}
            ],
            "searchParam": [
                {"name": "_count", "type": "number"},
                {"name": "_offset", "type": "number", "documentation": "Paging offset"},
                {"name": "_summary", "type": "token", "documentation": "count and false only"}
            ]
        }]
    })
}
