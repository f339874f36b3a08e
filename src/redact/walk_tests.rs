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
