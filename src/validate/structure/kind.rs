//! How each element's value is checked, from its StructureDefinition type.

use crate::fhir::tables::{ElementDef, Max};
use crate::fhir::ResourceType;

/// How the value of an element is checked.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    /// A resource (`contained`, `Bundle.entry.resource`): its type comes from `resourceType`.
    Resource,
    /// An object whose keys are the children of this path (a data type or backbone element).
    Complex(&'static str),
    /// A primitive of this type.
    Primitive(&'static str),
}

pub(super) fn type_matches(ty: &str, suffix: &str) -> bool {
    let (mut a, mut b) = (ty.chars(), suffix.chars());
    match (a.next(), b.next()) {
        (Some(x), Some(y)) if x.to_ascii_uppercase() == y => a.as_str() == b.as_str(),
        _ => false,
    }
}

/// The primitive type of an element typed with a FHIRPath system type: `Resource.id` is an
/// `id`, `Extension.url` a `uri`, every other `id` a `string`.
fn system_primitive(path: &str, ty: &str) -> &'static str {
    match ty.rsplit('.').next().unwrap_or_default() {
        "Boolean" => return "boolean",
        "Integer" => return "integer",
        "Decimal" => return "decimal",
        "Date" => return "date",
        "DateTime" => return "dateTime",
        "Time" => return "time",
        _ => {}
    }
    if path == "Extension.url" {
        return "uri";
    }
    match path.split_once('.') {
        Some((root, "id"))
            if ResourceType::from_name(root).is_some()
                || root == "Resource"
                || root == "DomainResource" =>
        {
            "id"
        }
        _ => "string",
    }
}

pub(super) fn kind_of(e: &'static ElementDef, ty: &'static str) -> Kind {
    if let Some(target) = e.content_reference {
        return Kind::Complex(target.trim_start_matches('#'));
    }
    match ty {
        "Resource" => Kind::Resource,
        "BackboneElement" | "Element" => Kind::Complex(e.path),
        t if t.starts_with("http://hl7.org/fhirpath/System.") => {
            Kind::Primitive(system_primitive(e.path, t))
        }
        t if t.starts_with(|c: char| c.is_ascii_lowercase()) => Kind::Primitive(t),
        t => Kind::Complex(t),
    }
}

pub(super) fn repeats(e: &ElementDef) -> bool {
    !matches!(e.max, Max::Count(0 | 1))
}
