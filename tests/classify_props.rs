//! Property tests: the classifier and the query parser never panic, whatever they are given.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use fhirwall::fhir::{Classifier, Query};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use proptest::prelude::*;

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::HEAD),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::PATCH),
        Just(Method::DELETE),
        Just(Method::OPTIONS),
        "[A-Z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

/// Path segments built from FHIR-looking pieces and hostile ones.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Patient".to_owned()),
        Just("Observation".to_owned()),
        Just("_history".to_owned()),
        Just("_search".to_owned()),
        Just("$everything".to_owned()),
        Just("metadata".to_owned()),
        Just(".well-known".to_owned()),
        Just("*".to_owned()),
        Just("%2F".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("%".to_owned()),
        Just("%25".to_owned()),
        Just(";".to_owned()),
        "[A-Za-z0-9._~%$*-]{0,20}",
        "\\PC{0,8}".prop_map(|s| s.replace(['/', '?', '#'], "")),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop_oneof![
                Just("_count".to_owned()),
                Just("_include".to_owned()),
                Just("_has:Observation:patient:code".to_owned()),
                Just("subject:Patient.name".to_owned()),
                "[A-Za-z_:.%+-]{0,12}",
            ],
            "[A-Za-z0-9,|$\\\\%+:._-]{0,16}",
        ),
        0..12,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            prop_oneof![
                Just("content-type".to_owned()),
                Just("if-none-exist".to_owned()),
                Just("if-match".to_owned()),
                Just("x-http-method-override".to_owned()),
                Just("content-length".to_owned()),
                "[a-z-]{1,12}",
            ],
            "[ -~]{0,40}",
        ),
        0..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn classifier_never_panics(
        method in method(),
        segments in prop::collection::vec(segment(), 0..7),
        query in query(),
        headers in headers(),
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let classifier = Classifier::new("/fhir");
        let target = format!("/fhir/{}?{query}", segments.join("/"));
        let Ok(uri) = target.parse::<Uri>() else { return Ok(()) };
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
                map.append(n, v);
            }
        }
        if let Err(refusal) = classifier.classify(&method, &uri, &map, &body) {
            // Every refusal is a client error with an OperationOutcome body.
            prop_assert!(refusal.status().is_client_error());
            let outcome = refusal.to_outcome();
            prop_assert_eq!(outcome.issues().len(), 1);
        }
    }

    #[test]
    fn batch_bodies_never_panic(entries in prop::collection::vec((method(), "[ -~]{0,30}"), 0..6)) {
        let classifier = Classifier::new("/fhir");
        let body = serde_json::json!({
            "resourceType": "Bundle",
            "type": "batch",
            "entry": entries.iter().map(|(m, url)| serde_json::json!({"request": {"method": m.as_str(), "url": url}})).collect::<Vec<_>>(),
        });
        let mut map = HeaderMap::new();
        map.insert("content-type", HeaderValue::from_static("application/fhir+json"));
        let uri: Uri = "/fhir".parse().unwrap();
        let _ = classifier.classify(&Method::POST, &uri, &map, body.to_string().as_bytes());
    }

    #[test]
    fn query_parser_never_panics(raw in "\\PC{0,200}") {
        let _ = Query::parse(&raw, 100);
    }

    #[test]
    fn or_values_round_trip(values in prop::collection::vec("[a-z,|$\\\\]{1,8}", 1..5)) {
        // FHIR R4 §3.1.1.5.7: escaping each value's `\ , | $` and joining with "," gives back
        // exactly those values.
        let escaped: Vec<String> = values
            .iter()
            .map(|v| v.replace('\\', "\\\\").replace(',', "\\,").replace('|', "\\|").replace('$', "\\$"))
            .collect();
        // Percent-encoding comes off before FHIR splitting, so `%2C` and `,` are the same here.
        let raw = format!("code={}", escaped.join(",").replace('\\', "%5C").replace('|', "%7C").replace('$', "%24"));
        let q = Query::parse(&raw, 10).unwrap();
        let got: Vec<String> = q.param(0).unwrap().values().map(|v| v.text().into_owned()).collect();
        prop_assert_eq!(got, values);
    }
}
