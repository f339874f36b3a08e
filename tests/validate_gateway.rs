#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The validator in front of the demo FHIR server, over real HTTP/1.1 on 127.0.0.1: valid and
//! invalid resources (FHIR R4 §3.1.0.4 "create": 400/422 with an OperationOutcome), content
//! negotiation (415, 406), and hostile bodies refused without reading or holding them whole.

use axum::Router;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::Classifier;
use fhirwall::validate::{ValidateConfig, ValidateLayer};
use fhirwall_demo::{router, DemoConfig, MemoryStore};
use std::io::{Read, Write};
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

async fn serve(config: ValidateConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app: Router = router(MemoryStore::new(), DemoConfig::for_address(addr, "/fhir")).layer(
        ServiceBuilder::new()
            .layer(ClassifyLayer::new(Classifier::new("/fhir")))
            .layer(ValidateLayer::new(config)),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Sends `head` then `body` (written in pieces, ignoring a server that stops reading), returns
/// the status and the response body.
async fn send(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let (head, body) = (head.to_owned(), body.to_vec());
    // A plain blocking client on its own thread: the test's tokio has no io-util.
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        for chunk in body.chunks(64 * 1024) {
            if stream.write_all(chunk).is_err() {
                break;
            }
        }
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        response
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    send(addr, &head, body).await
}

async fn get(addr: SocketAddr, target: &str, extra: &str) -> (u16, String) {
    let head = format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{extra}\r\n");
    send(addr, &head, b"").await
}

const FHIR: &str = "application/fhir+json";

#[tokio::test]
async fn valid_resource_is_created_invalid_one_refused() {
    let addr = serve(ValidateConfig::new()).await;
    let (status, _) = post(
        addr,
        "/fhir/Patient",
        FHIR,
        br#"{"resourceType":"Patient","gender":"female","birthDate":"1970-01-01"}"#,
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = post(
        addr,
        "/fhir/Patient",
        FHIR,
        br#"{"resourceType":"Patient","gender":"f"}"#,
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body.contains("OperationOutcome") && body.contains("Patient.gender"),
        "{body}"
    );
    let (status, body) = post(
        addr,
        "/fhir/Patient",
        FHIR,
        br#"{"resourceType":"Observation","status":"final","code":{"text":"x"}}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("resourceType"), "{body}");
}

#[tokio::test]
async fn update_id_must_match_the_url() {
    // FHIR R4 §3.1.0.4 "update": the body's id must be present and equal the URL's.
    let addr = serve(ValidateConfig::new()).await;
    let body = br#"{"resourceType":"Patient","id":"other"}"#;
    let head = format!("PUT /fhir/Patient/p1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: {FHIR}\r\ncontent-length: {}\r\n\r\n", body.len());
    let (status, text) = send(addr, &head, body).await;
    assert_eq!(status, 400);
    assert!(text.contains("Patient.id"), "{text}");
}

#[tokio::test]
async fn content_negotiation_415_and_406() {
    let addr = serve(ValidateConfig::new()).await;
    let (status, _) = post(
        addr,
        "/fhir/Patient",
        "text/plain",
        br#"{"resourceType":"Patient"}"#,
    )
    .await;
    assert_eq!(status, 415);
    let (status, _) = post(addr, "/fhir/Patient", "application/fhir+xml", b"<Patient/>").await;
    assert_eq!(status, 415);
    let (status, _) = get(addr, "/fhir/Patient?_format=xml", "").await;
    assert_eq!(status, 406);
    let (status, _) = get(addr, "/fhir/Patient", "accept: application/fhir+xml\r\n").await;
    assert_eq!(status, 406);
    let (status, _) = get(addr, "/fhir/Patient?_format=json", "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn search_parameters_are_checked() {
    let addr = serve(ValidateConfig::new()).await;
    assert_eq!(
        get(addr, "/fhir/Patient?gender=female&_count=10", "")
            .await
            .0,
        200
    );
    let (status, body) = get(addr, "/fhir/Patient?nickname=x", "").await;
    assert_eq!(status, 400);
    assert!(body.contains("nickname"), "{body}");
    assert_eq!(get(addr, "/fhir/Patient?_count=1000", "").await.0, 400);
    assert_eq!(get(addr, "/fhir/Observation?_include=*", "").await.0, 400);
}

#[tokio::test]
async fn ten_megabyte_string_is_refused_with_413() {
    let addr = serve(ValidateConfig::new()).await;
    let mut body = br#"{"resourceType":"Patient","name":[{"family":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    body.extend_from_slice(br#""}]}"#);
    // Declared length: refused before reading.
    let (status, out) = post(addr, "/fhir/Patient", FHIR, &body).await;
    assert_eq!(status, 413);
    assert!(out.len() < 2048);
    // Chunked, no Content-Length: refused while counting.
    let mut chunked = Vec::new();
    for chunk in body.chunks(256 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!("POST /fhir/Patient HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: {FHIR}\r\ntransfer-encoding: chunked\r\n\r\n");
    let (status, out) = send(addr, &head, &chunked).await;
    assert_eq!(status, 413);
    assert!(out.len() < 2048);
}

#[tokio::test]
async fn hundred_thousand_deep_nesting_is_refused() {
    let addr = serve(ValidateConfig::new()).await;
    let mut body = br#"{"resourceType":"Patient","extension":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', 100_000));
    body.extend(std::iter::repeat_n(b']', 100_000));
    body.push(b'}');
    let (status, out) = post(addr, "/fhir/Patient", FHIR, &body).await;
    assert_eq!(status, 400);
    assert!(
        out.contains("nested too deeply") || out.contains("expected an object"),
        "{out}"
    );
    let mut objects = br#"{"resourceType":"Patient","extension":[{"url":"x","extension":"#.to_vec();
    objects.extend(std::iter::repeat_n(&b"[{\"url\":\"x\",\"extension\":"[..], 100_000).flatten());
    let (status, out) = post(addr, "/fhir/Patient", FHIR, &objects).await;
    assert_eq!(status, 400);
    assert!(out.contains("nested too deeply"), "{out}");
}

#[tokio::test]
async fn duplicate_keys_are_refused() {
    // Parser differentials: one parser keeps the first resourceType, another the last.
    let addr = serve(ValidateConfig::new()).await;
    let (status, out) = post(
        addr,
        "/fhir/Patient",
        FHIR,
        br#"{"resourceType":"Patient","resourceType":"Observation"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(out.contains("same key twice"), "{out}");
    let (status, _) = post(
        addr,
        "/fhir/Patient",
        FHIR,
        br#"{"resourceType":"Patient","gender":"male","gender":"female"}"#,
    )
    .await;
    assert_eq!(status, 400);
    // A transaction through the classifier and the validator.
    let bundle = br#"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","active":true,"active":false},"request":{"method":"POST","url":"Patient"}}]}"#;
    let (status, _) = post(addr, "/fhir", FHIR, bundle).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn without_classify_layer_it_is_a_misconfiguration() {
    use tower::ServiceExt;
    let app: Router = router(MemoryStore::new(), DemoConfig::default())
        .layer(ValidateLayer::new(ValidateConfig::new()));
    let request = http::Request::get("/fhir/Patient")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 500);
}
