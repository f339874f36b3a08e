#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `Fhirwall` layer wrapped directly around a whole service (a `Router` here; a reverse
//! proxy in a gateway), rather than added with `Router::layer`, and driven by hand the way the
//! stack module's docs show: through `Service::<Request<B>>::call` and
//! `ServiceExt::<Request<B>>::{ready, oneshot}` with the request type named. (With plain
//! method syntax, `svc.call(req)`, rustc must solve every layer's bounds before it knows the
//! request type, which takes it many minutes: this file is also the proof that the named form
//! compiles promptly.)

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use fhirwall::audit::{AuditLayer, MemorySink};
use fhirwall::fhir::Classifier;
use fhirwall::limit::{BudgetLayer, MemoryStore, Rate};
use fhirwall::net::RemoteAddr;
use fhirwall::stack::Fhirwall;
use fhirwall::validate::{ValidateConfig, ValidateLayer};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};

const PATIENT: &str = r#"{"resourceType":"Patient","id":"p1","gender":"female"}"#;

fn wrapped(
    sink: &MemorySink,
) -> impl Service<
    Request<Body>,
    Response = http::Response<
        impl http_body::Body<Data = bytes::Bytes, Error = impl std::fmt::Debug>,
    >,
    Error = std::convert::Infallible,
> + Clone {
    let inner: Router = Router::new().route(
        "/fhir/Patient/{id}",
        get(|| async {
            (
                [(http::header::CONTENT_TYPE, "application/fhir+json")],
                PATIENT,
            )
        }),
    );
    let stack = Fhirwall::builder()
        .classifier(Classifier::new("/fhir"))
        .audit(AuditLayer::new(sink.clone()))
        .budgets(BudgetLayer::new(MemoryStore::default()).requests(Some(Rate::per_minute(100))))
        .validate(ValidateLayer::new(ValidateConfig::new()))
        .build()
        .unwrap();
    stack.layer(inner)
}

/// A request as a server hands it on: with the peer's address, which budgets key on (a request
/// without one is refused, fail closed).
fn get_request(uri: &str) -> Request<Body> {
    let mut request = Request::get(uri).body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(RemoteAddr("127.0.0.1:50000".parse().unwrap()));
    request
}

#[tokio::test]
async fn a_read_passes_and_a_bad_search_parameter_is_refused() {
    let sink = MemorySink::new();
    let mut svc = wrapped(&sink);

    let ready = ServiceExt::<Request<Body>>::ready(&mut svc).await.unwrap();
    let response = Service::<Request<Body>>::call(ready, get_request("/fhir/Patient/p1"))
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(&body[..], PATIENT.as_bytes());

    // FHIR R4 §3.1.1.4.7 (search, date): a `date` value is a date or dateTime with an optional
    // prefix; anything else is refused by the validation layer before the handler runs.
    let response = ServiceExt::<Request<Body>>::oneshot(
        svc.clone(),
        get_request("/fhir/Patient?birthdate=yesterday"),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let outcome: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");

    // Both requests were audited, the refusal with the deciding layer.
    let records = sink.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].outcome, "0");
    assert_eq!(records[1].decision.layer, "validate");
}
