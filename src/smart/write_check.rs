//! Request bodies under scopes with conditions: a resource being written must land where the
//! token may write (the patient's compartment, the granular scope's conditions), and batch
//! entries are narrowed like top-level requests.

use super::access::{permitted, reads_member};
use super::context::AccessContext;
use super::decision::{BodyCheck, EntryRewrite, Need, Refusal, RefusalKind, WriteRule};
use super::json::{raw_array, RawObject};
use super::policy::AuthzPolicy;
use super::sparse::sparse_resource;
use crate::fhir::ResourceType;
use bytes::Bytes;
use serde_json::Value;

fn unreadable() -> Refusal {
    Refusal::new(
        RefusalKind::InvalidRequest,
        "the request body is not a well-formed FHIR JSON resource",
    )
}

/// Checks a request body; `Ok(Some(bytes))` is a rewritten body to pass on instead.
pub(crate) fn check_body(
    body: &[u8],
    check: &BodyCheck,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Option<Bytes>, Refusal> {
    match check {
        BodyCheck::None => Ok(None),
        BodyCheck::Resource(rule) => {
            let value = sparse_resource(body, |rt, key| reads_member(ctx, rt, key))
                .ok_or_else(unreadable)?;
            check_resource(&value, rule, ctx, policy).map(|()| None)
        }
        BodyCheck::Bundle { writes, rewrites } => check_bundle(body, writes, rewrites, ctx, policy),
    }
}

/// Whether `value` is a resource of the rule's type the token may write.
pub(crate) fn check_resource(
    value: &Value,
    rule: &WriteRule,
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<(), Refusal> {
    let rt = value
        .get("resourceType")
        .and_then(Value::as_str)
        .and_then(ResourceType::from_name)
        .ok_or_else(unreadable)?;
    if rt != rule.resource_type {
        return Err(Refusal::new(
            RefusalKind::InvalidRequest,
            "the resource's type is not the type in the URL",
        ));
    }
    if rule.forbid_id && value.get("id").is_some() {
        return Err(Refusal::forbidden(
            "under patient or granular scopes a conditional update may not carry an id",
        ));
    }
    if permitted(
        ctx,
        policy,
        rt,
        value,
        Need::all(rule.permission),
        &[],
        true,
    ) {
        Ok(())
    } else {
        Err(Refusal::forbidden(
            "the resource is outside what the token may write (patient compartment or scope conditions)",
        ))
    }
}

fn check_bundle(
    body: &[u8],
    writes: &[(usize, WriteRule)],
    rewrites: &[EntryRewrite],
    ctx: &AccessContext,
    policy: &AuthzPolicy,
) -> Result<Option<Bytes>, Refusal> {
    let bundle = RawObject::parse(body).ok_or_else(unreadable)?;
    let entries = match bundle.get("entry") {
        Some(raw) => raw_array(raw).ok_or_else(unreadable)?,
        None => Vec::new(),
    };
    let mut refused = Vec::new();
    for (index, rule) in writes {
        let resource = entries
            .get(*index)
            .and_then(|e| RawObject::parse_raw(e))
            .and_then(|e| e.get("resource"))
            .and_then(|r| {
                sparse_resource(r.get().as_bytes(), |rt, key| reads_member(ctx, rt, key))
            });
        let result = match resource {
            Some(value) => check_resource(&value, rule, ctx, policy),
            None => Err(unreadable()),
        };
        if let Err(refusal) = result {
            refused.push((*index, refusal.text));
        }
    }
    if !refused.is_empty() {
        let mut refusal =
            Refusal::forbidden("entries of the Bundle write outside what the token may write");
        refusal.entries = refused;
        return Err(refusal);
    }
    if rewrites.is_empty() {
        return Ok(None);
    }
    let mut new_entries: Vec<String> = entries.iter().map(|e| e.get().to_owned()).collect();
    for rewrite in rewrites {
        let Some(slot) = new_entries.get_mut(rewrite.index) else {
            return Err(unreadable());
        };
        *slot = rewrite_entry(slot, rewrite).ok_or_else(unreadable)?;
    }
    let joined = format!("[{}]", new_entries.join(","));
    let out = bundle.write(|key| (key == "entry").then(|| Some(joined.clone())));
    Ok(Some(Bytes::from(out)))
}

/// Appends the narrowing parameter to an entry's `request.url` and `request.ifNoneExist`.
fn rewrite_entry(entry: &str, rewrite: &EntryRewrite) -> Option<String> {
    let object = RawObject::parse(entry.as_bytes())?;
    let request = RawObject::parse_raw(object.get("request")?)?;
    let url = request.get_str("url")?;
    let new_url = rewrite.url.as_ref().map(|param| append_param(&url, param));
    let new_ine = match &rewrite.if_none_exist {
        Some(param) => {
            let old = request.get_str("ifNoneExist")?;
            Some(append_query(&old, param))
        }
        None => None,
    };
    let new_request = request.write(|key| match key {
        "url" => new_url.as_ref().map(|u| Some(json_string(u))),
        "ifNoneExist" => new_ine.as_ref().map(|u| Some(json_string(u))),
        _ => None,
    });
    let new_request = String::from_utf8(new_request).ok()?;
    let out = object.write(|key| (key == "request").then(|| Some(new_request.clone())));
    String::from_utf8(out).ok()
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// `path?query` + `param` → `path?query&param`.
pub(crate) fn append_param(url: &str, param: &str) -> String {
    match url.split_once('?') {
        Some((path, query)) if !query.is_empty() => format!("{path}?{query}&{param}"),
        Some((path, _)) => format!("{path}?{param}"),
        None => format!("{url}?{param}"),
    }
}

/// A bare query (`If-None-Exist`, with or without a leading `?`) + `param`.
pub(crate) fn append_query(query: &str, param: &str) -> String {
    let query = query.strip_prefix('?').unwrap_or(query);
    if query.is_empty() {
        param.to_owned()
    } else {
        format!("{query}&{param}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_rewrite_keeps_the_rest() {
        let entry =
            r#"{"fullUrl":"urn:uuid:1","request":{"method":"GET","url":"Observation?code=x"}}"#;
        let out = rewrite_entry(
            entry,
            &EntryRewrite {
                index: 0,
                url: Some("subject=Patient/pat-1".into()),
                if_none_exist: None,
            },
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"fullUrl":"urn:uuid:1","request":{"method":"GET","url":"Observation?code=x&subject=Patient/pat-1"}}"#
        );
        assert_eq!(append_param("Observation", "a=1"), "Observation?a=1");
        assert_eq!(append_query("?x=1", "a=1"), "x=1&a=1");
    }
}
