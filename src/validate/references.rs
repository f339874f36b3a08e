//! Reference syntax (FHIR R4 §2.3.0 "Resource References"): `Type/id`, `Type/id/_history/vid`,
//! `#contained`, `urn:uuid:` inside Bundles, absolute URLs only from configured bases.

use super::primitives;
use crate::fhir::ResourceType;

/// Where a reference appears, which decides which forms it may take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefContext<'c> {
    /// Inside a Bundle: `urn:uuid:` / `urn:oid:` and conditional `Type?query` references
    /// resolve against the Bundle's entries (FHIR R4 §3.1.0.11.2).
    pub(crate) in_bundle: bool,
    /// Absolute bases references may point into (`https://fhir.example.org/r4`).
    pub(crate) bases: &'c [String],
    /// Whether any absolute URL is accepted.
    pub(crate) any_absolute: bool,
}

/// Checks `Type/id` or `Type/id/_history/vid`; `Type?query` when `conditional`.
fn relative(value: &str, conditional: bool) -> Result<(), &'static str> {
    if let Some((ty, query)) = value.split_once('?') {
        if !conditional {
            return Err("a conditional reference (Type?query) is only allowed inside a Bundle");
        }
        if ResourceType::from_name(ty).is_none() || query.is_empty() {
            return Err("the reference is not Type?query with a known resource type");
        }
        return Ok(());
    }
    let mut parts = value.split('/');
    let (Some(ty), Some(id)) = (parts.next(), parts.next()) else {
        return Err("the reference is not of the form Type/id");
    };
    if ResourceType::from_name(ty).is_none() {
        return Err("the reference names an unknown resource type");
    }
    if !primitives::id(id.as_bytes()) {
        return Err("the reference has an invalid id");
    }
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => Ok(()),
        (Some("_history"), Some(vid), None) if primitives::id(vid.as_bytes()) => Ok(()),
        _ => Err("the reference is not of the form Type/id or Type/id/_history/vid"),
    }
}

/// Checks the text of a `Reference.reference`.
pub(crate) fn check(value: &str, ctx: RefContext<'_>) -> Result<(), &'static str> {
    if let Some(local) = value.strip_prefix('#') {
        // `#` alone points at the container (FHIR R4 §2.3.0.5.1).
        return if local.is_empty() || primitives::id(local.as_bytes()) {
            Ok(())
        } else {
            Err("a contained reference must be # followed by an id")
        };
    }
    if value.starts_with("urn:uuid:") {
        if !primitives::uuid(value.as_bytes()) {
            return Err("a urn:uuid: reference must hold a lowercase UUID");
        }
        return if ctx.in_bundle {
            Ok(())
        } else {
            Err("urn:uuid: references are only resolvable inside a Bundle")
        };
    }
    if value.starts_with("urn:oid:") {
        return if ctx.in_bundle && primitives::valid("oid", value) {
            Ok(())
        } else {
            Err("urn:oid: references are only resolvable inside a Bundle")
        };
    }
    if value.contains("://") {
        if value
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err("the reference URL contains whitespace");
        }
        if !(value.starts_with("https://") || value.starts_with("http://")) {
            return Err("an absolute reference must be an http or https URL");
        }
        for base in ctx.bases {
            let base = base.trim_end_matches('/');
            if let Some(rest) = value.strip_prefix(base).and_then(|r| r.strip_prefix('/')) {
                return relative(rest, ctx.in_bundle);
            }
        }
        return if ctx.any_absolute {
            Ok(())
        } else {
            Err("absolute references are only allowed into the configured base URLs")
        };
    }
    relative(value, ctx.in_bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_forms_fhir_r4_2_3_0() {
        let bases = ["https://fhir.example.org/r4".to_owned()];
        let top = RefContext {
            in_bundle: false,
            bases: &bases,
            any_absolute: false,
        };
        let bundle = RefContext {
            in_bundle: true,
            ..top
        };
        for (v, ctx, ok) in [
            ("Patient/1", top, true),
            ("Patient/1/_history/2", top, true),
            ("Patient/1/_history", top, false),
            ("Patient", top, false),
            ("Nope/1", top, false),
            ("Patient/a_b", top, false),
            ("#", top, true),
            ("#p1", top, true),
            ("#p 1", top, false),
            ("urn:uuid:c757873d-ec9a-4326-a141-556f43239520", top, false),
            (
                "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
                bundle,
                true,
            ),
            ("Patient?identifier=x|1", top, false),
            ("Patient?identifier=x|1", bundle, true),
            ("https://fhir.example.org/r4/Patient/1", top, true),
            ("https://fhir.example.org/r4/Nope/1", top, false),
            ("https://evil.example/Patient/1", top, false),
            ("javascript://x", top, false),
        ] {
            assert_eq!(check(v, ctx).is_ok(), ok, "{v}");
        }
    }
}
