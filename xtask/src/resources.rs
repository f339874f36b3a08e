//! `resource_types.rs`: the `ResourceType` enum.

use std::fmt::Write as _;

use crate::emit::HEADER;
use crate::package::{bool_field, str_field, Package};

/// The concrete resource types of the package, sorted: StructureDefinitions with
/// `kind = resource`, `derivation = specialization`, not abstract, other than `Resource` and
/// `DomainResource`.
pub fn resource_types(package: &Package) -> Result<Vec<String>, String> {
    let mut types = Vec::new();
    for sd in package.structure_definitions.values() {
        let ty = str_field(sd, "type").unwrap_or_default();
        if str_field(sd, "kind") == Some("resource")
            && str_field(sd, "derivation") == Some("specialization")
            && !bool_field(sd, "abstract")
            && ty != "Resource"
            && ty != "DomainResource"
        {
            if !ty.chars().all(|c| c.is_ascii_alphanumeric()) || ty.is_empty() {
                return Err(format!("unexpected resource type name {ty:?}"));
            }
            types.push(ty.to_owned());
        }
    }
    types.sort();
    types.dedup();
    if types.len() < 100 {
        return Err(format!("only {} resource types found", types.len()));
    }
    Ok(types)
}

/// The text of `resource_types.rs`.
pub fn emit(types: &[String]) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str(&format!(
        "\n/// A FHIR R4 (4.0.1) resource type: the {} concrete resources of the core specification.\n",
        types.len()
    ));
    out.push_str("///\n/// Names are case-sensitive, as in the specification: `Patient` is a resource type, `patient` is not.\n");
    out.push_str("#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[non_exhaustive]\npub enum ResourceType {\n");
    for ty in types {
        let _ = writeln!(out, "    /// `{ty}`\n    {ty},");
    }
    out.push_str(
        "}\n\nimpl ResourceType {\n    /// Every R4 resource type, in alphabetical order.\n",
    );
    let _ = writeln!(
        out,
        "    pub const ALL: [ResourceType; {}] = [",
        types.len()
    );
    for ty in types {
        let _ = writeln!(out, "        ResourceType::{ty},");
    }
    out.push_str("    ];\n\n    /// The type's name as the specification spells it.\n");
    out.push_str("    pub const fn as_str(self) -> &'static str {\n        match self {\n");
    for ty in types {
        let _ = writeln!(out, "            ResourceType::{ty} => \"{ty}\",");
    }
    out.push_str("        }\n    }\n\n");
    out.push_str(
        "    /// The resource type with exactly this name (case-sensitive), if R4 has one.\n",
    );
    out.push_str("    pub fn from_name(name: &str) -> Option<Self> {\n        Some(match name {\n");
    for ty in types {
        let _ = writeln!(out, "            \"{ty}\" => ResourceType::{ty},");
    }
    out.push_str("            _ => return None,\n        })\n    }\n}\n");
    out
}
