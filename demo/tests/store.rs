//! The demo server's non-search interactions, driven through the router with `oneshot`:
//! metadata, read, vread, history, create, update, delete, batch, transaction.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{app, bundle, get, send, BASE_URL};
use http::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn metadata_is_a_capability_statement() {
    let (app, _) = app();
    let cs = get(&app, "/fhir/metadata").await;
    assert_eq!(cs.status, StatusCode::OK);
    assert_eq!(cs.header("content-type"), Some("application/fhir+json"));
    assert_eq!(cs.body["resourceType"], "CapabilityStatement");
    assert_eq!(cs.body["fhirVersion"], "4.0.1");
    assert_eq!(cs.body["kind"], "instance");
    let resources = cs.body["rest"][0]["resource"].as_array().unwrap();
    let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
    let params: Vec<&str> = patient["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["_id", "identifier", "name", "family", "birthdate"] {
        assert!(params.contains(&name), "{name}");
    }
    assert_eq!(patient["operation"][0]["name"], "everything");
    assert!(patient["searchRevInclude"]
        .as_array()
        .unwrap()
        .contains(&json!("Observation:subject")));
    for ty in [
        "Observation",
        "Encounter",
        "Condition",
        "MedicationRequest",
        "Practitioner",
        "Organization",
    ] {
        assert!(resources.iter().any(|r| r["type"] == ty), "{ty}");
    }
}

#[tokio::test]
async fn read_with_etag_and_last_modified() {
    let (app, _) = app();
    let pat = get(&app, "/fhir/Patient/pat-1").await;
    assert_eq!(pat.status, StatusCode::OK);
    assert_eq!(pat.header("content-type"), Some("application/fhir+json"));
    assert_eq!(pat.header("etag"), Some("W/\"1\""));
    assert!(pat.header("last-modified").unwrap().ends_with(" GMT"));
    assert_eq!(pat.body["id"], "pat-1");
    assert_eq!(pat.body["name"][0]["family"], "Hart");
    assert_eq!(pat.body["meta"]["versionId"], "1");

    let not_modified = send(
        &app,
        "GET",
        "/fhir/Patient/pat-1",
        None,
        &[("if-none-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);

    assert_eq!(
        get(&app, "/fhir/Patient/nobody")
            .await
            .outcome(StatusCode::NOT_FOUND),
        "not-found"
    );
    assert_eq!(
        get(&app, "/fhir/Nonsense/1")
            .await
            .outcome(StatusCode::NOT_FOUND),
        "not-supported"
    );
    assert_eq!(
        get(&app, "/fhir/Patient/bad%20id")
            .await
            .outcome(StatusCode::BAD_REQUEST),
        "invalid"
    );
    assert_eq!(
        get(&app, "/fhir/Patient/pat-1?foo=bar")
            .await
            .outcome(StatusCode::BAD_REQUEST),
        "invalid"
    );
    assert_eq!(
        get(&app, "/other/Patient/pat-1")
            .await
            .outcome(StatusCode::NOT_FOUND),
        "not-found"
    );
    assert_eq!(
        get(&app, "/fhir/Patient/pat-1?_format=xml")
            .await
            .outcome(StatusCode::NOT_ACCEPTABLE),
        "not-supported"
    );
    let xml = send(
        &app,
        "GET",
        "/fhir/Patient/pat-1",
        None,
        &[("accept", "application/fhir+xml")],
    )
    .await;
    xml.outcome(StatusCode::NOT_ACCEPTABLE);
    let patch = send(&app, "PATCH", "/fhir/Patient/pat-1", Some("[]"), &[]).await;
    patch.outcome(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn update_vread_and_history_levels() {
    let (app, store) = app();
    let mut pat = get(&app, "/fhir/Patient/pat-2").await.body;
    pat["active"] = json!(false);
    let put = send(
        &app,
        "PUT",
        "/fhir/Patient/pat-2",
        Some(&pat.to_string()),
        &[],
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.header("etag"), Some("W/\"2\""));
    assert_eq!(
        put.header("location"),
        Some(format!("{BASE_URL}/Patient/pat-2/_history/2").as_str())
    );
    assert_eq!(put.body["meta"]["versionId"], "2");

    let v1 = get(&app, "/fhir/Patient/pat-2/_history/1").await;
    assert_eq!(v1.status, StatusCode::OK);
    assert_eq!(v1.body["active"], true);
    assert_eq!(v1.header("etag"), Some("W/\"1\""));
    let v2 = get(&app, "/fhir/Patient/pat-2/_history/2").await;
    assert_eq!(v2.body["active"], false);
    get(&app, "/fhir/Patient/pat-2/_history/3")
        .await
        .outcome(StatusCode::NOT_FOUND);
    get(&app, "/fhir/Patient/pat-2/_history/x")
        .await
        .outcome(StatusCode::NOT_FOUND);

    let instance = bundle(&app, "/fhir/Patient/pat-2/_history").await;
    assert_eq!(instance.body["type"], "history");
    assert_eq!(instance.total(), 2);
    assert_eq!(
        instance.body["entry"][0]["resource"]["meta"]["versionId"],
        "2"
    );
    assert_eq!(instance.body["entry"][0]["request"]["method"], "PUT");
    assert_eq!(instance.body["entry"][1]["request"]["method"], "POST");
    assert_eq!(instance.body["entry"][1]["response"]["etag"], "W/\"1\"");

    let ty = bundle(&app, "/fhir/Patient/_history?_count=5").await;
    assert_eq!(ty.total(), 22);
    assert_eq!(ty.body["entry"].as_array().unwrap().len(), 5);
    assert_eq!(ty.body["entry"][0]["resource"]["id"], "pat-2");
    assert!(ty.link("next").is_some());

    let system = bundle(&app, "/fhir/_history?_count=1").await;
    assert_eq!(system.total(), store.len() as u64 + 1);
    assert_eq!(
        system.body["entry"][0]["fullUrl"],
        format!("{BASE_URL}/Patient/pat-2")
    );
    get(&app, "/fhir/_history?bogus=1")
        .await
        .outcome(StatusCode::BAD_REQUEST);
    get(&app, "/fhir/Patient/nobody/_history")
        .await
        .outcome(StatusCode::NOT_FOUND);
    let since = bundle(&app, "/fhir/_history?_since=2999-01-01").await;
    assert_eq!(since.total(), 0);
}

#[tokio::test]
async fn update_rules() {
    let (app, _) = app();
    let new =
        json!({"resourceType": "Practitioner", "id": "prac-new", "name": [{"family": "Quinn"}]});
    let created = send(
        &app,
        "PUT",
        "/fhir/Practitioner/prac-new",
        Some(&new.to_string()),
        &[],
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.header("etag"), Some("W/\"1\""));
    let mismatch = send(
        &app,
        "PUT",
        "/fhir/Practitioner/other",
        Some(&new.to_string()),
        &[],
    )
    .await;
    mismatch.outcome(StatusCode::BAD_REQUEST);
    let stale = send(
        &app,
        "PUT",
        "/fhir/Practitioner/prac-new",
        Some(&new.to_string()),
        &[("if-match", "W/\"7\"")],
    )
    .await;
    stale.outcome(StatusCode::PRECONDITION_FAILED);
    let fresh = send(
        &app,
        "PUT",
        "/fhir/Practitioner/prac-new",
        Some(&new.to_string()),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(fresh.header("etag"), Some("W/\"2\""));
    let minimal = send(
        &app,
        "PUT",
        "/fhir/Practitioner/prac-new",
        Some(&new.to_string()),
        &[("prefer", "return=minimal")],
    )
    .await;
    assert_eq!(minimal.status, StatusCode::OK);
    assert_eq!(minimal.body, Value::Null);
    assert_eq!(minimal.header("etag"), Some("W/\"3\""));
}

#[tokio::test]
async fn create_and_conditional_create() {
    let (app, store) = app();
    let before = store.count("Patient");
    let body = json!({
        "resourceType": "Patient",
        "id": "ignored",
        "identifier": [{"system": "urn:test", "value": "42"}],
        "name": [{"family": "Newman"}]
    });
    let created = send(&app, "POST", "/fhir/Patient", Some(&body.to_string()), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_ne!(id, "ignored");
    assert_eq!(created.header("etag"), Some("W/\"1\""));
    assert_eq!(
        created.header("location"),
        Some(format!("{BASE_URL}/Patient/{id}/_history/1").as_str())
    );
    assert_eq!(
        get(&app, &format!("/fhir/Patient/{id}")).await.body["name"][0]["family"],
        "Newman"
    );
    assert_eq!(store.count("Patient"), before + 1);

    let again = send(
        &app,
        "POST",
        "/fhir/Patient",
        Some(&body.to_string()),
        &[("if-none-exist", "identifier=urn:test|42")],
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["id"], id.as_str());
    assert_eq!(store.count("Patient"), before + 1);

    let other =
        json!({"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": "43"}]});
    let first = send(
        &app,
        "POST",
        "/fhir/Patient",
        Some(&other.to_string()),
        &[("if-none-exist", "identifier=urn:test|43")],
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(store.count("Patient"), before + 2);
    let many = send(
        &app,
        "POST",
        "/fhir/Patient",
        Some(&other.to_string()),
        &[("if-none-exist", "gender=female")],
    )
    .await;
    many.outcome(StatusCode::PRECONDITION_FAILED);

    let wrong_type = send(
        &app,
        "POST",
        "/fhir/Observation",
        Some(&body.to_string()),
        &[],
    )
    .await;
    wrong_type.outcome(StatusCode::BAD_REQUEST);
    let not_json = send(&app, "POST", "/fhir/Patient", Some("{nope"), &[]).await;
    assert_eq!(not_json.outcome(StatusCode::BAD_REQUEST), "structure");
    let form = send(
        &app,
        "POST",
        "/fhir/Patient",
        Some("a=b"),
        &[("content-type", "text/plain")],
    )
    .await;
    form.outcome(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let empty = send(&app, "POST", "/fhir/Patient", None, &[]).await;
    assert_eq!(empty.outcome(StatusCode::BAD_REQUEST), "required");
    assert_eq!(store.count("Patient"), before + 2);
}

#[tokio::test]
async fn delete_leaves_a_tombstone() {
    let (app, _) = app();
    let deleted = send(&app, "DELETE", "/fhir/Observation/obs-1-1", None, &[]).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["resourceType"], "OperationOutcome");
    assert_eq!(
        get(&app, "/fhir/Observation/obs-1-1")
            .await
            .outcome(StatusCode::GONE),
        "deleted"
    );
    let v1 = get(&app, "/fhir/Observation/obs-1-1/_history/1").await;
    assert_eq!(v1.status, StatusCode::OK);
    get(&app, "/fhir/Observation/obs-1-1/_history/2")
        .await
        .outcome(StatusCode::GONE);
    let history = bundle(&app, "/fhir/Observation/obs-1-1/_history").await;
    assert_eq!(history.total(), 2);
    assert_eq!(history.body["entry"][0]["request"]["method"], "DELETE");
    assert!(history.body["entry"][0].get("resource").is_none());
    let search = bundle(&app, "/fhir/Observation?_id=obs-1-1").await;
    assert_eq!(search.total(), 0);
    let twice = send(&app, "DELETE", "/fhir/Observation/obs-1-1", None, &[]).await;
    assert_eq!(twice.status, StatusCode::OK);
    send(&app, "DELETE", "/fhir/Observation/never", None, &[])
        .await
        .outcome(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn batch_entries_succeed_and_fail_independently() {
    let (app, store) = app();
    let before = store.count("Patient");
    let batch = json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Patient/pat-1"}},
            {"resource": {"resourceType": "Patient", "name": [{"family": "Batch"}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/nobody"}},
            {"request": {"method": "DELETE", "url": "MedicationRequest/medreq-2-1"}},
            {"request": {"method": "GET", "url": "Observation?patient=pat-1&category=laboratory"}},
            {"request": {"method": "PATCH", "url": "Patient/pat-1"}}
        ]
    });
    let answer = send(&app, "POST", "/fhir", Some(&batch.to_string()), &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["type"], "batch-response");
    let entries = answer.body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 6);
    assert_eq!(entries[0]["response"]["status"], "200 OK");
    assert_eq!(entries[0]["resource"]["id"], "pat-1");
    assert_eq!(entries[1]["response"]["status"], "201 Created");
    assert!(entries[1]["response"]["location"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{BASE_URL}/Patient/")));
    assert_eq!(entries[2]["response"]["status"], "404 Not Found");
    assert_eq!(
        entries[2]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(entries[3]["response"]["status"], "200 OK");
    assert_eq!(entries[4]["resource"]["type"], "searchset");
    assert_eq!(entries[4]["resource"]["total"], 6);
    assert!(entries[5]["response"]["status"]
        .as_str()
        .unwrap()
        .starts_with("400"));
    assert_eq!(store.count("Patient"), before + 1);
    assert!(store.read("MedicationRequest", "medreq-2-1").is_none());

    let not_bundle = send(
        &app,
        "POST",
        "/fhir",
        Some(r#"{"resourceType":"Patient"}"#),
        &[],
    )
    .await;
    not_bundle.outcome(StatusCode::BAD_REQUEST);
    let collection = send(
        &app,
        "POST",
        "/fhir",
        Some(r#"{"resourceType":"Bundle","type":"collection"}"#),
        &[],
    )
    .await;
    collection.outcome(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn transaction_resolves_urn_uuids() {
    let (app, store) = app();
    let tx = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:0d6a1a4e-1c39-4a57-9d0c-0000000000a1",
             "resource": {"resourceType": "Observation", "status": "final",
                          "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                          "subject": {"reference": "urn:uuid:0d6a1a4e-1c39-4a57-9d0c-0000000000b2"},
                          "valueQuantity": {"value": 72, "unit": "/min"}},
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": "urn:uuid:0d6a1a4e-1c39-4a57-9d0c-0000000000b2",
             "resource": {"resourceType": "Patient", "name": [{"family": "Transact"}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "DELETE", "url": "Condition/cond-2-1"}}
        ]
    });
    let answer = send(&app, "POST", "/fhir", Some(&tx.to_string()), &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["type"], "transaction-response");
    let entries = answer.body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["response"]["status"], "201 Created");
    let patient_id = entries[1]["resource"]["id"].as_str().unwrap();
    assert_eq!(
        entries[0]["resource"]["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
    let obs_id = entries[0]["resource"]["id"].as_str().unwrap();
    let stored = store.read("Observation", obs_id).unwrap();
    assert_eq!(
        stored["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
    let found = bundle(&app, &format!("/fhir/Observation?patient={patient_id}")).await;
    assert_eq!(found.total(), 1);
    assert!(store.read("Condition", "cond-2-1").is_none());
}

#[tokio::test]
async fn failed_transaction_changes_nothing() {
    let (app, store) = app();
    let patients = store.count("Patient");
    let history = bundle(&app, "/fhir/_history?_count=0").await.total();
    let tx = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": "Patient/pat-2"}},
            {"resource": {"resourceType": "Patient", "name": [{"family": "Ghost"}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "id": "mismatch"},
             "request": {"method": "PUT", "url": "Patient/pat-1"}}
        ]
    });
    let answer = send(&app, "POST", "/fhir", Some(&tx.to_string()), &[]).await;
    answer.outcome(StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["issue"][0]["expression"][0], "Bundle.entry[2]");
    assert_eq!(store.count("Patient"), patients);
    assert!(store.read("Patient", "pat-2").is_some());
    assert_eq!(
        get(&app, "/fhir/Patient/pat-1").await.header("etag"),
        Some("W/\"1\"")
    );
    assert_eq!(
        bundle(&app, "/fhir/_history?_count=0").await.total(),
        history
    );

    let missing = json!({"resourceType": "Bundle", "type": "transaction",
        "entry": [{"request": {"method": "GET", "url": "Patient/nobody"}}]});
    send(&app, "POST", "/fhir", Some(&missing.to_string()), &[])
        .await
        .outcome(StatusCode::NOT_FOUND);
}
