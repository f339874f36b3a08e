//! Helpers shared by the demo server's integration tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use axum::body::Body;
use axum::Router;
use fhirwall_demo::{router, sample, DemoConfig, MemoryStore};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const BASE_URL: &str = "http://127.0.0.1:8080/fhir";

/// A server over freshly loaded sample data, and its store.
pub fn app() -> (Router, MemoryStore) {
    let store = MemoryStore::new();
    sample::load(&store, sample::DEFAULT_SEED);
    (router(store.clone(), DemoConfig::default()), store)
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The resources of the entries, optionally only those with `search.mode` = `mode`.
    pub fn resources(&self, mode: Option<&str>) -> Vec<Value> {
        self.body["entry"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| mode.map_or(true, |m| e["search"]["mode"] == m))
                    .map(|e| e["resource"].clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `Type/id` of the entries' resources.
    pub fn keys(&self, mode: Option<&str>) -> Vec<String> {
        self.resources(mode)
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap(),
                    r["id"].as_str().unwrap()
                )
            })
            .collect()
    }

    pub fn link(&self, relation: &str) -> Option<String> {
        self.body["link"]
            .as_array()?
            .iter()
            .find(|l| l["relation"] == relation)
            .map(|l| l["url"].as_str().unwrap().to_owned())
    }

    pub fn total(&self) -> u64 {
        self.body["total"].as_u64().unwrap()
    }

    /// Asserts an OperationOutcome with this status and returns its first issue code.
    pub fn outcome(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.body["resourceType"], "OperationOutcome",
            "{}",
            self.body
        );
        assert_eq!(self.header("content-type"), Some("application/fhir+json"));
        self.body["issue"][0]["code"].as_str().unwrap().to_owned()
    }
}

/// Sends one request; `uri` may be absolute under `BASE_URL` (paging links).
pub async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let uri = uri.strip_prefix("http://127.0.0.1:8080").unwrap_or(uri);
    let mut builder = Request::builder().method(method).uri(uri);
    if body.is_some()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        builder = builder.header("content-type", "application/fhir+json");
    }
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(Body::from(body.unwrap_or_default().to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"))
    };
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn get(app: &Router, uri: &str) -> Answer {
    send(app, "GET", uri, None, &[]).await
}

/// GET that must succeed with a Bundle.
pub async fn bundle(app: &Router, uri: &str) -> Answer {
    let answer = get(app, uri).await;
    assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.body);
    assert_eq!(answer.body["resourceType"], "Bundle", "{uri}");
    answer
}
