//! `search_params.rs` and `compartment.rs`: search parameters and the Patient compartment.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::emit::{const_name, lit, str_slice, HEADER};
use crate::package::{array_field, str_field, strings, Package};
use crate::paths::derive_paths;

/// Base types whose parameters apply to every resource type (the COMMON table).
const COMMON_BASES: [&str; 2] = ["Resource", "DomainResource"];

/// Parameters for all resources that the R4 search page (§3.1.1) defines without publishing a
/// SearchParameter resource for them: (code, kind).
const SYNTHETIC_COMMON: [(&str, &str); 3] = [
    ("_has", "Special"),
    ("_list", "Special"),
    ("_type", "Special"),
];

/// One row of a search parameter table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The base resource type, or `None` for the COMMON table.
    pub base: Option<String>,
    /// The parameter code.
    pub code: String,
    /// The `SearchParamType` variant name.
    pub kind: String,
    /// The full FHIRPath expression.
    pub expression: String,
    /// Element paths for this base, relative to the resource.
    pub paths: Vec<String>,
    /// Reference target resource types, sorted.
    pub targets: Vec<String>,
    /// Whether the parameter may target any resource type (`Resource`/`Any`, or all of them).
    pub any_target: bool,
    /// The allowed modifiers, as listed.
    pub modifiers: Vec<String>,
    /// The SearchParameter's canonical URL ("" for the synthetic ones).
    pub url: String,
    /// The SearchParameter's id, to name shared expressions.
    pub id: String,
}

/// All search parameter rows, sorted by (base, code), and the number of SearchParameter
/// resources they come from.
#[derive(Debug)]
pub struct SearchParams {
    /// Resource-specific rows sorted by (base, code).
    pub rows: Vec<Row>,
    /// The COMMON rows sorted by code.
    pub common: Vec<Row>,
    /// Distinct SearchParameter resources used.
    pub count: usize,
}

impl SearchParams {
    /// The resource-specific row for (`base`, `code`).
    pub fn get(&self, base: &str, code: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.base.as_deref() == Some(base) && r.code == code)
    }
}

fn kind_variant(kind: &str) -> Result<&'static str, String> {
    Ok(match kind {
        "number" => "Number",
        "date" => "Date",
        "string" => "String",
        "token" => "Token",
        "reference" => "Reference",
        "composite" => "Composite",
        "quantity" => "Quantity",
        "uri" => "Uri",
        "special" => "Special",
        other => return Err(format!("unknown search parameter type {other:?}")),
    })
}

/// Whether a SearchParameter of the package is only an example of the SearchParameter resource
/// (`example`, `example-extension`, `example-reference`), not a definition of the specification.
fn is_example(id: &str) -> bool {
    id == "example" || id.starts_with("example-")
}

/// Collects the search parameters of the package.
///
/// Skipped: the examples (see [`is_example`]) and the few extension parameters that declare no
/// `base` (they only carry an XPath).
pub fn collect(package: &Package, types: &[String]) -> Result<SearchParams, String> {
    let type_set: BTreeSet<&str> = types.iter().map(String::as_str).collect();
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    let mut common: BTreeMap<String, Row> = BTreeMap::new();
    let mut count = 0;
    for (file, sp) in &package.search_parameters {
        let id = str_field(sp, "id").ok_or_else(|| format!("{file}: no id"))?;
        let bases = strings(sp, "base");
        if is_example(id) || bases.is_empty() {
            continue;
        }
        count += 1;
        let code = str_field(sp, "code").ok_or_else(|| format!("{file}: no code"))?;
        let kind = kind_variant(str_field(sp, "type").unwrap_or_default())?;
        let expression = str_field(sp, "expression").unwrap_or_default();
        let mut targets = BTreeSet::new();
        let mut any_target = false;
        for target in strings(sp, "target") {
            if target == "Resource" || target == "Any" {
                any_target = true;
            } else if type_set.contains(target.as_str()) {
                targets.insert(target);
            } else {
                return Err(format!("{file}: unknown target type {target}"));
            }
        }
        // The package spells `Reference(Any)` out as the list of every resource type that can
        // be referenced (all but Parameters).
        any_target |= targets.len() + 1 >= types.len()
            && any_reference_targets(types)
                .iter()
                .all(|t| targets.contains(t));
        let url = str_field(sp, "url").ok_or_else(|| format!("{file}: no url"))?;
        for base in &bases {
            let row = Row {
                base: None,
                code: code.to_owned(),
                kind: kind.to_owned(),
                expression: expression.to_owned(),
                paths: derive_paths(expression, base),
                targets: targets.iter().cloned().collect(),
                any_target,
                modifiers: strings(sp, "modifier"),
                url: url.to_owned(),
                id: id.to_owned(),
            };
            let duplicate = if COMMON_BASES.contains(&base.as_str()) {
                common.insert(code.to_owned(), row).is_some()
            } else if type_set.contains(base.as_str()) {
                let key = (base.clone(), code.to_owned());
                let row = Row {
                    base: Some(base.clone()),
                    ..row
                };
                rows.insert(key, row).is_some()
            } else {
                return Err(format!("{file}: unknown base type {base}"));
            };
            if duplicate {
                return Err(format!("{file}: a second parameter {code} on {base}"));
            }
        }
    }
    for (code, kind) in SYNTHETIC_COMMON {
        if common.contains_key(code) {
            return Err(format!(
                "{code} is now defined by the package; drop it from SYNTHETIC_COMMON"
            ));
        }
        let row = Row {
            base: None,
            code: code.to_owned(),
            kind: kind.to_owned(),
            expression: String::new(),
            paths: Vec::new(),
            targets: Vec::new(),
            any_target: false,
            modifiers: Vec::new(),
            url: String::new(),
            id: String::new(),
        };
        common.insert(code.to_owned(), row);
    }
    Ok(SearchParams {
        rows: rows.into_values().collect(),
        common: common.into_values().collect(),
        count,
    })
}

/// The resource types a `Reference(Any)` can point to: all but `Parameters`, which is only ever
/// an operation's input or output.
fn any_reference_targets(types: &[String]) -> Vec<String> {
    types
        .iter()
        .filter(|t| *t != "Parameters")
        .cloned()
        .collect()
}

fn row_literal(row: &Row, expression: &str, types: &[String]) -> String {
    let targets = if row.targets == types {
        "&ResourceType::ALL".to_owned()
    } else if row.targets == any_reference_targets(types) {
        "ANY_REFERENCE".to_owned()
    } else {
        let targets: Vec<String> = row
            .targets
            .iter()
            .map(|t| format!("ResourceType::{t}"))
            .collect();
        format!("&[{}]", targets.join(", "))
    };
    format!(
        "    SearchParamDef {{ code: {}, kind: SearchParamType::{}, expression: {}, paths: {}, targets: {}, any_target: {}, modifiers: {}, url: {} }},\n",
        lit(&row.code),
        row.kind,
        expression,
        str_slice(&row.paths),
        targets,
        row.any_target,
        str_slice(&row.modifiers),
        lit(&row.url),
    )
}

/// The text of `search_params.rs`.
pub fn emit(params: &SearchParams, types: &[String]) -> String {
    // Expressions of parameters with several bases are written once, as constants.
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &params.rows {
        *uses.entry(row.id.as_str()).or_default() += 1;
    }
    let mut taken = BTreeSet::new();
    let mut shared: BTreeMap<&str, String> = BTreeMap::new();
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str(
        "\n//! Search parameters of FHIR R4 (SearchParameter resources of the core package).\n\n",
    );
    out.push_str(
        "use super::types::{SearchParamDef, SearchParamType};\nuse super::ResourceType;\n\n",
    );
    let _ = writeln!(
        out,
        "/// Number of distinct SearchParameter resources behind the tables.\npub(super) const SEARCH_PARAMETER_COUNT: usize = {};\n",
        params.count
    );
    let any: Vec<String> = any_reference_targets(types)
        .iter()
        .map(|t| format!("ResourceType::{t}"))
        .collect();
    let _ = writeln!(
        out,
        "/// The targets of a reference to any resource (every resource type but `Parameters`).\nconst ANY_REFERENCE: &[ResourceType] = &[{}];\n",
        any.join(", ")
    );
    for row in &params.rows {
        if uses.get(row.id.as_str()).copied().unwrap_or(0) > 1
            && !row.expression.is_empty()
            && !shared.contains_key(row.id.as_str())
        {
            let name = const_name(&row.id, &mut taken);
            let _ = writeln!(
                out,
                "/// Expression of `{}`.\nconst {name}: &str = {};",
                row.url,
                lit(&row.expression)
            );
            shared.insert(row.id.as_str(), name);
        }
    }
    let _ = writeln!(
        out,
        "\n/// Resource-specific search parameters, sorted by (resource type, code).\npub(super) static SEARCH_PARAMS: [SearchParamDef; {}] = [",
        params.rows.len()
    );
    let mut ranges: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (index, row) in params.rows.iter().enumerate() {
        let base = row.base.as_deref().unwrap_or_default();
        let range = ranges.entry(base).or_insert((index, index));
        range.1 = index + 1;
        let expression = match shared.get(row.id.as_str()) {
            Some(name) => name.clone(),
            None => lit(&row.expression),
        };
        out.push_str(&row_literal(row, &expression, types));
    }
    out.push_str("];\n\n");
    out.push_str("/// The rows of `rt` in [`SEARCH_PARAMS`], as a start..end index range.\npub(super) const fn range(rt: ResourceType) -> (usize, usize) {\n    match rt {\n");
    for ty in types {
        let (start, end) = ranges.get(ty.as_str()).copied().unwrap_or((0, 0));
        let _ = writeln!(out, "        ResourceType::{ty} => ({start}, {end}),");
    }
    out.push_str("    }\n}\n\n");
    let _ = writeln!(
        out,
        "/// Search parameters of every resource type (base `Resource` or `DomainResource`), sorted by code.\npub(super) static COMMON_SEARCH_PARAMS: [SearchParamDef; {}] = [",
        params.common.len()
    );
    for row in &params.common {
        out.push_str(&row_literal(row, &lit(&row.expression), types));
    }
    out.push_str("];\n");
    out
}

/// One resource type of the Patient compartment: (type, [(code, paths)]).
pub type CompartmentEntry = (String, Vec<(String, Vec<String>)>);

/// The Patient compartment (CompartmentDefinition-patient), sorted by resource type.
///
/// `Patient` itself is in its own compartment: it gets an explicit `{def}` parameter with the
/// path `id` ahead of its listed parameters.
pub fn patient_compartment(
    package: &Package,
    params: &SearchParams,
) -> Result<Vec<CompartmentEntry>, String> {
    let definition = package
        .patient_compartment
        .as_ref()
        .ok_or("CompartmentDefinition-patient.json is missing")?;
    if str_field(definition, "code") != Some("Patient") {
        return Err("CompartmentDefinition-patient.json is not the Patient compartment".to_owned());
    }
    let mut entries = Vec::new();
    for resource in array_field(definition, "resource") {
        let ty = str_field(resource, "code").ok_or("compartment resource without code")?;
        let codes = strings(resource, "param");
        if codes.is_empty() {
            continue;
        }
        let mut list = Vec::new();
        if ty == "Patient" {
            list.push(("{def}".to_owned(), vec!["id".to_owned()]));
        }
        for code in codes {
            let row = params
                .get(ty, &code)
                .ok_or_else(|| format!("Patient compartment: no search parameter {ty}.{code}"))?;
            list.push((code, row.paths.clone()));
        }
        entries.push((ty.to_owned(), list));
    }
    entries.sort();
    Ok(entries)
}

/// The text of `compartment.rs`.
pub fn emit_compartment(entries: &[CompartmentEntry]) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str("\n//! The Patient compartment of FHIR R4 (CompartmentDefinition-patient).\n\n");
    out.push_str("use super::types::CompartmentParam;\nuse super::ResourceType;\n\n");
    let _ = writeln!(
        out,
        "/// The resource types in the Patient compartment with their parameters, sorted by type.\npub(super) static PATIENT_COMPARTMENT: [(ResourceType, &[CompartmentParam]); {}] = [",
        entries.len()
    );
    for (ty, list) in entries {
        let params: Vec<String> = list
            .iter()
            .map(|(code, paths)| {
                format!(
                    "CompartmentParam {{ code: {}, paths: {} }}",
                    lit(code),
                    str_slice(paths)
                )
            })
            .collect();
        let _ = writeln!(out, "    (ResourceType::{ty}, &[{}]),", params.join(", "));
    }
    out.push_str("];\n\n");
    let _ = writeln!(
        out,
        "/// The resource types in the Patient compartment, sorted.\npub(super) static PATIENT_COMPARTMENT_TYPES: [ResourceType; {}] = [",
        entries.len()
    );
    for (ty, _) in entries {
        let _ = writeln!(out, "    ResourceType::{ty},");
    }
    out.push_str("];\n");
    out
}
