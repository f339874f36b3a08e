//! The request classifier: method + path + query + headers + body → `FhirRequest`.
//!
//! Paths are built from FHIR-shaped segments mixed with arbitrary ones, so the fuzzer spends its
//! time past the base-path check; bodies are either arbitrary bytes or batch/transaction Bundles
//! built from arbitrary entries.
//!
//! Invariants: no panic; an accepted request never has a `.` or `..` path segment (decoded
//! once), an empty segment, or an id that is not a FHIR id; the same holds for every Bundle
//! entry's classified request.
#![no_main]

use arbitrary::Arbitrary;
use fhirwall::fhir::{Classifier, FhirRequest};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

const TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Encounter",
    "Bundle",
    "Condition",
    "Practitioner",
    "patient",
    "Binary",
];

#[derive(Arbitrary, Debug)]
enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
    Other(String),
}

impl Verb {
    fn method(&self) -> Option<Method> {
        Some(match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
            Verb::Head => Method::HEAD,
            Verb::Options => Method::OPTIONS,
            Verb::Other(s) => Method::from_bytes(s.as_bytes()).ok()?,
        })
    }

    fn name(&self) -> &str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
            Verb::Head => "HEAD",
            Verb::Options => "OPTIONS",
            Verb::Other(s) => s,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Segment {
    Type(u8),
    Id(String),
    History,
    Search,
    Metadata,
    Operation(String),
    Dot,
    DotDot,
    EncodedDot,
    Raw(String),
}

impl Segment {
    fn push(&self, out: &mut String) {
        match self {
            Segment::Type(i) => out.push_str(TYPES[usize::from(*i) % TYPES.len()]),
            Segment::Id(s) | Segment::Raw(s) => out.push_str(s),
            Segment::History => out.push_str("_history"),
            Segment::Search => out.push_str("_search"),
            Segment::Metadata => out.push_str("metadata"),
            Segment::Operation(s) => {
                out.push('$');
                out.push_str(s);
            }
            Segment::Dot => out.push('.'),
            Segment::DotDot => out.push_str(".."),
            Segment::EncodedDot => out.push_str("%2e%2E"),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Name {
    ContentType,
    IfNoneExist,
    IfMatch,
    MethodOverride,
    Accept,
    Prefer,
    Other(String),
}

impl Name {
    fn header(&self) -> Option<HeaderName> {
        Some(match self {
            Name::ContentType => http::header::CONTENT_TYPE,
            Name::IfNoneExist => HeaderName::from_static("if-none-exist"),
            Name::IfMatch => http::header::IF_MATCH,
            Name::MethodOverride => HeaderName::from_static("x-http-method-override"),
            Name::Accept => http::header::ACCEPT,
            Name::Prefer => HeaderName::from_static("prefer"),
            Name::Other(s) => HeaderName::from_bytes(s.as_bytes()).ok()?,
        })
    }
}

#[derive(Arbitrary, Debug)]
struct Entry {
    method: Verb,
    url: Vec<Segment>,
    query: Option<String>,
    full_url: Option<String>,
    resource: bool,
}

#[derive(Arbitrary, Debug)]
enum Body {
    Raw(Vec<u8>),
    Form(String),
    Bundle {
        transaction: bool,
        entries: Vec<Entry>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: Verb,
    root_base: bool,
    segments: Vec<Segment>,
    query: Option<String>,
    headers: Vec<(Name, Vec<u8>)>,
    body: Body,
}

fn join(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        s.push(&mut out);
    }
    out
}

fn body_bytes(body: &Body) -> Vec<u8> {
    match body {
        Body::Raw(b) => b.clone(),
        Body::Form(s) => s.as_bytes().to_vec(),
        Body::Bundle {
            transaction,
            entries,
        } => {
            let entries: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    let mut url = join(&e.url);
                    if let Some(q) = &e.query {
                        url.push('?');
                        url.push_str(q);
                    }
                    let mut entry = serde_json::json!({
                        "request": {"method": e.method.name(), "url": url},
                    });
                    if let Some(f) = &e.full_url {
                        entry["fullUrl"] = f.clone().into();
                    }
                    if e.resource {
                        entry["resource"] = serde_json::json!({"resourceType": "Patient"});
                    }
                    entry
                })
                .collect();
            let kind = if *transaction { "transaction" } else { "batch" };
            serde_json::to_vec(&serde_json::json!({
                "resourceType": "Bundle", "type": kind, "entry": entries,
            }))
            .unwrap_or_default()
        }
    }
}

fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn check_accepted(path: &str, request: &FhirRequest) {
    for raw in path.split('/').skip(1) {
        let decoded = percent_decode_str(raw).decode_utf8_lossy();
        assert!(
            decoded != "." && decoded != "..",
            "accepted a dot segment in {path:?}"
        );
    }
    if let Some(id) = request.id() {
        assert!(is_fhir_id(id), "accepted id {id:?} from {path:?}");
    }
    if let Some(v) = request.version_id() {
        assert!(is_fhir_id(v), "accepted version id {v:?} from {path:?}");
    }
    for entry in request.entries() {
        if let Some(id) = entry.request.id() {
            assert!(is_fhir_id(id), "accepted entry id {id:?}");
        }
    }
}

fuzz_target!(|input: Input| {
    let Some(method) = input.method.method() else {
        return;
    };
    let base = if input.root_base { "" } else { "/fhir" };
    let mut text = format!("{base}/{}", join(&input.segments));
    if let Some(q) = &input.query {
        text.push('?');
        text.push_str(q);
    }
    // What `http` refuses never reaches a tower layer.
    let Ok(uri) = text.parse::<Uri>() else {
        return;
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        if let (Some(name), Ok(value)) = (name.header(), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    }
    let classifier = Classifier::new(if input.root_base { "/" } else { "/fhir" });
    let body = body_bytes(&input.body);
    match classifier.classify(&method, &uri, &headers, &body) {
        Ok(request) => check_accepted(uri.path(), &request),
        Err(refused) => {
            let status = refused.status();
            assert!(status.is_client_error(), "refusal with status {status}");
            let _ = refused.into_response();
        }
    }
});
