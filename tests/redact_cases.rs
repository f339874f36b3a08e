#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Table-driven redaction cases (tests/data/redact/cases.txt): input + policy + caller → the
//! exact output. Covers the issue #5 list: choice types (FHIR R4 §2.24.0.1 `value[x]`),
//! extensions by URL (§2.22), contained resources (§2.28), `_include`d and nested Bundle
//! entries (§3.1.1.5.4), Parameters (§2.36), emptied arrays (FHIR JSON §2.6.2: no empty
//! arrays), required elements (cardinality min 1), duplicate keys (RFC 8259 §4), deep
//! nesting, huge strings and NDJSON (Bulk Data Access, ndjson.org).

#[cfg(feature = "redact")]
mod cases {
    use fhirwall::redact::{Caller, Policy, RedactError, Redacted, Redactor};
    use std::collections::BTreeMap;

    const R: &str = r#"{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"REDACTED"}"#;
    const M: &str = r#"{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"masked"}]}"#;
    const NOTE1: &str = r#"{"resource":{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"suppressed","details":{"text":"1 resource(s) withheld by the data visibility policy"}}]},"search":{"mode":"outcome"}}"#;

    fn policies() -> BTreeMap<String, Policy> {
        serde_json::from_str(include_str!("data/redact/policies.json")).unwrap()
    }

    fn caller(spec: &str) -> Caller {
        let mut caller = Caller::anonymous();
        if spec == "-" {
            return caller;
        }
        for part in spec.split(';') {
            let (k, v) = part.split_once('=').unwrap();
            match k {
                "clients" => caller.clients.extend(v.split(',').map(String::from)),
                "scopes" => caller.scopes.extend(v.split(' ').map(String::from)),
                "predicates" => caller.predicates.extend(v.split(',').map(String::from)),
                other => panic!("unknown caller field {other}"),
            }
        }
        caller
    }

    fn expand(s: &str) -> String {
        s.replace("$NOTE1", NOTE1).replace("$R", R).replace("$M", M)
    }

    #[test]
    fn table_driven_cases() {
        let policies = policies();
        let mut ran = 0;
        for (n, line) in include_str!("data/redact/cases.txt").lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.splitn(5, " | ").collect();
            let [name, policy, who, input, expected] = fields[..] else {
                panic!("line {}: expected 5 fields", n + 1);
            };
            // The table's callers carry the predicate names themselves (as a `Caller` in the
            // request extensions would), so they are declared, not registered.
            let redactor = Redactor::builder(policies[policy].clone())
                .declare_predicate("on-call")
                .build()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let plan = redactor.plan(&caller(who));
            let input = expand(input);
            let got = plan.redact(input.as_bytes());
            match expected {
                "UNCHANGED" => assert_eq!(got, Ok(Redacted::Unchanged), "{name}"),
                "HIDDEN" => assert_eq!(got, Ok(Redacted::Hidden), "{name}"),
                e if e.starts_with("ERR:") => {
                    let err = got.expect_err(name);
                    assert_eq!(format!("ERR:{err:?}"), e, "{name}");
                }
                e => match got {
                    Ok(Redacted::Changed { body, .. }) => {
                        let body = String::from_utf8(body.to_vec()).unwrap();
                        assert_eq!(body, expand(e), "{name}");
                        // The output is valid JSON, and redacting it again changes nothing.
                        serde_json::from_str::<serde_json::Value>(&body).unwrap();
                        assert_eq!(
                            plan.redact(body.as_bytes()),
                            Ok(Redacted::Unchanged),
                            "{name}: idempotent"
                        );
                    }
                    other => panic!("{name}: {other:?}"),
                },
            }
            ran += 1;
        }
        assert!(ran >= 50, "{ran} cases");
    }

    fn ssn_plan() -> fhirwall::redact::Plan {
        Redactor::new(policies()["ssn"].clone())
            .unwrap()
            .plan(&Caller::anonymous())
    }

    #[test]
    fn deep_nesting_refused_without_stack_overflow() {
        let plan = ssn_plan();
        for depth in [101, 10_000, 1_000_000] {
            let body = format!(
                "{{\"resourceType\":\"Patient\",\"extension\":{}{}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            assert_eq!(plan.redact(body.as_bytes()), Err(RedactError::TooDeep));
        }
        let ok = format!(
            "{{\"resourceType\":\"Patient\",\"x\":{}1{}}}",
            "[".repeat(90),
            "]".repeat(90)
        );
        assert_eq!(plan.redact(ok.as_bytes()), Ok(Redacted::Unchanged));
    }

    #[test]
    fn huge_strings_pass_or_go_whole() {
        let plan = ssn_plan();
        let huge = "x".repeat(4 * 1024 * 1024);
        let kept = format!(r#"{{"resourceType":"Patient","text":{{"div":"{huge}"}}}}"#);
        assert_eq!(plan.redact(kept.as_bytes()), Ok(Redacted::Unchanged));
        let removed = format!(
            r#"{{"resourceType":"Patient","identifier":[{{"system":"http://hl7.org/fhir/sid/us-ssn","value":"{huge}"}}],"active":true}}"#
        );
        let Ok(Redacted::Changed { body, .. }) = plan.redact(removed.as_bytes()) else {
            panic!()
        };
        assert!(body.len() < 200);
    }

    #[test]
    fn body_limit() {
        let redactor = Redactor::new(policies()["ssn"].clone())
            .unwrap()
            .max_body(100);
        let body = format!(r#"{{"resourceType":"Patient","id":"{}"}}"#, "a".repeat(100));
        assert_eq!(
            redactor.plan(&Caller::anonymous()).redact(body.as_bytes()),
            Err(RedactError::TooLarge)
        );
    }

    #[test]
    fn ndjson_lines() {
        // FHIR Bulk Data export files: one resource per line.
        let plan = Redactor::new(policies()["hide-obs"].clone())
            .unwrap()
            .plan(&Caller::anonymous());
        let input = "{\"resourceType\":\"Patient\",\"id\":\"1\"}\n{\"resourceType\":\"Observation\",\"status\":\"final\"}\r\n\n{\"resourceType\":\"Patient\",\"id\":\"2\"}";
        let Ok(Redacted::Changed { body, hidden, .. }) = plan.redact_ndjson(input.as_bytes())
        else {
            panic!()
        };
        assert_eq!(hidden, 1);
        assert_eq!(
            String::from_utf8(body.to_vec()).unwrap(),
            "{\"resourceType\":\"Patient\",\"id\":\"1\"}\n\n{\"resourceType\":\"Patient\",\"id\":\"2\"}"
        );
        let ssn = ssn_plan();
        let input = "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"http://hl7.org/fhir/sid/us-ssn\",\"value\":\"1\"}],\"active\":true}\n{\"resourceType\":\"Patient\",\"active\":false}\n";
        let Ok(Redacted::Changed { body, altered, .. }) = ssn.redact_ndjson(input.as_bytes())
        else {
            panic!()
        };
        assert_eq!(altered, 1);
        assert_eq!(
            String::from_utf8(body.to_vec()).unwrap(),
            format!("{{\"resourceType\":\"Patient\",\"meta\":{{\"security\":[{R}]}},\"active\":true}}\n{{\"resourceType\":\"Patient\",\"active\":false}}\n")
        );
        assert_eq!(
            ssn.redact_ndjson(b"{\"resourceType\":\"Patient\"}\n{bad\n"),
            Err(RedactError::Syntax)
        );
        assert_eq!(
            ssn.redact_ndjson(b"{\"resourceType\":\"Patient\"} {\"resourceType\":\"Patient\"}\n"),
            Err(RedactError::Syntax)
        );
    }

    #[test]
    fn policies_are_plain_data() {
        for (name, policy) in policies() {
            let text = serde_json::to_string(&policy).unwrap();
            let back: Policy = serde_json::from_str(&text).unwrap();
            assert_eq!(back, policy, "{name}");
        }
        assert!(serde_json::from_str::<Policy>(r#"{"rules":[],"unknown":1}"#).is_err());
        assert!(serde_json::from_str::<Policy>(
            r#"{"rules":[{"paths":["Patient..x"],"action":{"kind":"remove"}}]}"#
        )
        .is_err());
    }
}
