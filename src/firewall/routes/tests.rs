//! The quick route check against the classifier's answer (the quick path may only ever answer
//! what the classifier would).

use super::*;
use proptest::prelude::*;

fn inventory() -> RouteInventory {
    RouteInventory::new("/fhir")
        .alias_base("/fhir-v0")
        .declare(
            ResourceType::Patient,
            [Interaction::Read, Interaction::SearchType],
        )
        .declare(ResourceType::Observation, [Interaction::Read])
        .declare(
            ResourceType::MedicinalProductAuthorization,
            [Interaction::Read],
        )
        .compartment(ResourceType::Patient)
}

#[test]
fn type_index_is_the_place_in_all() {
    for (i, rt) in ResourceType::ALL.iter().enumerate() {
        assert_eq!(type_index(*rt), i, "{rt:?}");
    }
}

#[test]
fn quick_path_answers_reads_and_searches() {
    let inv = inventory();
    let h = HeaderMap::new();
    let quick = |m: Method, u: &str| inv.quick(&m, &u.parse().unwrap(), &h);
    assert_eq!(
        quick(Method::GET, "/fhir/Patient/1"),
        Some(RouteCheck::Declared)
    );
    assert_eq!(
        quick(Method::HEAD, "/fhir-v0/Patient"),
        Some(RouteCheck::Declared)
    );
    assert_eq!(
        quick(Method::GET, "/fhir/Observation"),
        Some(RouteCheck::Undeclared)
    );
    assert_eq!(
        quick(Method::GET, "/fhir/Condition/1"),
        Some(RouteCheck::Undeclared)
    );
    // Left to the classifier: dot segments, other methods, queries, overrides, bad ids.
    assert_eq!(quick(Method::GET, "/fhir/Patient/.."), None);
    assert_eq!(quick(Method::DELETE, "/fhir/Patient/1"), None);
    assert_eq!(quick(Method::GET, "/fhir/Patient?_method=DELETE"), None);
    assert_eq!(quick(Method::GET, "/fhir/Patient/1/_history"), None);
    assert_eq!(quick(Method::GET, "/fhir/Patient/$everything"), None);
    let mut over = HeaderMap::new();
    over.insert("x-http-method-override", "DELETE".parse().unwrap());
    assert_eq!(
        inv.quick(&Method::GET, &"/fhir/Patient/1".parse().unwrap(), &over),
        None
    );
    assert!(!inv.permits(&Method::GET, &"/fhir/Patient/1".parse().unwrap(), &over));
}

#[test]
fn a_short_uri_limit_turns_the_quick_path_off() {
    let inv = RouteInventory::new("/fhir")
        .classifier(Classifier::new("/fhir").max_uri_len(20))
        .declare(ResourceType::Patient, [Interaction::Read]);
    let h = HeaderMap::new();
    let long = format!("/fhir/Patient/{}", "a".repeat(30));
    assert_eq!(inv.quick(&Method::GET, &long.parse().unwrap(), &h), None);
    assert_eq!(
        inv.check(&Method::GET, &long.parse().unwrap(), &h),
        RouteCheck::Undeclared
    );
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Patient".to_owned()),
        Just("Observation".to_owned()),
        Just("MedicinalProductAuthorization".to_owned()),
        Just("patient".to_owned()),
        Just("metadata".to_owned()),
        Just("_history".to_owned()),
        Just("_search".to_owned()),
        Just("$everything".to_owned()),
        Just(".well-known".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just(String::new()),
        "[A-Za-z0-9.;$_~*-]{1,8}",
        "[a-z0-9.-]{60,70}",
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::HEAD),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::OPTIONS),
    ]
}

proptest! {
    /// Whatever the quick path answers, the classifier answers the same (FHIR R4 §3.1.0
    /// routes, read as the classifier reads them).
    #[test]
    fn quick_agrees_with_the_classifier(
        base in prop_oneof![Just("/fhir"), Just("/fhir-v0"), Just("/fhirx"), Just("")],
        segments in proptest::collection::vec(segment(), 0..4),
        query in prop_oneof![Just(""), Just("?"), Just("?a=b"), Just("?_method=DELETE")],
        method in method(),
        header in 0..4usize,
    ) {
        let inv = inventory();
        let mut path = base.to_owned();
        for s in &segments {
            path.push('/');
            path.push_str(s);
        }
        if path.is_empty() {
            path.push('/');
        }
        let Ok(uri) = Uri::try_from(format!("{path}{query}")) else {
            return Ok(());
        };
        let mut headers = HeaderMap::new();
        match header {
            1 => {
                headers.insert("x-http-method", http::HeaderValue::from_static("PUT"));
            }
            2 => {
                headers.insert(
                    http::header::IF_MATCH,
                    http::HeaderValue::from_bytes(b"W/\"\xff\"").unwrap(),
                );
            }
            3 => {
                headers.insert("x-request-id", http::HeaderValue::from_static("1"));
            }
            _ => {}
        }
        if let Some(quick) = inv.quick(&method, &uri, &headers) {
            let full = inv.classified(&method, &uri, &headers);
            let full = if full == RouteCheck::Malformed { RouteCheck::Declared } else { full };
            prop_assert_eq!(quick, full, "{} {}", method, uri);
        }
    }
}

#[test]
fn plain_ids_are_fhir_ids_but_no_dot_segments() {
    // FHIR R4 §2.24.0.1: `[A-Za-z0-9\-\.]{1,64}`; RFC 3986 §5.2.4: `.` and `..` are dot
    // segments, never ids.
    let long = "a".repeat(64);
    let too_long = "a".repeat(65);
    for (id, plain) in [
        ("1", true),
        ("a-b.C", true),
        ("...", true),
        (long.as_str(), true),
        ("", false),
        (".", false),
        ("..", false),
        (too_long.as_str(), false),
        ("a_b", false),
        ("a%2F", false),
        ("a;b", false),
        ("é", false),
    ] {
        assert_eq!(is_plain_id(id), plain, "{id:?}");
    }
}

#[test]
fn the_longest_base_wins_and_equal_ones_the_last() {
    let inv = RouteInventory::new("/fhir")
        .alias_base("/fhir/v2")
        .alias_base("/fhir");
    assert_eq!(inv.base_for("/fhir/v2/Patient"), Some((1, "/fhir/v2")));
    assert_eq!(inv.base_for("/fhir/Patient"), Some((2, "/fhir")));
    assert_eq!(inv.base_for("/fhirx/Patient"), None);
}
