//! Helpers for the budget tests: a manual clock, request building and reading responses.
//!
//! Include it with `#[path = "support/limit.rs"] mod limit_support;`.
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use fhirwall::limit::Clock;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A clock the test moves by hand: no sleeping, exact arithmetic.
#[derive(Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A GET request from this client (sent in the `x-test-client` header).
pub fn get(uri: &str, client: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header("x-test-client", client)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// The key source the tests use: the `x-test-client` header.
pub fn header_keys() -> fhirwall::limit::KeyExtractor {
    use fhirwall::limit::{ClientKey, KeyExtractor, KeySource};
    KeyExtractor::new([KeySource::custom(|parts| {
        parts
            .headers
            .get("x-test-client")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| ClientKey::new("test", v))
    })])
}

/// Reads a whole response.
pub async fn read<B>(response: Response<B>) -> (http::response::Parts, serde_json::Value)
where
    B: Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
    };
    (parts, json)
}

/// The first issue's code of an OperationOutcome.
pub fn issue_code(json: &serde_json::Value) -> &str {
    json["issue"][0]["code"].as_str().unwrap_or("")
}
