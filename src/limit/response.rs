//! Counting the FHIR resources in a response, and cutting a response to what the budget
//! allows.
//!
//! Counted: in a `Bundle`, every `entry` with a `resource` except `search.mode = outcome`
//! (so `_include`d and `_revinclude`d resources count like matches, FHIR R4 §3.1.1.5.5); any
//! other resource counts 1, an `OperationOutcome` 0; in NDJSON (`application/fhir+ndjson`)
//! every non-blank line. Cutting keeps the JSON that is kept byte-exact: only the Bundle's
//! top level is rewritten.

use crate::fhir::{Issue, IssueSeverity, IssueType, OperationOutcome};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::fmt;

/// What kind of body a response has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Json,
    Ndjson,
}

impl BodyKind {
    /// From `Content-Type`; `None` for anything fhirwall can't count.
    pub(crate) fn from_content_type(value: Option<&str>) -> Option<Self> {
        let mime = value?.split(';').next()?.trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/fhir+json" | "application/json" | "application/json+fhir" => {
                Some(BodyKind::Json)
            }
            "application/fhir+ndjson" | "application/ndjson" | "application/x-ndjson" => {
                Some(BodyKind::Ndjson)
            }
            _ => None,
        }
    }
}

/// The body could not be read as FHIR JSON or NDJSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Uncountable;

/// A JSON object's members in order, values borrowed raw.
struct Ordered<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Ordered<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Ordered<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<'a>, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Ordered(fields))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct EntryHead {
    resource: Option<Box<RawValue>>,
    search: Option<SearchHead>,
}

#[derive(Deserialize)]
struct SearchHead {
    mode: Option<String>,
}

#[derive(Deserialize)]
struct LinkHead {
    relation: Option<String>,
}

/// A parsed response body, ready to be counted and cut.
pub(crate) enum Parsed<'a> {
    Bundle {
        fields: Vec<(String, &'a RawValue)>,
        entries: Vec<(&'a RawValue, bool)>,
        searchset: bool,
    },
    Single(u64),
    Ndjson(Vec<&'a str>),
}

impl Parsed<'_> {
    /// Resources counted.
    pub(crate) fn count(&self) -> u64 {
        match self {
            Parsed::Bundle { entries, .. } => entries.iter().filter(|(_, c)| *c).count() as u64,
            Parsed::Single(n) => *n,
            Parsed::Ndjson(lines) => lines.len() as u64,
        }
    }
}

/// Reads a body for counting; it is borrowed, so entries stay byte-exact.
pub(crate) fn parse(body: &[u8], kind: BodyKind) -> Result<Parsed<'_>, Uncountable> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Parsed::Single(0));
    }
    match kind {
        BodyKind::Ndjson => {
            let text = std::str::from_utf8(body).map_err(|_| Uncountable)?;
            Ok(Parsed::Ndjson(
                text.lines().filter(|l| !l.trim().is_empty()).collect(),
            ))
        }
        BodyKind::Json => parse_json(body),
    }
}

fn parse_json<'a>(body: &'a [u8]) -> Result<Parsed<'a>, Uncountable> {
    let Ordered(fields) = serde_json::from_slice::<Ordered<'a>>(body).map_err(|_| Uncountable)?;
    let mut resource_type: Option<&'a str> = None;
    let mut bundle_type: Option<&'a str> = None;
    let mut entry_raw: Option<&'a str> = None;
    for (key, value) in &fields {
        let slot = match key.as_str() {
            "resourceType" => &mut resource_type,
            "type" => &mut bundle_type,
            "entry" => &mut entry_raw,
            _ => continue,
        };
        // A repeated member could be read differently downstream: refuse it.
        let raw: &'a RawValue = value;
        if slot.replace(raw.get()).is_some() {
            return Err(Uncountable);
        }
    }
    let resource_type: String =
        serde_json::from_str(resource_type.ok_or(Uncountable)?).map_err(|_| Uncountable)?;
    match resource_type.as_str() {
        "Bundle" => {}
        "OperationOutcome" => return Ok(Parsed::Single(0)),
        _ => return Ok(Parsed::Single(1)),
    }
    let searchset = bundle_type
        .and_then(|t| serde_json::from_str::<String>(t).ok())
        .is_some_and(|t| t == "searchset");
    let entries: Vec<&'a RawValue> = match entry_raw {
        None => Vec::new(),
        Some(raw) => serde_json::from_str(raw).map_err(|_| Uncountable)?,
    };
    let mut counted = Vec::with_capacity(entries.len());
    for raw in entries {
        let head: EntryHead = serde_json::from_str(raw.get()).map_err(|_| Uncountable)?;
        let outcome = head
            .search
            .and_then(|s| s.mode)
            .is_some_and(|m| m == "outcome");
        counted.push((raw, head.resource.is_some() && !outcome));
    }
    Ok(Parsed::Bundle {
        fields,
        entries: counted,
        searchset,
    })
}

/// The body cut to `keep` resources, with `next` links dropped and an `OperationOutcome` note
/// added; `None` when nothing can be kept (a single resource or an empty cut).
pub(crate) fn cut(parsed: &Parsed<'_>, keep: u64) -> Option<Vec<u8>> {
    match parsed {
        Parsed::Single(_) => None,
        Parsed::Ndjson(lines) => {
            let mut out = String::new();
            for line in lines
                .iter()
                .take(usize::try_from(keep).unwrap_or(usize::MAX))
            {
                out.push_str(line);
                out.push('\n');
            }
            Some(out.into_bytes())
        }
        Parsed::Bundle {
            fields,
            entries,
            searchset,
        } => {
            let mut out = Vec::with_capacity(1024);
            out.push(b'{');
            let mut first = true;
            let mut wrote_entries = false;
            for (key, value) in fields {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(serde_json::to_string(key).ok()?.as_bytes());
                out.push(b':');
                match key.as_str() {
                    "entry" => {
                        write_entries(&mut out, entries, keep, *searchset);
                        wrote_entries = true;
                    }
                    "link" => write_links(&mut out, value)?,
                    _ => out.extend_from_slice(value.get().as_bytes()),
                }
            }
            if !wrote_entries {
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(b"\"entry\":");
                write_entries(&mut out, entries, keep, *searchset);
            }
            out.push(b'}');
            Some(out)
        }
    }
}

fn write_entries(out: &mut Vec<u8>, entries: &[(&RawValue, bool)], keep: u64, searchset: bool) {
    out.push(b'[');
    let mut kept = 0u64;
    let mut first = true;
    for (raw, counted) in entries {
        if *counted {
            if kept >= keep {
                continue;
            }
            kept += 1;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(raw.get().as_bytes());
    }
    if !first {
        out.push(b',');
    }
    let note = OperationOutcome::new().with_issue(
        Issue::new(IssueSeverity::Warning, IssueType::Throttled).with_text(
            "this response was cut to the client's remaining resource budget; the next link was removed",
        ),
    );
    out.extend_from_slice(b"{\"resource\":");
    out.extend_from_slice(&note.to_json());
    if searchset {
        out.extend_from_slice(b",\"search\":{\"mode\":\"outcome\"}");
    }
    out.extend_from_slice(b"}]");
}

fn write_links(out: &mut Vec<u8>, value: &RawValue) -> Option<()> {
    let links: Vec<&RawValue> = serde_json::from_str(value.get()).ok()?;
    out.push(b'[');
    let mut first = true;
    for link in links {
        let head: LinkHead = serde_json::from_str(link.get()).ok()?;
        if head.relation.as_deref() == Some("next") {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(link.get().as_bytes());
    }
    out.push(b']');
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_counts_and_outcome_does_not() {
        let body = br#"{"resourceType":"Bundle","type":"searchset","entry":[
            {"resource":{"resourceType":"Observation","valueQuantity":{"value":1.50}},"search":{"mode":"match"}},
            {"resource":{"resourceType":"Patient"},"search":{"mode":"include"}},
            {"resource":{"resourceType":"OperationOutcome"},"search":{"mode":"outcome"}}]}"#;
        let parsed = parse(body, BodyKind::Json).unwrap();
        assert_eq!(parsed.count(), 2);
        let cut = cut(&parsed, 1).unwrap();
        let text = String::from_utf8(cut).unwrap();
        assert!(text.contains("1.50"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["entry"].as_array().unwrap().len(), 3);
    }
}
