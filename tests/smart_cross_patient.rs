#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Cross-patient suite (fhirwall issue #4, "Tests"): a `patient/` token for `pat-1`, real
//! ES256-signed tokens checked by `JwtVerifier`, through SmartLayer in front of the demo FHIR
//! server with its sample data plus traps (an Observation of pat-2 performed by pat-1, a
//! Patient pat-2 linking to pat-1, an Observation moved from pat-2 to pat-1). Read, search,
//! `_include`, `_revinclude`, `$everything`, history, batch, transaction and conditional
//! update: no resource of pat-2 ever comes back, and no write lands in pat-2's compartment.

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::Classifier;
use fhirwall::smart::token::{JwtVerifier, KeySet};
use fhirwall::smart::{AuthzPolicy, SmartLayer, COMMON_SHARED_TYPES};
use fhirwall_demo::{router, sample, DemoConfig, MemoryStore};
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

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

    fn token(&self, scope: &str, patient: &str) -> String {
        let claims = json!({
            "iss": "https://auth.example.org", "aud": "http://127.0.0.1:8080/fhir",
            "exp": now() + 600, "client_id": "patient-app", "scope": scope, "patient": patient,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims,
            &self.signing,
        )
        .unwrap()
    }
}

struct Suite {
    app: Router,
    store: MemoryStore,
    /// The URIs the demo server received (after SmartLayer).
    seen: Arc<Mutex<Vec<String>>>,
    reader: String,
    writer: String,
    /// Ids of pat-2's Observations.
    theirs: Vec<String>,
}

fn suite() -> Suite {
    let store = MemoryStore::new();
    sample::load(&store, sample::DEFAULT_SEED);
    // Traps: in pat-1's compartment by the CompartmentDefinition, but pat-2's data.
    store
        .put(json!({"resourceType": "Observation", "id": "obs-trap", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/pat-2"}, "performer": [{"reference": "Patient/pat-1"}]}))
        .unwrap();
    let mut pat2 = store.read("Patient", "pat-2").unwrap();
    pat2["link"] = json!([{"other": {"reference": "Patient/pat-1"}, "type": "seealso"}]);
    store.put(pat2).unwrap();
    // An Observation that belonged to pat-2 and now belongs to pat-1: its first version is pat-2's.
    store
        .put(
            json!({"resourceType": "Observation", "id": "obs-moved", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
            "subject": {"reference": "Patient/pat-2"}, "valueQuantity": {"value": 39.1}}),
        )
        .unwrap();
    store
        .put(
            json!({"resourceType": "Observation", "id": "obs-moved", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
            "subject": {"reference": "Patient/pat-1"}, "valueQuantity": {"value": 37.1}}),
        )
        .unwrap();
    let theirs: Vec<String> = store
        .all("Observation")
        .into_iter()
        .filter(|o| o["subject"]["reference"] == "Patient/pat-2")
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(theirs.len() > 2);

    let issuer = Issuer::new();
    let verifier = JwtVerifier::builder()
        .issuer("https://auth.example.org")
        .audience("http://127.0.0.1:8080/fhir")
        .keys(KeySet::from_pem(&issuer.public_pem).unwrap())
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = router(store.clone(), DemoConfig::default())
        .layer(tower::util::MapRequestLayer::new(
            move |request: Request| {
                log.lock().unwrap().push(request.uri().to_string());
                request
            },
        ))
        .layer(
            SmartLayer::new(verifier).policy(AuthzPolicy::new().shared_types(COMMON_SHARED_TYPES)),
        )
        .layer(ClassifyLayer::new(Classifier::new("/fhir")));
    Suite {
        app,
        store,
        seen,
        reader: issuer.token("launch/patient patient/*.rs", "pat-1"),
        writer: issuer.token("launch/patient patient/*.cruds", "pat-1"),
        theirs,
    }
}

struct Reply {
    status: StatusCode,
    body: Value,
}

impl Suite {
    async fn send(&self, request: http::Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        assert_no_pat2(&body);
        Reply { status, body }
    }

    async fn get(&self, uri: &str) -> Reply {
        let request = http::Request::get(uri)
            .header("authorization", format!("Bearer {}", self.reader))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    async fn write(&self, method: &str, uri: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.writer))
            .header("content-type", "application/fhir+json");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        self.send(builder.body(body).unwrap()).await
    }

    fn last_seen(&self) -> String {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

/// Fails when any resource in `value` is pat-2's: the Patient itself, or anything that names
/// `Patient/pat-2` in a reference.
fn assert_no_pat2(value: &Value) {
    match value {
        Value::Object(map) => {
            if map.get("resourceType") == Some(&json!("Patient"))
                && map.get("id") == Some(&json!("pat-2"))
            {
                panic!("Patient/pat-2 came back: {value}");
            }
            if let Some(Value::String(r)) = map.get("reference") {
                let r = r.split("/_history").next().unwrap();
                if r == "Patient/pat-2" || r.ends_with("/Patient/pat-2") {
                    panic!("a resource naming Patient/pat-2 came back: {value}");
                }
            }
            map.values().for_each(assert_no_pat2);
        }
        Value::Array(items) => items.iter().for_each(assert_no_pat2),
        _ => {}
    }
}

fn resources(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x.get("resource")).collect())
        .unwrap_or_default()
}

fn ids_of<'a>(bundle: &'a Value, ty: &str) -> Vec<&'a str> {
    resources(bundle)
        .into_iter()
        .filter(|r| r["resourceType"] == ty)
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn read() {
    let s = suite();
    assert_eq!(s.get("/fhir/Patient/pat-1").await.status, StatusCode::OK);
    assert_eq!(
        s.get("/fhir/Patient/pat-2").await.status,
        StatusCode::NOT_FOUND
    );
    for id in &s.theirs {
        assert_eq!(
            s.get(&format!("/fhir/Observation/{id}")).await.status,
            StatusCode::NOT_FOUND,
            "{id}"
        );
    }
    assert_eq!(
        s.get("/fhir/Observation/obs-trap").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get("/fhir/Observation/obs-moved").await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.get("/fhir/Observation/obs-moved/_history/1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get("/fhir/Observation/obs-moved/_history/2").await.status,
        StatusCode::OK
    );
    // A missing resource and another patient's are answered alike.
    let missing = s.get("/fhir/Observation/no-such-thing").await;
    let hidden = s.get(&format!("/fhir/Observation/{}", s.theirs[0])).await;
    assert_eq!((missing.status, missing.body), (hidden.status, hidden.body));
    // Shared types are configured: the practitioner is readable.
    assert_eq!(
        s.get("/fhir/Practitioner/prac-1").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn search() {
    let s = suite();
    let mine = s.get("/fhir/Observation?_count=100").await;
    assert_eq!(mine.status, StatusCode::OK);
    assert!(!ids_of(&mine.body, "Observation").is_empty());
    assert!(
        s.last_seen().ends_with("subject=Patient/pat-1"),
        "{}",
        s.last_seen()
    );
    assert!(!ids_of(&mine.body, "Observation").contains(&"obs-trap"));
    let patients = s.get("/fhir/Patient").await;
    assert_eq!(ids_of(&patients.body, "Patient"), ["pat-1"]);
    let linked = s.get("/fhir/Patient?link=Patient/pat-1").await;
    assert!(
        ids_of(&linked.body, "Patient").is_empty() || ids_of(&linked.body, "Patient") == ["pat-1"]
    );
    let performer = s.get("/fhir/Observation?performer=Patient/pat-1").await;
    assert!(!ids_of(&performer.body, "Observation").contains(&"obs-trap"));
    assert_eq!(
        s.get("/fhir/Observation?subject=Patient/pat-2")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/fhir/Observation?patient=pat-2").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/fhir/Patient?_id=pat-2").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/fhir/Patient?_has:Observation:patient:code=8867-4")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/fhir/Observation?subject.name=Okafor").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/fhir?_type=Observation").await.status,
        StatusCode::FORBIDDEN
    );
    let post = http::Request::post("/fhir/Observation/_search")
        .header("authorization", format!("Bearer {}", s.reader))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("code=8867-4"))
        .unwrap();
    let post = s.send(post).await;
    assert_eq!(post.status, StatusCode::OK);
    // Compartment searches: only the patient's own.
    assert_eq!(
        s.get("/fhir/Patient/pat-1/Observation").await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.get("/fhir/Patient/pat-2/Observation").await.status,
        StatusCode::FORBIDDEN
    );
    let all = s.get("/fhir/Patient/pat-1/*").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(
        s.get("/fhir/Patient/pat-2/*").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn paging_stays_narrowed() {
    let s = suite();
    let first = s.get("/fhir/Observation?_count=2").await;
    let next = first.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next");
    let Some(next) = next else { return };
    let url = next["url"].as_str().unwrap();
    let path = &url[url.find("/fhir").unwrap()..];
    let page = s.get(path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(s.last_seen().contains("subject=Patient/pat-1"));
}

#[tokio::test]
async fn include_and_revinclude() {
    let s = suite();
    let included = s.get("/fhir/Observation?_include=Observation:subject&_include=Observation:performer&_count=100").await;
    assert_eq!(included.status, StatusCode::OK);
    assert_eq!(ids_of(&included.body, "Patient"), ["pat-1"]);
    let rev = s.get("/fhir/Patient?_revinclude=Observation:subject&_revinclude=Observation:performer&_count=100").await;
    assert_eq!(rev.status, StatusCode::OK);
    assert_eq!(ids_of(&rev.body, "Patient"), ["pat-1"]);
    let obs = ids_of(&rev.body, "Observation");
    assert!(!obs.is_empty());
    assert!(
        !obs.contains(&"obs-trap"),
        "obs-trap names pat-1 as performer but is pat-2's"
    );
    let iterate = s.get("/fhir/Encounter?_revinclude=Observation:encounter&_include:iterate=Observation:subject").await;
    assert_eq!(iterate.status, StatusCode::OK);
}

#[tokio::test]
async fn everything() {
    let s = suite();
    let mine = s.get("/fhir/Patient/pat-1/$everything").await;
    assert_eq!(mine.status, StatusCode::OK);
    assert!(ids_of(&mine.body, "Observation").len() > 2);
    assert_eq!(ids_of(&mine.body, "Patient"), ["pat-1"]);
    assert_eq!(
        s.get("/fhir/Patient/pat-2/$everything").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/fhir/Patient/$everything").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn history() {
    let s = suite();
    let moved = s.get("/fhir/Observation/obs-moved/_history").await;
    assert_eq!(moved.status, StatusCode::OK);
    let versions = resources(&moved.body);
    assert_eq!(versions.len(), 1, "only the version that is pat-1's");
    assert_eq!(
        s.get("/fhir/Patient/pat-2/_history").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/fhir/Observation/{}/_history", s.theirs[0]))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get("/fhir/Observation/_history").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(s.get("/fhir/_history").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.get("/fhir/Patient/pat-1/_history").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn batch() {
    let s = suite();
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/pat-1"}},
        {"request": {"method": "GET", "url": "Observation?code=8867-4"}},
        {"request": {"method": "GET", "url": "Observation/obs-trap"}},
        {"request": {"method": "GET", "url": "Observation/obs-moved/_history"}},
        {"request": {"method": "GET", "url": format!("Observation/{}", s.theirs[0])}}
    ]});
    let reply = s.write("POST", "/fhir", bundle, &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let entries = reply.body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    assert_eq!(entries[0]["resource"]["id"], "pat-1");
    assert!(entries[2].get("resource").is_none());
    assert!(entries[4].get("resource").is_none());
    // A batch naming pat-2 outright is refused as a whole.
    let bad = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/pat-1"}},
        {"request": {"method": "GET", "url": "Patient/pat-2"}}
    ]});
    assert_eq!(
        s.write("POST", "/fhir", bad, &[]).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn transaction() {
    let s = suite();
    let before = s.store.count("Observation");
    let theirs = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "a"}, "subject": {"reference": "Patient/pat-1"}}, "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "b"}, "subject": {"reference": "Patient/pat-2"}}, "request": {"method": "POST", "url": "Observation"}}
    ]});
    assert_eq!(
        s.write("POST", "/fhir", theirs, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(s.store.count("Observation"), before);
    let mine = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "a"}, "subject": {"reference": "Patient/pat-1"}}, "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "GET", "url": "Observation?code=8867-4"}}
    ]});
    let reply = s.write("POST", "/fhir", mine, &[]).await;
    assert!(reply.status.is_success(), "{} {}", reply.status, reply.body);
    assert_eq!(s.store.count("Observation"), before + 1);
    let update = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "id": s.theirs[0], "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/pat-1"}}, "request": {"method": "PUT", "url": format!("Observation/{}", s.theirs[0])}}
    ]});
    assert_eq!(
        s.write("POST", "/fhir", update, &[]).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn writes_never_land_in_pat2() {
    let s = suite();
    let target = &s.theirs[0];
    let stored = s.store.read("Observation", target).unwrap();
    let hijack = json!({"resourceType": "Observation", "id": target, "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/pat-1"}});
    let reply = s
        .write("PUT", &format!("/fhir/Observation/{target}"), hijack, &[])
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let delete = s
        .write(
            "DELETE",
            &format!("/fhir/Observation/{target}"),
            Value::Null,
            &[],
        )
        .await;
    assert_eq!(delete.status, StatusCode::NOT_FOUND);
    assert_eq!(s.store.read("Observation", target).unwrap(), stored);
    let create = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/pat-2"}});
    assert_eq!(
        s.write("POST", "/fhir/Observation", create, &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let mine = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/pat-1"}});
    assert_eq!(
        s.write("POST", "/fhir/Observation", mine, &[]).await.status,
        StatusCode::CREATED
    );
    let own = s
        .store
        .all("Observation")
        .into_iter()
        .find(|o| o["subject"]["reference"] == "Patient/pat-1")
        .unwrap();
    let id = own["id"].as_str().unwrap();
    let mut changed = own.clone();
    changed["status"] = json!("amended");
    assert_eq!(
        s.write("PUT", &format!("/fhir/Observation/{id}"), changed, &[])
            .await
            .status,
        StatusCode::OK
    );
    let moved = json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/pat-2"}});
    assert_eq!(
        s.write("PUT", &format!("/fhir/Observation/{id}"), moved, &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn conditional_update_and_create() {
    let s = suite();
    let body = json!({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "subject": {"reference": "Patient/pat-1"}});
    let reply = s
        .write(
            "PUT",
            "/fhir/Observation?code=http://loinc.org|8867-4",
            body.clone(),
            &[],
        )
        .await;
    assert_ne!(
        reply.status,
        StatusCode::OK,
        "the demo server does not do conditional update"
    );
    assert!(
        s.last_seen().ends_with("subject=Patient/pat-1"),
        "{}",
        s.last_seen()
    );
    let mut with_id = body.clone();
    with_id["id"] = json!(s.theirs[0]);
    let reply = s
        .write(
            "PUT",
            "/fhir/Observation?code=http://loinc.org|8867-4",
            with_id,
            &[],
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "an id could make the server update another patient's resource"
    );
    assert_eq!(
        s.write(
            "PUT",
            "/fhir/Observation?subject=Patient/pat-2",
            body.clone(),
            &[]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // Conditional create: the condition is narrowed, so a match of pat-2's can't answer it
    // (unnarrowed, `_id` would match pat-2's Observation and the server would return it).
    let count = s.store.count("Observation");
    let condition = format!("_id={}", s.theirs[0]);
    let reply = s
        .write(
            "POST",
            "/fhir/Observation",
            body,
            &[("if-none-exist", condition.as_str())],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(s.store.count("Observation"), count + 1);
}
