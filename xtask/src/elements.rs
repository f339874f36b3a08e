//! `elements.rs` and `valuesets.rs`: StructureDefinition snapshots, primitive regexes and the
//! value sets of required bindings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use crate::emit::{const_name, lit, opt_lit, str_slice, HEADER};
use crate::package::{array_field, bool_field, str_field, Package};
use crate::valuesets::{strip_version, Expander, Expansion};

const REGEX_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/regex";

/// One element of a snapshot.
#[derive(Debug, Clone)]
pub struct Element {
    /// `Patient.contact.name`.
    pub path: String,
    /// Minimum cardinality.
    pub min: u32,
    /// Maximum cardinality, `None` for `*`.
    pub max: Option<u32>,
    /// Type codes as given.
    pub types: Vec<String>,
    /// `#Questionnaire.item` and the like.
    pub content_reference: Option<String>,
    /// The value set URL (without version) of a required binding.
    pub required_binding: Option<String>,
    /// `isModifier`.
    pub is_modifier: bool,
    /// `isSummary`.
    pub is_summary: bool,
}

/// A primitive type and the regex of its value.
#[derive(Debug, Clone)]
pub struct Primitive {
    /// `id`, `string`, ...
    pub name: String,
    /// The regex, if the specification gives one.
    pub regex: Option<String>,
}

/// Everything `elements.rs` and `valuesets.rs` are made of.
#[derive(Debug, Default)]
pub struct Elements {
    /// All elements, sorted by path.
    pub elements: Vec<Element>,
    /// Primitive types, sorted by name.
    pub primitives: Vec<Primitive>,
    /// The value sets of required bindings, by URL.
    pub value_sets: BTreeMap<String, Expansion>,
    /// How many StructureDefinitions the elements come from.
    pub structures: usize,
}

/// Whether the StructureDefinition `sd` is one the element tables are made from.
fn selected(sd: &Value, resource_types: &BTreeSet<&str>) -> bool {
    let kind = str_field(sd, "kind").unwrap_or_default();
    let derivation = str_field(sd, "derivation");
    let ty = str_field(sd, "type").unwrap_or_default();
    match kind {
        "resource" => {
            (derivation == Some("specialization") && resource_types.contains(ty))
                || (derivation != Some("constraint")
                    && (ty == "Resource" || ty == "DomainResource"))
        }
        "complex-type" => {
            derivation == Some("specialization") || (derivation.is_none() && ty == "Element")
        }
        "primitive-type" => derivation == Some("specialization"),
        _ => false,
    }
}

fn element(value: &Value, ty: &str) -> Result<Element, String> {
    let path = str_field(value, "path").ok_or_else(|| format!("{ty}: element without path"))?;
    let min = value
        .get("min")
        .and_then(Value::as_u64)
        .and_then(|m| u32::try_from(m).ok())
        .ok_or_else(|| format!("{path}: no min"))?;
    let max = match str_field(value, "max").ok_or_else(|| format!("{path}: no max"))? {
        "*" => None,
        n => Some(
            n.parse::<u32>()
                .map_err(|_| format!("{path}: bad max {n:?}"))?,
        ),
    };
    let mut types = Vec::new();
    for t in array_field(value, "type") {
        let code = str_field(t, "code").ok_or_else(|| format!("{path}: type without code"))?;
        if !types.iter().any(|c| c == code) {
            types.push(code.to_owned());
        }
    }
    let binding = value.get("binding");
    let required_binding = match binding {
        Some(b) if str_field(b, "strength") == Some("required") => Some(
            strip_version(
                str_field(b, "valueSet")
                    .ok_or_else(|| format!("{path}: required binding without value set"))?,
            )
            .to_owned(),
        ),
        _ => None,
    };
    Ok(Element {
        path: path.to_owned(),
        min,
        max,
        types,
        content_reference: str_field(value, "contentReference").map(str::to_owned),
        required_binding,
        is_modifier: bool_field(value, "isModifier"),
        is_summary: bool_field(value, "isSummary"),
    })
}

/// The regex of the primitive whose snapshot is `snapshot`, from `<name>.value`.
fn primitive_regex(name: &str, snapshot: &[Value]) -> Option<String> {
    let value_path = format!("{name}.value");
    let value = snapshot
        .iter()
        .find(|e| str_field(e, "path") == Some(value_path.as_str()))?;
    array_field(value, "type").iter().find_map(|t| {
        array_field(t, "extension")
            .iter()
            .find(|x| str_field(x, "url") == Some(REGEX_EXTENSION))
            .and_then(|x| str_field(x, "valueString"))
            .map(str::to_owned)
    })
}

/// Collects the element tables from the package.
pub fn collect(package: &Package, resource_types: &[String]) -> Result<Elements, String> {
    let resource_set: BTreeSet<&str> = resource_types.iter().map(String::as_str).collect();
    let mut out = Elements::default();
    let mut seen_types = BTreeSet::new();
    for (file, sd) in &package.structure_definitions {
        if !selected(sd, &resource_set) {
            continue;
        }
        let ty = str_field(sd, "type").ok_or_else(|| format!("{file}: no type"))?;
        if !seen_types.insert(ty.to_owned()) {
            return Err(format!("{file}: a second definition of {ty}"));
        }
        out.structures += 1;
        let snapshot = sd
            .get("snapshot")
            .map(|s| array_field(s, "element"))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{file}: no snapshot"))?;
        for value in snapshot {
            let element = element(value, ty)?;
            if element.path != ty && !element.path.starts_with(&format!("{ty}.")) {
                return Err(format!("{file}: element {} outside {ty}", element.path));
            }
            out.elements.push(element);
        }
        if str_field(sd, "kind") == Some("primitive-type") {
            out.primitives.push(Primitive {
                name: ty.to_owned(),
                regex: primitive_regex(ty, snapshot),
            });
        }
    }
    for ty in resource_types {
        if !seen_types.contains(ty) {
            return Err(format!("no StructureDefinition for resource type {ty}"));
        }
    }
    out.elements.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(pair) = out
        .elements
        .windows(2)
        .find(|w| matches!(w, [a, b] if a.path == b.path))
    {
        return Err(format!(
            "element {} defined twice",
            pair.first().map_or("", |e| e.path.as_str())
        ));
    }
    out.primitives.sort_by(|a, b| a.name.cmp(&b.name));
    let mut expander = Expander::new(package);
    for element in &out.elements {
        if let Some(url) = &element.required_binding {
            if !out.value_sets.contains_key(url) {
                out.value_sets.insert(url.clone(), expander.expand(url));
            }
        }
    }
    Ok(out)
}

/// The Rust names of the value set statics, by URL.
fn value_set_names(tables: &Elements) -> BTreeMap<&str, String> {
    let mut taken = BTreeSet::new();
    tables
        .value_sets
        .keys()
        .map(|url| {
            let last = url.trim_end_matches('/').rsplit('/').next().unwrap_or(url);
            (url.as_str(), const_name(last, &mut taken))
        })
        .collect()
}

/// The text of `valuesets.rs`.
pub fn emit_value_sets(tables: &Elements) -> String {
    let names = value_set_names(tables);
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str(
        "\n//! Value sets of the required bindings of FHIR R4, expanded from the core package.\n\n",
    );
    out.push_str("use super::types::ValueSetDef;\n");
    for (url, expansion) in &tables.value_sets {
        let name = names.get(url.as_str()).map_or("", String::as_str);
        let _ = writeln!(
            out,
            "\n/// `{url}`.\npub(super) static {name}: ValueSetDef = ValueSetDef {{ url: {}, codes: {}, complete: {} }};",
            lit(url),
            str_slice(&expansion.codes),
            expansion.complete
        );
    }
    let _ = writeln!(
        out,
        "\n/// Every value set above, sorted by URL.\npub(super) static VALUE_SETS: [&ValueSetDef; {}] = [",
        tables.value_sets.len()
    );
    for url in tables.value_sets.keys() {
        let _ = writeln!(
            out,
            "    &{},",
            names.get(url.as_str()).map_or("", String::as_str)
        );
    }
    out.push_str("];\n");
    out
}

/// The text of `elements.rs`.
pub fn emit_elements(tables: &Elements) -> String {
    let names = value_set_names(tables);
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str("\n//! Elements of the FHIR R4 StructureDefinition snapshots (resources and data types) and the\n");
    out.push_str("//! regexes of the primitive types.\n\n");
    out.push_str("use super::types::{ElementDef, Max, PrimitiveDef, ValueSetDef};\nuse super::valuesets as vs;\n\n");
    out.push_str(
        "/// No flag.\nconst NO: u8 = 0;\n/// `isModifier`.\nconst MO: u8 = 1;\n/// `isSummary`.\nconst SU: u8 = 2;\n/// `isModifier` and `isSummary`.\nconst MS: u8 = 3;\n\n",
    );
    out.push_str("/// Unbounded maximum cardinality (`*`).\nconst U: Max = Max::Unbounded;\n\n");
    out.push_str(
        "/// A maximum cardinality of `n`.\nconst fn n(n: u32) -> Max {\n    Max::Count(n)\n}\n\n",
    );
    out.push_str(
        "/// One row: path, min, max, types, content reference, required binding, flags.\n\
         const fn e(\n    path: &'static str,\n    min: u32,\n    max: Max,\n    types: &'static [&'static str],\n    content_reference: Option<&'static str>,\n    required_binding: Option<&'static ValueSetDef>,\n    flags: u8,\n) -> ElementDef {\n    \
         ElementDef {\n        path,\n        min,\n        max,\n        types,\n        content_reference,\n        required_binding,\n        is_modifier: flags & MO != 0,\n        is_summary: flags & SU != 0,\n    }\n}\n\n",
    );
    let _ = writeln!(
        out,
        "/// Every element of {} StructureDefinitions, sorted by path.\npub(super) static ELEMENTS: [ElementDef; {}] = [",
        tables.structures,
        tables.elements.len()
    );
    for el in &tables.elements {
        let max = el.max.map_or_else(|| "U".to_owned(), |n| format!("n({n})"));
        let binding = match &el.required_binding {
            Some(url) => format!(
                "Some(&vs::{})",
                names.get(url.as_str()).map_or("", String::as_str)
            ),
            None => "None".to_owned(),
        };
        let flags = match (el.is_modifier, el.is_summary) {
            (false, false) => "NO",
            (true, false) => "MO",
            (false, true) => "SU",
            (true, true) => "MS",
        };
        let _ = writeln!(
            out,
            "    e({}, {}, {max}, {}, {}, {binding}, {flags}),",
            lit(&el.path),
            el.min,
            str_slice(&el.types),
            opt_lit(el.content_reference.as_deref()),
        );
    }
    out.push_str("];\n\n");
    let _ = writeln!(
        out,
        "/// The primitive types, sorted by name.\npub(super) static PRIMITIVES: [PrimitiveDef; {}] = [",
        tables.primitives.len()
    );
    for p in &tables.primitives {
        let _ = writeln!(
            out,
            "    PrimitiveDef {{ name: {}, regex: {} }},",
            lit(&p.name),
            opt_lit(p.regex.as_deref())
        );
    }
    out.push_str("];\n");
    out
}
