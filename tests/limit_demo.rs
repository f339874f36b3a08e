#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The budget layer in front of the demo FHIR server with its sample data: a client paging
//! through everything is stopped by the resource budget although each page is small;
//! `_include`d resources count (FHIR R4 §3.1.1.5.5); `_count` and page-depth caps.

#[path = "support/limit.rs"]
mod limit_support;

use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::Classifier;
use fhirwall::limit::{
    BudgetDecision, BudgetLayer, BudgetOutcome, Caps, MemoryStore, OverBudget, Rate,
};
use fhirwall_demo::{router, sample, DemoConfig, MemoryStore as DemoStore};
use http::StatusCode;
use limit_support::{get, header_keys, issue_code, read};
use serde_json::Value;
use tower::{ServiceBuilder, ServiceExt};

const BASE: &str = "http://127.0.0.1:8080";

fn demo() -> axum::Router {
    let store = DemoStore::new();
    sample::load(&store, sample::DEFAULT_SEED);
    router(store, DemoConfig::default())
}

fn budget(resources: u64) -> BudgetLayer {
    BudgetLayer::new(MemoryStore::default())
        .keys(header_keys())
        .requests(Some(Rate::per_hour(100_000)))
        .resources(Some(Rate::per_hour(resources)))
        .max_in_flight(None)
}

fn counted(bundle: &Value) -> usize {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["search"]["mode"] != "outcome" && e.get("resource").is_some())
                .count()
        })
        .unwrap_or(0)
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")
        .map(|l| {
            l["url"]
                .as_str()
                .unwrap()
                .strip_prefix(BASE)
                .unwrap()
                .to_owned()
        })
}

#[tokio::test]
async fn paging_through_everything_is_stopped_by_the_resource_budget() {
    let app = ServiceBuilder::new()
        .layer(ClassifyLayer::new(Classifier::new("/fhir")))
        .layer(budget(35))
        .service(demo());
    // Without a budget there would be more than 35 observations to page through.
    let all = demo()
        .oneshot(get("/fhir/Observation?_summary=count", "x"))
        .await
        .unwrap();
    let (_, json) = read(all).await;
    assert!(json["total"].as_u64().unwrap() > 35, "{json}");

    let mut url = Some("/fhir/Observation?_count=10".to_owned());
    let mut received = 0;
    let mut pages = 0;
    let mut cut_seen = false;
    while let Some(u) = url.take() {
        let response = app.clone().oneshot(get(&u, "scraper")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{u}");
        let decision = response
            .extensions()
            .get::<BudgetDecision>()
            .unwrap()
            .clone();
        let (parts, bundle) = read(response).await;
        assert!(parts.headers["ratelimit"]
            .to_str()
            .unwrap()
            .contains("\"resources\";r="));
        received += counted(&bundle);
        pages += 1;
        if let BudgetOutcome::Cut { counted: c, kept } = decision.outcome {
            assert_eq!((c, kept), (10, 5));
            let last = bundle["entry"].as_array().unwrap().last().unwrap();
            assert_eq!(last["search"]["mode"], "outcome");
            assert_eq!(last["resource"]["issue"][0]["code"], "throttled");
            assert_eq!(next_link(&bundle), None, "the next link is dropped");
            cut_seen = true;
        }
        url = next_link(&bundle);
    }
    assert!(cut_seen);
    assert_eq!((received, pages), (35, 4));

    // The next page, asked for by hand, is refused.
    let response = app
        .clone()
        .oneshot(get("/fhir/Observation?_count=10&_offset=40", "scraper"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert!(response.headers()["ratelimit"]
        .to_str()
        .unwrap()
        .contains("\"resources\";r=0"));
    let (_, json) = read(response).await;
    assert_eq!(issue_code(&json), "throttled");

    // Another client still has its budget.
    let response = app
        .clone()
        .oneshot(get("/fhir/Observation?_count=10", "other"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn refuse_mode_sends_nothing_over_budget() {
    let app = ServiceBuilder::new()
        .layer(ClassifyLayer::new(Classifier::new("/fhir")))
        .layer(budget(15).over_budget(OverBudget::Refuse))
        .service(demo());
    let r = app
        .clone()
        .oneshot(get("/fhir/Observation?_count=10", "c"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .clone()
        .oneshot(get("/fhir/Observation?_count=10&_offset=10", "c"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Nothing was charged for the refused page: a smaller one still fits.
    let r = app
        .clone()
        .oneshot(get("/fhir/Observation?_count=5&_offset=10", "c"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn included_resources_count() {
    let app = ServiceBuilder::new()
        .layer(ClassifyLayer::new(Classifier::new("/fhir")))
        .layer(budget(10_000))
        .service(demo());
    let r = app
        .oneshot(get(
            "/fhir/Observation?_count=5&_include=Observation:subject",
            "c",
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let decision = r.extensions().get::<BudgetDecision>().unwrap().clone();
    let (_, bundle) = read(r).await;
    let includes = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .count();
    assert!(includes > 0, "{bundle}");
    assert_eq!(decision.resources_counted, Some(5 + includes as u64));
    assert_eq!(decision.resources_charged, 5 + includes as u64);
}

#[tokio::test]
async fn count_cap_lowers_and_page_depth_refuses() {
    let caps = Caps::default()
        .max_count(Some(7), Default::default())
        .max_page_depth(Some(2));
    let app = ServiceBuilder::new()
        .layer(ClassifyLayer::new(Classifier::new("/fhir")))
        .layer(budget(10_000).caps(caps))
        .service(demo());
    let r = app
        .clone()
        .oneshot(get("/fhir/Observation?_count=500", "c"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, bundle) = read(r).await;
    assert_eq!(counted(&bundle), 7);
    // Follow next links: pages 0, 1, 2 are allowed, the third next link is refused.
    let mut url = next_link(&bundle);
    for depth in 1..=3 {
        let r = app
            .clone()
            .oneshot(get(url.as_deref().unwrap(), "c"))
            .await
            .unwrap();
        if depth <= 2 {
            assert_eq!(r.status(), StatusCode::OK, "depth {depth}");
            let (_, bundle) = read(r).await;
            url = next_link(&bundle);
        } else {
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            let (_, json) = read(r).await;
            assert_eq!(issue_code(&json), "too-costly");
        }
    }
}

#[tokio::test]
async fn everything_is_capped() {
    let caps = Caps::default().everything_max(Some(3));
    let app = ServiceBuilder::new()
        .layer(ClassifyLayer::new(Classifier::new("/fhir")))
        .layer(budget(10_000).caps(caps))
        .service(demo());
    let r = app
        .oneshot(get("/fhir/Patient/pat-1/$everything", "c"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let decision = r.extensions().get::<BudgetDecision>().unwrap().clone();
    let (_, bundle) = read(r).await;
    assert!(
        matches!(decision.outcome, BudgetOutcome::Cut { kept: 3, .. }),
        "{decision:?}"
    );
    assert_eq!(counted(&bundle), 3);
}
