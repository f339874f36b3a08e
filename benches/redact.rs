//! Redacting a ~1 MB searchset Bundle (1,000 resources) with a 10-rule policy, as a ratio
//! against a `serde_json::Value` parse and re-serialisation of the same bytes in the same run.
//! Goal (issue #5): at least 5x faster, i.e. a ratio at most 0.20.
//!
//! Also the per-request cost of the whole `RedactLayer` on small responses (one ~1 KB
//! Patient, a 50-Observation searchset from the demo store), each as a ratio against the same
//! fixed-body service without the layer, with the demo policy and a `patient-app` SMART caller
//! (its rules remove the Patient's SSN and telecom; the label rule makes every response read).
#![allow(
    missing_docs,
    dead_code,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::panic
)]

#[path = "../examples/support/redact_demo.rs"]
mod redact_demo;
mod support;

use bytes::Bytes;
use criterion::{criterion_group, Criterion};
use fhirwall::redact::{Caller, Policy, RedactDecision, Redacted, Redactor};
use fhirwall::smart::{AccessContext, MalformedScopes, ScopeSet};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use serde_json::json;
use std::convert::Infallible;
use std::hint::black_box;
use tower::{service_fn, Layer, ServiceExt};

fn bundle() -> Vec<u8> {
    let mut entries = Vec::new();
    for i in 0..1000 {
        let resource = if i % 2 == 0 {
            json!({
                "resourceType": "Patient", "id": format!("p{i}"),
                "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"},
                "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">Patient {i} of the sample hospital, born 1970</div>")},
                "identifier": [
                    {"system": "http://hospital.example.org/fhir/sid/mrn", "value": format!("{}", 100000 + i)},
                    {"system": "http://hl7.org/fhir/sid/us-ssn", "value": format!("999-{:02}-{:04}", i % 100, i)}
                ],
                "name": [{"use": "official", "family": "Lindqvist", "given": ["Grace", "Anne"]}],
                "telecom": [{"system": "phone", "value": "555-0100", "use": "home"}, {"system": "email", "value": "g@example.org", "use": "work"}],
                "gender": "female", "birthDate": "1990-07-21",
                "address": [{"use": "home", "line": ["318 Cedar Lane"], "city": "Burlington", "state": "VT", "postalCode": "05401"}],
                "extension": [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "F"}]
            })
        } else {
            json!({
                "resourceType": "Observation", "id": format!("o{i}"), "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}], "text": "Heart rate"},
                "subject": {"reference": format!("Patient/p{}", i - 1), "display": "Grace Lindqvist"},
                "effectiveDateTime": "2024-01-01T10:00:00Z",
                "valueQuantity": {"value": 72.50, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"},
                "note": [{"text": "resting"}]
            })
        };
        entries.push(json!({"fullUrl": format!("http://example.org/fhir/x/{i}"), "resource": resource, "search": {"mode": "match"}}));
    }
    serde_json::to_vec(
        &json!({"resourceType": "Bundle", "type": "searchset", "total": 1000, "entry": entries}),
    )
    .unwrap()
}

fn policy() -> Policy {
    serde_json::from_value(json!({"rules": [
        {"paths": ["Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')"], "action": {"kind": "remove"}},
        {"paths": ["Patient.telecom.where(use='home')"], "action": {"kind": "remove"}},
        {"paths": ["Patient.address.line"], "action": {"kind": "remove"}},
        {"paths": ["Patient.birthDate"], "action": {"kind": "year_only"}},
        {"paths": ["Patient.name.given"], "action": {"kind": "remove"}},
        {"paths": ["Patient.text"], "action": {"kind": "remove"}},
        {"paths": ["Patient.extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex')"], "action": {"kind": "remove"}},
        {"paths": ["Observation.subject.display"], "action": {"kind": "remove"}},
        {"paths": ["Observation.note"], "action": {"kind": "remove"}},
        {"resources": ["Condition"], "action": {"kind": "remove_resource"}}
    ]})).unwrap()
}

fn bench(c: &mut Criterion) {
    let body = bundle();
    println!("bundle: {} bytes", body.len());
    let plan = Redactor::new(policy()).unwrap().plan(&Caller::anonymous());
    assert!(matches!(
        plan.redact(&body).unwrap(),
        Redacted::Changed { .. }
    ));
    let mut group = c.benchmark_group("redact");
    group.bench_function("serde_value_roundtrip", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(&body)).unwrap();
            serde_json::to_vec(&v).unwrap()
        })
    });
    group.bench_function("redact_10_rules", |b| {
        b.iter(|| plan.redact(black_box(&body)).unwrap())
    });
    group.finish();
}

/// Bytes the demo store answers `uri` with (what `examples/load_target.rs` serves).
async fn capture(uri: &str) -> Bytes {
    let store = fhirwall_demo::MemoryStore::new();
    fhirwall_demo::sample::load(&store, fhirwall_demo::sample::DEFAULT_SEED);
    let app = fhirwall_demo::router(store, fhirwall_demo::DemoConfig::default());
    let request = Request::get(uri).body(axum::body::Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200, "{uri}");
    response.into_body().collect().await.unwrap().to_bytes()
}

fn patient_app_request(uri: &str) -> Request<Full<Bytes>> {
    let scopes =
        ScopeSet::parse("launch/patient patient/*.rs", MalformedScopes::RefuseToken).unwrap();
    let mut request = Request::get(uri).body(Full::new(Bytes::new())).unwrap();
    request.extensions_mut().insert(
        AccessContext::new(scopes)
            .with_client_id(redact_demo::PATIENT_APP)
            .with_patients(["pat-1"]),
    );
    request
}

/// A service answering every request with `body` as FHIR JSON, as a FHIR server's handler
/// would (one frame, no declared length).
fn fixed(
    body: Bytes,
) -> impl tower::Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible>
       + Clone {
    service_fn(move |_request: Request<Full<Bytes>>| {
        let body = body.clone();
        async move {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", "application/fhir+json")
                    .body(Full::new(body))
                    .unwrap(),
            )
        }
    })
}

fn bench_layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let patient = rt.block_on(capture("/fhir/Patient/pat-1"));
    let search = rt.block_on(capture("/fhir/Observation?_count=50"));
    println!(
        "layer bodies: patient {} bytes, search {} bytes",
        patient.len(),
        search.len()
    );
    let layer = redact_demo::layer();
    for (name, uri, body, redacted) in [
        ("small_read", "/fhir/Patient/pat-1", patient, true),
        ("search_50", "/fhir/Observation?_count=50", search, false),
    ] {
        let bare = fixed(body.clone());
        let with_layer = layer.layer(fixed(body.clone()));
        // What the bench measures is what the layer does for this caller.
        let response = rt
            .block_on(with_layer.clone().oneshot(patient_app_request(uri)))
            .unwrap();
        let decision = response.extensions().get::<RedactDecision>().cloned();
        let out = rt
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        if redacted {
            assert!(
                matches!(decision, Some(RedactDecision::Redacted { .. })),
                "{decision:?}"
            );
            assert!(!String::from_utf8_lossy(&out).contains("telecom"));
        } else {
            // The caller's label rule reads every resource; the searchset's `total` goes
            // (it would count hidden matches).
            assert!(
                matches!(
                    decision,
                    Some(RedactDecision::Unchanged | RedactDecision::Redacted { hidden: 0, .. })
                ),
                "{decision:?}"
            );
            println!(
                "search_50: {decision:?}, {} -> {} bytes",
                body.len(),
                out.len()
            );
        }
        let mut group = c.benchmark_group(format!("redact_layer_{name}"));
        group.bench_function("passthrough", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let response = bare
                        .clone()
                        .oneshot(black_box(patient_app_request(uri)))
                        .await
                        .unwrap();
                    response.into_body().collect().await.unwrap().to_bytes()
                })
            })
        });
        group.bench_function("redact_layer", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let response = with_layer
                        .clone()
                        .oneshot(black_box(patient_app_request(uri)))
                        .await
                        .unwrap();
                    response.into_body().collect().await.unwrap().to_bytes()
                })
            })
        });
        group.finish();
    }
}

/// Bounds for the layer ratios (issue #5 sets none): about 1.5x what was measured after the
/// fixed costs were removed (4.7 and 99 on a loaded 2-core machine), to catch a regression.
const SMALL_READ_GOAL: f64 = 8.0;
const SEARCH_50_GOAL: f64 = 150.0;

criterion_group!(benches, bench, bench_layer);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    support::report_ratio("redact", "redact_10_rules", "serde_value_roundtrip", 0.2);
    // No goal in issue #5 for these: a fixed-body service costs next to nothing, so the ratio
    // is the layer's whole cost in units of a bare call; the bound is set from the measurement.
    support::report_ratio(
        "redact_layer_small_read",
        "redact_layer",
        "passthrough",
        SMALL_READ_GOAL,
    );
    support::report_ratio(
        "redact_layer_search_50",
        "redact_layer",
        "passthrough",
        SEARCH_50_GOAL,
    );
}
