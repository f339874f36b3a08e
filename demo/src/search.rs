//! Search: parsing the query string strictly, selecting, sorting, paging and `_include`s.

use crate::matching::{self, Modifier, Needle};
use crate::params::{self, Kind, ParamDef};
use crate::response::Failure;
use crate::store::Db;
use fhirwall::fhir::IssueType;
use http::StatusCode;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashSet;

/// The page size when `_count` is absent.
pub(crate) const DEFAULT_COUNT: usize = 20;
/// The largest page served; larger `_count`s are cut to it.
pub(crate) const MAX_COUNT: usize = 500;

/// One filtering parameter: the values are OR'ed, the filters AND'ed.
#[derive(Debug)]
pub(crate) struct Filter {
    pub(crate) def: &'static ParamDef,
    pub(crate) modifier: Modifier,
    pub(crate) needles: Vec<Needle>,
}

/// `_include` / `_revinclude` `Source:param[:Target]`.
#[derive(Debug)]
pub(crate) struct Include {
    pub(crate) source: String,
    pub(crate) def: &'static ParamDef,
    pub(crate) target: Option<String>,
    pub(crate) iterate: bool,
}

/// A parsed search.
#[derive(Debug)]
pub(crate) struct Query {
    pub(crate) filters: Vec<Filter>,
    pub(crate) count: usize,
    pub(crate) offset: usize,
    pub(crate) summary_count: bool,
    pub(crate) includes: Vec<Include>,
    pub(crate) revincludes: Vec<Include>,
    pub(crate) sort: Vec<(&'static ParamDef, bool)>,
    /// Everything but `_count` and `_offset`, to repeat in paging links.
    pub(crate) echo: Vec<(String, String)>,
}

/// Splits `a,b\,c` on unescaped commas.
fn split_values(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), out.last_mut()) {
                    if next != ',' {
                        last.push('\\');
                    }
                    last.push(next);
                }
            }
            ',' => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out.retain(|v| !v.is_empty());
    out
}

fn parse_usize(name: &str, value: &str) -> Result<usize, Failure> {
    value
        .parse::<usize>()
        .map_err(|_| Failure::invalid(format!("{name} must be a non-negative integer")))
}

/// Checks `_format`: only JSON is served.
pub(crate) fn check_format(value: &str) -> Result<(), Failure> {
    let mime = value.split(';').next().unwrap_or_default().trim();
    match mime {
        "json" | "application/json" | "application/fhir+json" | "application/json+fhir" => Ok(()),
        _ => Err(Failure::new(
            StatusCode::NOT_ACCEPTABLE,
            IssueType::NotSupported,
            "this server only speaks JSON (_format=json)",
        )),
    }
}

/// Parses a search on `ty` (`None`: several types at once, only result parameters allowed).
pub(crate) fn parse(
    ty: Option<&str>,
    pairs: &[(String, String)],
    base_url: &str,
) -> Result<Query, Failure> {
    let mut query = Query {
        filters: Vec::new(),
        count: DEFAULT_COUNT,
        offset: 0,
        summary_count: false,
        includes: Vec::new(),
        revincludes: Vec::new(),
        sort: Vec::new(),
        echo: Vec::new(),
    };
    for (key, value) in pairs {
        if key != "_count" && key != "_offset" {
            query.echo.push((key.clone(), value.clone()));
        }
        match key.as_str() {
            "_count" => query.count = parse_usize("_count", value)?.min(MAX_COUNT),
            "_offset" => query.offset = parse_usize("_offset", value)?,
            "_format" => check_format(value)?,
            "_pretty" => {}
            "_total" if ["none", "estimate", "accurate"].contains(&value.as_str()) => {}
            "_summary" => match value.as_str() {
                "count" => query.summary_count = true,
                "false" => {}
                _ => {
                    return Err(Failure::unsupported(
                        "only _summary=count and _summary=false are supported",
                    ))
                }
            },
            "_include" | "_include:iterate" | "_revinclude" | "_revinclude:iterate" => {
                let rev = key.starts_with("_rev");
                let include = parse_include(ty, value, rev, key.ends_with(":iterate"))?;
                if rev {
                    query.revincludes.push(include);
                } else {
                    query.includes.push(include);
                }
            }
            "_sort" => {
                let ty =
                    ty.ok_or_else(|| Failure::unsupported("_sort needs a single resource type"))?;
                for field in split_values(value) {
                    let (desc, name) = match field.strip_prefix('-') {
                        Some(name) => (true, name),
                        None => (false, field.as_str()),
                    };
                    let def = params::find(ty, name)
                        .filter(|d| d.kind != Kind::Reference)
                        .ok_or_else(|| {
                            Failure::unsupported(format!("cannot sort {ty} by {name:?}"))
                        })?;
                    query.sort.push((def, desc));
                }
            }
            _ => {
                let filter = parse_filter(ty, key, value, base_url)?;
                if !filter.needles.is_empty() {
                    query.filters.push(filter);
                }
            }
        }
    }
    Ok(query)
}

fn parse_filter(
    ty: Option<&str>,
    key: &str,
    value: &str,
    base_url: &str,
) -> Result<Filter, Failure> {
    let (name, modifier) = match key.split_once(':') {
        Some((name, m)) => (name, Some(m)),
        None => (key, None),
    };
    let def = ty.and_then(|ty| params::find(ty, name)).ok_or_else(|| {
        let what = match ty {
            Some(ty) => format!("unknown search parameter {name:?} for {ty}"),
            None => format!("search parameter {name:?} can't be used across resource types"),
        };
        Failure::invalid(what)
    })?;
    let modifier = match (modifier, def.kind) {
        (None, _) => Modifier::None,
        (Some("missing"), _) => Modifier::Missing,
        (Some("exact"), Kind::String) => Modifier::Exact,
        (Some("contains"), Kind::String) => Modifier::Contains,
        (Some("text"), Kind::Token) => Modifier::Text,
        (Some(t), Kind::Reference) if fhirwall::fhir::ResourceType::from_name(t).is_some() => {
            Modifier::Type(t.to_owned())
        }
        (Some(m), _) => {
            return Err(Failure::unsupported(format!(
                "unsupported modifier :{m} on {name}"
            )));
        }
    };
    let needles = split_values(value)
        .iter()
        .map(|v| matching::parse_needle(def, &modifier, v, base_url))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::invalid)?;
    Ok(Filter {
        def,
        modifier,
        needles,
    })
}

fn parse_include(
    ty: Option<&str>,
    value: &str,
    rev: bool,
    iterate: bool,
) -> Result<Include, Failure> {
    let mut parts = value.split(':');
    let (Some(source), Some(name)) = (parts.next(), parts.next()) else {
        return Err(Failure::invalid(format!(
            "{value:?} is not Type:parameter[:Target]"
        )));
    };
    let target = parts.next().map(str::to_owned);
    if parts.next().is_some() {
        return Err(Failure::invalid(format!(
            "{value:?} is not Type:parameter[:Target]"
        )));
    }
    let def = params::find(source, name)
        .filter(|d| d.kind == Kind::Reference)
        .ok_or_else(|| {
            Failure::invalid(format!(
                "{source}:{name} is not a reference search parameter"
            ))
        })?;
    if let Some(t) = &target {
        if !def.targets.contains(&t.as_str()) {
            return Err(Failure::invalid(format!(
                "{source}:{name} can't point to {t}"
            )));
        }
    }
    match ty {
        Some(ty) if !rev && !iterate && source != ty => {
            return Err(Failure::invalid(format!(
                "_include={value} does not start with {ty}"
            )));
        }
        Some(ty) if rev && !iterate && target.as_deref().unwrap_or(ty) != ty => {
            return Err(Failure::invalid(format!(
                "_revinclude={value} does not point to {ty}"
            )));
        }
        Some(ty) if rev && !iterate && !def.targets.contains(&ty) => {
            return Err(Failure::invalid(format!(
                "{source}:{name} never points to {ty}"
            )));
        }
        _ => {}
    }
    Ok(Include {
        source: source.to_owned(),
        def,
        target,
        iterate,
    })
}

/// The resources of `ty` matching every filter, in id order.
pub(crate) fn select<'a>(
    db: &'a Db,
    ty: &str,
    filters: &[Filter],
    base_url: &str,
) -> Vec<&'a Value> {
    db.live(ty)
        .filter(|r| {
            filters
                .iter()
                .all(|f| matching::matches_any(r, f.def, &f.modifier, &f.needles, base_url))
        })
        .collect()
}

#[derive(PartialEq, PartialOrd)]
enum SortKey {
    Num(i64),
    Text(String),
}

fn sort_key(resource: &Value, def: &ParamDef) -> Option<SortKey> {
    let els = matching::elements(resource, def);
    match def.kind {
        Kind::Date => els
            .iter()
            .filter_map(|e| matching::date_range(e))
            .map(|r| r.0)
            .min()
            .map(SortKey::Num),
        _ => els.iter().find_map(|e| {
            let text = match e {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => ["family", "value", "code", "text"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_str).map(str::to_owned))
                    .or_else(|| {
                        matching::collect(e, "coding.code")
                            .first()
                            .and_then(|c| c.as_str().map(str::to_owned))
                    }),
                _ => None,
            };
            text.map(|t| SortKey::Text(t.to_lowercase()))
        }),
    }
}

/// Sorts by `_sort`; resources without a value go last either way.
pub(crate) fn sort(matches: &mut [&Value], keys: &[(&'static ParamDef, bool)]) {
    if keys.is_empty() {
        return;
    }
    matches.sort_by(|a, b| {
        for (def, desc) in keys {
            let ord = match (sort_key(a, def), sort_key(b, def)) {
                (Some(x), Some(y)) => {
                    let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                    if *desc {
                        o.reverse()
                    } else {
                        o
                    }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
}

fn key_of(resource: &Value) -> (String, String) {
    let s = |k| {
        resource
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (s("resourceType"), s("id"))
}

/// The resources `_include` and `_revinclude` add to `page`, without duplicates.
pub(crate) fn includes<'a>(
    db: &'a Db,
    page: &[&'a Value],
    query: &Query,
    base_url: &str,
) -> Vec<&'a Value> {
    let mut seen: HashSet<(String, String)> = page.iter().map(|r| key_of(r)).collect();
    let mut added: Vec<&'a Value> = Vec::new();
    let mut frontier: Vec<&'a Value> = page.to_vec();
    let mut first = true;
    // `:iterate` follows includes from included resources too; a few rounds are plenty.
    for _ in 0..5 {
        let mut next: Vec<&'a Value> = Vec::new();
        for include in query.includes.iter().filter(|i| first || i.iterate) {
            for resource in &frontier {
                if resource.get("resourceType").and_then(Value::as_str)
                    != Some(include.source.as_str())
                {
                    continue;
                }
                for el in matching::elements(resource, include.def) {
                    let Some((ty, id)) = matching::local_target(el, base_url) else {
                        continue;
                    };
                    if include.target.as_ref().is_some_and(|t| *t != ty) {
                        continue;
                    }
                    if let Some(found) = db.get(&ty, &id) {
                        if seen.insert((ty, id)) {
                            next.push(found);
                        }
                    }
                }
            }
        }
        for include in query.revincludes.iter().filter(|i| first || i.iterate) {
            let targets: HashSet<(String, String)> = frontier.iter().map(|r| key_of(r)).collect();
            for candidate in db.live(&include.source) {
                let points_here = matching::elements(candidate, include.def).iter().any(|el| {
                    matching::local_target(el, base_url).is_some_and(|t| {
                        include.target.as_deref().unwrap_or(&t.0) == t.0 && targets.contains(&t)
                    })
                });
                if points_here && seen.insert(key_of(candidate)) {
                    next.push(candidate);
                }
            }
        }
        first = false;
        if next.is_empty() {
            break;
        }
        added.extend(next.iter().copied());
        frontier = next;
    }
    added
}

/// Builds the patient compartment filter for `ty`: `patient=Patient/id` (or `_id` on Patient).
pub(crate) fn compartment_filter(ty: &str, patient_id: &str, base_url: &str) -> Option<Filter> {
    let name = if ty == "Patient" { "_id" } else { "patient" };
    let def = params::find(ty, name)?;
    let value = if ty == "Patient" {
        patient_id.to_owned()
    } else {
        format!("Patient/{patient_id}")
    };
    let needle = matching::parse_needle(def, &Modifier::None, &value, base_url).ok()?;
    Some(Filter {
        def,
        modifier: Modifier::None,
        needles: vec![needle],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_escaped_commas() {
        assert_eq!(split_values("a,b\\,c,,d"), vec!["a", "b,c", "d"]);
        assert!(split_values("").is_empty());
    }

    #[test]
    fn strict_parsing() {
        let q = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            parse(Some("Observation"), &pairs, "http://x/fhir")
        };
        assert!(q(&[("nonsense", "1")]).is_err());
        assert!(q(&[("code:exact", "1")]).is_err());
        assert!(q(&[("date", "xx2024")]).is_err());
        assert!(q(&[("_count", "-1")]).is_err());
        assert!(q(&[("_include", "Patient:organization")]).is_err());
        assert!(q(&[("_include", "Observation:code")]).is_err());
        assert_eq!(q(&[("_count", "100000")]).unwrap().count, MAX_COUNT);
        let ok = q(&[
            ("code", "a,b"),
            ("_include", "Observation:subject:Patient"),
            ("_offset", "5"),
        ])
        .unwrap();
        assert_eq!(ok.filters[0].needles.len(), 2);
        assert_eq!(ok.offset, 5);
        assert_eq!(ok.echo.len(), 2);
    }
}
