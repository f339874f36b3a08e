#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Property tests of the validator, a parser of untrusted input: it never panics, and its
//! verdict depends on neither key order nor whitespace (RFC 8259 §4: object members are
//! unordered; §2: insignificant whitespace).

use fhirwall::fhir::{Query, ResourceType};
use fhirwall::validate::{check_json, check_resource, check_search, ValidateConfig};
use proptest::prelude::*;
use serde_json::Value;

const SEEDS: &[&str] = &[
    r#"{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1970-02-28","name":[{"family":"x","given":["a",null],"_given":[null,{"id":"g"}]}],"contact":[{"gender":"male"}]}"#,
    r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"1"}]},"valueQuantity":{"value":1.5,"unit":"mg"},"subject":{"reference":"Patient/1"}}"#,
    r#"{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:c757873d-ec9a-4326-a141-556f43239520","resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient"}}]}"#,
    r#"{"resourceType":"Patient","gender":"f","birthDate":"1970-13-01","foo":1,"name":{"family":""}}"#,
    r#"{"resourceType":"Observation","code":{"text":"x"},"valueString":"a","valueBoolean":true,"contained":[{"resourceType":"Patient","bar":[]}]}"#,
    r#"{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"type":"string"}]}]}"#,
];

fn strict() -> ValidateConfig {
    ValidateConfig::new().max_problems(10_000)
}

/// The verdict as a comparable value: accepted, or the status and the sorted expressions.
fn verdict(bytes: &[u8]) -> Result<(), (u16, Vec<String>)> {
    check_resource(bytes, &strict()).map(drop).map_err(|r| {
        let mut e: Vec<String> = r.problems().iter().map(|p| p.expression.clone()).collect();
        e.sort();
        (r.status().as_u16(), e)
    })
}

/// Writes `v` with object keys rotated by `seed` and `ws` spaces around tokens.
fn write(v: &Value, seed: usize, ws: &str, out: &mut String) {
    match v {
        Value::Object(map) => {
            let entries: Vec<_> = map.iter().collect();
            let n = entries.len();
            out.push('{');
            out.push_str(ws);
            for i in 0..n {
                let (k, v) = entries[(i + seed) % n];
                if i > 0 {
                    out.push(',');
                    out.push_str(ws);
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push_str(ws);
                out.push(':');
                out.push_str(ws);
                write(v, seed.wrapping_mul(31).wrapping_add(i), ws, out);
            }
            out.push_str(ws);
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    out.push_str(ws);
                }
                write(item, seed, ws, out);
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = check_resource(&bytes, &ValidateConfig::new());
        let _ = check_json(&bytes, 16);
    }

    #[test]
    fn never_panics_on_mutated_resources(
        seed in 0..SEEDS.len(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = SEEDS[seed].as_bytes().to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = check_resource(&bytes, &ValidateConfig::new());
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = check_resource(&bytes, &ValidateConfig::new());
    }

    #[test]
    fn never_panics_on_json_shaped_text(text in r#"[\{\}\[\]",:a-z0-9_\\. -]{0,200}"#) {
        let body = format!(r#"{{"resourceType":"Patient",{text}"#);
        let _ = check_resource(body.as_bytes(), &ValidateConfig::new());
        let _ = check_resource(text.as_bytes(), &ValidateConfig::new());
    }

    #[test]
    fn verdict_ignores_key_order_and_whitespace(
        seed in 0..SEEDS.len(),
        order in 0usize..64,
        ws in prop::sample::select(vec!["", " ", "\n", "\t ", "\r\n  "]),
    ) {
        let value: Value = serde_json::from_str(SEEDS[seed]).unwrap();
        let mut reordered = String::new();
        write(&value, order, ws, &mut reordered);
        prop_assert_eq!(verdict(SEEDS[seed].as_bytes()), verdict(reordered.as_bytes()), "{}", reordered);
    }

    #[test]
    fn search_check_never_panics(
        raw in r"[a-z_:.\-=&|,$%0-9A-Z*]{0,120}",
        rt in 0..ResourceType::ALL.len(),
    ) {
        if let Ok(q) = Query::parse(&raw, 100) {
            let _ = check_search(&q, Some(ResourceType::ALL[rt]), false, &ValidateConfig::new());
            let _ = check_search(&q, None, true, &ValidateConfig::new().allow_lenient_handling(true));
        }
    }
}
