//! The identity layer's per-request cost once the certificate is parsed per connection, as a
//! ratio against a pass-through layer in the same run (issue #3 goal: the layer adds under
//! 1 µs; both sides build the same request with four typical headers and the connection's
//! extensions), and full TLS handshakes per second with and without a client certificate, side by
//! side (in memory, both ends' CPU, no sockets, so the figure is the cryptography's cost).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

mod support;

#[path = "../tests/support/pki.rs"]
mod pki;

use criterion::{criterion_group, Criterion};
use fhirwall::identity::{
    ClientAuth, ClientCaRoots, ClientMatch, ConnectionIdentity, ServerTlsConfig, TrustPolicy,
    TrustedClientLayer,
};
use http::{HeaderValue, Request, Response};
use pki::{ClientOptions, Pki};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tower::{Layer, Service};

/// A layer that does nothing: the baseline every layer is measured against.
#[derive(Clone)]
struct PassThrough<S>(S);

impl<S: Service<Request<()>>> Service<Request<()>> for PassThrough<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        self.0.call(request)
    }
}

#[derive(Clone)]
struct Handler;

impl Service<Request<()>> for Handler {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        ready(Ok(Response::new(())))
    }
}

/// One request as the TLS server makes it (connection facts copied in), through `service`.
fn one_request<S>(service: &mut S, connection: &ConnectionIdentity) -> u16
where
    S: Service<Request<()>>,
    S::Response: HasStatus,
{
    let mut request = Request::new(());
    let headers = request.headers_mut();
    headers.insert(http::header::HOST, HeaderValue::from_static("fhir.example"));
    headers.insert(
        http::header::ACCEPT,
        HeaderValue::from_static("application/fhir+json"),
    );
    headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static("bench/1.0"),
    );
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_static("Bearer x.y.z"),
    );
    connection.insert_into(request.extensions_mut());
    let mut cx = Context::from_waker(Waker::noop());
    let future = pin!(service.call(request));
    match future.poll(&mut cx) {
        Poll::Ready(Ok(response)) => response.status(),
        _ => unreachable!("the handler is always ready"),
    }
}

trait HasStatus {
    fn status(&self) -> u16;
}

impl<B> HasStatus for Response<B> {
    fn status(&self) -> u16 {
        Response::status(self).as_u16()
    }
}

/// A realistic policy: 19 rules that don't match this client, then the one that does.
fn policy() -> TrustPolicy {
    let mut builder = TrustPolicy::builder();
    for i in 0..10 {
        builder = builder.allow(
            format!("pinned-{i}"),
            ClientMatch::spki_pin(&format!("{i:02x}").repeat(32)).unwrap(),
        );
    }
    for i in 0..9 {
        builder = builder.allow(
            format!("partner-{i}"),
            ClientMatch::san_dns(&format!("*.partner{i}.example")).unwrap(),
        );
    }
    builder
        .allow(
            "lab",
            ClientMatch::san_uri("spiffe://test.example/lab").unwrap(),
        )
        .build()
        .unwrap()
}

fn layer_bench(c: &mut Criterion) {
    let ca = Pki::new("bench client CA");
    let lab = ca.client(ClientOptions::new("lab"));
    let connection =
        ConnectionIdentity::new(Some("127.0.0.1:40000".parse().unwrap()), Some(&lab.chain));
    let mut pass = PassThrough(Handler);
    let mut identity = TrustedClientLayer::new(policy()).layer(Handler);
    assert_eq!(one_request(&mut identity, &connection), 200);

    let mut group = c.benchmark_group("identity_layer");
    group.bench_function("pass_through", |b| {
        b.iter(|| one_request(&mut pass, black_box(&connection)))
    });
    group.bench_function("trusted_client", |b| {
        b.iter(|| one_request(&mut identity, black_box(&connection)))
    });
    group.bench_function("parse_once_per_connection", |b| {
        b.iter(|| ConnectionIdentity::new(None, Some(black_box(&lab.chain))))
    });
    group.finish();
}

fn transfer(from: &mut dyn FnMut(&mut Vec<u8>), to: &mut dyn FnMut(&[u8])) {
    let mut buffer = Vec::new();
    from(&mut buffer);
    if !buffer.is_empty() {
        to(&buffer);
    }
}

fn handshake(client_config: &Arc<ClientConfig>, server_config: &Arc<ServerConfig>) {
    let mut client =
        ClientConnection::new(client_config.clone(), "localhost".try_into().unwrap()).unwrap();
    let mut server = ServerConnection::new(server_config.clone()).unwrap();
    while client.is_handshaking() || server.is_handshaking() {
        transfer(
            &mut |buf| {
                while client.wants_write() {
                    client.write_tls(buf).unwrap();
                }
            },
            &mut |mut bytes| {
                while !bytes.is_empty() {
                    server.read_tls(&mut bytes).unwrap();
                }
                server.process_new_packets().unwrap();
            },
        );
        transfer(
            &mut |buf| {
                while server.wants_write() {
                    server.write_tls(buf).unwrap();
                }
            },
            &mut |mut bytes| {
                while !bytes.is_empty() {
                    client.read_tls(&mut bytes).unwrap();
                }
                client.process_new_packets().unwrap();
            },
        );
    }
}

fn handshake_bench(c: &mut Criterion) {
    let server_ca = Pki::new("bench server CA");
    let client_ca = Pki::new("bench client CA");
    let server = server_ca.server(&["localhost"]);
    let lab = client_ca.client(ClientOptions::new("lab"));

    let mtls = ServerTlsConfig::new()
        .server_certificate(server.chain.clone(), server.private_key())
        .client_ca_roots(ClientCaRoots::from_der([client_ca.root.clone()]).unwrap())
        .client_auth(ClientAuth::Required)
        .build()
        .unwrap();
    let mut plain = ServerConfig::builder_with_provider(Arc::new(
        fhirwall::identity::hardened_crypto_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(server.chain.clone(), server.private_key())
    .unwrap();
    plain.alpn_protocols = mtls.alpn_protocols.clone();
    let plain = Arc::new(plain);

    let mut roots = RootCertStore::empty();
    roots.add(server_ca.root.clone()).unwrap();
    let client_builder = || {
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots.clone())
    };
    let mut with_cert = client_builder()
        .with_client_auth_cert(lab.chain.clone(), lab.private_key())
        .unwrap();
    with_cert.resumption = rustls::client::Resumption::disabled();
    let mut without_cert = client_builder().with_no_client_auth();
    without_cert.resumption = rustls::client::Resumption::disabled();
    let (with_cert, without_cert) = (Arc::new(with_cert), Arc::new(without_cert));

    let mut group = c.benchmark_group("identity_handshake");
    group.bench_function("without_client_cert", |b| {
        b.iter(|| handshake(&without_cert, &plain))
    });
    group.bench_function("with_client_cert", |b| {
        b.iter(|| handshake(&with_cert, &mtls))
    });
    group.finish();
}

criterion_group!(benches, layer_bench, handshake_bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    support::report_ratio("identity_layer", "trusted_client", "pass_through", 2.0);
    if let (Some(subject), Some(base)) = (
        support::mean_ns("identity_layer", "trusted_client"),
        support::mean_ns("identity_layer", "pass_through"),
    ) {
        let added = subject - base;
        let verdict = if added < 1000.0 { "meets" } else { "MISSES" };
        println!("identity layer adds {added:.0} ns per request; goal < 1000 ns: {verdict}");
    }
    support::report_ratio(
        "identity_handshake",
        "with_client_cert",
        "without_client_cert",
        2.0,
    );
    if let (Some(with), Some(without)) = (
        support::mean_ns("identity_handshake", "with_client_cert"),
        support::mean_ns("identity_handshake", "without_client_cert"),
    ) {
        println!(
            "handshakes per second (TLS 1.3, ECDSA P-256, one core, both ends): without client certificate {:.0}, with client certificate {:.0}",
            1e9 / without,
            1e9 / with
        );
    }
}
