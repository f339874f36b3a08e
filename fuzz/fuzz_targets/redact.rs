//! The redaction engine (`redact::Plan::redact` and `redact_ndjson`): a fixed policy that
//! exercises every action (remove, mask, mask with a value, year-only, remove-resource, label
//! rules, `where` and `extension` filters, `descendants()`) against arbitrary bodies.
//!
//! Invariants: no panic; when the input is JSON (per `serde_json`, numbers unconverted), a changed output is JSON
//! too (each line of NDJSON), and redacting it again changes nothing (idempotence).
#![no_main]

use fhirwall::redact::{Caller, Plan, Policy, Redacted, Redactor};
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use serde_json::json;
use std::sync::OnceLock;

fn plans() -> &'static [Plan; 2] {
    static PLANS: OnceLock<[Plan; 2]> = OnceLock::new();
    PLANS.get_or_init(|| {
        let policy: Policy = serde_json::from_value(json!({
            "rules": [
                {"paths": ["Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')"], "action": {"kind": "remove"}},
                {"paths": ["Patient.telecom.where(use='home')"], "action": {"kind": "remove"}},
                {"paths": ["Observation.value[x]"], "action": {"kind": "mask"}},
                {"paths": ["Observation.status"], "action": {"kind": "mask", "value": "unknown"}},
                {"paths": ["Observation.code"], "action": {"kind": "remove"}},
                {"paths": ["Patient.birthDate"], "action": {"kind": "year_only"}},
                {"paths": ["Patient.name.family"], "action": {"kind": "mask", "value": "***"}},
                {"paths": ["Patient.extension('http://ex.org/race')"], "action": {"kind": "remove"}},
                {"paths": ["*.descendants().extension('http://ex.org/x')"], "action": {"kind": "remove"}},
                {"paths": ["Patient.address.line", "Patient.name.given"], "action": {"kind": "remove"}},
                {"paths": ["*.descendants().identifier"], "action": {"kind": "remove"}, "when": {"clients": ["research"]}},
                {"resources": ["Condition"], "action": {"kind": "remove_resource"}}
            ],
            "labels": [
                {"codes": ["R", "V"]},
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "codes": ["PSY", "HIV"], "except": {"clients": ["research"]}}
            ]
        }))
        .expect("the fuzz policy deserializes");
        let redactor = Redactor::new(policy).expect("the fuzz policy compiles");
        [
            redactor.plan(&Caller::anonymous()),
            redactor.plan(&Caller::anonymous().with_client("research")),
        ]
    })
}

fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(bytes).is_ok()
}

/// The bytes of a changed body, joined.
fn changed(result: &Result<Redacted, fhirwall::redact::RedactError>) -> Option<Vec<u8>> {
    match result {
        Ok(Redacted::Changed { body, .. }) => Some(body.to_vec()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let plan = &plans()[usize::from(selector & 1)];
    if selector & 2 == 0 {
        let result = plan.redact(body);
        if let Some(out) = changed(&result).as_deref() {
            if is_json(body) {
                assert!(is_json(out), "redaction of JSON gave non-JSON");
                assert_eq!(plan.redact(out), Ok(Redacted::Unchanged), "not idempotent");
            }
        }
    } else {
        let result = plan.redact_ndjson(body);
        if let Some(out) = changed(&result).as_deref() {
            let lines_json = body
                .split(|&b| b == b'\n')
                .all(|line| line.iter().all(u8::is_ascii_whitespace) || is_json(line));
            if lines_json {
                for line in out.split(|&b| b == b'\n') {
                    assert!(
                        line.iter().all(u8::is_ascii_whitespace) || is_json(line),
                        "NDJSON redaction gave a non-JSON line"
                    );
                }
                assert_eq!(
                    plan.redact_ndjson(out),
                    Ok(Redacted::Unchanged),
                    "not idempotent"
                );
            }
        }
    }
});
