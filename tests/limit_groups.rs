#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Budgets per group of clients (issue #7 item 1): a shared group budget and per-member group
//! rates, unlisted clients at the layer's rates; and the `_count` cap on `POST _search`
//! (FHIR R4 §3.1.1.5, table-driven in tests/data/limit_post_search.txt).

#[path = "support/limit.rs"]
mod limit_support;

use bytes::Bytes;
use fhirwall::body::FhirBody;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::{Classifier, FhirRequest};
use fhirwall::limit::{
    BudgetDecision, BudgetLayer, BudgetOutcome, Caps, ClientGroup, ClientKey, CostTable,
    CountCapMode, MemoryStore, Rate, Sharing, RATELIMIT_POLICY,
};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use limit_support::{get, header_keys};
use std::convert::Infallible;
use tower::{service_fn, ServiceBuilder, ServiceExt};

async fn ok(_: Request<FhirBody<Full<Bytes>>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::builder()
        .header("content-type", "application/fhir+json")
        .body(Full::new(Bytes::from_static(
            br#"{"resourceType":"Patient","id":"1"}"#,
        )))
        .unwrap())
}

fn key(name: &str) -> ClientKey {
    ClientKey::new("test", name).unwrap()
}

fn layer(group: ClientGroup) -> BudgetLayer {
    BudgetLayer::new(MemoryStore::default())
        .keys(header_keys())
        .requests(Some(Rate::per_hour(1)))
        .costs(CostTable::flat())
        .resources(None)
        .max_in_flight(None)
        .group(group)
}

async fn send(layer: &BudgetLayer, client: &str) -> (StatusCode, BudgetDecision, String) {
    let service = ServiceBuilder::new()
        .layer(ClassifyLayer::new(Classifier::new("/fhir")))
        .layer(layer.clone())
        .service(service_fn(ok));
    let response = service
        .oneshot(get("/fhir/Patient/1", client))
        .await
        .unwrap();
    let policy = response
        .headers()
        .get(RATELIMIT_POLICY)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let decision = response
        .extensions()
        .get::<BudgetDecision>()
        .unwrap()
        .clone();
    (response.status(), decision, policy)
}

#[tokio::test]
async fn a_shared_group_spends_one_budget_at_its_own_rate() {
    let group =
        ClientGroup::shared("partners", [key("a"), key("b")]).requests(Some(Rate::per_hour(3)));
    assert_eq!(group.sharing(), Sharing::Shared);
    let layer = layer(group);
    let mut seen = Vec::new();
    for client in ["a", "b", "a", "b"] {
        let (status, decision, policy) = send(&layer, client).await;
        assert_eq!(decision.key.unwrap().as_str(), "group:partners");
        assert!(policy.contains("q=3"), "{policy}");
        seen.push(status);
    }
    assert_eq!(
        seen,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // A client in no group has the layer's rate (1 an hour), its own budget.
    let (first, decision, policy) = send(&layer, "c").await;
    assert_eq!(first, StatusCode::OK);
    assert_eq!(decision.key.unwrap().as_str(), "test:c");
    assert!(policy.contains("q=1"), "{policy}");
    assert_eq!(send(&layer, "c").await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_per_member_group_gives_each_member_the_group_rate() {
    let layer = layer(
        ClientGroup::per_member("apps", [key("a"), key("b")]).requests(Some(Rate::per_hour(2))),
    );
    for client in ["a", "b"] {
        for _ in 0..2 {
            let (status, decision, policy) = send(&layer, client).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(decision.key.unwrap().as_str(), format!("test:{client}"));
            assert!(policy.contains("q=2"), "{policy}");
        }
        let (status, decision, _) = send(&layer, client).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(decision.outcome, BudgetOutcome::RequestBudgetExhausted);
    }
}

#[tokio::test]
async fn a_group_without_its_own_rate_keeps_the_layers_and_none_means_none() {
    // Shared at the layer's rate: a and b together get 1.
    let layer_rate = layer(ClientGroup::shared("g", [key("a"), key("b")]));
    assert_eq!(send(&layer_rate, "a").await.0, StatusCode::OK);
    assert_eq!(
        send(&layer_rate, "b").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // No request budget at all for the group.
    let unlimited = layer(ClientGroup::per_member("g", [key("a")]).requests(None));
    for _ in 0..5 {
        assert_eq!(send(&unlimited, "a").await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_shared_group_whose_name_makes_no_key_refuses_its_members() {
    let layer = layer(ClientGroup::shared("", [key("a")]).requests(Some(Rate::per_hour(100))));
    let (status, decision, _) = send(&layer, "a").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(decision.outcome, BudgetOutcome::Misconfigured);
    assert_eq!(send(&layer, "other").await.0, StatusCode::OK);
}

/// Answers with the URL query, the form body and the classified `_count` it received.
async fn echo(
    request: Request<FhirBody<Full<Bytes>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let count = request
        .extensions()
        .get::<FhirRequest>()
        .and_then(|f| f.query().count())
        .map(|c| c.map_or_else(|e| e.to_owned(), |n| n.to_string()))
        .unwrap_or_default();
    let query = request.uri().query().unwrap_or("").to_owned();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    Ok(Response::builder()
        .header("x-seen-query", query)
        .header("x-seen-body", String::from_utf8(body.to_vec()).unwrap())
        .header("x-seen-count", count)
        .header("content-type", "application/fhir+json")
        .body(Full::new(Bytes::from_static(
            br#"{"resourceType":"Bundle","type":"searchset"}"#,
        )))
        .unwrap())
}

#[tokio::test]
async fn post_search_count_table() {
    let mut cases = 0;
    for line in include_str!("data/limit_post_search.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split(" | ").map(str::trim).collect();
        let [mode, uri, form, status, query, body, count] = cols[..] else {
            panic!("{line}: expected 7 columns");
        };
        let mode = if mode == "refuse" {
            CountCapMode::Refuse
        } else {
            CountCapMode::Lower
        };
        let budget = BudgetLayer::new(MemoryStore::default())
            .keys(header_keys())
            .requests(None)
            .resources(Some(Rate::per_hour(1_000_000)))
            .caps(Caps::default().max_count(Some(100), mode))
            .max_in_flight(None);
        let service = ServiceBuilder::new()
            .layer(ClassifyLayer::new(Classifier::new("/fhir")))
            .layer(budget)
            .service(service_fn(echo));
        let request = Request::post(uri)
            .header("x-test-client", "t")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form.to_owned())))
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status().as_str(), status, "{line}");
        let seen = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        if query == "-" {
            assert_eq!(seen("x-seen-query"), None, "{line}");
        } else {
            let query = if query == "none" { "" } else { query };
            assert_eq!(seen("x-seen-query").as_deref(), Some(query), "{line}");
            assert_eq!(seen("x-seen-body").as_deref(), Some(body), "{line}");
            assert_eq!(seen("x-seen-count").as_deref(), Some(count), "{line}");
        }
        cases += 1;
    }
    assert!(cases >= 10, "{cases}");
}
