//! A misbehaving upstream FHIR server: it serves `Patient/pat-ssn` (SSN included) as XML when
//! asked (`_format=xml`, `Accept: ...xml`), gzip-compressed when the client accepts gzip, and
//! mislabelled on purpose under a few ids. The redaction layer in front of it must refuse
//! every response it can't read rather than pass it on.

use axum::body::Body;
use axum::extract::{Path, Request};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::{json, Value};

const FHIR_JSON: &str = "application/fhir+json";
const FHIR_XML: &str = "application/fhir+xml";

fn xml(resource: &Value) -> String {
    let ssn = resource["identifier"]
        .as_array()
        .and_then(|ids| {
            ids.iter()
                .find(|i| i["system"] == "http://hl7.org/fhir/sid/us-ssn")
        })
        .and_then(|i| i["value"].as_str())
        .unwrap_or_default()
        .to_owned();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Patient xmlns="http://hl7.org/fhir"><id value="pat-ssn"/><identifier><system value="http://hl7.org/fhir/sid/us-ssn"/><value value="{ssn}"/></identifier></Patient>"#
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn reply(content_type: Option<&str>, encoding: Option<&str>, body: Vec<u8>) -> Response {
    let mut builder = Response::builder().status(200);
    if let Some(t) = content_type {
        builder = builder.header(CONTENT_TYPE, t);
    }
    if let Some(e) = encoding {
        builder = builder.header(CONTENT_ENCODING, e);
    }
    builder.body(Body::from(body)).unwrap()
}

/// Answers with `resource` the way `request` asked, or the way `mode` misbehaves.
fn answer(mode: &str, resource: Value, request: &Request) -> Response {
    let header = |name| {
        request
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",")
    };
    let query = request
        .uri()
        .query()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let json_bytes = resource.to_string().into_bytes();
    let wants_xml = query.contains("_format=xml")
        || query.contains("_format=application/fhir%2bxml")
        || query.contains("_format=application/xml")
        || header(ACCEPT).contains("xml");
    match mode {
        "gzip-unlabelled" => reply(Some(FHIR_JSON), None, gzip(&json_bytes)),
        "xml-as-json" => reply(Some(FHIR_JSON), None, xml(&resource).into_bytes()),
        "json-as-text" => reply(Some("text/plain"), None, json_bytes),
        "json-as-html" => reply(Some("text/html"), None, json_bytes),
        "no-type" => reply(None, None, json_bytes),
        "deflate" => reply(Some(FHIR_JSON), Some("deflate"), json_bytes),
        "br" => reply(Some(FHIR_JSON), Some("br"), json_bytes),
        "double-gzip" => reply(
            Some(FHIR_JSON),
            Some("gzip, gzip"),
            gzip(&gzip(&json_bytes)),
        ),
        "gzip-upper" => reply(Some(FHIR_JSON), Some("GZIP"), gzip(&json_bytes)),
        "xml-charset" => reply(
            Some("application/fhir+xml; charset=utf-8"),
            None,
            xml(&resource).into_bytes(),
        ),
        "bom" => {
            let mut bytes = vec![0xEF, 0xBB, 0xBF];
            bytes.extend_from_slice(&json_bytes);
            reply(Some(FHIR_JSON), None, bytes)
        }
        "utf16" => {
            let bytes: Vec<u8> = resource
                .to_string()
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect();
            reply(Some("application/fhir+json; charset=utf-16le"), None, bytes)
        }
        _ if wants_xml => reply(Some(FHIR_XML), None, xml(&resource).into_bytes()),
        _ if header(ACCEPT_ENCODING).contains("gzip") => {
            reply(Some(FHIR_JSON), Some("gzip"), gzip(&json_bytes))
        }
        _ => reply(Some(FHIR_JSON), None, json_bytes),
    }
}

/// The upstream: `metadata` (the demo's CapabilityStatement), `Patient/{id}` and a
/// `Patient` search, every one about pat-ssn.
pub fn router(capability_statement: Vec<u8>, store: fhirwall_demo::MemoryStore) -> Router {
    let patient = store.read("Patient", "pat-ssn").unwrap();
    let read = {
        let patient = patient.clone();
        move |Path(mode): Path<String>, request: Request| {
            let patient = patient.clone();
            async move { answer(&mode, patient, &request) }
        }
    };
    let search = move |request: Request| {
        let patient = patient.clone();
        async move {
            let bundle = json!({
                "resourceType": "Bundle",
                "type": "searchset",
                "total": 1,
                "entry": [{
                    "fullUrl": "http://127.0.0.1:8080/fhir/Patient/pat-ssn",
                    "resource": patient,
                    "search": {"mode": "match"}
                }]
            });
            let mode = request
                .headers()
                .get("x-test-upstream-mode")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("normal")
                .to_owned();
            answer(&mode, bundle, &request)
        }
    };
    Router::new()
        .route(
            "/fhir/metadata",
            get(move || {
                let cs = capability_statement.clone();
                async move { reply(Some(FHIR_JSON), None, cs) }
            }),
        )
        .route("/fhir/Patient/{id}", get(read))
        .route("/fhir/Patient", get(search))
}
