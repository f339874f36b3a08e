#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Byte-exactness over the official FHIR R4 examples (every JSON example of the R4
//! examples package, tests/data/validate/examples-r4.tgz): untouched JSON passes through byte for byte
//! (FHIR R4 §2.6.2 JSON: decimals keep their precision), and matching policies remove exactly
//! what they select.

#[cfg(feature = "redact")]
#[path = "support/r4_examples.rs"]
mod r4_examples;

#[cfg(feature = "redact")]
mod r4 {
    use fhirwall::redact::{Caller, Policy, Redacted, Redactor};
    use serde_json::Value;

    fn examples() -> Vec<(String, Vec<u8>)> {
        let out = super::r4_examples::json_examples();
        assert!(out.len() >= 700, "{} examples", out.len());
        out
    }

    fn redactor(json: &str) -> Redactor {
        // The package's largest example (Bundle-resources.json) is 35 MB, past the default
        // limit; the limit itself is tested elsewhere.
        Redactor::builder(serde_json::from_str::<Policy>(json).unwrap())
            .max_body(64 << 20)
            .build()
            .unwrap()
    }

    #[test]
    fn policy_matching_nothing_is_byte_exact() {
        // The policy forces a walk of every object (descendants()) yet selects nothing.
        let r = redactor(
            r#"{"rules":[
              {"paths":["*.descendants().extension('urn:nothing:at-all')"],"action":{"kind":"remove"}},
              {"paths":["Patient.identifier.where(system='urn:nothing')"],"action":{"kind":"remove"}},
              {"paths":["Observation.value[x]"],"action":{"kind":"remove"},"when":{"clients":["nobody"]}}
            ]}"#,
        );
        let plan = r.plan(&Caller::anonymous());
        let mut checked = 0;
        for (name, bytes) in examples() {
            assert_eq!(plan.redact(&bytes), Ok(Redacted::Unchanged), "{name}");
            checked += 1;
        }
        assert!(checked >= 700);
    }

    /// What the test policy selects, applied to a serde_json tree: narrative at resource
    /// roots, every `extension`, `Patient.telecom`, `Observation.value[x]`.
    fn strip(v: &mut Value, resource_type: Option<&str>) {
        match v {
            Value::Object(map) => {
                let rt = map
                    .get("resourceType")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let here = rt.as_deref().or(None);
                if here.is_some() {
                    map.remove("text");
                    map.remove("_text");
                }
                map.remove("extension");
                match here {
                    Some("Patient") => {
                        map.remove("telecom");
                        map.remove("_telecom");
                    }
                    Some("Observation") => map.retain(|k, _| {
                        let k = k.strip_prefix('_').unwrap_or(k);
                        !(k.starts_with("value")
                            && k[5..].starts_with(|c: char| c.is_ascii_uppercase()))
                    }),
                    _ => {}
                }
                let _ = resource_type;
                for (_, child) in map.iter_mut() {
                    strip(child, None);
                }
                map.retain(|_, c| !is_empty(c));
            }
            Value::Array(items) => {
                for i in items.iter_mut() {
                    strip(i, None);
                }
                items.retain(|c| !is_empty(c));
            }
            _ => {}
        }
    }

    fn is_empty(v: &Value) -> bool {
        matches!(v, Value::Object(m) if m.is_empty())
            || matches!(v, Value::Array(a) if a.is_empty())
    }

    /// Removes the REDACTED labels the redactor adds.
    fn unlabel(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Object(meta)) = map.get_mut("meta") {
                    if let Some(Value::Array(sec)) = meta.get_mut("security") {
                        sec.retain(|c| c.get("code").and_then(Value::as_str) != Some("REDACTED"));
                        if sec.is_empty() {
                            meta.remove("security");
                        }
                    }
                    if meta.is_empty() {
                        map.remove("meta");
                    }
                }
                for (_, c) in map.iter_mut() {
                    unlabel(c);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(unlabel),
            _ => {}
        }
    }

    #[test]
    fn matching_policy_removes_exactly_the_selection() {
        let r = redactor(
            r#"{"rules":[
              {"paths":["*.text", "*.descendants().extension"],"action":{"kind":"remove"}},
              {"paths":["Patient.telecom", "Observation.value[x]"],"action":{"kind":"remove"}}
            ]}"#,
        );
        let plan = r.plan(&Caller::anonymous());
        let (mut changed, mut same) = (0, 0);
        for (name, bytes) in examples() {
            let mut expected: Value = serde_json::from_slice(&bytes).unwrap();
            strip(&mut expected, None);
            match plan
                .redact(&bytes)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
            {
                Redacted::Unchanged => {
                    same += 1;
                    let original: Value = serde_json::from_slice(&bytes).unwrap();
                    assert_eq!(
                        original, expected,
                        "{name}: unchanged but the policy selects something"
                    );
                }
                Redacted::Changed { body, .. } => {
                    changed += 1;
                    let body = body.to_vec();
                    let mut got: Value = serde_json::from_slice(&body)
                        .unwrap_or_else(|e| panic!("{name}: output is not JSON: {e}"));
                    unlabel(&mut got);
                    assert_eq!(got, expected, "{name}");
                    assert_eq!(
                        plan.redact(&body),
                        Ok(Redacted::Unchanged),
                        "{name}: idempotent"
                    );
                }
                Redacted::Hidden => panic!("{name}: hidden"),
            }
        }
        assert!(changed > 300, "changed {changed}, unchanged {same}");
    }
}
