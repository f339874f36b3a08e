//! ClassifyLayer through a real axum Router: classification in the extensions, refusals as
//! OperationOutcomes, bodies handed on byte-exact, body limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use axum::body::Body;
use axum::extract::Request;
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::{Classifier, FhirRequest, Interaction};
use http::StatusCode;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Echoes the classification and the body it received.
async fn echo(request: Request) -> String {
    let fhir = request.extensions().get::<FhirRequest>().cloned();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let fhir = fhir.expect("every request reaching the handler is classified");
    let entries: Vec<&str> = fhir
        .entries()
        .iter()
        .map(|e| e.request.interaction().as_str())
        .collect();
    format!(
        "{} params={} entries={} body={}",
        fhir.interaction(),
        fhir.query().len(),
        entries.join(","),
        String::from_utf8_lossy(&body)
    )
}

fn app(classifier: Classifier) -> Router {
    Router::new()
        .route("/fhir", any(echo))
        .route("/fhir/{*rest}", any(echo))
        .layer(ClassifyLayer::new(classifier))
}

async fn send(app: Router, request: http::Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn read_reaches_the_handler_classified() {
    let request = http::Request::get("/fhir/Patient/1?_format=json")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(app(Classifier::new("/fhir")), request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "read params=1 entries= body=");
}

#[tokio::test]
async fn unknown_type_is_refused_before_the_handler() {
    let request = http::Request::get("/fhir/patient/1")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(app(Classifier::new("/fhir")), request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/fhir+json");
    let outcome: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "not-supported");
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    // RFC 9110 §15.5.6: 405 carries Allow.
    let request = http::Request::post("/fhir/metadata")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(app(Classifier::new("/fhir")), request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "GET, HEAD");
}

#[tokio::test]
async fn transaction_body_is_classified_and_handed_on_byte_exact() {
    let bundle = r#"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation","valueQuantity":{"value":1.50}},"request":{"method":"POST","url":"Observation"}},{"request":{"method":"GET","url":"Patient/1"}}]}"#;
    let request = http::Request::post("/fhir")
        .header("content-type", "application/fhir+json")
        .body(Body::from(bundle))
        .unwrap();
    let (status, _, body) = send(app(Classifier::new("/fhir")), request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        format!("transaction params=0 entries=create,read body={bundle}")
    );
}

#[tokio::test]
async fn post_search_form_joins_the_query() {
    let request = http::Request::post("/fhir/Observation/_search?_count=5")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("subject=Patient/1&code=1234-5"))
        .unwrap();
    let (status, _, body) = send(app(Classifier::new("/fhir")), request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("search-type params=3"), "{body}");
}

#[tokio::test]
async fn declared_oversized_body_is_refused_without_reading() {
    let request = http::Request::post("/fhir")
        .header("content-type", "application/fhir+json")
        .header("content-length", "100000")
        .body(Body::from(vec![b' '; 100_000]))
        .unwrap();
    let (status, _, _) = send(app(Classifier::new("/fhir").max_body_len(1024)), request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn chunked_oversized_body_is_refused() {
    // No Content-Length: the limit holds while streaming.
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 100])));
    let body = Body::from_stream(futures_stream(chunks));
    let request = http::Request::post("/fhir")
        .header("content-type", "application/fhir+json")
        .body(body)
        .unwrap();
    let (status, _, _) = send(app(Classifier::new("/fhir").max_body_len(1024)), request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// A tiny stream over an iterator (keeps futures-util out of the dev-dependencies).
fn futures_stream<I: Iterator + Unpin>(
    iter: I,
) -> impl futures_core_stream::Stream<Item = I::Item> {
    futures_core_stream::IterStream(iter)
}

mod futures_core_stream {
    pub use futures_core::Stream;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    pub struct IterStream<I>(pub I);
    impl<I: Iterator + Unpin> Stream for IterStream<I> {
        type Item = I::Item;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<I::Item>> {
            Poll::Ready(self.0.next())
        }
    }
}

#[tokio::test]
async fn every_interaction_kind_reaches_the_handler() {
    for (method, uri, want) in [
        ("GET", "/fhir/metadata", Interaction::Capabilities),
        ("GET", "/fhir/Patient/1/_history/2", Interaction::VRead),
        (
            "GET",
            "/fhir/Patient/1/Observation",
            Interaction::SearchCompartment,
        ),
        ("DELETE", "/fhir/Patient?identifier=x", Interaction::Delete),
    ] {
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = send(app(Classifier::new("/fhir")), request).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(body.starts_with(want.as_str()), "{uri}: {body}");
    }
}
