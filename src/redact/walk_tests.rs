//! Tests of the walk's reading of a resource's own members.
#![allow(clippy::unwrap_used, clippy::panic)]

use super::{Caller, Policy, Redacted, Redactor};

fn hide_conditions() -> Redactor {
    let policy: Policy = serde_json::from_value(serde_json::json!({"rules": [
        {"resources": ["Condition"], "action": {"kind": "remove_resource"}}
    ]}))
    .unwrap();
    Redactor::new(policy).unwrap()
}

/// RFC 8259 §7: `"\u0063ontained"` is the key `contained`; FHIR R4 §2.6.2.3 (contained
/// resources): its resources are resources, hidden by the rules like any other, even when no
/// rule names the container's type.
#[test]
fn an_escaped_contained_key_is_walked() {
    let plan = hide_conditions().plan(&Caller::anonymous());
    for key in ["contained", "\\u0063ontained"] {
        let body = format!(
            r#"{{"resourceType":"Patient","id":"p","{key}":[{{"resourceType":"Condition","id":"c"}}]}}"#
        );
        match plan.redact(body.as_bytes()).unwrap() {
            Redacted::Changed { hidden, .. } => assert_eq!(hidden, 1, "{key}"),
            _ => panic!("{key}: the contained Condition passed"),
        }
    }
}

fn redact(rules: serde_json::Value, body: &str) -> String {
    let policy: Policy = serde_json::from_value(serde_json::json!({ "rules": rules })).unwrap();
    let plan = Redactor::new(policy).unwrap().plan(&Caller::anonymous());
    match plan.redact(body.as_bytes()).unwrap() {
        Redacted::Changed { body, .. } => String::from_utf8(body.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    }
}

/// The root states tabled by key (one lookup per member) select what walking them one by one
/// does: several rules on one element merge (remove, then mask, then year only), a rule on the
/// whole element wins over a filtered one, a primitive's `_key` sibling goes with it (FHIR R4
/// §2.6.2.4), a choice (`value[x]`) matches its typed keys, and with a `descendants()` rule
/// the states are walked one by one.
#[test]
fn tabled_root_keys_select_what_the_states_do() {
    let patient = r#"{"resourceType":"Patient","id":"p","birthDate":"1970-01-02","_birthDate":{"id":"b"},"telecom":[{"use":"home","value":"1"},{"use":"work","value":"2"}],"extension":[{"url":"u","valueCode":"x"}],"active":true}"#;
    let out = redact(
        serde_json::json!([
            {"paths": ["Patient.birthDate"], "action": {"kind": "year_only"}},
            {"paths": ["Patient.birthDate"], "action": {"kind": "remove"}},
            {"paths": ["Patient.telecom.where(use='home')"], "action": {"kind": "mask"}},
            {"paths": ["Patient.telecom"], "action": {"kind": "remove"}}
        ]),
        patient,
    );
    assert!(
        !out.contains("birthDate") && !out.contains("telecom"),
        "{out}"
    );
    assert!(out.contains(r#""active":true"#), "{out}");
    let out = redact(
        serde_json::json!([
            {"paths": ["Patient.telecom.where(use='home')"], "action": {"kind": "remove"}},
            {"paths": ["*.descendants().extension('u')"], "action": {"kind": "remove"}}
        ]),
        patient,
    );
    assert!(!out.contains(r#""1""#) && out.contains(r#""2""#), "{out}");
    assert!(!out.contains("valueCode"), "{out}");
    let observation = r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50}}"#;
    let out = redact(
        serde_json::json!([
            {"paths": ["Observation.code.text"], "action": {"kind": "remove"}},
            {"paths": ["Observation.value[x]"], "action": {"kind": "remove"}}
        ]),
        observation,
    );
    assert!(
        !out.contains("valueQuantity") && !out.contains(r#""text":"x""#),
        "{out}"
    );
    assert!(out.contains(r#""status":"final""#), "{out}");
}
