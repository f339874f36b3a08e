#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Client certificates forwarded by a TLS-terminating proxy, over real TLS on 127.0.0.1.
//!
//! The "proxy" is a client bound to 127.0.0.2 (the only trusted proxy address); anyone else
//! connects from 127.0.0.1. The server requires no client certificate from the proxy
//! (`ClientAuth::Optional`), so the forwarded header is the only identity it has.
#![cfg(feature = "rustls")]

#[path = "support/pki.rs"]
mod pki;

use axum::extract::Request;
use axum::routing::get;
use axum::Router;
use fhirwall::identity::forwarded::{ForwardedCertificates, ForwardedFormat};
use fhirwall::identity::{
    ClientAuth, ClientCaRoots, ClientIdentity, ClientMatch, ServerTlsConfig, TlsServer,
    TrustPolicy, TrustedClient, TrustedClientLayer,
};
use fhirwall::net::TrustedProxies;
use pki::{sf_binary, url_escape, ClientOptions, Eku, Issued, Pki, Reply, Validity, Version};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tower::Layer;

const PROXY: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

async fn echo(request: Request) -> axum::Json<serde_json::Value> {
    let ext = request.extensions();
    let identity = ext.get::<Arc<ClientIdentity>>().unwrap();
    let cert_headers: Vec<&str> = request
        .headers()
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.contains("cert"))
        .collect();
    axum::Json(serde_json::json!({
        "client": ext.get::<TrustedClient>().unwrap().name(),
        "thumbprint": identity.thumbprint_hex(),
        "cert_headers": cert_headers,
    }))
}

struct Fixture {
    server_ca: Pki,
    client_ca: Pki,
    other_ca: Pki,
    trusted: Issued,
    unlisted: Issued,
    revoked: Issued,
}

impl Fixture {
    fn new() -> Self {
        let client_ca = Pki::new("fhirwall test client CA");
        Fixture {
            server_ca: Pki::new("fhirwall test server CA"),
            trusted: client_ca.client(ClientOptions::new("lab")),
            unlisted: client_ca.client(ClientOptions::new("stranger")),
            revoked: client_ca.client(ClientOptions::new("revoked")),
            other_ca: Pki::new("some other CA"),
            client_ca,
        }
    }

    fn policy(&self) -> TrustPolicy {
        let uri =
            |name: &str| ClientMatch::san_uri(&format!("spiffe://test.example/{name}")).unwrap();
        TrustPolicy::builder()
            .allow("lab", uri("lab"))
            .allow("intermediate-clients", uri("via-intermediate"))
            .allow("clock", uri("clock"))
            .allow("eku", uri("eku"))
            .allow("revoked", uri("revoked"))
            .allow("other-ca", uri("other"))
            .build()
            .unwrap()
    }
}

struct Running {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn serve(fx: &Fixture, format: ForwardedFormat, roots: ClientCaRoots) -> Running {
    let server = fx.server_ca.server(&["localhost"]);
    let config = ServerTlsConfig::new()
        .server_certificate(server.chain.clone(), server.private_key())
        .client_ca_roots(roots.clone())
        .client_auth(ClientAuth::Optional)
        .build()
        .unwrap();
    let forwarded = ForwardedCertificates::new(
        TrustedProxies::new(["127.0.0.2/32"]).unwrap(),
        format,
        roots.chain_verifier().unwrap(),
    );
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/fhir/metadata",
        get(move |request: Request| {
            counter.fetch_add(1, Ordering::SeqCst);
            echo(request)
        }),
    );
    let service = TrustedClientLayer::new(fx.policy())
        .forwarded(forwarded)
        .layer(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(TlsServer::new(config).serve(listener, service));
    Running { addr, hits }
}

fn roots(fx: &Fixture) -> ClientCaRoots {
    ClientCaRoots::from_der([fx.client_ca.root.clone()])
        .unwrap()
        .with_crls([fx.client_ca.crl(&[&fx.revoked])])
}

fn hex(bytes: &[u8]) -> String {
    ClientIdentity::from_der(bytes).unwrap().thumbprint_hex()
}

/// The headers a proxy of `format` would send for `client`.
fn headers_for(format: ForwardedFormat, client: &Issued) -> Vec<(String, String)> {
    match format {
        ForwardedFormat::Xfcc => vec![(
            "x-forwarded-client-cert".into(),
            format!(
                "By=spiffe://test.example/proxy;Hash={};Cert=\"{}\";Chain=\"{}\";Subject=\"CN=x\";URI=spiffe://test.example/x",
                hex(&client.cert),
                url_escape(&client.cert_pem),
                url_escape(&client.chain_pem),
            ),
        )],
        ForwardedFormat::ClientCert => {
            let mut headers = vec![("client-cert".to_owned(), sf_binary(&client.cert))];
            let chain: Vec<String> = client.chain[1..].iter().map(|c| sf_binary(c)).collect();
            if !chain.is_empty() {
                headers.push(("client-cert-chain".into(), chain.join(", ")));
            }
            headers
        }
        _ => vec![("ssl-client-cert".into(), url_escape(&client.chain_pem))],
    }
}

async fn send(
    server: &Running,
    fx: &Fixture,
    from: IpAddr,
    tls_client: Option<&Issued>,
    headers: &[(String, String)],
) -> Reply {
    let config = pki::client_config(&fx.server_ca, tls_client, Version::Tls13);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    pki::get(server.addr, Some(from), config, "/fhir/metadata", &headers)
        .await
        .unwrap()
}

const FORMATS: [ForwardedFormat; 3] = [
    ForwardedFormat::Xfcc,
    ForwardedFormat::ClientCert,
    ForwardedFormat::EscapedPem,
];

#[tokio::test]
async fn trusted_client_through_the_proxy_passes_and_headers_are_stripped() {
    let fx = Fixture::new();
    for format in FORMATS {
        let server = serve(&fx, format, roots(&fx)).await;
        let reply = send(&server, &fx, PROXY, None, &headers_for(format, &fx.trusted)).await;
        assert_eq!(reply.status, 200, "{format:?}: {}", reply.body);
        let v = reply.json();
        assert_eq!(v["client"], "lab", "{format:?}");
        assert_eq!(v["thumbprint"], hex(&fx.trusted.cert));
        assert_eq!(v["cert_headers"], serde_json::json!([]), "{format:?}");
        // Same header again: served from the verified-certificate cache, same answer.
        let again = send(&server, &fx, PROXY, None, &headers_for(format, &fx.trusted)).await;
        assert_eq!(again.status, 200);
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test]
async fn chains_with_intermediates_are_verified_from_the_header() {
    let fx = Fixture::new();
    let intermediate = fx.client_ca.intermediate("issuing CA");
    let client =
        intermediate.client(ClientOptions::new("x").uri("spiffe://test.example/via-intermediate"));
    // CRLs cover the root's direct certificates only, so this chain needs unknown status allowed.
    let roots = roots(&fx).allow_unknown_revocation_status();
    for format in [
        ForwardedFormat::Xfcc,
        ForwardedFormat::ClientCert,
        ForwardedFormat::EscapedPem,
    ] {
        let server = serve(&fx, format, roots.clone()).await;
        let reply = send(&server, &fx, PROXY, None, &headers_for(format, &client)).await;
        assert_eq!(reply.status, 200, "{format:?}: {}", reply.body);
        assert_eq!(reply.json()["client"], "intermediate-clients");
    }
    // nginx forwards only the leaf: the intermediate must then be configured.
    let leaf_only = vec![("ssl-client-cert".to_owned(), url_escape(&client.cert_pem))];
    let server = serve(&fx, ForwardedFormat::EscapedPem, roots.clone()).await;
    let reply = send(&server, &fx, PROXY, None, &leaf_only).await;
    assert_eq!(
        (reply.status, reply.issue_code().as_str()),
        (401, "unknown")
    );
    let with_intermediate = roots.with_intermediates([intermediate.cert.clone()]);
    let server = serve(&fx, ForwardedFormat::EscapedPem, with_intermediate).await;
    assert_eq!(
        send(&server, &fx, PROXY, None, &leaf_only).await.status,
        200
    );
}

#[tokio::test]
async fn bad_forwarded_certificates_get_the_documented_outcome() {
    let fx = Fixture::new();
    let other = fx.other_ca.client(ClientOptions::new("other"));
    let expired = fx
        .client_ca
        .client(ClientOptions::new("clock").validity(Validity::Expired));
    let future = fx
        .client_ca
        .client(ClientOptions::new("clock").validity(Validity::Future));
    let server_only = fx
        .client_ca
        .client(ClientOptions::new("eku").eku(Eku::ServerAuthOnly));
    let cases: [(&str, &Issued, u16, &str); 6] = [
        ("another CA", &other, 401, "unknown"),
        ("expired", &expired, 401, "expired"),
        ("not yet valid", &future, 401, "unknown"),
        ("serverAuth-only EKU", &server_only, 401, "unknown"),
        ("revoked by CRL", &fx.revoked, 401, "unknown"),
        ("valid but not allowlisted", &fx.unlisted, 403, "forbidden"),
    ];
    for format in FORMATS {
        let server = serve(&fx, format, roots(&fx)).await;
        for (name, client, status, code) in cases {
            let reply = send(&server, &fx, PROXY, None, &headers_for(format, client)).await;
            assert_eq!(
                (reply.status, reply.issue_code().as_str()),
                (status, code),
                "{format:?} {name}: {}",
                reply.body
            );
        }
        // A trusted proxy that forwards no certificate: 401 login.
        let reply = send(&server, &fx, PROXY, None, &[]).await;
        assert_eq!(
            (reply.status, reply.issue_code().as_str()),
            (401, "login"),
            "{format:?}"
        );
        assert_eq!(server.hits.load(Ordering::SeqCst), 0, "{format:?}");
    }
}

#[tokio::test]
async fn forged_headers_from_untrusted_addresses_are_stripped() {
    let fx = Fixture::new();
    for format in FORMATS {
        let server = serve(&fx, format, roots(&fx)).await;
        let forged = headers_for(format, &fx.trusted);
        // No certificate of its own: the forged header is ignored, so there is no identity.
        let reply = send(&server, &fx, STRANGER, None, &forged).await;
        assert_eq!(
            (reply.status, reply.issue_code().as_str()),
            (401, "login"),
            "{format:?}"
        );
        // Its own valid, unlisted certificate is what counts, not the forged trusted one.
        let reply = send(&server, &fx, STRANGER, Some(&fx.unlisted), &forged).await;
        assert_eq!(
            (reply.status, reply.issue_code().as_str()),
            (403, "forbidden"),
            "{format:?}"
        );
        // A trusted client directly: allowed as itself, and the service never sees the
        // forged header.
        let forged_other = headers_for(format, &fx.unlisted);
        let reply = send(&server, &fx, STRANGER, Some(&fx.trusted), &forged_other).await;
        assert_eq!(reply.status, 200, "{format:?}");
        let v = reply.json();
        assert_eq!(v["thumbprint"], hex(&fx.trusted.cert));
        assert_eq!(v["cert_headers"], serde_json::json!([]));
    }
}

#[tokio::test]
async fn malformed_headers_from_the_proxy_are_400_structure() {
    let fx = Fixture::new();
    let huge = "A".repeat(70 * 1024);
    let pem = url_escape(&fx.trusted.cert_pem);
    let wrong_hash = format!("Hash={};Cert=\"{pem}\"", "00".repeat(32));
    let cases: Vec<(ForwardedFormat, Vec<(&str, String)>)> = vec![
        (
            ForwardedFormat::Xfcc,
            vec![("x-forwarded-client-cert", "Cert=\"unterminated".into())],
        ),
        (
            ForwardedFormat::Xfcc,
            vec![("x-forwarded-client-cert", "By=x".into())],
        ),
        (
            ForwardedFormat::Xfcc,
            vec![("x-forwarded-client-cert", wrong_hash)],
        ),
        (
            ForwardedFormat::Xfcc,
            vec![(
                "x-forwarded-client-cert",
                format!("Cert=\"{pem}\";Cert=\"{pem}\""),
            )],
        ),
        (
            ForwardedFormat::Xfcc,
            vec![("x-forwarded-client-cert", vec!["By=a"; 40].join(","))],
        ),
        (
            ForwardedFormat::Xfcc,
            vec![("x-forwarded-client-cert", format!("Cert={huge}"))],
        ),
        (
            ForwardedFormat::ClientCert,
            vec![("client-cert", "not-a-byte-sequence".into())],
        ),
        (
            ForwardedFormat::ClientCert,
            vec![("client-cert", ":!!!:".into())],
        ),
        (
            ForwardedFormat::ClientCert,
            vec![
                ("client-cert", sf_binary(&fx.trusted.cert)),
                ("client-cert", sf_binary(&fx.trusted.cert)),
            ],
        ),
        (
            ForwardedFormat::ClientCert,
            vec![
                ("client-cert", sf_binary(&fx.trusted.cert)),
                ("client-cert-chain", ":AQID:,".into()),
            ],
        ),
        (
            ForwardedFormat::EscapedPem,
            vec![(
                "ssl-client-cert",
                "-----BEGIN%20CERTIFICATE-----%0A%25%25%0A".into(),
            )],
        ),
        (
            ForwardedFormat::EscapedPem,
            vec![("ssl-client-cert", "hello".into())],
        ),
    ];
    for (format, headers) in cases {
        let server = serve(&fx, format, roots(&fx)).await;
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        let reply = send(&server, &fx, PROXY, None, &headers).await;
        assert_eq!(
            (reply.status, reply.issue_code().as_str()),
            (400, "structure"),
            "{format:?} {:?}",
            headers
                .iter()
                .map(|(n, v)| (n, v.chars().take(60).collect::<String>()))
                .collect::<Vec<_>>()
        );
        assert_eq!(server.hits.load(Ordering::SeqCst), 0);
    }
    // Well-formed, but the bytes are not a certificate: 401 unknown.
    let server = serve(&fx, ForwardedFormat::ClientCert, roots(&fx)).await;
    let reply = send(
        &server,
        &fx,
        PROXY,
        None,
        &[("client-cert".into(), ":AQID:".into())],
    )
    .await;
    assert_eq!(
        (reply.status, reply.issue_code().as_str()),
        (401, "unknown")
    );
}
