#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! SmartLayer through a real axum Router behind ClassifyLayer: RFC 6750 challenges, the
//! verifier seam (cached and uncached), narrowing on the wire, request-body and response
//! checks, the read before a write, RFC 8705 binding, `.well-known/smart-configuration`, and a
//! whole stack with real ES256-signed tokens checked by `JwtVerifier`.

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::{Classifier, ResourceType};
use fhirwall::net::{CertificateThumbprint, RemoteAddr, TrustedProxies};
use fhirwall::smart::token::{JwtVerifier, KeySet};
use fhirwall::smart::{
    AccessContext, AuthzPolicy, CertificateBinding, ContextConfig, PatientContextSource,
    SmartConfiguration, SmartDecision, SmartLayer, TokenFuture, TokenRejection, VerifiedClaims,
    VerifyToken,
};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Maps fixed token strings to claims; tokens starting with `slow-` are not "cached", so the
/// layer has to go through the boxed verification future.
struct Fixed(HashMap<String, Arc<VerifiedClaims>>);

impl Fixed {
    fn new(tokens: &[(&str, Value)]) -> Self {
        Fixed(
            tokens
                .iter()
                .map(|(t, c)| {
                    let exp = c.get("exp").and_then(Value::as_u64).unwrap_or(now() + 600);
                    (
                        t.to_string(),
                        Arc::new(VerifiedClaims::new(
                            c.as_object().unwrap().clone(),
                            Some(exp),
                        )),
                    )
                })
                .collect(),
        )
    }

    fn lookup(&self, token: &str) -> Result<Arc<VerifiedClaims>, TokenRejection> {
        self.0
            .get(token)
            .cloned()
            .ok_or(TokenRejection::invalid_token("the token is not valid"))
    }
}

impl VerifyToken for Fixed {
    fn verify_cached(&self, token: &str) -> Option<Result<Arc<VerifiedClaims>, TokenRejection>> {
        if token.starts_with("slow-") {
            None
        } else {
            Some(self.lookup(token))
        }
    }

    fn verify(&self, token: &str) -> TokenFuture {
        let result = self.lookup(token);
        Box::pin(async move {
            tokio::task::yield_now().await;
            result
        })
    }
}

fn tokens() -> Fixed {
    Fixed::new(&[
        (
            "patient",
            json!({"client_id": "patient-app", "scope": "launch/patient patient/*.cruds", "patient": "pat-1"}),
        ),
        (
            "slow-patient",
            json!({"client_id": "patient-app", "scope": "patient/*.rs", "patient": "pat-1"}),
        ),
        (
            "clinician",
            json!({"client_id": "ehr", "sub": "prac-1", "scope": "openid fhirUser user/*.cruds", "fhirUser": "Practitioner/prac-1"}),
        ),
        (
            "obs-reader",
            json!({"client_id": "obs", "scope": "user/Observation.rs"}),
        ),
        (
            "lab",
            json!({"client_id": "lab", "scope": "system/Observation.cs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"}),
        ),
        (
            "lab-reader",
            json!({"client_id": "labr", "scope": "user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"}),
        ),
        ("expired", json!({"scope": "user/*.rs", "exp": 1000})),
        ("no-context", json!({"scope": "patient/*.rs"})),
        (
            "bound",
            json!({"scope": "user/*.rs", "cnf": {"x5t#S256": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"}}),
        ),
        ("proxy-context", json!({"scope": "patient/*.rs"})),
    ])
}

const LAB: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

fn observation(id: &str, patient: &str, category: &str) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": LAB, "code": category}]}],
        "subject": {"reference": format!("Patient/{patient}")},
        "performer": [{"reference": "Practitioner/prac-1"}],
        "valueQuantity": {"value": 1.50, "unit": "mg/dL"}
    })
}

/// What the backend saw.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    uri: String,
    if_none_exist: Option<String>,
    if_none_match: Option<String>,
    body: String,
    client: Option<String>,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

fn json_response(status: StatusCode, body: String) -> axum::response::Response {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/fhir+json")
        .body(Body::from(body))
        .unwrap()
}

async fn backend(log: Log, request: Request) -> axum::response::Response {
    let client = request
        .extensions()
        .get::<AccessContext>()
        .and_then(|c| c.client_id().map(str::to_owned));
    let method = request.method().to_string();
    let uri = request.uri().to_string();
    let (if_none_exist, if_none_match) = {
        let headers = request.headers();
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        (header("if-none-exist"), header("if-none-match"))
    };
    let body = String::from_utf8(
        request
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    log.0.lock().unwrap().push(Seen {
        method: method.clone(),
        uri: uri.clone(),
        if_none_exist,
        if_none_match,
        body: body.clone(),
        client,
    });
    let path = uri.split('?').next().unwrap().to_owned();
    let ok = |v: Value| json_response(StatusCode::OK, v.to_string());
    match (method.as_str(), path.as_str()) {
        ("GET", "/fhir/Patient/pat-1") => ok(json!({"resourceType": "Patient", "id": "pat-1"})),
        ("GET", "/fhir/Patient/pat-2") => ok(json!({"resourceType": "Patient", "id": "pat-2"})),
        // Written by hand so the decimal's exact bytes can be checked.
        ("GET", "/fhir/Observation/obs-1") => json_response(
            StatusCode::OK,
            r#"{"resourceType":"Observation","id":"obs-1","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"subject":{"reference":"Patient/pat-1"},"valueQuantity":{"value":1.50}}"#.into(),
        ),
        ("GET", "/fhir/Observation/obs-2") => ok(observation("obs-2", "pat-2", "laboratory")),
        ("GET", "/fhir/Observation/obs-vitals") => ok(observation("obs-vitals", "pat-1", "vital-signs")),
        ("GET", "/fhir/Observation/gone") => json_response(StatusCode::GONE, r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"deleted"}]}"#.into()),
        ("GET", "/fhir/Observation/missing") => json_response(StatusCode::NOT_FOUND, r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"Observation/missing is not known"}]}"#.into()),
        ("GET", "/fhir/Observation/garbage") => json_response(StatusCode::OK, "this is not json".into()),
        ("GET", "/fhir/Observation/dupe") => json_response(StatusCode::OK, r#"{"resourceType":"Observation","subject":{"reference":"Patient/pat-1"},"subject":{"reference":"Patient/pat-2"}}"#.into()),
        // Searchsets with one malformed entry: not an object; a repeated key in a member the
        // check does not otherwise read.
        ("GET", "/fhir/Condition") => json_response(StatusCode::OK, r#"{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/pat-1"}}},7]}"#.into()),
        ("GET", "/fhir/Encounter") => json_response(StatusCode::OK, r#"{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Encounter","id":"e1","subject":{"reference":"Patient/pat-1"},"note":{"a":1,"a":2}}}]}"#.into()),
        ("GET", "/fhir/Observation/huge") => json_response(StatusCode::OK, format!(r#"{{"resourceType":"Observation","note":[{{"text":"{}"}}]}}"#, "x".repeat(64 * 1024))),
        ("GET", "/fhir/Observation") => ok(json!({
            "resourceType": "Bundle", "type": "searchset", "total": 2,
            "entry": [
                {"fullUrl": "http://x/fhir/Observation/obs-1", "resource": observation("obs-1", "pat-1", "laboratory"), "search": {"mode": "match"}},
                {"fullUrl": "http://x/fhir/Observation/obs-2", "resource": observation("obs-2", "pat-2", "laboratory"), "search": {"mode": "match"}},
                {"fullUrl": "http://x/fhir/Observation/obs-v", "resource": observation("obs-v", "pat-1", "vital-signs"), "search": {"mode": "match"}},
                {"fullUrl": "http://x/fhir/Practitioner/prac-1", "resource": {"resourceType": "Practitioner", "id": "prac-1"}, "search": {"mode": "include"}}
            ]
        })),
        ("POST", "/fhir") => {
            let bundle: Value = serde_json::from_str(&body).unwrap();
            let n = bundle["entry"].as_array().map_or(0, Vec::len);
            let entries: Vec<Value> = (0..n)
                .map(|i| if i == 0 {
                    json!({"resource": {"resourceType": "Patient", "id": "pat-2"}, "response": {"status": "200 OK", "location": "Patient/pat-2/_history/1"}})
                } else {
                    json!({"resource": {"resourceType": "Bundle", "type": "searchset", "total": 2, "entry": [
                        {"resource": observation("obs-1", "pat-1", "laboratory"), "search": {"mode": "match"}},
                        {"resource": observation("obs-2", "pat-2", "laboratory"), "search": {"mode": "match"}}
                    ]}, "response": {"status": "200 OK"}})
                })
                .collect();
            ok(json!({"resourceType": "Bundle", "type": "batch-response", "entry": entries}))
        }
        ("POST", _) => json_response(StatusCode::CREATED, body),
        ("PUT", _) => json_response(StatusCode::OK, body),
        ("DELETE", _) => json_response(StatusCode::NO_CONTENT, String::new()),
        _ => json_response(StatusCode::OK, r#"{"resourceType":"CapabilityStatement"}"#.into()),
    }
}

fn app(layer: SmartLayer, log: &Log) -> Router {
    let log = log.clone();
    Router::new()
        .fallback(move |request: Request| backend(log.clone(), request))
        .layer(layer)
        .layer(ClassifyLayer::new(Classifier::new("/fhir")))
}

fn layer() -> SmartLayer {
    SmartLayer::new(tokens()).realm("test-ehr")
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
    decision: Option<SmartDecision>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

async fn send(app: Router, request: http::Request<Body>) -> Reply {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let decision = response.extensions().get::<SmartDecision>().cloned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
        decision,
    }
}

fn get(uri: &str, token: &str) -> http::Request<Body> {
    http::Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn with_body(method: &str, uri: &str, token: &str, body: Value) -> http::Request<Body> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/fhir+json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn rfc6750_no_token_is_401_with_a_bare_challenge() {
    // RFC 6750 §3: no credentials → 401 with `WWW-Authenticate: Bearer realm=...`, no error.
    let log = Log::default();
    let request = http::Request::get("/fhir/Patient/pat-1")
        .body(Body::empty())
        .unwrap();
    let reply = send(app(layer(), &log), request).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.headers["www-authenticate"],
        "Bearer realm=\"test-ehr\""
    );
    assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    assert_eq!(reply.headers["content-type"], "application/fhir+json");
    assert!(log.all().is_empty());
}

#[tokio::test]
async fn rfc6750_invalid_token_is_401_invalid_token_and_reveals_nothing() {
    // RFC 6750 §3.1 invalid_token.
    let log = Log::default();
    let reply = send(
        app(layer(), &log),
        get("/fhir/Patient/pat-1", "forged.token.value"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let challenge = reply.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"test-ehr\", error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(!reply.body.contains("forged"));
    assert!(log.all().is_empty());
    let expired = send(app(layer(), &log), get("/fhir/Patient/pat-1", "expired")).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

#[tokio::test]
async fn rfc6750_token_in_query_is_400_invalid_request() {
    // RFC 6750 §2.3 is not supported; §3.1 invalid_request.
    let log = Log::default();
    let request = http::Request::get("/fhir/Patient/pat-1?access_token=clinician")
        .body(Body::empty())
        .unwrap();
    let reply = send(app(layer(), &log), request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_request\""));
    assert!(log.all().is_empty());
}

#[tokio::test]
async fn rfc6750_insufficient_scope_is_403_naming_the_scope() {
    // RFC 6750 §3.1 insufficient_scope with the `scope` attribute.
    let log = Log::default();
    let reply = send(app(layer(), &log), get("/fhir/Condition/c-1", "obs-reader")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let challenge = reply.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"user/Condition.r\""),
        "{challenge}"
    );
    assert_eq!(reply.json()["issue"][0]["code"], "forbidden");
    let decision = reply.decision.unwrap();
    assert!(!decision.is_allowed());
    assert_eq!(decision.client_id.as_deref(), Some("obs"));
    assert!(log.all().is_empty());
}

#[tokio::test]
async fn uncached_token_goes_through_the_verification_future() {
    let log = Log::default();
    let reply = send(
        app(layer(), &log),
        get("/fhir/Patient/pat-1", "slow-patient"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(log.all()[0].client.as_deref(), Some("patient-app"));
    let refused = send(
        app(layer(), &log),
        get("/fhir/Patient/pat-2", "slow-patient"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let unknown = send(
        app(layer(), &log),
        get("/fhir/Patient/pat-2", "slow-unknown"),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metadata_and_smart_configuration_are_public() {
    // SMART App Launch 2.2 §"Conformance": .well-known/smart-configuration needs no token.
    let log = Log::default();
    let doc = SmartConfiguration::new("https://auth.example.org/token")
        .issuer("https://auth.example.org")
        .jwks_uri("https://auth.example.org/jwks")
        .authorization_endpoint("https://auth.example.org/authorize")
        .scopes_supported(["openid", "patient/*.rs"])
        .capability("launch-standalone");
    let served = app(layer().smart_configuration(doc), &log);
    let reply = send(
        served.clone(),
        http::Request::get("/fhir/.well-known/smart-configuration")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    let json = reply.json();
    assert_eq!(json["token_endpoint"], "https://auth.example.org/token");
    for cap in ["permission-v1", "permission-v2", "launch-standalone"] {
        assert!(
            json["capabilities"]
                .as_array()
                .unwrap()
                .contains(&cap.into()),
            "{cap}"
        );
    }
    let metadata = send(
        served,
        http::Request::get("/fhir/metadata")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(metadata.status, StatusCode::OK);
    assert!(metadata.decision.unwrap().public);
    // Not configured: passed on to the server.
    let passed = send(
        app(layer(), &log),
        http::Request::get("/fhir/.well-known/smart-configuration")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(passed.status, StatusCode::OK);
    assert_eq!(log.all().len(), 2);
}

#[tokio::test]
async fn without_classification_the_layer_refuses_with_500() {
    let log = Log::default();
    let log2 = log.clone();
    let unclassified = Router::new()
        .fallback(move |r: Request| backend(log2.clone(), r))
        .layer(layer());
    let reply = send(unclassified, get("/fhir/Patient/pat-1", "clinician")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.body.contains("fhirwall is misconfigured"));
    assert!(log.all().is_empty());
}

#[tokio::test]
async fn search_is_narrowed_on_the_wire() {
    // fhirwall issue #4 item 5: the inner service receives the compartment parameter.
    let log = Log::default();
    let reply = send(
        app(layer(), &log),
        get("/fhir/Observation?code=2339-0", "patient"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let seen = log.all();
    assert_eq!(
        seen[0].uri,
        "/fhir/Observation?code=2339-0&subject=Patient/pat-1"
    );
    assert!(reply.decision.unwrap().narrowed);
}

#[tokio::test]
async fn another_patients_resource_is_answered_like_a_missing_one() {
    // fhirwall issue #4 item 5: hidden resources get the same 404 as missing ones.
    let log = Log::default();
    let hidden = send(
        app(layer(), &log),
        get("/fhir/Observation/obs-2", "patient"),
    )
    .await;
    let missing = send(
        app(layer(), &log),
        get("/fhir/Observation/missing", "patient"),
    )
    .await;
    let gone = send(app(layer(), &log), get("/fhir/Observation/gone", "patient")).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(
        (missing.status, gone.status),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(hidden.body, missing.body);
    assert_eq!(hidden.body, gone.body);
    assert!(!hidden.body.contains("pat-2"));
    let patient = send(app(layer(), &log), get("/fhir/Patient/pat-2", "patient")).await;
    assert_eq!(
        (patient.status, patient.body),
        (StatusCode::NOT_FOUND, hidden.body)
    );
}

#[tokio::test]
async fn allowed_read_passes_byte_exact() {
    let log = Log::default();
    let reply = send(
        app(layer(), &log),
        get("/fhir/Observation/obs-1", "patient"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains(r#""value":1.50"#), "{}", reply.body);
    assert_eq!(
        reply.headers["content-length"],
        reply.body.len().to_string()
    );
}

#[tokio::test]
async fn search_results_of_other_patients_are_withheld() {
    let log = Log::default();
    let reply = send(app(layer(), &log), get("/fhir/Observation", "patient")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let bundle = reply.json();
    let ids: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["obs-1", "obs-v"],
        "the include of a Practitioner is not a shared type by default"
    );
    assert!(
        bundle.get("total").is_none(),
        "total would count what was withheld"
    );
    assert_eq!(reply.decision.unwrap().withheld, 2);

    let shared = layer().policy(AuthzPolicy::new().shared_types([ResourceType::Practitioner]));
    let reply = send(app(shared, &log), get("/fhir/Observation", "patient")).await;
    let ids: Vec<String> = reply.json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["obs-1", "obs-v", "prac-1"]);
}

#[tokio::test]
async fn granular_scope_is_rechecked_on_the_response() {
    // SMART App Launch 2.2 §"Finer-grained resource constraints": category=laboratory only.
    let log = Log::default();
    let lab = send(
        app(layer(), &log),
        get("/fhir/Observation/obs-1", "lab-reader"),
    )
    .await;
    assert_eq!(lab.status, StatusCode::OK);
    let vitals = send(
        app(layer(), &log),
        get("/fhir/Observation/obs-vitals", "lab-reader"),
    )
    .await;
    assert_eq!(vitals.status, StatusCode::NOT_FOUND);
    let search = send(
        app(layer(), &log),
        get(
            &format!("/fhir/Observation?category={LAB}|laboratory"),
            "lab-reader",
        ),
    )
    .await;
    assert_eq!(search.status, StatusCode::OK);
    let entries = search.json()["entry"].as_array().unwrap().len();
    assert_eq!(
        entries, 3,
        "matches are pre-filtered by the server; the Practitioner include is dropped"
    );
    let unfiltered = send(app(layer(), &log), get("/fhir/Observation", "lab-reader")).await;
    assert_eq!(unfiltered.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unparseable_or_oversized_responses_are_refused() {
    // Fail closed: what can't be checked is never passed on.
    let log = Log::default();
    let garbage = send(
        app(layer(), &log),
        get("/fhir/Observation/garbage", "patient"),
    )
    .await;
    assert_eq!(garbage.status, StatusCode::BAD_GATEWAY);
    assert!(!garbage.body.contains("this is not json"));
    let dupe = send(app(layer(), &log), get("/fhir/Observation/dupe", "patient")).await;
    assert_eq!(
        dupe.status,
        StatusCode::BAD_GATEWAY,
        "duplicate keys are a parser-differential"
    );
    let huge = send(
        app(layer().max_response_body(16 * 1024), &log),
        get("/fhir/Observation/huge", "patient"),
    )
    .await;
    assert_eq!(huge.status, StatusCode::BAD_GATEWAY);
    // A user/ token needs no check: the same body passes untouched.
    let passed = send(
        app(layer(), &log),
        get("/fhir/Observation/garbage", "clinician"),
    )
    .await;
    assert_eq!(
        (passed.status, passed.body.as_str()),
        (StatusCode::OK, "this is not json")
    );
}

/// A searchset is checked entry by entry, and an entry that can't be read makes the whole
/// response uncheckable (502): one that is not an object, or a repeated key anywhere in a
/// resource, even in an element the compartment check never reads.
#[tokio::test]
async fn a_malformed_entry_makes_the_searchset_uncheckable() {
    let log = Log::default();
    for uri in ["/fhir/Condition", "/fhir/Encounter"] {
        let reply = send(app(layer(), &log), get(uri, "patient")).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{uri}");
        assert!(!reply.body.contains("Patient/pat-1"), "{uri}");
    }
}

#[tokio::test]
async fn head_is_checked_as_get_and_conditional_headers_are_dropped() {
    let log = Log::default();
    let request = http::Request::head("/fhir/Observation/obs-2")
        .header("authorization", "Bearer patient")
        .header("if-none-match", "W/\"1\"")
        .body(Body::empty())
        .unwrap();
    let reply = send(app(layer(), &log), request).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let request = http::Request::head("/fhir/Observation/obs-1")
        .header("authorization", "Bearer patient")
        .body(Body::empty())
        .unwrap();
    let reply = send(app(layer(), &log), request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.is_empty());
    let seen = log.all();
    assert!(
        seen.iter()
            .all(|s| s.method == "GET" && s.if_none_match.is_none()),
        "{seen:?}"
    );
}

#[tokio::test]
async fn writes_must_land_in_the_compartment() {
    // fhirwall issue #4 item 5: the body of a write is checked before it is passed on.
    let log = Log::default();
    let theirs = with_body(
        "POST",
        "/fhir/Observation",
        "patient",
        observation("new", "pat-2", "laboratory"),
    );
    let reply = send(app(layer(), &log), theirs).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(log.all().is_empty());
    let mismatched = with_body(
        "POST",
        "/fhir/Observation",
        "patient",
        json!({"resourceType": "Patient", "id": "pat-1"}),
    );
    assert_eq!(
        send(app(layer(), &log), mismatched).await.status,
        StatusCode::BAD_REQUEST
    );
    let mine = with_body(
        "POST",
        "/fhir/Observation",
        "patient",
        observation("new", "pat-1", "laboratory"),
    );
    let reply = send(app(layer(), &log), mine).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(log.all().len(), 1);
    // The lab system may only create laboratory observations (system/Observation.cs?category=...).
    let vitals = with_body(
        "POST",
        "/fhir/Observation",
        "lab",
        observation("v", "pat-2", "vital-signs"),
    );
    assert_eq!(
        send(app(layer(), &log), vitals).await.status,
        StatusCode::FORBIDDEN
    );
    let labs = with_body(
        "POST",
        "/fhir/Observation",
        "lab",
        observation("l", "pat-2", "laboratory"),
    );
    assert_eq!(
        send(app(layer(), &log), labs).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn update_reads_the_stored_resource_first() {
    let log = Log::default();
    let hijack = with_body(
        "PUT",
        "/fhir/Observation/obs-2",
        "patient",
        observation("obs-2", "pat-1", "laboratory"),
    );
    let reply = send(app(layer(), &log), hijack).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let seen = log.all();
    assert_eq!(seen.len(), 1, "only the read, never the write: {seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].uri.as_str()),
        ("GET", "/fhir/Observation/obs-2")
    );

    let log = Log::default();
    let mine = with_body(
        "PUT",
        "/fhir/Observation/obs-1",
        "patient",
        observation("obs-1", "pat-1", "laboratory"),
    );
    let reply = send(app(layer(), &log), mine).await;
    assert_eq!(reply.status, StatusCode::OK);
    let methods: Vec<String> = log.all().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["GET", "PUT"]);

    let log = Log::default();
    let delete = http::Request::delete("/fhir/Observation/obs-2")
        .header("authorization", "Bearer patient")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(app(layer(), &log), delete).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(log.all().len(), 1);
}

#[tokio::test]
async fn conditional_create_is_narrowed() {
    // FHIR R4 §3.1.0.8.1 If-None-Exist, narrowed to the compartment.
    let log = Log::default();
    let mut request = with_body(
        "POST",
        "/fhir/Observation",
        "patient",
        observation("x", "pat-1", "laboratory"),
    );
    request
        .headers_mut()
        .insert("if-none-exist", "identifier=http://x|1".parse().unwrap());
    let reply = send(app(layer(), &log), request).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        log.all()[0].if_none_exist.as_deref(),
        Some("identifier=http://x|1&subject=Patient/pat-1")
    );
}

#[tokio::test]
async fn batch_entries_are_narrowed_and_answered_per_entry() {
    let log = Log::default();
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/pat-1"}},
        {"request": {"method": "GET", "url": "Observation?code=x"}}
    ]});
    let reply = send(
        app(layer(), &log),
        with_body("POST", "/fhir", "patient", bundle),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let sent: Value = serde_json::from_str(&log.all()[0].body).unwrap();
    assert_eq!(
        sent["entry"][1]["request"]["url"],
        "Observation?code=x&subject=Patient/pat-1"
    );
    // The backend answered entry 0 with pat-2 and entry 1 with both patients' observations.
    let answer = reply.json();
    assert_eq!(
        answer["entry"][0],
        json!({"response": {"status": "404 Not Found"}})
    );
    let inner = answer["entry"][1]["resource"]["entry"].as_array().unwrap();
    assert_eq!(inner.len(), 1);
    assert_eq!(inner[0]["resource"]["id"], "obs-1");
    assert!(!reply.body.contains("Patient/pat-2"));
}

#[tokio::test]
async fn transaction_with_one_forbidden_entry_is_refused_whole() {
    let log = Log::default();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("a", "pat-1", "laboratory"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": observation("b", "pat-2", "laboratory"), "request": {"method": "POST", "url": "Observation"}}
    ]});
    let reply = send(
        app(layer(), &log),
        with_body("POST", "/fhir", "patient", bundle),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["issue"][1]["expression"][0], "Bundle.entry[1]");
    assert!(log.all().is_empty());
}

fn with_extensions(router: Router, thumbprint: Option<[u8; 32]>, peer: Option<&str>) -> Router {
    let peer = peer.map(|p| p.parse().unwrap());
    router.layer(tower::util::MapRequestLayer::new(
        move |mut request: Request| {
            if let Some(t) = thumbprint {
                request.extensions_mut().insert(CertificateThumbprint(t));
            }
            if let Some(addr) = peer {
                request.extensions_mut().insert(RemoteAddr(addr));
            }
            request
        },
    ))
}

#[tokio::test]
async fn rfc8705_certificate_bound_tokens() {
    // RFC 8705 §3: `cnf.x5t#S256` must match the presented certificate's thumbprint.
    let log = Log::default();
    let none = send(
        with_extensions(app(layer(), &log), None, None),
        get("/fhir/Patient/pat-1", "bound"),
    )
    .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let wrong = send(
        with_extensions(app(layer(), &log), Some([8; 32]), None),
        get("/fhir/Patient/pat-1", "bound"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = send(
        with_extensions(app(layer(), &log), Some([7; 32]), None),
        get("/fhir/Patient/pat-1", "bound"),
    )
    .await;
    assert_eq!(right.status, StatusCode::OK);
    let required = layer().certificate_binding(CertificateBinding::Required);
    let unbound = send(
        with_extensions(app(required, &log), Some([7; 32]), None),
        get("/fhir/Patient/pat-1", "clinician"),
    )
    .await;
    assert_eq!(unbound.status, StatusCode::UNAUTHORIZED);
    let off = layer().certificate_binding(CertificateBinding::Off);
    assert_eq!(
        send(app(off, &log), get("/fhir/Patient/pat-1", "bound"))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn patient_scope_without_context_is_refused() {
    // fhirwall issue #4 item 3: fail closed when the compartment is unknown.
    let log = Log::default();
    let reply = send(app(layer(), &log), get("/fhir/Observation", "no-context")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(log.all().is_empty());
}

#[tokio::test]
async fn patient_context_from_a_trusted_proxy_header_only() {
    let config = ContextConfig::new().patient_context(PatientContextSource::ProxyHeader {
        header: http::HeaderName::from_static("x-patient-id"),
        proxies: TrustedProxies::new(["10.0.0.0/8"]).unwrap(),
    });
    let request = || {
        http::Request::get("/fhir/Observation")
            .header("authorization", "Bearer proxy-context")
            .header("x-patient-id", "pat-1")
            .body(Body::empty())
            .unwrap()
    };
    let log = Log::default();
    let trusted = with_extensions(
        app(layer().context(config.clone()), &log),
        None,
        Some("10.1.2.3:5000"),
    );
    assert_eq!(send(trusted, request()).await.status, StatusCode::OK);
    assert!(log.all()[0].uri.ends_with("subject=Patient/pat-1"));
    let untrusted = with_extensions(
        app(layer().context(config), &log),
        None,
        Some("203.0.113.9:5000"),
    );
    assert_eq!(
        send(untrusted, request()).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// The authorization server's side of a whole-stack test: an ES256 key pair.
struct Issuer {
    signing: jsonwebtoken::EncodingKey,
    public_pem: String,
}

impl Issuer {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Issuer {
            signing: jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes())
                .unwrap(),
            public_pem: key.public_key_pem(),
        }
    }

    fn token(&self, claims: Value) -> String {
        let mut claims = claims;
        let object = claims.as_object_mut().unwrap();
        object.insert("iss".into(), "https://auth.example.org".into());
        object.insert("aud".into(), "https://fhir.example.org/fhir".into());
        object.entry("exp").or_insert_with(|| (now() + 600).into());
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims,
            &self.signing,
        )
        .unwrap()
    }

    fn verifier(&self) -> JwtVerifier {
        JwtVerifier::builder()
            .issuer("https://auth.example.org")
            .audience("https://fhir.example.org/fhir")
            .keys(KeySet::from_pem(&self.public_pem).unwrap())
            .build()
            .unwrap()
    }
}

#[tokio::test]
async fn whole_stack_with_signed_tokens() {
    let issuer = Issuer::new();
    let verifier: Arc<dyn VerifyToken> = Arc::new(issuer.verifier());
    let log = Log::default();
    let stack = app(SmartLayer::with_verifier(verifier), &log);
    let patient =
        issuer.token(json!({"client_id": "app", "scope": "patient/*.rs", "patient": "pat-1"}));
    // First request: signature checked through the future; second: from the cache.
    for _ in 0..2 {
        assert_eq!(
            send(stack.clone(), get("/fhir/Patient/pat-1", &patient))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            send(stack.clone(), get("/fhir/Patient/pat-2", &patient))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
    let expired = issuer.token(json!({"scope": "user/*.rs", "exp": now() - 3600}));
    assert_eq!(
        send(stack.clone(), get("/fhir/Patient/pat-1", &expired))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let other = Issuer::new().token(json!({"scope": "user/*.rs"}));
    assert_eq!(
        send(stack.clone(), get("/fhir/Patient/pat-1", &other))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let malformed = issuer.token(json!({"scope": "user/*.rs user/Observation.rsXYZ"}));
    assert_eq!(
        send(stack.clone(), get("/fhir/Patient/pat-1", &malformed))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let lab = issuer.token(json!({"client_id": "lab", "scope": format!("system/Observation.cs?category={LAB}|laboratory")}));
    let create = with_body(
        "POST",
        "/fhir/Observation",
        &lab,
        observation("l", "pat-2", "laboratory"),
    );
    assert_eq!(
        send(stack.clone(), create).await.status,
        StatusCode::CREATED
    );
    let read = get("/fhir/Observation/obs-1", &lab);
    assert_eq!(send(stack, read).await.status, StatusCode::FORBIDDEN);
}

mod fuzz {
    //! Property tests of the response and request-body checks (untrusted input from the
    //! server and the client): never a panic, never an unchecked body, never pat-2's data.
    use super::*;
    use proptest::prelude::*;

    /// A backend that answers every request with the same body.
    fn answering(body: Vec<u8>, status: StatusCode) -> Router {
        let body = Arc::new(body);
        Router::new()
            .fallback(move |_: Request| {
                let body = body.clone();
                async move {
                    http::Response::builder()
                        .status(status)
                        .header("content-type", "application/fhir+json")
                        .body(Body::from(body.to_vec()))
                        .unwrap()
                }
            })
            .layer(layer().policy(AuthzPolicy::new().shared_types([ResourceType::Practitioner])))
            .layer(ClassifyLayer::new(Classifier::new("/fhir")))
    }

    fn run(app: Router, request: http::Request<Body>) -> Reply {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(send(app, request))
    }

    fn reference() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!({"reference": "Patient/pat-1"})),
            Just(json!({"reference": "Patient/pat-2"})),
            Just(json!({"reference": "Patient/pat-1/_history/3"})),
            Just(json!({"reference": "https://elsewhere.example.org/fhir/Patient/pat-1"})),
            Just(json!({"reference": "#p"})),
            Just(json!({"reference": "urn:uuid:1"})),
            Just(json!({"reference": "Group/g"})),
            Just(json!({"type": "Patient", "identifier": {"value": "1"}})),
            Just(json!({"display": "someone"})),
            Just(json!("Patient/pat-1")),
            Just(json!(7)),
        ]
    }

    fn resource() -> impl Strategy<Value = Value> {
        let observation = (
            proptest::option::of(reference()),
            proptest::collection::vec(reference(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(subject, performer, contained)| {
                let mut o =
                    json!({"resourceType": "Observation", "id": "o", "performer": performer});
                if let Some(s) = subject {
                    o["subject"] = s;
                }
                if contained {
                    o["contained"] = json!([{"resourceType": "Patient", "id": "p"}]);
                }
                o
            });
        let patient = prop_oneof![Just("pat-1"), Just("pat-2"), Just("pat-3")]
            .prop_map(|id| json!({"resourceType": "Patient", "id": id}));
        prop_oneof![
            observation,
            patient,
            Just(json!({"resourceType": "Practitioner", "id": "prac-1"})),
            Just(json!({"resourceType": "Organization", "id": "org-1"})),
            Just(json!({"resourceType": "OperationOutcome", "issue": []})),
            Just(json!({"resourceType": "NotAType"})),
            Just(json!({"id": "no-type"})),
        ]
    }

    fn bundle() -> impl Strategy<Value = Value> {
        let entry = (
            proptest::option::of(resource()),
            prop_oneof![
                Just(None),
                Just(Some("match")),
                Just(Some("include")),
                Just(Some("outcome"))
            ],
        )
            .prop_map(|(resource, mode)| {
                let mut e = json!({"fullUrl": "x"});
                if let Some(r) = resource {
                    e["resource"] = r;
                }
                if let Some(m) = mode {
                    e["search"] = json!({"mode": m});
                }
                e
            });
        (proptest::collection::vec(entry, 0..6), any::<bool>()).prop_map(|(entries, total)| {
            let mut b = json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
            if total {
                b["total"] = json!(99);
            }
            b
        })
    }

    /// What the strict compartment rule lets a pat-1 token see, recomputed independently.
    fn is_pat1s(resource: &Value) -> bool {
        let refs = |v: &Value| -> Vec<Value> {
            match v {
                Value::Array(items) => items.clone(),
                Value::Null => vec![],
                other => vec![other.clone()],
            }
        };
        match resource["resourceType"].as_str() {
            Some("Patient") => resource["id"] == "pat-1",
            Some("Observation") => {
                let mut all = refs(&resource["subject"]);
                all.extend(refs(&resource["performer"]));
                let mut mine = false;
                for r in all {
                    match r.get("reference").and_then(Value::as_str) {
                        Some("Patient/pat-1") | Some("Patient/pat-1/_history/3") => mine = true,
                        Some("Group/g") => {}
                        _ if r.get("reference").is_none()
                            && r.get("type").is_none()
                            && r.is_object() => {}
                        _ => return false,
                    }
                }
                mine
            }
            Some("Practitioner") | Some("OperationOutcome") => true,
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Arbitrary bytes from the server: refused (502), hidden (404) or checked (200), never a panic.
        #[test]
        fn arbitrary_response_bodies(body in proptest::collection::vec(any::<u8>(), 0..200), search in any::<bool>()) {
            let uri = if search { "/fhir/Observation" } else { "/fhir/Observation/x" };
            let reply = run(answering(body.clone(), StatusCode::OK), get(uri, "patient"));
            prop_assert!(matches!(reply.status.as_u16(), 200 | 404 | 502), "{}", reply.status);
            if reply.status == StatusCode::OK && !body.iter().all(u8::is_ascii_whitespace) {
                let value: Value = serde_json::from_str(&reply.body).unwrap();
                prop_assert!(value.is_object());
            }
        }

        /// Generated searchsets: every resource that comes back is pat-1's (or shared), and
        /// `total` never survives a withheld entry.
        #[test]
        fn generated_bundles_never_leak(bundle in bundle()) {
            let reply = run(answering(bundle.to_string().into_bytes(), StatusCode::OK), get("/fhir/Observation", "patient"));
            // An entry whose type can't be told refuses the whole response (fail closed).
            let untyped = bundle["entry"].as_array().unwrap().iter().any(|e| {
                e.get("resource").is_some_and(|r| {
                    r["resourceType"].as_str().is_none_or(|t| t == "NotAType")
                })
            });
            if untyped {
                prop_assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
                return Ok(());
            }
            prop_assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            let out = reply.json();
            let entries = out["entry"].as_array().cloned().unwrap_or_default();
            for e in &entries {
                let r = &e["resource"];
                prop_assert!(is_pat1s(r), "leaked {r}");
            }
            if entries.len() < bundle["entry"].as_array().unwrap().len() {
                prop_assert!(out.get("total").is_none());
            }
        }

        /// Generated single resources: 200 only for pat-1's.
        #[test]
        fn generated_reads_never_leak(resource in resource()) {
            let reply = run(answering(resource.to_string().into_bytes(), StatusCode::OK), get("/fhir/Observation/x", "patient"));
            match reply.status.as_u16() {
                200 => prop_assert!(is_pat1s(&resource), "leaked {resource}"),
                404 | 502 => {}
                other => prop_assert!(false, "status {other}"),
            }
        }

        /// Request bodies from the client: a write goes through only if it is pat-1's.
        #[test]
        fn generated_writes_land_in_the_compartment(resource in resource(), raw in proptest::collection::vec(any::<u8>(), 0..40), use_raw in any::<bool>()) {
            let body = if use_raw { raw } else { resource.to_string().into_bytes() };
            let request = http::Request::post("/fhir/Observation")
                .header("authorization", "Bearer patient")
                .header("content-type", "application/fhir+json")
                .body(Body::from(body.clone()))
                .unwrap();
            let reply = run(answering(b"{}".to_vec(), StatusCode::CREATED), request);
            match reply.status.as_u16() {
                201 => {
                    let sent: Value = serde_json::from_slice(&body).unwrap();
                    prop_assert!(sent["resourceType"] == "Observation" && is_pat1s(&sent), "wrote {sent}");
                }
                400 | 403 | 502 => {}
                other => prop_assert!(false, "status {other}"),
            }
        }
    }
}
