//! The demo server's search: each parameter, paging, `_include`/`_revinclude`, `_summary`,
//! compartments and `$everything`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{app, bundle, get, send};
use fhirwall_demo::sample::{SAMPLE_SSN, SSN_SYSTEM};
use http::StatusCode;
use serde_json::Value;
use std::collections::HashSet;

fn subject(r: &Value) -> &str {
    r["subject"]["reference"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn id_identifier_and_names() {
    let (app, _) = app();
    let by_id = bundle(&app, "/fhir/Patient?_id=pat-1").await;
    assert_eq!(by_id.body["type"], "searchset");
    assert_eq!(by_id.total(), 1);
    assert_eq!(
        by_id.body["entry"][0]["fullUrl"],
        "http://127.0.0.1:8080/fhir/Patient/pat-1"
    );
    assert_eq!(by_id.body["entry"][0]["search"]["mode"], "match");
    assert_eq!(
        bundle(&app, "/fhir/Patient?_id=pat-1,pat-2").await.total(),
        2
    );

    let ssn = bundle(
        &app,
        &format!("/fhir/Patient?identifier={SSN_SYSTEM}|{SAMPLE_SSN}"),
    )
    .await;
    assert_eq!(ssn.keys(None), vec!["Patient/pat-ssn"]);
    let any_ssn = bundle(&app, &format!("/fhir/Patient?identifier={SSN_SYSTEM}|")).await;
    assert_eq!(any_ssn.total(), 1);
    let mrn = bundle(&app, "/fhir/Patient?identifier=MRN-100001").await;
    assert_eq!(mrn.keys(None), vec!["Patient/pat-1"]);

    let name = bundle(&app, "/fhir/Patient?name=amel").await;
    assert!(name.keys(None).contains(&"Patient/pat-1".to_owned()));
    assert!(name
        .resources(None)
        .iter()
        .all(|p| p.to_string().to_lowercase().contains("amel")));
    let family = bundle(&app, "/fhir/Patient?family=HART").await;
    assert!(family.keys(None).contains(&"Patient/pat-1".to_owned()));
    assert!(family.resources(None).iter().all(|p| p["name"][0]["family"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .starts_with("hart")));
    assert_eq!(bundle(&app, "/fhir/Patient?family=art").await.total(), 0);
    assert_eq!(
        bundle(&app, "/fhir/Patient?family:exact=Hart")
            .await
            .total(),
        1
    );
    let females = bundle(&app, "/fhir/Patient?gender=female&_count=100").await;
    assert!(females
        .resources(None)
        .iter()
        .all(|p| p["gender"] == "female"));
    assert!(bundle(&app, "/fhir/Patient?birthdate=1984-03-12")
        .await
        .keys(None)
        .contains(&"Patient/pat-1".to_owned()));
}

#[tokio::test]
async fn references_codes_and_categories() {
    let (app, store) = app();
    let mine = store
        .all("Observation")
        .into_iter()
        .filter(|o| subject(o) == "Patient/pat-1")
        .count() as u64;
    assert!(mine > 0);
    for query in [
        "patient=pat-1",
        "patient=Patient/pat-1",
        "subject=Patient/pat-1",
        "subject:Patient=pat-1",
    ] {
        let found = bundle(&app, &format!("/fhir/Observation?{query}&_count=500")).await;
        assert_eq!(found.total(), mine, "{query}");
        assert!(
            found
                .resources(None)
                .iter()
                .all(|o| subject(o) == "Patient/pat-1"),
            "{query}"
        );
    }
    let glucose = bundle(
        &app,
        "/fhir/Observation?code=http://loinc.org|2339-0&_count=500",
    )
    .await;
    assert!(glucose.total() > 0);
    assert!(glucose
        .resources(None)
        .iter()
        .all(|o| o["code"]["coding"][0]["code"] == "2339-0"));
    assert_eq!(
        bundle(&app, "/fhir/Observation?code=2339-0").await.total(),
        glucose.total()
    );
    assert_eq!(
        bundle(&app, "/fhir/Observation?code=http://snomed.info/sct|2339-0")
            .await
            .total(),
        0
    );
    let either = bundle(&app, "/fhir/Observation?code=2339-0,718-7&_summary=count")
        .await
        .total();
    let hb = bundle(&app, "/fhir/Observation?code=718-7&_summary=count")
        .await
        .total();
    assert_eq!(either, glucose.total() + hb);

    let labs = bundle(&app, "/fhir/Observation?patient=pat-1&category=laboratory").await;
    assert_eq!(labs.total(), 6);
    assert!(labs
        .resources(None)
        .iter()
        .all(|o| o["category"][0]["coding"][0]["code"] == "laboratory"));
    let vitals = bundle(
        &app,
        "/fhir/Observation?patient=pat-1&category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
    )
    .await;
    assert_eq!(labs.total() + vitals.total(), mine);

    let diabetes = bundle(
        &app,
        "/fhir/Condition?patient=pat-1&code=http://snomed.info/sct|44054006",
    )
    .await;
    assert_eq!(diabetes.keys(None), vec!["Condition/cond-1-1"]);
    let meds = bundle(&app, "/fhir/MedicationRequest?patient=pat-1").await;
    assert_eq!(meds.total(), 2);
    let by_requester = bundle(
        &app,
        "/fhir/MedicationRequest?requester=Practitioner/prac-1&_count=500",
    )
    .await;
    assert!(by_requester
        .resources(None)
        .iter()
        .all(|m| m["requester"]["reference"] == "Practitioner/prac-1"));
    let enc = bundle(&app, "/fhir/Encounter?patient=pat-1&status=finished").await;
    assert_eq!(enc.total(), 2);
}

#[tokio::test]
async fn dates_with_prefixes_and_precision() {
    let (app, store) = app();
    let dates: Vec<String> = store
        .all("Observation")
        .into_iter()
        .filter(|o| subject(o) == "Patient/pat-1")
        .map(|o| o["effectiveDateTime"].as_str().unwrap().to_owned())
        .collect();
    let count = |pred: &dyn Fn(&str) -> bool| dates.iter().filter(|d| pred(d)).count() as u64;
    // pat-1 was seen on 2023-06-14 and 2024-05-03, eight observations each time.
    assert_eq!(count(&|d| d.starts_with("2023-06-14")), 8);
    assert_eq!(count(&|d| d.starts_with("2024-05-03")), 8);
    let cases: Vec<(&str, u64)> = vec![
        ("2023", count(&|d| d.starts_with("2023"))),
        ("2024-05", count(&|d| d.starts_with("2024-05"))),
        ("ge2024-01-01", count(&|d| d >= "2024")),
        ("lt2024", count(&|d| d < "2024")),
        ("gt2023-12-31", count(&|d| d >= "2024")),
        ("le2023-12-31", count(&|d| d < "2024")),
        ("ne2023", count(&|d| !d.starts_with("2023"))),
    ];
    for (value, expected) in cases {
        let found = bundle(
            &app,
            &format!("/fhir/Observation?patient=pat-1&date={value}&_count=500"),
        )
        .await;
        assert_eq!(found.total(), expected, "date={value}");
    }
    let first = &dates[0];
    let exact_day = &first[..10];
    let on_day = bundle(
        &app,
        &format!("/fhir/Observation?patient=pat-1&date={exact_day}"),
    )
    .await;
    assert_eq!(on_day.total(), count(&|d| d.starts_with(exact_day)));
    let both = bundle(
        &app,
        "/fhir/Observation?patient=pat-1&date=ge2023&date=lt2026&_summary=count",
    )
    .await;
    assert_eq!(both.total(), dates.len() as u64);
    let enc = bundle(&app, "/fhir/Encounter?date=ge2023-01-01&_summary=count").await;
    assert_eq!(enc.total(), store.count("Encounter") as u64);
    let authored = bundle(&app, "/fhir/MedicationRequest?authoredon=lt2000").await;
    assert_eq!(authored.total(), 0);
    get(&app, "/fhir/Observation?date=yesterday")
        .await
        .outcome(StatusCode::BAD_REQUEST);
    get(&app, "/fhir/Observation?date=ap2024")
        .await
        .outcome(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn strict_parameters() {
    let (app, _) = app();
    let unknown = get(&app, "/fhir/Patient?favourite-colour=blue").await;
    assert_eq!(unknown.outcome(StatusCode::BAD_REQUEST), "invalid");
    let text = unknown.body["issue"][0]["details"]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("favourite-colour"), "{text}");
    get(&app, "/fhir/Observation?name=x")
        .await
        .outcome(StatusCode::BAD_REQUEST);
    get(&app, "/fhir/Patient?name:fuzzy=x")
        .await
        .outcome(StatusCode::BAD_REQUEST);
    get(&app, "/fhir/Patient?_count=lots")
        .await
        .outcome(StatusCode::BAD_REQUEST);
    get(&app, "/fhir/Patient?_summary=text")
        .await
        .outcome(StatusCode::BAD_REQUEST);
    get(&app, "/fhir/Patient?_include=Observation:subject")
        .await
        .outcome(StatusCode::BAD_REQUEST);
    get(&app, "/fhir/Patient?_revinclude=Observation:code")
        .await
        .outcome(StatusCode::BAD_REQUEST);
    get(&app, "/fhir?_id=1")
        .await
        .outcome(StatusCode::BAD_REQUEST);
    assert_eq!(bundle(&app, "/fhir/Patient?name=").await.total(), 21);
}

#[tokio::test]
async fn paging_follows_next_links() {
    let (app, store) = app();
    let total = store.count("Observation") as u64;
    let first = bundle(&app, "/fhir/Observation?_count=50").await;
    assert_eq!(first.total(), total);
    assert_eq!(first.body["entry"].as_array().unwrap().len(), 50);
    assert!(first.link("self").unwrap().contains("_count=50"));
    assert!(first.link("previous").is_none());
    let mut seen: HashSet<String> = first.keys(None).into_iter().collect();
    let mut next = first.link("next");
    let mut pages = 1;
    while let Some(url) = next {
        assert!(
            url.starts_with("http://127.0.0.1:8080/fhir/Observation?"),
            "{url}"
        );
        let page = bundle(&app, &url).await;
        assert_eq!(page.total(), total);
        assert!(page.link("previous").is_some());
        for key in page.keys(None) {
            assert!(seen.insert(key), "a resource showed up on two pages");
        }
        next = page.link("next");
        pages += 1;
    }
    assert_eq!(seen.len() as u64, total);
    assert_eq!(pages, total.div_ceil(50));

    let default = bundle(&app, "/fhir/Observation").await;
    assert_eq!(default.body["entry"].as_array().unwrap().len(), 20);
    let kept = bundle(&app, "/fhir/Observation?patient=pat-1&_count=5").await;
    let next = kept.link("next").unwrap();
    assert!(
        next.contains("patient=pat-1") && next.contains("_offset=5"),
        "{next}"
    );
    let second = bundle(&app, &next).await;
    assert!(second
        .resources(None)
        .iter()
        .all(|o| subject(o) == "Patient/pat-1"));
    let huge = bundle(&app, "/fhir/Observation?_count=100000").await;
    assert_eq!(
        huge.body["entry"].as_array().unwrap().len() as u64,
        total.min(500)
    );
    let past = bundle(&app, "/fhir/Observation?_offset=100000").await;
    assert!(past.body.get("entry").is_none());

    let sorted = bundle(
        &app,
        "/fhir/Observation?patient=pat-1&_sort=-date&_count=500",
    )
    .await;
    let dates: Vec<String> = sorted
        .resources(None)
        .iter()
        .map(|o| o["effectiveDateTime"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = dates.clone();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, expected);
}

#[tokio::test]
async fn summary_count() {
    let (app, store) = app();
    let count = bundle(&app, "/fhir/Patient?_summary=count").await;
    assert_eq!(count.total(), store.count("Patient") as u64);
    assert!(count.body.get("entry").is_none());
}

#[tokio::test]
async fn include_and_revinclude() {
    let (app, _) = app();
    let obs = bundle(
        &app,
        "/fhir/Observation?patient=pat-1&category=laboratory&_include=Observation:subject&_include=Observation:performer",
    )
    .await;
    assert_eq!(obs.total(), 6);
    assert!(obs
        .resources(Some("match"))
        .iter()
        .all(|r| r["resourceType"] == "Observation"));
    let included: HashSet<String> = obs.keys(Some("include")).into_iter().collect();
    let expected: HashSet<String> = ["Patient/pat-1", "Practitioner/prac-1", "Organization/org-3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(included, expected);

    let targeted = bundle(
        &app,
        "/fhir/Observation?patient=pat-1&_include=Observation:performer:Organization",
    )
    .await;
    assert_eq!(targeted.keys(Some("include")), vec!["Organization/org-3"]);

    let meds = bundle(
        &app,
        "/fhir/MedicationRequest?patient=pat-1&_include=MedicationRequest:requester",
    )
    .await;
    assert_eq!(meds.keys(Some("include")), vec!["Practitioner/prac-1"]);

    let rev = bundle(
        &app,
        "/fhir/Patient?_id=pat-1&_revinclude=Observation:subject",
    )
    .await;
    assert_eq!(rev.keys(Some("match")), vec!["Patient/pat-1"]);
    let revs = rev.resources(Some("include"));
    assert_eq!(revs.len(), 16);
    assert!(revs
        .iter()
        .all(|r| r["resourceType"] == "Observation" && subject(r) == "Patient/pat-1"));

    let iterate = bundle(
        &app,
        "/fhir/MedicationRequest?_id=medreq-1-1&_include=MedicationRequest:patient&_include:iterate=Patient:organization",
    )
    .await;
    let keys = iterate.keys(Some("include"));
    assert!(
        keys.contains(&"Patient/pat-1".to_owned())
            && keys.contains(&"Organization/org-1".to_owned()),
        "{keys:?}"
    );
}

#[tokio::test]
async fn post_search_with_a_form_body() {
    let (app, _) = app();
    let via_get = bundle(&app, "/fhir/Observation?patient=pat-1&code=2339-0").await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let via_post = send(
        &app,
        "POST",
        "/fhir/Observation/_search",
        Some("patient=pat-1&code=2339-0"),
        &form,
    )
    .await;
    assert_eq!(via_post.status, StatusCode::OK);
    assert_eq!(via_post.keys(None), via_get.keys(None));
    assert!(via_post.total() > 0);
    let bad = send(
        &app,
        "POST",
        "/fhir/Observation/_search",
        Some("bogus=1"),
        &form,
    )
    .await;
    bad.outcome(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn patient_compartment() {
    let (app, _) = app();
    let labs = bundle(&app, "/fhir/Patient/pat-1/Observation?category=laboratory").await;
    let plain = bundle(&app, "/fhir/Observation?patient=pat-1&category=laboratory").await;
    assert_eq!(labs.keys(None), plain.keys(None));
    assert!(labs
        .link("self")
        .unwrap()
        .contains("/Patient/pat-1/Observation?"));
    let all = bundle(&app, "/fhir/Patient/pat-1/*?_count=500").await;
    assert_eq!(all.total(), 23);
    assert!(all
        .resources(None)
        .iter()
        .all(|r| r["id"] == "pat-1" || subject(r) == "Patient/pat-1"));
    get(&app, "/fhir/Patient/nobody/Observation")
        .await
        .outcome(StatusCode::NOT_FOUND);
    get(&app, "/fhir/Patient/pat-1/Practitioner")
        .await
        .outcome(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn everything_holds_only_this_patients_data() {
    let (app, store) = app();
    let all = bundle(&app, "/fhir/Patient/pat-1/$everything").await;
    let matches = all.resources(Some("match"));
    assert_eq!(matches[0]["id"], "pat-1");
    assert_eq!(all.total(), matches.len() as u64);
    let counts = |ty: &str| matches.iter().filter(|r| r["resourceType"] == ty).count();
    let obs = store
        .all("Observation")
        .into_iter()
        .filter(|o| subject(o) == "Patient/pat-1")
        .count();
    assert_eq!(counts("Observation"), obs);
    assert_eq!(counts("Encounter"), 2);
    assert_eq!(counts("Condition"), 2);
    assert_eq!(counts("MedicationRequest"), 2);
    assert_eq!(counts("Patient"), 1);
    for r in &matches[1..] {
        assert_eq!(subject(r), "Patient/pat-1", "{r}");
    }
    let shared: HashSet<String> = all.keys(Some("include")).into_iter().collect();
    let expected: HashSet<String> = [
        "Practitioner/prac-1",
        "Organization/org-1",
        "Organization/org-3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(shared, expected);
    // No other patient shows up anywhere in the bundle.
    let text = all.body.to_string();
    for other in ["pat-2", "pat-ssn", "pat-3", SAMPLE_SSN] {
        assert!(
            !text.contains(&format!("Patient/{other}\""))
                && !text.contains(&format!("\"{other}\"")),
            "{other}"
        );
    }
    assert!(!text.contains(SAMPLE_SSN));

    let typed = bundle(&app, "/fhir/Patient/pat-1/$everything?_type=Condition").await;
    assert_eq!(typed.total(), 2);
    get(&app, "/fhir/Patient/nobody/$everything")
        .await
        .outcome(StatusCode::NOT_FOUND);
    get(&app, "/fhir/Patient/pat-1/$everything?since=1")
        .await
        .outcome(StatusCode::BAD_REQUEST);
    get(&app, "/fhir/Patient/pat-1/$validate")
        .await
        .outcome(StatusCode::BAD_REQUEST);
    send(&app, "DELETE", "/fhir/Patient/pat-2", None, &[]).await;
    get(&app, "/fhir/Patient/pat-2/$everything")
        .await
        .outcome(StatusCode::GONE);
}
