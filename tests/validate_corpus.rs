#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Data-driven cases: `tests/data/validate/broken.txt` (one hand-broken resource per rule of
//! FHIR R4 §2.6.2 "JSON representation" and the StructureDefinitions) and
//! `tests/data/validate/search.txt` (FHIR R4 §3.1.1 "Search": parameters, modifiers, prefixes,
//! value syntax, result parameters, caps).

use fhirwall::fhir::{Query, ResourceType};
use fhirwall::validate::{check_resource, check_search, ValidateConfig};

fn lines(name: &str) -> Vec<String> {
    let path = format!("{}/tests/data/validate/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn hand_broken_resources_are_refused_at_the_right_expression() {
    let config = ValidateConfig::new().max_problems(50);
    let cases = lines("broken.txt");
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for line in &cases {
        let mut cols = line.splitn(4, '\t');
        let (status, expression, what, body) = (
            cols.next().unwrap(),
            cols.next().unwrap(),
            cols.next().unwrap(),
            cols.next().unwrap(),
        );
        let expression = if expression == "-" { "" } else { expression };
        match check_resource(body.as_bytes(), &config) {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(r) => {
                let found: Vec<_> = r.problems().iter().map(|p| p.expression.as_str()).collect();
                if r.status().as_str() != status || !found.contains(&expression) {
                    failures.push(format!(
                        "{what}: expected {status} at {expression:?}, got {} at {found:?}",
                        r.status().as_u16()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_corpus_bodies_are_fine_once_repaired() {
    // The broken bodies differ from valid ones by the one rule they break: a plain Patient and
    // Observation with the same scaffolding pass.
    let config = ValidateConfig::new();
    for body in [
        r#"{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1970-02-28","active":true,"name":[{"family":"x","given":["a",null],"_given":[null,{"id":"g"}]}],"deceasedBoolean":false,"multipleBirthInteger":2,"contained":[{"resourceType":"Patient","id":"p"}],"extension":[{"url":"http://x","valueString":"x"}]}"#,
        r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/1"},"valueQuantity":{"value":1.50,"comparator":"<"},"effectiveDateTime":"2020-01-01T10:00:00Z","issued":"2020-01-01T10:00:00.5+14:00"}"#,
        r#"{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:c757873d-ec9a-4326-a141-556f43239520","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:c757873d-ec9a-4326-a141-556f43239520"}},"request":{"method":"POST","url":"Observation"}}]}"#,
    ] {
        check_resource(body.as_bytes(), &config).unwrap();
    }
}

#[test]
fn search_parameters_table() {
    let cases = lines("search.txt");
    assert!(cases.len() >= 300, "{} cases", cases.len());
    let strict = ValidateConfig::new();
    let lenient = ValidateConfig::new().allow_lenient_handling(true);
    let mut failures = Vec::new();
    for line in &cases {
        let cols: Vec<&str> = line.split('\t').collect();
        let (expect, rt, raw) = (cols[0], cols[1], cols[2]);
        let is_lenient = cols.get(3) == Some(&"lenient");
        let rt = if rt == "-" {
            None
        } else {
            Some(ResourceType::from_name(rt).unwrap_or_else(|| panic!("type {rt}")))
        };
        let query = Query::parse(raw, 1000).unwrap_or_else(|e| panic!("{raw}: {e}"));
        let config = if is_lenient { &lenient } else { &strict };
        let verdict = check_search(&query, rt, is_lenient, config);
        let ok = match expect {
            "ok" => verdict.is_ok(),
            "400" => verdict
                .as_ref()
                .is_err_and(|r| r.status() == http::StatusCode::BAD_REQUEST),
            other => panic!("bad expectation {other}"),
        };
        if !ok {
            failures.push(format!("{line}: got {verdict:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
}

#[test]
fn lenient_handling_needs_both_the_header_and_the_config() {
    // FHIR R4 §3.1.1.5.10: `Prefer: handling=lenient` lets the server ignore unknown
    // parameters; fhirwall honours it only when configured to.
    let query = Query::parse("not-a-parameter=1", 10).unwrap();
    let strict = ValidateConfig::new();
    assert!(check_search(&query, Some(ResourceType::Patient), true, &strict).is_err());
    let lenient = ValidateConfig::new().allow_lenient_handling(true);
    assert!(check_search(&query, Some(ResourceType::Patient), false, &lenient).is_err());
    assert!(check_search(&query, Some(ResourceType::Patient), true, &lenient).is_ok());
}

#[test]
fn disabled_parameters_can_be_enabled() {
    let rt = Some(ResourceType::Patient);
    let config = ValidateConfig::new()
        .allow_has(true)
        .allow_filter(true)
        .allow_named_query(true)
        .allow_text_search(true)
        .danger_allow_include_wildcard()
        .max_count(1000)
        .max_chain_depth(3)
        .control_param("_getpages");
    for raw in [
        "_has:Observation:patient:code=1234",
        "_filter=name eq x",
        "_query=current",
        "_text=cancer",
        "_content=cancer",
        "_include=*",
        "_count=1000",
        "_getpages=abc",
        "organization.partof.partof.name=x",
    ] {
        let q = Query::parse(raw, 10).unwrap();
        assert!(check_search(&q, rt, false, &config).is_ok(), "{raw}");
    }
}
