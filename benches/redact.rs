//! Redacting a ~1 MB searchset Bundle (1,000 resources) with a 10-rule policy, as a ratio
//! against a `serde_json::Value` parse and re-serialisation of the same bytes in the same run.
//! Goal (issue #5): at least 5x faster, i.e. a ratio at most 0.20.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

mod support;

use criterion::{criterion_group, Criterion};
use fhirwall::redact::{Caller, Policy, Redacted, Redactor};
use serde_json::json;
use std::hint::black_box;

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

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    support::report_ratio("redact", "redact_10_rules", "serde_value_roundtrip", 0.2);
}
