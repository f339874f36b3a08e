#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The whole fhirwall stack (`Fhirwall`, as the gateway builds it) in front of the demo FHIR
//! store through `Router::oneshot`: every protection allowed and refused
//! (`tests/data/stack_scenarios.txt`), each with its status, `OperationOutcome` code and the
//! audit record naming the layer that decided.

mod stack_support;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use fhirwall::audit::{AuditLayer, MemorySink};
use fhirwall::limit::{BudgetLayer, MemoryStore, Rate};
use fhirwall::net::RemoteAddr;
use fhirwall::stack::Fhirwall;
use fhirwall::validate::{ValidateConfig, ValidateLayer};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use stack_support::{check, issue_code, scenarios, StackDemo};
use std::net::{IpAddr, SocketAddr};
use tower::ServiceExt;

const ADDR: &str = "127.0.0.1:8080";

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: String,
}

async fn send(
    app: &Router,
    token: Option<String>,
    peer: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Reply {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/fhir+json");
    }
    let mut request = builder
        .body(Body::from(body.unwrap_or_default().to_owned()))
        .unwrap();
    let peer: IpAddr = peer.parse().unwrap();
    request
        .extensions_mut()
        .insert(RemoteAddr(SocketAddr::new(peer, 50_000)));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn large_budgets() -> BudgetLayer<MemoryStore> {
    BudgetLayer::new(MemoryStore::default())
        .requests(Some(Rate::per_minute(100_000)))
        .resources(Some(Rate::per_minute(100_000)))
}

/// Every line of `tests/data/stack_scenarios.txt`, in order, against one stack.
#[tokio::test]
async fn scenarios_from_the_data_file() {
    let demo = StackDemo::new(ADDR.parse().unwrap(), None, Some(large_budgets())).await;
    let mut failures = Vec::new();
    let all = scenarios();
    assert!(all.len() >= 15, "the corpus shrank");
    for s in &all {
        let reply = send(
            &demo.app,
            demo.token(&s.token),
            &s.peer,
            &s.method,
            &s.path,
            s.body.as_deref(),
        )
        .await;
        let record = demo.last_record();
        let code = issue_code(&reply.body);
        let got = format!(
            "{} {} {}",
            reply.status,
            code.as_deref().unwrap_or("-"),
            record.decision.layer
        );
        let want = format!(
            "{} {} {}",
            s.status,
            s.code.as_deref().unwrap_or("-"),
            s.layer
        );
        if got != want {
            failures.push(format!(
                "line {} {}: want {want}, got {got} ({})",
                s.line,
                s.name,
                reply.body.chars().take(300).collect::<String>()
            ));
            continue;
        }
        assert_eq!(record.status, reply.status, "line {}", s.line);
        assert_eq!(
            record.decision.outcome,
            if s.layer == "handler" {
                "allowed"
            } else {
                "refused"
            },
            "line {} {}",
            s.line,
            s.name
        );
        check(s, &reply.body, &record);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Query budgets (the limit layer): a client that keeps searching is stopped with 429,
/// `Retry-After` and the RateLimit fields (draft-ietf-httpapi-ratelimit-headers), and the
/// audit record names the limit layer; another client is unaffected.
#[tokio::test]
async fn budgets_stop_a_scraping_client() {
    let budgets = BudgetLayer::new(MemoryStore::default())
        .requests(Some(Rate::per_minute(30)))
        .resources(Some(Rate::per_minute(10_000)));
    let demo = StackDemo::new(ADDR.parse().unwrap(), None, Some(budgets)).await;
    let greedy = demo.token("scraper");
    let mut allowed = 0;
    let refused = loop {
        let reply = send(
            &demo.app,
            greedy.clone(),
            "127.0.0.1",
            "GET",
            "/fhir/Patient?gender=female",
            None,
        )
        .await;
        if reply.status != 200 {
            break reply;
        }
        allowed += 1;
        assert!(allowed < 20, "the budget never ran out");
    };
    // A search costs 10 units of the 30 a minute.
    assert_eq!(allowed, 3);
    assert_eq!(refused.status, 429);
    assert_eq!(issue_code(&refused.body).as_deref(), Some("throttled"));
    assert!(refused.headers.contains_key(http::header::RETRY_AFTER));
    let record = demo.last_record();
    assert_eq!(record.decision.layer, "limit");
    assert_eq!(record.decision.outcome, "refused");
    assert_eq!(record.status, 429);

    let other = send(
        &demo.app,
        demo.token("clinician"),
        "127.0.0.1",
        "GET",
        "/fhir/Patient/pat-1",
        None,
    )
    .await;
    assert_eq!(other.status, 200);
}

/// The demo stack runs every layer but identity, in `Fhirwall::ORDER`.
#[tokio::test]
async fn the_demo_stack_runs_its_layers_in_order() {
    let demo = StackDemo::new(ADDR.parse().unwrap(), None, None).await;
    assert_eq!(
        demo.layers,
        [
            "audit",
            "firewall",
            "token gate",
            "classify",
            "smart",
            "firewall client rules",
            "limit",
            "validate",
            "redact",
            "audit capture"
        ]
    );
    let order: Vec<&str> = Fhirwall::ORDER.to_vec();
    let mut last = 0;
    for layer in &demo.layers {
        let at = order.iter().position(|o| o == layer).unwrap();
        assert!(at >= last);
        last = at;
    }
}

/// Layers left out are pass-throughs: validation and audit alone in front of a plain
/// handler; the request passes, the refusal is still validation's, and the audit record is
/// written.
#[tokio::test]
async fn a_stack_of_two_layers_passes_the_rest_through() {
    let sink = MemorySink::new();
    let stack = Fhirwall::builder()
        .audit(AuditLayer::new(sink.clone()))
        .validate(ValidateLayer::new(ValidateConfig::new()))
        .build()
        .unwrap();
    assert_eq!(
        stack.layers(),
        ["audit", "classify", "validate", "audit capture"]
    );
    let app = Router::new()
        .route(
            "/fhir/Patient/{id}",
            get(|| async { r#"{"resourceType":"Patient","id":"1"}"# }),
        )
        .layer(stack);
    let ok = send(&app, None, "127.0.0.1", "GET", "/fhir/Patient/1", None).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, r#"{"resourceType":"Patient","id":"1"}"#);
    assert_eq!(sink.records().last().unwrap().decision.layer, "handler");
    let bad = send(
        &app,
        None,
        "127.0.0.1",
        "GET",
        "/fhir/Patient/1?_foo=1",
        None,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(sink.records().last().unwrap().decision.layer, "validate");
    // FHIR R4 3.1.0.1: not an R4 resource type, refused by classification.
    let unknown = send(&app, None, "127.0.0.1", "GET", "/fhir/patient/1", None).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(sink.records().last().unwrap().decision.layer, "classify");
}
