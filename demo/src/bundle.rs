//! Building `Bundle`s: searchset and history pages with their links.

use crate::store::{Version, WriteKind};
use crate::time;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// `base_url/Type/id`.
pub(crate) fn full_url(base_url: &str, ty: &str, id: &str) -> String {
    format!("{base_url}/{ty}/{id}")
}

/// The full URL of a stored resource value.
pub(crate) fn full_url_of(base_url: &str, resource: &Value) -> String {
    let s = |k| resource.get(k).and_then(Value::as_str).unwrap_or_default();
    full_url(base_url, s("resourceType"), s("id"))
}

/// A new, empty Bundle of a type, with an id and `meta.lastUpdated`.
pub(crate) fn new_bundle(bundle_type: &str) -> Map<String, Value> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = time::now_ms();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), json!("Bundle"));
    bundle.insert("id".into(), json!(format!("{now:x}-{seq:x}")));
    bundle.insert(
        "meta".into(),
        json!({"lastUpdated": time::format_instant(now)}),
    );
    bundle.insert("type".into(), json!(bundle_type));
    bundle
}

/// Where a page of results lives and how big the result is.
pub(crate) struct Paging<'a> {
    /// The URL without the query: `http://host/fhir/Observation`.
    pub(crate) link_base: &'a str,
    /// The query parameters to repeat (not `_count` / `_offset`).
    pub(crate) echo: &'a [(String, String)],
    pub(crate) count: usize,
    pub(crate) offset: usize,
    pub(crate) total: usize,
}

fn page_url(p: &Paging<'_>, offset: usize) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in p.echo {
        query.append_pair(k, v);
    }
    query.append_pair("_count", &p.count.to_string());
    query.append_pair("_offset", &offset.to_string());
    format!("{}?{}", p.link_base, query.finish())
}

/// `self`, `first`, `previous`, `next` and `last` links.
pub(crate) fn links(p: &Paging<'_>) -> Value {
    let link =
        |relation: &str, offset: usize| json!({"relation": relation, "url": page_url(p, offset)});
    let mut out = vec![link("self", p.offset)];
    if p.count == 0 {
        return Value::Array(out);
    }
    out.push(link("first", 0));
    if p.offset > 0 {
        out.push(link("previous", p.offset.saturating_sub(p.count)));
    }
    if p.offset.saturating_add(p.count) < p.total {
        out.push(link("next", p.offset + p.count));
    }
    let last = p.total.saturating_sub(1) / p.count * p.count;
    out.push(link("last", last));
    Value::Array(out)
}

/// The slice of `items` a page covers.
pub(crate) fn page<T: Copy>(items: &[T], count: usize, offset: usize) -> Vec<T> {
    items.iter().skip(offset).take(count).copied().collect()
}

/// A `searchset` Bundle.
pub(crate) fn searchset(
    base_url: &str,
    paging: &Paging<'_>,
    matches: &[&Value],
    included: &[&Value],
    include_mode: &str,
) -> Value {
    let mut bundle = new_bundle("searchset");
    bundle.insert("total".into(), json!(paging.total));
    bundle.insert("link".into(), links(paging));
    let entry = |resource: &Value, mode: &str| {
        json!({
            "fullUrl": full_url_of(base_url, resource),
            "resource": resource,
            "search": {"mode": mode},
        })
    };
    let entries: Vec<Value> = matches
        .iter()
        .map(|r| entry(r, "match"))
        .chain(included.iter().map(|r| entry(r, include_mode)))
        .collect();
    if !entries.is_empty() {
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Value::Object(bundle)
}

/// A `history` Bundle of versions, newest first.
pub(crate) fn history(base_url: &str, paging: &Paging<'_>, versions: &[&Version]) -> Value {
    let mut bundle = new_bundle("history");
    bundle.insert("total".into(), json!(paging.total));
    bundle.insert("link".into(), links(paging));
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| {
            let (method, url, status) = match v.kind {
                WriteKind::Create => ("POST", v.resource_type.clone(), "201 Created"),
                WriteKind::Update => ("PUT", format!("{}/{}", v.resource_type, v.id), "200 OK"),
                WriteKind::Delete => (
                    "DELETE",
                    format!("{}/{}", v.resource_type, v.id),
                    "204 No Content",
                ),
            };
            let mut entry = Map::new();
            entry.insert(
                "fullUrl".into(),
                json!(full_url(base_url, &v.resource_type, &v.id)),
            );
            if let Some(resource) = &v.resource {
                entry.insert("resource".into(), resource.clone());
            }
            entry.insert("request".into(), json!({"method": method, "url": url}));
            entry.insert(
                "response".into(),
                json!({
                    "status": status,
                    "etag": v.etag(),
                    "lastModified": time::format_instant(v.last_updated_ms),
                }),
            );
            Value::Object(entry)
        })
        .collect();
    if !entries.is_empty() {
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Value::Object(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_links() {
        let echo = vec![("name".to_string(), "a b".to_string())];
        let p = Paging {
            link_base: "http://x/fhir/Patient",
            echo: &echo,
            count: 10,
            offset: 10,
            total: 25,
        };
        let links = links(&p);
        let rel = |r: &str| {
            links
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["relation"] == r)
                .map(|l| l["url"].as_str().unwrap().to_string())
        };
        assert_eq!(
            rel("self").unwrap(),
            "http://x/fhir/Patient?name=a+b&_count=10&_offset=10"
        );
        assert_eq!(
            rel("next").unwrap(),
            "http://x/fhir/Patient?name=a+b&_count=10&_offset=20"
        );
        assert_eq!(
            rel("previous").unwrap(),
            "http://x/fhir/Patient?name=a+b&_count=10&_offset=0"
        );
        assert_eq!(
            rel("last").unwrap(),
            "http://x/fhir/Patient?name=a+b&_count=10&_offset=20"
        );
        let end = Paging { offset: 20, ..p };
        assert!(super::links(&end)
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["relation"] != "next"));
    }
}
