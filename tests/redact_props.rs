#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Property tests of the redactor, a parser of untrusted input: it never panics, never adds
//! data (every leaf value of the output was in the input, besides the labels and masks it
//! documents), its output is JSON, and it is idempotent.

#[cfg(feature = "redact")]
mod props {
    use fhirwall::redact::{Caller, Policy, Redacted, Redactor};
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};
    use std::collections::BTreeSet;

    const KEYS: &[&str] = &[
        "identifier",
        "telecom",
        "name",
        "family",
        "given",
        "extension",
        "url",
        "valueString",
        "valueQuantity",
        "value",
        "system",
        "use",
        "birthDate",
        "_birthDate",
        "address",
        "line",
        "status",
        "code",
        "text",
        "meta",
        "security",
        "id",
    ];
    const TYPES: &[&str] = &[
        "Patient",
        "Observation",
        "Bundle",
        "Condition",
        "Parameters",
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!("http://hl7.org/fhir/sid/us-ssn")),
            Just(json!("home")),
            Just(json!("http://ex.org/x")),
            Just(json!("1974-12-25")),
            "[a-z0-9 ]{0,8}".prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ]
    }

    fn element() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|kv| {
                    let mut m = Map::new();
                    for (k, v) in kv {
                        m.insert(k.to_string(), v);
                    }
                    Value::Object(m)
                }),
            ]
        })
    }

    fn resource() -> impl Strategy<Value = Value> {
        let plain = (
            prop::sample::select(TYPES),
            prop::collection::vec((prop::sample::select(KEYS), element()), 0..6),
        )
            .prop_map(|(rt, kv)| {
                let mut m = Map::new();
                m.insert("resourceType".into(), json!(rt));
                for (k, v) in kv {
                    m.insert(k.to_string(), v);
                }
                Value::Object(m)
            });
        plain.prop_recursive(2, 12, 4, |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..4), prop::sample::select(&["searchset", "history", "batch-response"][..]))
                    .prop_map(|(rs, t)| json!({"resourceType":"Bundle","type":t,"entry": rs.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})),
                prop::collection::vec(inner, 1..3).prop_map(|rs| json!({"resourceType":"Patient","id":"p","contained": rs})),
            ]
        })
    }

    fn policy() -> impl Strategy<Value = Policy> {
        let rules = vec![
            json!({"paths":["Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')"],"action":{"kind":"remove"}}),
            json!({"paths":["Patient.telecom.where(use='home')"],"action":{"kind":"remove"}}),
            json!({"paths":["Observation.value[x]"],"action":{"kind":"mask"}}),
            json!({"paths":["Observation.status", "Observation.code"],"action":{"kind":"remove"}}),
            json!({"paths":["Patient.birthDate"],"action":{"kind":"year_only"}}),
            json!({"paths":["Patient.name.family"],"action":{"kind":"mask","value":"***"}}),
            json!({"paths":["*.descendants().extension('http://ex.org/x')"],"action":{"kind":"remove"}}),
            json!({"paths":["Patient.address.line", "Patient.name.given"],"action":{"kind":"remove"}}),
            json!({"resources":["Condition"],"action":{"kind":"remove_resource"}}),
        ];
        prop::sample::subsequence(rules, 0..9).prop_map(|rules| {
            serde_json::from_value(json!({"rules": rules, "labels":[{"codes":["R"]}]})).unwrap()
        })
    }

    fn leaves(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, c)| {
                out.insert(format!("key:{k}"));
                leaves(c, out)
            }),
            Value::Array(a) => a.iter().for_each(|c| leaves(c, out)),
            other => {
                out.insert(other.to_string());
            }
        }
    }

    /// What the redactor may add: the REDACTED label, masks, the searchset note, a year cut
    /// from a date (checked as a prefix).
    fn allowed(leaf: &str, input: &BTreeSet<String>) -> bool {
        const ADDED: &[&str] = &[
            "\"http://terminology.hl7.org/CodeSystem/v3-ObservationValue\"",
            "\"REDACTED\"",
            "\"http://hl7.org/fhir/StructureDefinition/data-absent-reason\"",
            "\"masked\"",
            "\"***\"",
            "\"information\"",
            "\"suppressed\"",
            "\"outcome\"",
            "\"OperationOutcome\"",
            "key:meta",
            "key:security",
            "key:system",
            "key:code",
            "key:extension",
            "key:url",
            "key:valueCode",
            "key:resource",
            "key:issue",
            "key:severity",
            "key:details",
            "key:text",
            "key:search",
            "key:mode",
            "key:resourceType",
        ];
        ADDED.contains(&leaf)
            || leaf.starts_with("key:_")
            || leaf.ends_with("withheld by the data visibility policy\"")
            || (leaf.len() == 6 && input.iter().any(|i| i.starts_with(&leaf[..5])))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn never_adds_data_and_is_idempotent(r in resource(), policy in policy(), pretty in any::<bool>()) {
            let input = if pretty { serde_json::to_vec_pretty(&r).unwrap() } else { serde_json::to_vec(&r).unwrap() };
            let plan = Redactor::new(policy).unwrap().plan(&Caller::anonymous());
            match plan.redact(&input) {
                Ok(Redacted::Changed { body, .. }) => {
                    let body = body.to_vec();
                    let out: Value = serde_json::from_slice(&body).unwrap();
                    let mut before = BTreeSet::new();
                    leaves(&r, &mut before);
                    let mut after = BTreeSet::new();
                    leaves(&out, &mut after);
                    for leaf in &after {
                        prop_assert!(before.contains(leaf) || allowed(leaf, &before), "added {leaf}");
                    }
                    prop_assert_eq!(plan.redact(&body), Ok(Redacted::Unchanged));
                }
                Ok(Redacted::Unchanged) | Ok(Redacted::Hidden) => {}
                // Generated trees are valid FHIR-shaped JSON except where a contained
                // "resource" is not an object; that must be refused, never passed.
                Err(e) => prop_assert_eq!(e, fhirwall::redact::RedactError::NotFhir),
            }
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let plan = Redactor::new(serde_json::from_value(json!({"rules":[
                {"paths":["*.descendants().extension('u')"],"action":{"kind":"remove"}}
            ]})).unwrap()).unwrap().plan(&Caller::anonymous());
            let _ = plan.redact(&bytes);
            let _ = plan.redact_ndjson(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_fhir(r in resource(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut input = serde_json::to_vec(&r).unwrap();
            let i = cut.index(input.len());
            input[i] = byte;
            let plan = Redactor::new(serde_json::from_value(json!({"rules":[
                {"paths":["Patient.identifier", "Observation.value[x]"],"action":{"kind":"remove"}}
            ]})).unwrap()).unwrap().plan(&Caller::anonymous());
            if let Ok(Redacted::Changed { body, .. }) = plan.redact(&input) {
                // A syntax check (RFC 8259), not a conversion: a mutated digit can make a number
                // such as `-1e0309` that is valid JSON, copied as written, but out of f64 range.
                prop_assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&body.to_vec()).is_ok());
            }
        }
    }
}
