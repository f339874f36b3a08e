//! Shared by the firewall and audit tests: a real axum server on 127.0.0.1 and a raw
//! HTTP/1.1 client, so request targets reach the server exactly as written (no client-side
//! path normalisation).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use axum::extract::ConnectInfo;
use axum::Router;
use fhirwall::net::RemoteAddr;
use std::io::{Read, Write};
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Serves `app` on 127.0.0.1, with the peer address put in the request extensions as
/// `RemoteAddr` (what fhirwall's own server does).
pub async fn serve(app: Router) -> SocketAddr {
    let app = app.layer(tower::util::MapRequestLayer::new(
        |mut req: axum::extract::Request| {
            if let Some(ConnectInfo(addr)) =
                req.extensions().get::<ConnectInfo<SocketAddr>>().copied()
            {
                req.extensions_mut().insert(RemoteAddr(addr));
            }
            req
        },
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A parsed response.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `METHOD target HTTP/1.1` with extra header lines, reads the whole response.
pub async fn send(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Raw {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if method == "POST" || method == "PUT" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    // A blocking std socket on the blocking pool: no extra tokio features needed, and the
    // runtime stays free to run the server.
    let buf = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).unwrap();
        buf
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The data-driven cases of `tests/data/<name>`: non-empty lines not starting with `#`, split
/// on `|` and trimmed.
pub fn cases(name: &str) -> Vec<(usize, Vec<String>)> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, l.split('|').map(|f| f.trim().to_owned()).collect()))
        .collect()
}
