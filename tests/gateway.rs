#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout
)]
//! The gateway example's building blocks over real sockets: the demo FHIR server, and the
//! upstream proxy in front of a second one.

use axum::Router;
use fhirwall_demo::{router, sample, upstream_router, DemoConfig, MemoryStore, ProxyConfig};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Serves `app` on `listener` with client addresses available to handlers.
fn spawn(listener: tokio::net::TcpListener, app: Router) {
    tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).await.unwrap();
    });
}

async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A demo FHIR server with sample data under `/fhir`.
async fn start_demo() -> SocketAddr {
    let (listener, addr) = bind().await;
    let store = MemoryStore::new();
    sample::load(&store, sample::DEFAULT_SEED);
    spawn(
        listener,
        router(store, DemoConfig::for_address(addr, "/fhir")),
    );
    addr
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&body[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// One HTTP/1.1 request over a fresh blocking connection.
fn request_blocking(addr: SocketAddr, path: &str, extra_headers: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/fhir+json\r\n{extra_headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    };
    if reply
        .header("transfer-encoding")
        .is_some_and(|te| te.contains("chunked"))
    {
        reply.body = dechunk(&reply.body);
    }
    reply
}

async fn get(addr: SocketAddr, path: &str, extra_headers: &str) -> Reply {
    let path = path.to_owned();
    let extra = extra_headers.to_owned();
    tokio::task::spawn_blocking(move || request_blocking(addr, &path, &extra))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_server_answers_over_http() {
    let addr = start_demo().await;

    let metadata = get(addr, "/fhir/metadata", "").await;
    assert_eq!(metadata.status, 200);
    assert_eq!(
        metadata.header("content-type"),
        Some("application/fhir+json")
    );
    let cs = metadata.json();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["implementation"]["url"], format!("http://{addr}/fhir"));

    let patient = get(addr, "/fhir/Patient/pat-1", "").await;
    assert_eq!(patient.status, 200);
    assert_eq!(patient.header("etag"), Some("W/\"1\""));
    let patient = patient.json();
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(patient["id"], "pat-1");

    let search = get(addr, "/fhir/Patient?_id=pat-1", "").await.json();
    assert_eq!(
        search["entry"][0]["fullUrl"],
        format!("http://{addr}/fhir/Patient/pat-1")
    );

    let missing = get(addr, "/fhir/Patient/nobody", "").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["resourceType"], "OperationOutcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_proxy_forwards_reads() {
    let upstream = start_demo().await;
    let (listener, gateway) = bind().await;
    spawn(
        listener,
        upstream_router(&format!("http://{upstream}/fhir"), "/api/fhir").unwrap(),
    );

    let through = get(gateway, "/api/fhir/Patient/pat-1", "").await;
    assert_eq!(through.status, 200);
    assert_eq!(through.header("etag"), Some("W/\"1\""));
    assert_eq!(
        through.header("content-type"),
        Some("application/fhir+json")
    );
    assert_eq!(through.json()["id"], "pat-1");

    let search = get(
        gateway,
        "/api/fhir/Observation?patient=pat-1&category=laboratory",
        "",
    )
    .await;
    assert_eq!(search.status, 200);
    assert_eq!(search.json()["total"], 6);

    let unknown = get(gateway, "/api/fhir/Observation?bogus=1", "").await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["resourceType"], "OperationOutcome");

    let outside = get(gateway, "/fhir/Patient/pat-1", "").await;
    assert_eq!(outside.status, 404);
    assert_eq!(outside.json()["resourceType"], "OperationOutcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_proxy_rewrites_path_and_headers() {
    // An upstream that echoes what it received.
    let (listener, echo) = bind().await;
    let app = Router::new().fallback(|request: axum::extract::Request| async move {
        let headers: serde_json::Map<String, Value> = request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Value::String(v.to_str().unwrap_or_default().to_owned()),
                )
            })
            .collect();
        let body = serde_json::json!({"uri": request.uri().to_string(), "headers": headers});
        ([("content-type", "application/json")], body.to_string())
    });
    spawn(listener, app);
    let (listener, gateway) = bind().await;
    spawn(
        listener,
        upstream_router(&format!("http://{echo}/base/R4"), "/fhir").unwrap(),
    );

    let reply = get(
        gateway,
        "/fhir/Patient?name=hart",
        "Keep-Alive: timeout=5\r\nX-Forwarded-For: 203.0.113.9\r\n",
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = reply.json();
    assert_eq!(seen["uri"], "/base/R4/Patient?name=hart");
    let h = &seen["headers"];
    assert_eq!(h["host"], echo.to_string());
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], gateway.to_string());
    assert_eq!(
        h["forwarded"],
        format!("for=127.0.0.1;proto=http;host=\"{gateway}\"")
    );
    assert!(h.get("keep-alive").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_are_operation_outcomes() {
    // Nothing listens on a port we bound and released: 502.
    let (listener, dead) = bind().await;
    drop(listener);
    let (listener, gateway) = bind().await;
    spawn(
        listener,
        upstream_router(&format!("http://{dead}/fhir"), "/fhir").unwrap(),
    );
    let refused = get(gateway, "/fhir/metadata", "").await;
    assert_eq!(refused.status, 502);
    assert_eq!(refused.json()["issue"][0]["code"], "transient");

    // An upstream that accepts connections and never answers: 504 after the timeout.
    let (silent_listener, silent) = bind().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent_listener.accept().await {
            held.push(stream);
        }
    });
    let mut config = ProxyConfig::new(format!("http://{silent}/fhir"), "/fhir");
    config.timeout = Duration::from_millis(300);
    let (listener, slow_gateway) = bind().await;
    spawn(listener, config.router().unwrap());
    let timed_out = get(slow_gateway, "/fhir/metadata", "").await;
    assert_eq!(timed_out.status, 504);
    assert_eq!(timed_out.json()["issue"][0]["code"], "timeout");

    let tls = upstream_router("https://example.org/fhir", "/fhir")
        .err()
        .unwrap();
    assert!(tls.to_string().contains("mtls"), "{tls}");
}
