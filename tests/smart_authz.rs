#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Authorization decisions from tests/data/authz.txt (fhirwall issue #4 items 4 and 5), and
//! property tests: the authorizer never panics, and adding a scope never removes access.

use fhirwall::fhir::{Classifier, FhirRequest, ResourceType};
use fhirwall::smart::{
    authorize, AccessContext, Authorized, AuthzPolicy, MalformedScopes, OperationRule,
    PatientSearchFeature, Permissions, ScopeSet,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;

fn classify(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Option<FhirRequest> {
    let method: Method = method.parse().unwrap();
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    Classifier::new("/fhir")
        .classify(&method, &uri.parse().ok()?, &map, body.as_bytes())
        .ok()
}

fn context(scopes: &str, patients: &str) -> AccessContext {
    let set = ScopeSet::parse(scopes, MalformedScopes::RefuseToken)
        .unwrap_or_else(|e| panic!("scopes {scopes:?}: {e}"));
    let ctx = AccessContext::new(set);
    if patients == "-" {
        ctx
    } else {
        ctx.with_patients(patients.split(','))
    }
}

fn describe(result: &Result<Authorized, fhirwall::smart::Refusal>) -> String {
    match result {
        Ok(a) => {
            let mut out = vec!["allow".to_owned()];
            if let Some(n) = a.narrowing() {
                out.push(format!("narrow={n}"));
            }
            if let Some(n) = a.if_none_exist_narrowing() {
                out.push(format!("ine={n}"));
            }
            if a.checks_response() {
                out.push("check".to_owned());
            }
            if a.checks_body() {
                out.push("body".to_owned());
            }
            if a.reads_before_write() {
                out.push("preread".to_owned());
            }
            if a.is_public() {
                out.push("public".to_owned());
            }
            out.join(" ")
        }
        Err(r) => match r.needed_scope() {
            Some(scope) => format!("deny {} scope={scope}", r.status().as_u16()),
            None => format!("deny {}", r.status().as_u16()),
        },
    }
}

fn parse_request(text: &str) -> (String, String, Vec<(String, String)>, String) {
    let (head, body) = match text.split_once(" body=") {
        Some((h, b)) => (h, b.to_owned()),
        None => (text, String::new()),
    };
    let mut words = head.split(' ');
    let method = words.next().unwrap().to_owned();
    let uri = words.next().unwrap().to_owned();
    let headers = words
        .map(|w| {
            let (name, value) = w.strip_prefix("header:").unwrap().split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    (method, uri, headers, body)
}

fn apply_directive(policy: AuthzPolicy, directive: &str) -> AuthzPolicy {
    let (name, arg) = directive.split_once(' ').unwrap_or((directive, ""));
    match name {
        "@reset" => AuthzPolicy::new(),
        "@shared" => {
            policy.shared_types(arg.split(',').map(|t| ResourceType::from_name(t).unwrap()))
        }
        "@op" => {
            let (op, perms) = arg.split_once('=').unwrap();
            policy.operation(OperationRule::new(
                op,
                Permissions::parse_v2(perms).unwrap(),
            ))
        }
        "@allow" => policy.danger_allow_patient_search(match arg {
            "has" => PatientSearchFeature::Has,
            "chain" => PatientSearchFeature::Chain,
            "filter" => PatientSearchFeature::Filter,
            "text" => PatientSearchFeature::Text,
            "sort" => PatientSearchFeature::Sort,
            "named" => PatientSearchFeature::NamedQuery,
            other => panic!("unknown feature {other}"),
        }),
        other => panic!("unknown directive {other}"),
    }
}

#[test]
fn authorization_table() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/authz.txt"))
            .unwrap();
    let mut policy = AuthzPolicy::new();
    let mut cases = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('@') {
            policy = apply_directive(policy, line);
            continue;
        }
        let (input, expected) = line
            .rsplit_once(" => ")
            .unwrap_or_else(|| panic!("line {}: no =>", n + 1));
        let mut fields = input.splitn(3, " | ");
        let scopes = fields.next().unwrap();
        let scopes = if scopes == "-" { "" } else { scopes };
        let patients = fields.next().unwrap();
        let (method, uri, headers, body) = parse_request(fields.next().unwrap());
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let request = classify(&method, &uri, &headers, &body)
            .unwrap_or_else(|| panic!("line {}: {method} {uri} does not classify", n + 1));
        let got = describe(&authorize(&request, &context(scopes, patients), &policy));
        let want = expected.to_owned();
        if got != want {
            failures.push(format!(
                "line {}: {input}\n    expected {want}\n    got      {got}",
                n + 1
            ));
        }
        cases += 1;
    }
    assert!(cases >= 200, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn if_none_exist_narrowing_is_reported() {
    // R4 §3.1.0.8.1: a conditional create under patient scopes matches only the patient's data.
    let request = classify(
        "POST",
        "/fhir/Observation",
        &[("If-None-Exist", "identifier=x|1")],
        "",
    )
    .unwrap();
    let ctx = context("patient/*.cruds", "pat-1");
    let allowed = authorize(&request, &ctx, &AuthzPolicy::new()).unwrap();
    assert!(allowed.is_narrowed());
    assert_eq!(allowed.narrowing(), None);
    assert_eq!(
        allowed.if_none_exist_narrowing(),
        Some("subject=Patient/pat-1")
    );
}

#[test]
fn every_scope_counts_not_the_first_match() {
    // HAPI-style first-match evaluation would stop at patient/Observation.r and refuse `s`.
    let request = classify("GET", "/fhir/Observation", &[], "").unwrap();
    let ctx = context(
        "patient/Observation.r user/Condition.rs patient/Observation.s",
        "pat-1",
    );
    assert!(authorize(&request, &ctx, &AuthzPolicy::new()).is_ok());
}

const SCOPE_POOL: &[&str] = &[
    "patient/*.rs",
    "patient/*.cruds",
    "patient/Observation.rs",
    "patient/Observation.r",
    "patient/Observation.s",
    "patient/Patient.r",
    "patient/Condition.cu",
    "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
    "user/*.rs",
    "user/*.cruds",
    "user/Observation.s",
    "user/Observation.cud",
    "user/Patient.rs",
    "user/Observation.rs?category=laboratory",
    "user/Observation.us?status=final",
    "system/*.rs",
    "system/Observation.cs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
    "system/Patient.r",
    "openid",
    "launch/patient",
];

const REQUEST_POOL: &[(&str, &str, &str, &str)] = &[
    ("GET", "/fhir/metadata", "", ""),
    ("GET", "/fhir/Patient/pat-1", "", ""),
    ("GET", "/fhir/Patient/pat-2", "", ""),
    ("GET", "/fhir/Observation/obs-1", "", ""),
    ("GET", "/fhir/Observation/obs-1/_history", "", ""),
    ("GET", "/fhir/Observation?code=x", "", ""),
    ("GET", "/fhir/Observation?category=laboratory", "", ""),
    ("GET", "/fhir/Observation?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", "", ""),
    ("GET", "/fhir/Observation?status=final&_include=Observation:subject", "", ""),
    ("GET", "/fhir/Observation?subject=Patient/pat-2", "", ""),
    ("GET", "/fhir/Observation?_has:Observation:patient:code=1", "", ""),
    ("GET", "/fhir/Patient?_id=pat-1", "", ""),
    ("GET", "/fhir/Patient/pat-1/Observation", "", ""),
    ("GET", "/fhir/Patient/pat-1/*", "", ""),
    ("GET", "/fhir/Patient/pat-2/*", "", ""),
    ("GET", "/fhir?_type=Observation", "", ""),
    ("GET", "/fhir/_history", "", ""),
    ("GET", "/fhir/Observation/_history", "", ""),
    ("POST", "/fhir/Observation", "", ""),
    ("POST", "/fhir/Observation", "identifier=x|1", ""),
    ("PUT", "/fhir/Observation/obs-1", "", ""),
    ("PUT", "/fhir/Observation?identifier=x|1", "", ""),
    ("PUT", "/fhir/Observation?identifier=x|1&status=final", "", ""),
    ("PATCH", "/fhir/Observation/obs-1", "", ""),
    ("DELETE", "/fhir/Observation/obs-1", "", ""),
    ("DELETE", "/fhir/Observation?code=x", "", ""),
    ("GET", "/fhir/Patient/pat-1/$everything", "", ""),
    ("GET", "/fhir/$export", "", ""),
    ("GET", "/fhir/$export?_type=Patient", "", ""),
    ("POST", "/fhir", "", r#"{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/pat-1"}},{"request":{"method":"GET","url":"Observation?code=x"}}]}"#),
    ("POST", "/fhir", "", r#"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation"},"request":{"method":"POST","url":"Observation"}},{"request":{"method":"DELETE","url":"Condition?code=x"}}]}"#),
];

fn pooled_request(i: usize) -> FhirRequest {
    let (method, uri, ine, body) = REQUEST_POOL[i % REQUEST_POOL.len()];
    let mut headers = vec![("Content-Type", "application/fhir+json")];
    if !ine.is_empty() {
        headers.push(("If-None-Exist", ine));
    }
    classify(method, uri, &headers, body).unwrap_or_else(|| panic!("{method} {uri}"))
}

fn policy() -> AuthzPolicy {
    AuthzPolicy::new()
        .shared_types([ResourceType::Practitioner])
        .operation(OperationRule::new(
            "lastn",
            Permissions::READ | Permissions::SEARCH,
        ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Adding a scope never removes access (fhirwall issue #4: monotonic).
    #[test]
    fn adding_a_scope_never_removes_access(
        base in proptest::collection::vec(0..SCOPE_POOL.len(), 0..6),
        extra in 0..SCOPE_POOL.len(),
        request in 0..REQUEST_POOL.len(),
    ) {
        let scopes: Vec<&str> = base.iter().map(|&i| SCOPE_POOL[i]).collect();
        let before = context(&scopes.join(" "), "pat-1");
        let after = context(&format!("{} {}", scopes.join(" "), SCOPE_POOL[extra]), "pat-1");
        let request = pooled_request(request);
        let policy = policy();
        if authorize(&request, &before, &policy).is_ok() {
            prop_assert!(
                authorize(&request, &after, &policy).is_ok(),
                "{:?} + {} lost access to {:?}", scopes, SCOPE_POOL[extra], request
            );
        }
    }

    /// The authorizer never panics, whatever the scopes and the (classifiable) request.
    #[test]
    fn authorizer_never_panics(
        scopes in "[a-zA-Z/*.?=&|,:_ -]{0,60}",
        path in "(Patient|Observation|Condition|Group|Practitioner|_history|metadata|\\$export|\\*|x)(/[a-z0-9$*_-]{1,8}){0,3}",
        query in "[a-zA-Z0-9_:.=&,|/-]{0,40}",
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("PATCH"), Just("DELETE"), Just("HEAD")],
        patients in prop_oneof![Just("-"), Just("pat-1"), Just("pat-1,pat-2")],
    ) {
        let Ok(set) = ScopeSet::parse(&scopes, MalformedScopes::DropScope) else { return Ok(()) };
        let ctx = AccessContext::new(set);
        let ctx = if patients == "-" { ctx } else { ctx.with_patients(patients.split(',')) };
        let uri = format!("/fhir/{path}?{query}");
        if let Some(request) = classify(method, &uri, &[], "") {
            let _ = authorize(&request, &ctx, &policy());
        }
    }
}
