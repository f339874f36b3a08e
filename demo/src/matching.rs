//! Whether one resource matches one search parameter value.

use crate::params::{Kind, ParamDef};
use crate::time;
use serde_json::Value;

/// A parameter modifier (`name:exact=...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Modifier {
    None,
    /// string: case-sensitive equality.
    Exact,
    /// string: case-insensitive substring.
    Contains,
    /// token: starts-with on `CodeableConcept.text` / `Coding.display`.
    Text,
    /// any: `:missing=true|false`.
    Missing,
    /// reference: `subject:Patient=123`.
    Type(String),
}

/// A date comparison prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prefix {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Sa,
    Eb,
}

/// One parsed value of a search parameter.
#[derive(Clone, Debug)]
pub(crate) enum Needle {
    /// `system|code`: `system` is `None` when no `|` was given, `Some(None)` for `|code`.
    Token {
        system: Option<Option<String>>,
        code: Option<String>,
    },
    String(String),
    Date(Prefix, i64, i64),
    /// A reference as `(type, id)`, `(None, id)` for a bare id, or an absolute URL elsewhere.
    Reference(Option<String>, String),
    Missing(bool),
}

/// Parses one value of `def` (already split on unescaped commas).
pub(crate) fn parse_needle(
    def: &ParamDef,
    modifier: &Modifier,
    value: &str,
    base_url: &str,
) -> Result<Needle, String> {
    if *modifier == Modifier::Missing {
        return match value {
            "true" => Ok(Needle::Missing(true)),
            "false" => Ok(Needle::Missing(false)),
            _ => Err(format!("{}:missing takes true or false", def.name)),
        };
    }
    match def.kind {
        Kind::Token if *modifier == Modifier::Text => Ok(Needle::String(value.to_lowercase())),
        Kind::Token => Ok(match value.split_once('|') {
            None => Needle::Token {
                system: None,
                code: Some(value.to_owned()),
            },
            Some((system, code)) => Needle::Token {
                system: Some((!system.is_empty()).then(|| system.to_owned())),
                code: (!code.is_empty()).then(|| code.to_owned()),
            },
        }),
        Kind::String if *modifier == Modifier::Exact => Ok(Needle::String(value.to_owned())),
        Kind::String => Ok(Needle::String(value.to_lowercase())),
        Kind::Date => {
            let (prefix, rest) = split_prefix(value);
            let prefix = prefix.ok_or_else(|| {
                format!(
                    "{}: unsupported date prefix in {value:?} (eq, ne, lt, le, gt, ge, sa, eb)",
                    def.name
                )
            })?;
            let (lo, hi) = time::parse_range(rest)
                .ok_or_else(|| format!("{}: {rest:?} is not a FHIR date", def.name))?;
            Ok(Needle::Date(prefix, lo, hi))
        }
        Kind::Reference => {
            let (ty, id) = split_reference(value, base_url);
            if let (Modifier::Type(t), Some(given)) = (modifier, &ty) {
                if t != given {
                    return Err(format!(
                        "{}:{t} does not match the reference {value:?}",
                        def.name
                    ));
                }
            }
            let ty = ty.or(match modifier {
                Modifier::Type(t) => Some(t.clone()),
                _ => None,
            });
            if id.is_empty() {
                return Err(format!("{}: empty reference", def.name));
            }
            Ok(Needle::Reference(ty, id))
        }
    }
}

fn split_prefix(value: &str) -> (Option<Prefix>, &str) {
    let prefixes = [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("lt", Prefix::Lt),
        ("le", Prefix::Le),
        ("gt", Prefix::Gt),
        ("ge", Prefix::Ge),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
    ];
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        return (Some(Prefix::Eq), value);
    }
    for (text, prefix) in prefixes {
        if let Some(rest) = value.strip_prefix(text) {
            return (Some(prefix), rest);
        }
    }
    (None, value)
}

/// `Patient/1`, `http://base/Patient/1/_history/2` → `(Some("Patient"), "1")`; `1` →
/// `(None, "1")`; a URL on another server stays whole as the id with no type.
pub(crate) fn split_reference(reference: &str, base_url: &str) -> (Option<String>, String) {
    let local = reference
        .strip_prefix(base_url)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(reference);
    if local.contains("://") || local.starts_with("urn:") {
        return (None, local.to_owned());
    }
    let mut parts = local.split('/');
    match (parts.next(), parts.next()) {
        (Some(ty), Some(id)) => (Some(ty.to_owned()), id.to_owned()),
        (Some(id), None) => (None, id.to_owned()),
        _ => (None, String::new()),
    }
}

/// The `(type, id)` a reference element points to on this server, if it is a local one.
pub(crate) fn local_target(element: &Value, base_url: &str) -> Option<(String, String)> {
    let reference = element.get("reference")?.as_str()?;
    match split_reference(reference, base_url) {
        (Some(ty), id) if !id.is_empty() => Some((ty, id)),
        _ => None,
    }
}

/// The elements at a dotted path, arrays flattened.
pub(crate) fn collect<'a>(resource: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![resource];
    for segment in path.split('.') {
        let mut next = Vec::new();
        for value in current {
            match value.get(segment) {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(item) => next.push(item),
                None => {}
            }
        }
        current = next;
    }
    current
}

/// The elements a parameter looks at.
pub(crate) fn elements<'a>(resource: &'a Value, def: &ParamDef) -> Vec<&'a Value> {
    def.paths
        .iter()
        .flat_map(|path| collect(resource, path))
        .collect()
}

/// Whether `resource` matches any of `needles` (the comma-separated values of one parameter).
pub(crate) fn matches_any(
    resource: &Value,
    def: &ParamDef,
    modifier: &Modifier,
    needles: &[Needle],
    base_url: &str,
) -> bool {
    let els = elements(resource, def);
    needles.iter().any(|needle| match needle {
        Needle::Missing(missing) => els.is_empty() == *missing,
        Needle::Token { system, code } => els.iter().any(|el| token_matches(el, system, code)),
        Needle::String(text) if def.kind == Kind::Token => els.iter().any(|el| {
            token_text(el)
                .iter()
                .any(|t| t.to_lowercase().starts_with(text))
        }),
        Needle::String(text) => els.iter().any(|el| {
            strings(el).iter().any(|s| match modifier {
                Modifier::Exact => s == text,
                Modifier::Contains => s.to_lowercase().contains(text.as_str()),
                _ => s.to_lowercase().starts_with(text.as_str()),
            })
        }),
        Needle::Date(prefix, lo, hi) => els
            .iter()
            .filter_map(|el| date_range(el))
            .any(|(rlo, rhi)| date_matches(*prefix, *lo, *hi, rlo, rhi)),
        Needle::Reference(ty, id) => els
            .iter()
            .any(|el| reference_matches(el, def, ty.as_deref(), id, base_url)),
    })
}

fn token_pairs(el: &Value) -> Vec<(Option<&str>, Option<&str>)> {
    match el {
        Value::String(s) => vec![(None, Some(s.as_str()))],
        Value::Object(obj) => {
            if let Some(Value::Array(codings)) = obj.get("coding") {
                return codings.iter().flat_map(token_pairs).collect();
            }
            let system = obj.get("system").and_then(Value::as_str);
            if let Some(code) = obj.get("code").and_then(Value::as_str) {
                return vec![(system, Some(code))];
            }
            if let Some(value) = obj.get("value").and_then(Value::as_str) {
                // ContactPoint.system is a kind (phone, email), not a namespace.
                let contact = ["phone", "fax", "email", "pager", "url", "sms", "other"];
                let system = system.filter(|s| !contact.contains(s));
                return vec![(system, Some(value))];
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn token_matches(el: &Value, system: &Option<Option<String>>, code: &Option<String>) -> bool {
    if let Value::Bool(b) = el {
        return system.is_none() && code.as_deref() == Some(if *b { "true" } else { "false" });
    }
    token_pairs(el).into_iter().any(|(el_system, el_code)| {
        let code_ok = match code {
            Some(c) => el_code == Some(c.as_str()),
            None => true,
        };
        let system_ok = match system {
            None => true,
            Some(None) => el_system.is_none(),
            Some(Some(s)) => el_system == Some(s.as_str()),
        };
        code_ok && system_ok
    })
}

fn token_text(el: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some(text) = el.get("text").and_then(Value::as_str) {
        out.push(text);
    }
    for coding in collect(el, "coding") {
        if let Some(display) = coding.get("display").and_then(Value::as_str) {
            out.push(display);
        }
    }
    if let Some(display) = el.get("display").and_then(Value::as_str) {
        out.push(display);
    }
    out
}

/// The searchable strings of a string, `HumanName` or `Address`.
fn strings(el: &Value) -> Vec<&str> {
    const PARTS: &[&str] = &[
        "text",
        "family",
        "given",
        "prefix",
        "suffix",
        "line",
        "city",
        "district",
        "state",
        "postalCode",
        "country",
    ];
    match el {
        Value::String(s) => vec![s.as_str()],
        Value::Object(obj) => PARTS
            .iter()
            .filter_map(|k| obj.get(*k))
            .flat_map(|v| match v {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The time range a date, dateTime, instant or Period covers.
pub(crate) fn date_range(el: &Value) -> Option<(i64, i64)> {
    match el {
        Value::String(s) => time::parse_range(s),
        Value::Object(obj) => {
            let start = obj
                .get("start")
                .and_then(Value::as_str)
                .and_then(time::parse_range);
            let end = obj
                .get("end")
                .and_then(Value::as_str)
                .and_then(time::parse_range);
            if start.is_none() && end.is_none() {
                return None;
            }
            Some((
                start.map_or(i64::MIN, |s| s.0),
                end.map_or(i64::MAX, |e| e.1),
            ))
        }
        _ => None,
    }
}

/// FHIR's range semantics: `[lo, hi)` is the parameter, `[rlo, rhi)` the resource value.
fn date_matches(prefix: Prefix, lo: i64, hi: i64, rlo: i64, rhi: i64) -> bool {
    let eq = rlo >= lo && rhi <= hi;
    match prefix {
        Prefix::Eq => eq,
        Prefix::Ne => !eq,
        Prefix::Gt => rhi > hi,
        Prefix::Lt => rlo < lo,
        Prefix::Ge => rhi > hi || eq,
        Prefix::Le => rlo < lo || eq,
        Prefix::Sa => rlo >= hi,
        Prefix::Eb => rhi <= lo,
    }
}

fn reference_matches(
    el: &Value,
    def: &ParamDef,
    ty: Option<&str>,
    id: &str,
    base_url: &str,
) -> bool {
    let Some(reference) = el.get("reference").and_then(Value::as_str) else {
        return false;
    };
    let (el_ty, el_id) = split_reference(reference, base_url);
    if el_id != id {
        return false;
    }
    match (ty, el_ty.as_deref()) {
        (Some(want), Some(got)) => want == got,
        (None, Some(got)) => def.targets.is_empty() || def.targets.contains(&got),
        // A non-local URL or urn compares whole.
        (None, None) => true,
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params;
    use serde_json::json;

    fn hit(resource: &Value, ty: &str, name: &str, modifier: Modifier, value: &str) -> bool {
        let def = params::find(ty, name).unwrap();
        let needle = parse_needle(def, &modifier, value, "http://x/fhir").unwrap();
        matches_any(resource, def, &modifier, &[needle], "http://x/fhir")
    }

    #[test]
    fn tokens_strings_dates_references() {
        let obs = json!({
            "resourceType": "Observation",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-05-03T09:30:00Z",
            "status": "final"
        });
        assert!(hit(&obs, "Observation", "code", Modifier::None, "2339-0"));
        assert!(hit(
            &obs,
            "Observation",
            "code",
            Modifier::None,
            "http://loinc.org|2339-0"
        ));
        assert!(hit(
            &obs,
            "Observation",
            "code",
            Modifier::None,
            "http://loinc.org|"
        ));
        assert!(!hit(&obs, "Observation", "code", Modifier::None, "|2339-0"));
        assert!(!hit(
            &obs,
            "Observation",
            "code",
            Modifier::None,
            "http://snomed.info/sct|2339-0"
        ));
        assert!(hit(&obs, "Observation", "code", Modifier::Text, "gluc"));
        assert!(hit(&obs, "Observation", "patient", Modifier::None, "p1"));
        assert!(hit(
            &obs,
            "Observation",
            "patient",
            Modifier::None,
            "Patient/p1"
        ));
        assert!(hit(
            &obs,
            "Observation",
            "subject",
            Modifier::None,
            "http://x/fhir/Patient/p1"
        ));
        assert!(!hit(
            &obs,
            "Observation",
            "subject",
            Modifier::None,
            "Group/p1"
        ));
        assert!(hit(&obs, "Observation", "date", Modifier::None, "2024-05"));
        assert!(hit(
            &obs,
            "Observation",
            "date",
            Modifier::None,
            "ge2024-05-03"
        ));
        assert!(hit(
            &obs,
            "Observation",
            "date",
            Modifier::None,
            "lt2024-05-04"
        ));
        assert!(!hit(
            &obs,
            "Observation",
            "date",
            Modifier::None,
            "gt2024-05-03"
        ));
        assert!(!hit(&obs, "Observation", "date", Modifier::None, "2023"));
        assert!(hit(
            &obs,
            "Observation",
            "encounter",
            Modifier::Missing,
            "true"
        ));
        let pat =
            json!({"resourceType": "Patient", "name": [{"family": "Hart", "given": ["Amelia"]}]});
        assert!(hit(&pat, "Patient", "name", Modifier::None, "AME"));
        assert!(hit(&pat, "Patient", "family", Modifier::None, "har"));
        assert!(!hit(&pat, "Patient", "family", Modifier::Exact, "har"));
        assert!(hit(&pat, "Patient", "name", Modifier::Contains, "eli"));
    }
}
