#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The Redis store against a real `redis-server` (started by tests/support/redis.rs; install
//! it with `apt-get install -y redis-server` if missing): two gateway replicas share one
//! budget exactly, and a Redis outage gives the configured behaviour and recovers.
#![cfg(feature = "redis")]

#[path = "support/limit.rs"]
mod limit_support;
#[path = "support/redis.rs"]
mod redis_server;

use bytes::Bytes;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::Classifier;
use fhirwall::limit::{
    BudgetDecision, BudgetLayer, BudgetOutcome, CostTable, MemoryStore, Rate, RedisStore,
    RedisStoreConfig,
};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use limit_support::{get, header_keys, issue_code, read};
use redis_server::RedisServer;
use std::convert::Infallible;
use std::time::Duration;
use tower::{service_fn, ServiceBuilder, ServiceExt};

async fn ok(
    _: Request<fhirwall::body::FhirBody<Full<Bytes>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::builder()
        .header("content-type", "application/fhir+json")
        .body(Full::new(Bytes::from_static(
            br#"{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"Patient"}}]}"#,
        )))
        .unwrap())
}

fn budget(
    store: RedisStore,
    requests: Option<Rate>,
    resources: Option<Rate>,
) -> BudgetLayer<RedisStore> {
    BudgetLayer::new(store)
        .keys(header_keys())
        .requests(requests)
        .costs(CostTable::flat())
        .resources(resources)
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
async fn two_replicas_share_one_budget_exactly() {
    let redis = RedisServer::start();
    let config = RedisStoreConfig::default().timeout(Duration::from_secs(5));
    let a = RedisStore::connect(&redis.url(), config.clone())
        .await
        .unwrap();
    let b = RedisStore::connect(&redis.url(), config).await.unwrap();
    let replica_a = stack!(budget(a, Some(Rate::per_hour(100)), None));
    let replica_b = stack!(budget(b, Some(Rate::per_hour(100)), None));
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let service = if i % 2 == 0 {
            replica_a.clone()
        } else {
            replica_b.clone()
        };
        tasks.push(tokio::spawn(async move {
            service
                .oneshot(get("/fhir/Patient/1", "shared"))
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
async fn resources_are_shared_and_retry_after_comes_from_redis() {
    let redis = RedisServer::start();
    let a = RedisStore::connect(&redis.url(), RedisStoreConfig::default())
        .await
        .unwrap();
    let b = RedisStore::connect(&redis.url(), RedisStoreConfig::default())
        .await
        .unwrap();
    // 3 resources per hour: one page of 2 on each replica → the second is cut to 1.
    let replica_a = stack!(budget(a, None, Some(Rate::per_hour(3))));
    let replica_b = stack!(budget(b, None, Some(Rate::per_hour(3))));
    let r = replica_a
        .clone()
        .oneshot(get("/fhir/Patient", "p"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = replica_b
        .clone()
        .oneshot(get("/fhir/Patient", "p"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let decision = r.extensions().get::<BudgetDecision>().unwrap().clone();
    assert_eq!(
        decision.outcome,
        BudgetOutcome::Cut {
            counted: 2,
            kept: 1
        }
    );
    let r = replica_a
        .clone()
        .oneshot(get("/fhir/Patient", "p"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // One resource every 20 minutes: the next is at most 1200 s away.
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1190..=1200).contains(&retry), "{retry}");
}

#[tokio::test]
async fn redis_down_fails_closed_then_recovers() {
    let mut redis = RedisServer::start();
    let config = RedisStoreConfig::default().timeout(Duration::from_millis(500));
    let store = RedisStore::connect(&redis.url(), config).await.unwrap();
    let service = stack!(budget(store.clone(), Some(Rate::per_hour(1000)), None));
    let r = service
        .clone()
        .oneshot(get("/fhir/Patient/1", "k"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    redis.stop();
    let r = service
        .clone()
        .oneshot(get("/fhir/Patient/1", "k"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let decision = r.extensions().get::<BudgetDecision>().unwrap().clone();
    assert_eq!(decision.outcome, BudgetOutcome::StoreUnavailable);
    let (_, json) = read(r).await;
    assert_eq!(issue_code(&json), "transient");
    assert!(store.failures() > 0);

    redis.restart();
    let mut recovered = false;
    for _ in 0..100 {
        let r = service
            .clone()
            .oneshot(get("/fhir/Patient/1", "k"))
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            recovered = true;
            break;
        }
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the connection manager reconnects by itself");
}

#[tokio::test]
async fn redis_down_with_a_local_fallback_or_danger_fail_open() {
    let mut redis = RedisServer::start();
    let local = MemoryStore::new(100);
    let fallback = RedisStore::connect(
        &redis.url(),
        RedisStoreConfig::default().fall_back_to_local(local.clone()),
    )
    .await
    .unwrap();
    let open = RedisStore::connect(&redis.url(), RedisStoreConfig::default().danger_fail_open())
        .await
        .unwrap();
    let with_fallback = stack!(budget(fallback, Some(Rate::per_hour(2)), None));
    let fail_open = stack!(budget(open, Some(Rate::per_hour(2)), None));
    redis.stop();

    let statuses: Vec<StatusCode> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(
                with_fallback
                    .clone()
                    .oneshot(get("/fhir/Patient/1", "f"))
                    .await
                    .unwrap()
                    .status(),
            );
        }
        v
    };
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(local.len(), 1);

    for _ in 0..5 {
        let r = fail_open
            .clone()
            .oneshot(get("/fhir/Patient/1", "o"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.extensions().get::<BudgetDecision>().unwrap().degraded);
    }
}
