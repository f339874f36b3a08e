//! Batch and transaction Bundles: one classified request per entry.

use super::classify::Classifier;
use super::interaction::{BundleEntry, Interaction};
use super::unclassified::{Unclassified, UnclassifiedKind};
use http::Method;
use serde::Deserialize;

// Only what classification needs is read; `entry.resource` and every other unknown member is
// skipped without being built. serde's derive refuses duplicate keys, so `"type"` given twice (a
// parser-differential smuggling vector) is an error, not "the last one wins".
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleHead {
    resource_type: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    entry: Option<Vec<EntryHead>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryHead {
    full_url: Option<String>,
    request: Option<RequestHead>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestHead {
    method: String,
    url: String,
    if_none_exist: Option<String>,
    if_match: Option<String>,
}

fn bad(text: impl Into<std::borrow::Cow<'static, str>>) -> Unclassified {
    Unclassified::new(UnclassifiedKind::BadBundle, text)
}

/// Reads a batch/transaction Bundle and classifies every entry's request.
pub(crate) fn classify_entries(
    classifier: &Classifier,
    body: &[u8],
) -> Result<(Interaction, Vec<BundleEntry>), Unclassified> {
    let head: BundleHead = serde_json::from_slice(body)
        .map_err(|_| bad("the body is not a well-formed JSON Bundle"))?;
    if head.resource_type != "Bundle" {
        return Err(bad("POST to the base must carry a Bundle").at("resourceType"));
    }
    let interaction = match head.kind.as_deref() {
        Some("batch") => Interaction::Batch,
        Some("transaction") => Interaction::Transaction,
        _ => {
            return Err(
                bad("POST to the base needs a Bundle of type batch or transaction")
                    .at("Bundle.type"),
            )
        }
    };
    let entries = head.entry.unwrap_or_default();
    if entries.len() > classifier.max_bundle_entries {
        return Err(Unclassified::new(
            UnclassifiedKind::BodyTooLarge,
            "the Bundle has more entries than allowed",
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let at = format!("Bundle.entry[{index}].request");
        let request = entry.request.ok_or_else(|| {
            bad("every batch or transaction entry needs a request").at(at.clone())
        })?;
        let method = entry_method(&request.method)
            .ok_or_else(|| bad("entry.request.method is not an R4 HTTP verb").at(at.clone()))?;
        // Only the path decides whether the URL is absolute: `code=http://loinc.org|…` in the
        // query is a normal token value.
        let url_path = request.url.split('?').next().unwrap_or_default();
        if url_path.contains("://") || url_path.starts_with('/') {
            return Err(bad("entry.request.url must be relative to the base").at(at));
        }
        let mut classified = classifier
            .classify_relative(&method, &request.url, request.if_none_exist.as_deref())
            .map_err(|e| bad(format!("entry {index}: {}", e.text())).at(at.clone()))?;
        classified.if_match = request.if_match;
        out.push(BundleEntry {
            index,
            full_url: entry.full_url,
            request: classified,
        });
    }
    Ok((interaction, out))
}

/// `Bundle.entry.request.method` (R4 value set `http-verb`, required binding).
fn entry_method(verb: &str) -> Option<Method> {
    Some(match verb {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        "PATCH" => Method::PATCH,
        _ => return None,
    })
}
