#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The budget layer with the in-memory store: exact counting under concurrency, GCRA windows
//! and refill (on a manual clock, no sleeping), Retry-After and the RateLimit fields of
//! draft-ietf-httpapi-ratelimit-headers-10, in-flight limits and the memory bound.

#[path = "support/limit.rs"]
mod limit_support;

use bytes::Bytes;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::Classifier;
use fhirwall::limit::{
    BudgetDecision, BudgetLayer, BudgetOutcome, ClientKey, CostTable, MemoryStore, Rate,
};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use limit_support::{get, header_keys, issue_code, read, ManualClock};
use std::convert::Infallible;
use std::time::Duration;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

async fn ok(
    _: Request<fhirwall::body::FhirBody<Full<Bytes>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::builder()
        .header("content-type", "application/fhir+json")
        .body(Full::new(Bytes::from_static(
            br#"{"resourceType":"Patient","id":"1"}"#,
        )))
        .unwrap())
}

fn layer(store: MemoryStore, rate: Rate) -> BudgetLayer {
    BudgetLayer::new(store)
        .keys(header_keys())
        .requests(Some(rate))
        .costs(CostTable::flat())
        .resources(None)
        .max_in_flight(None)
}

macro_rules! stack {
    ($budget:expr) => {
        ServiceBuilder::new()
            .layer(ClassifyLayer::new(Classifier::new("/fhir")))
            .layer($budget)
            .service(service_fn(ok))
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_the_budget_under_1000_concurrent_requests() {
    let budget = layer(MemoryStore::default(), Rate::per_hour(100));
    let service = stack!(budget);
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            service
                .oneshot(get("/fhir/Patient/1", "c"))
                .await
                .unwrap()
                .status()
        }));
    }
    let mut allowed = 0;
    let mut throttled = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((allowed, throttled), (100, 900));
}

#[tokio::test]
async fn gcra_window_refill_and_retry_after() {
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(100, clock.clone());
    // 10 per 10 s: one unit every second, burst 10.
    let mut service = stack!(layer(store, Rate::new(10, Duration::from_secs(10))));
    for i in 0..10 {
        let r = service
            .ready()
            .await
            .unwrap()
            .call(get("/fhir/Patient/1", "a"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "request {i}");
        assert_eq!(r.headers()["ratelimit-policy"], "\"requests\";q=10;w=10");
        assert_eq!(
            r.headers()["ratelimit"],
            format!("\"requests\";r={};t={}", 9 - i, i + 1)
        );
    }
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1", "a"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    let decision = r.extensions().get::<BudgetDecision>().unwrap().clone();
    assert_eq!(decision.outcome, BudgetOutcome::RequestBudgetExhausted);
    let (_, json) = read(r).await;
    assert_eq!(issue_code(&json), "throttled");

    // Another client has its own budget.
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1", "b"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // 400 ms later one unit is still 600 ms away: Retry-After rounds up to 1.
    clock.advance(Duration::from_millis(400));
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1", "a"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    clock.advance(Duration::from_millis(600));
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1", "a"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A full period later the whole burst is back, and not more.
    clock.advance(Duration::from_secs(60));
    for _ in 0..10 {
        let r = service
            .ready()
            .await
            .unwrap()
            .call(get("/fhir/Patient/1", "a"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1", "a"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn interactions_are_weighted() {
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(100, clock);
    let budget = BudgetLayer::new(store)
        .keys(header_keys())
        .requests(Some(Rate::per_minute(60)))
        .resources(None);
    let mut service = stack!(budget);
    // Default weights: $everything 50, then a search (10) fits, a second one doesn't.
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1/$everything", "a"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.extensions().get::<BudgetDecision>().unwrap().cost, 50);
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient?name=x", "a"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient?name=x", "a"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Ten seconds refill 10 units: one more search.
    assert_eq!(r.headers()["retry-after"], "10");
}

#[tokio::test]
async fn in_flight_slot_is_held_until_the_body_is_dropped() {
    let budget = layer(MemoryStore::default(), Rate::per_hour(1000)).max_in_flight(Some(1));
    let mut service = stack!(budget);
    let held = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1", "a"))
        .await
        .unwrap();
    assert_eq!(held.status(), StatusCode::OK);
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1", "a"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r.headers()["ratelimit-policy"]
        .to_str()
        .unwrap()
        .contains("\"concurrency\";q=1;qu=\"concurrent-requests\""));
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1", "b"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "other clients are not affected");
    drop(held);
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1", "a"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Reading the body to its end releases the slot too.
    read(r).await;
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1", "a"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn unidentified_clients_are_refused() {
    let mut service = stack!(layer(MemoryStore::default(), Rate::per_hour(10)));
    let request = Request::get("/fhir/Patient/1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = service.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, json) = read(r).await;
    assert_eq!(issue_code(&json), "security");
}

#[tokio::test]
async fn without_classification_the_layer_fails_closed() {
    let budget = layer(MemoryStore::default(), Rate::per_hour(10));
    let mut service =
        ServiceBuilder::new()
            .layer(budget)
            .service(service_fn(|_: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            }));
    let r = service
        .ready()
        .await
        .unwrap()
        .call(get("/fhir/Patient/1", "a"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn a_million_distinct_keys_stay_within_the_cap() {
    let store = MemoryStore::new(10_000);
    let rate = Rate::per_hour(100);
    for i in 0..1_000_000u32 {
        let key = ClientKey::new("ip", &i.to_string()).unwrap();
        store.admit_now(&key, Some((rate, 1)), Some(rate));
        if i % 1000 == 0 {
            assert!(store.len() <= 10_000, "{} entries after {i}", store.len());
        }
    }
    assert!(store.len() <= 10_000);
    assert!(store.evicted() > 0);
}

#[test]
fn idle_clients_are_forgotten_before_active_ones() {
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(100, clock.clone());
    let rate = Rate::new(10, Duration::from_secs(10));
    let heavy = ClientKey::new("ip", "heavy").unwrap();
    for _ in 0..10 {
        assert!(
            store
                .admit_now(&heavy, Some((rate, 1)), None)
                .request
                .unwrap()
                .allowed
        );
    }
    // 99 light clients spend one unit each, then their budgets refill and they go idle.
    for i in 0..99 {
        let key = ClientKey::new("ip", &i.to_string()).unwrap();
        store.admit_now(&key, Some((rate, 1)), None);
    }
    clock.advance(Duration::from_secs(1));
    // A newcomer makes room by dropping the idle clients, not the heavy one.
    let newcomer = ClientKey::new("ip", "new").unwrap();
    store.admit_now(&newcomer, Some((rate, 1)), None);
    assert_eq!(store.evicted(), 0);
    let v = store
        .admit_now(&heavy, Some((rate, 2)), None)
        .request
        .unwrap();
    assert!(!v.allowed, "the heavy client's spent budget was kept");
}
