#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Caps and response counting, table-driven (tests/data/limit_caps.txt,
//! tests/data/limit_counting.txt), plus property tests on untrusted queries and bodies.

#[path = "support/limit.rs"]
mod limit_support;

use bytes::Bytes;
use fhirwall::body::FhirBody;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::Classifier;
use fhirwall::limit::{BudgetDecision, BudgetLayer, Caps, CountCapMode, MemoryStore, Rate};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use limit_support::{get, header_keys, read};
use proptest::prelude::*;
use std::convert::Infallible;
use tower::{service_fn, ServiceBuilder, ServiceExt};

fn budget(caps: Caps) -> BudgetLayer {
    BudgetLayer::new(MemoryStore::default())
        .keys(header_keys())
        .requests(None)
        .resources(Some(Rate::per_hour(1_000_000)))
        .caps(caps)
        .max_in_flight(None)
}

/// An inner service that answers with the query it received, in a header.
async fn echo(
    request: Request<FhirBody<Full<Bytes>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::builder()
        .header("x-seen-query", request.uri().query().unwrap_or(""))
        .header("content-type", "application/fhir+json")
        .body(Full::new(Bytes::from_static(
            br#"{"resourceType":"Bundle","type":"searchset"}"#,
        )))
        .unwrap())
}

#[tokio::test]
async fn caps_table() {
    let text = include_str!("data/limit_caps.txt");
    let mut cases = 0;
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split(" | ").map(str::trim).collect();
        let (mode, uri, status, seen) = (
            cols[0],
            cols[1],
            cols[2],
            cols.get(3).copied().unwrap_or(""),
        );
        let mode = if mode == "refuse" {
            CountCapMode::Refuse
        } else {
            CountCapMode::Lower
        };
        let caps = Caps::default().max_count(Some(100), mode);
        let service = ServiceBuilder::new()
            .layer(ClassifyLayer::new(Classifier::new("/fhir")))
            .layer(budget(caps))
            .service(service_fn(echo));
        let response = service.oneshot(get(uri, "t")).await.unwrap();
        assert_eq!(response.status().as_str(), status, "{line}");
        let got = response
            .headers()
            .get("x-seen-query")
            .map(|v| v.to_str().unwrap().to_owned());
        match seen {
            "-" => assert_eq!(got, None, "{line}"),
            "none" => assert_eq!(got.as_deref(), Some(""), "{line}"),
            expected => assert_eq!(got.as_deref(), Some(expected), "{line}"),
        }
        cases += 1;
    }
    assert!(cases >= 15);
}

fn body_service(
    body: &'static str,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<FhirBody<fhirwall::limit::BudgetBody<Full<Bytes>>>>,
    Error = Infallible,
> + Clone {
    ServiceBuilder::new()
        .layer(ClassifyLayer::new(Classifier::new("/fhir")))
        .layer(budget(Caps::default()))
        .service(fhir_server(body))
}

/// The FHIR server: answers every request with `body` as FHIR JSON.
fn fhir_server<B>(
    body: &'static str,
) -> impl tower::Service<Request<B>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone {
    service_fn(move |_: Request<B>| async move {
        Ok::<_, Infallible>(
            Response::builder()
                .header("content-type", "application/fhir+json")
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap(),
        )
    })
}

/// tests/data/limit_counting.txt: (line, expected count or `uncountable`, body).
fn counting_cases() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    include_str!("data/limit_counting.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (expected, body) = line.split_once(" | ").unwrap();
            (line, expected, body)
        })
}

#[tokio::test]
async fn counting_table() {
    let mut cases = 0;
    for (line, expected, body) in counting_cases() {
        let response = body_service(body)
            .oneshot(get("/fhir/Observation", "t"))
            .await
            .unwrap();
        if expected == "uncountable" {
            assert_eq!(response.status(), StatusCode::BAD_GATEWAY, "{line}");
        } else {
            assert_eq!(response.status(), StatusCode::OK, "{line}");
            let decision = response.extensions().get::<BudgetDecision>().unwrap();
            assert_eq!(
                decision.resources_counted,
                Some(expected.parse().unwrap()),
                "{line}"
            );
            // Within budget, the body is passed on byte for byte.
            let (_, json) = read(response).await;
            assert_eq!(
                json,
                serde_json::from_str::<serde_json::Value>(body).unwrap(),
                "{line}"
            );
        }
        cases += 1;
    }
    assert!(cases >= 10);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any query: the layer answers (200 or a 4xx refusal), never panics.
    #[test]
    fn any_query_is_answered(query in "[_a-zA-Z0-9=&%.:|,-]{0,60}") {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let status = rt.block_on(async {
            let service = ServiceBuilder::new()
                .layer(ClassifyLayer::new(Classifier::new("/fhir")))
                .layer(budget(Caps::default()))
                .service(service_fn(echo));
            let uri = format!("/fhir/Observation?{query}");
            let Ok(request) = Request::get(uri).header("x-test-client", "p").body(Full::new(Bytes::new())) else {
                return StatusCode::OK;
            };
            service.oneshot(request).await.unwrap().status()
        });
        prop_assert!(status == StatusCode::OK || status.is_client_error(), "{status}");
    }

    /// Any response body: counted, or refused with 502 — never passed on uncounted.
    #[test]
    fn any_body_is_counted_or_refused(body in prop_oneof![
        ".{0,80}",
        "\\{\"resourceType\":\"Bundle\",\"entry\":\\[(\\{\"resource\":\\{\\}\\},?){0,4}\\]\\}",
    ]) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let body: &'static str = Box::leak(body.into_boxed_str());
        let (status, decision) = rt.block_on(async {
            let r = body_service(body).oneshot(get("/fhir/Observation", "p")).await.unwrap();
            (r.status(), r.extensions().get::<BudgetDecision>().cloned())
        });
        let decision = decision.unwrap();
        match status {
            StatusCode::OK => prop_assert!(decision.resources_counted.is_some()),
            StatusCode::BAD_GATEWAY => prop_assert!(decision.resources_counted.is_none()),
            other => prop_assert!(false, "{other}"),
        }
    }
}

/// Answers `$export` with a 202 kick-off (FHIR Bulk Data Access 2.0 §"Response - Success"),
/// writes with 201, and reads with one resource.
async fn mixed(
    request: Request<FhirBody<Full<Bytes>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let response = if path.ends_with("$export") {
        Response::builder()
            .status(202)
            .header("content-location", "http://example.org/status/1")
            .body(Full::new(Bytes::new()))
    } else if request.method() == http::Method::POST {
        Response::builder()
            .status(201)
            .body(Full::new(Bytes::new()))
    } else {
        Response::builder()
            .header("content-type", "application/fhir+json")
            .body(Full::new(Bytes::from_static(
                br#"{"resourceType":"Patient","id":"1"}"#,
            )))
    };
    Ok(response.unwrap())
}

#[tokio::test]
async fn kick_offs_and_writes_are_not_held_by_the_resource_budget() {
    let service = ServiceBuilder::new()
        .layer(ClassifyLayer::new(Classifier::new("/fhir")))
        .layer(
            BudgetLayer::new(MemoryStore::default())
                .keys(header_keys())
                .resources(Some(Rate::per_hour(1)))
                .max_in_flight(None),
        )
        .service(service_fn(mixed));
    let r = service
        .clone()
        .oneshot(get("/fhir/$export", "c"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = service
        .clone()
        .oneshot(get("/fhir/Patient/1", "c"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.extensions()
            .get::<BudgetDecision>()
            .unwrap()
            .resources_charged,
        1
    );
    let r = service
        .clone()
        .oneshot(get("/fhir/Patient/1", "c"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let create = Request::post("/fhir/Patient")
        .header("x-test-client", "c")
        .header("content-type", "application/fhir+json")
        .body(Full::new(Bytes::from_static(
            br#"{"resourceType":"Patient"}"#,
        )))
        .unwrap();
    let r = service.clone().oneshot(create).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// The same table with a redaction layer inside the budget layer, which counts the resources
/// on its walk and hands the count on: the budget's figure is the same as when it counts the
/// body itself, for every body redaction lets through (a label policy that matches none of
/// them), and a hidden entry is not counted.
#[cfg(feature = "redact")]
#[tokio::test]
async fn counting_table_behind_redaction() {
    use fhirwall::redact::{LabelRule, Policy, RedactLayer, Redactor};
    let redactor = Redactor::new(Policy {
        labels: vec![LabelRule {
            system: None,
            codes: vec!["R".into()],
            except: Default::default(),
        }],
        ..Policy::default()
    })
    .unwrap();
    let service = |body: &'static str| {
        ServiceBuilder::new()
            .layer(ClassifyLayer::new(Classifier::new("/fhir")))
            .layer(budget(Caps::default()))
            .layer(RedactLayer::new(redactor.clone()))
            .service(fhir_server(body))
    };
    let mut compared = 0;
    for (line, expected, body) in counting_cases() {
        let response = service(body)
            .oneshot(get("/fhir/Observation", "t"))
            .await
            .unwrap();
        if expected == "uncountable" || response.status() != StatusCode::OK {
            // Refused by redaction or by the budget: never passed on uncounted.
            assert_ne!(response.status(), StatusCode::OK, "{line}");
            continue;
        }
        let decision = response.extensions().get::<BudgetDecision>().unwrap();
        assert_eq!(
            decision.resources_counted,
            Some(expected.parse().unwrap()),
            "{line}"
        );
        compared += 1;
    }
    assert!(compared >= 5, "{compared}");
    let labelled = r#"{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Observation","meta":{"security":[{"code":"R"}]}},"search":{"mode":"match"}},{"resource":{"resourceType":"Observation"},"search":{"mode":"match"}},{"resource":{"resourceType":"Patient"},"search":{"mode":"include"}}]}"#;
    let response = service(labelled)
        .oneshot(get("/fhir/Observation", "t"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let counted = response
        .extensions()
        .get::<BudgetDecision>()
        .unwrap()
        .resources_counted;
    let (_, json) = read(response).await;
    let entries = json["entry"].as_array().unwrap();
    // The labelled Observation is withheld; the other two are counted.
    assert_eq!(entries.len(), 2, "{json}");
    assert_eq!(counted, Some(2));
}
