#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Trusted-client identity over real TLS on 127.0.0.1: fhirwall's hardened rustls
//! configuration, `TlsServer` and `TrustedClientLayer`, with certificates made by rcgen here.
#![cfg(feature = "rustls")]

#[path = "support/pki.rs"]
mod pki;

use axum::extract::Request;
use axum::routing::get;
use axum::Router;
use fhirwall::identity::{
    ClientAuth, ClientCaRoots, ClientIdentity, ClientMatch, ServerTlsConfig, TlsServer,
    TrustPolicy, TrustPolicyHandle, TrustedClient, TrustedClientLayer,
};
use fhirwall::net::{CertificateThumbprint, RemoteAddr};
use pki::{ClientOptions, Eku, Failure, Issued, Pki, Validity, Version};
use rustls::AlertDescription;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tower::Layer;

/// The handler reports what the identity layer put in the request.
async fn echo(request: Request) -> axum::Json<serde_json::Value> {
    let ext = request.extensions();
    let identity = ext.get::<Arc<ClientIdentity>>().unwrap();
    let thumbprint = ext.get::<CertificateThumbprint>().unwrap();
    assert_eq!(thumbprint.0, identity.thumbprint().0);
    let forwarded: Vec<&str> = request
        .headers()
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.contains("cert"))
        .collect();
    axum::Json(serde_json::json!({
        "client": ext.get::<TrustedClient>().unwrap().name(),
        "x5t#S256": identity.x5t_s256(),
        "subject": identity.subject().to_string(),
        "remote": ext.get::<RemoteAddr>().map(|r| r.0.to_string()),
        "cert_headers": forwarded,
    }))
}

struct Fixture {
    server_ca: Pki,
    client_ca: Pki,
    other_ca: Pki,
    trusted: Issued,
    unlisted: Issued,
}

impl Fixture {
    fn new() -> Self {
        let server_ca = Pki::new("fhirwall test server CA");
        let client_ca = Pki::new("fhirwall test client CA");
        let other_ca = Pki::new("some other CA");
        let trusted = client_ca.client(ClientOptions::new("lab"));
        let unlisted = client_ca.client(ClientOptions::new("stranger"));
        Fixture {
            server_ca,
            client_ca,
            other_ca,
            trusted,
            unlisted,
        }
    }

    fn policy(&self) -> TrustPolicy {
        TrustPolicy::builder()
            .allow(
                "lab",
                ClientMatch::san_uri("spiffe://test.example/lab").unwrap(),
            )
            .allow(
                "intermediate-clients",
                ClientMatch::san_uri("spiffe://test.example/via-intermediate").unwrap(),
            )
            .allow(
                "expired-or-future",
                ClientMatch::san_uri("spiffe://test.example/clock").unwrap(),
            )
            .allow(
                "eku",
                ClientMatch::san_uri("spiffe://test.example/eku").unwrap(),
            )
            .allow(
                "revoked",
                ClientMatch::san_uri("spiffe://test.example/revoked").unwrap(),
            )
            .allow(
                "other-ca",
                ClientMatch::san_uri("spiffe://test.example/other").unwrap(),
            )
            .build()
            .unwrap()
    }

    fn server_config(&self, auth: ClientAuth, roots: ClientCaRoots) -> Arc<rustls::ServerConfig> {
        let server = self.server_ca.server(&["localhost", "127.0.0.1"]);
        ServerTlsConfig::new()
            .server_certificate_pem(server.chain_pem.as_bytes(), server.key_pem.as_bytes())
            .unwrap()
            .client_ca_roots(roots)
            .client_auth(auth)
            .build()
            .unwrap()
    }

    fn roots(&self) -> ClientCaRoots {
        ClientCaRoots::from_pem(self.client_ca.root_pem().as_bytes()).unwrap()
    }
}

struct Running {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    policy: TrustPolicyHandle,
}

async fn serve(
    config: Arc<rustls::ServerConfig>,
    policy: TrustPolicy,
    server: impl FnOnce(TlsServer) -> TlsServer,
) -> Running {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/fhir/metadata",
        get(move |request: Request| {
            counter.fetch_add(1, Ordering::SeqCst);
            echo(request)
        }),
    );
    let handle = TrustPolicyHandle::new(policy);
    let service = TrustedClientLayer::new(handle.clone()).layer(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = server(TlsServer::new(config));
    tokio::spawn(tls.serve(listener, service));
    Running {
        addr,
        hits,
        policy: handle,
    }
}

impl Running {
    async fn get(
        &self,
        fx: &Fixture,
        client: Option<&Issued>,
        version: Version,
    ) -> Result<pki::Reply, Failure> {
        let config = pki::client_config(&fx.server_ca, client, version);
        pki::get(self.addr, None, config, "/fhir/metadata", &[]).await
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn alert(result: Result<pki::Reply, Failure>) -> AlertDescription {
    match result {
        Err(Failure::Alert(alert)) => alert,
        other => panic!("expected a TLS alert, got {other:?}"),
    }
}

#[tokio::test]
async fn trusted_client_passes_with_its_identity_in_the_request() {
    let fx = Fixture::new();
    let server = serve(
        fx.server_config(ClientAuth::Required, fx.roots()),
        fx.policy(),
        |s| s,
    )
    .await;
    for version in [Version::Tls13, Version::Tls12] {
        let reply = server.get(&fx, Some(&fx.trusted), version).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let v = reply.json();
        assert_eq!(v["client"], "lab");
        // RFC 8705 §3.1: the thumbprint is SHA-256 over the DER the client presented.
        let expected = ClientIdentity::from_der(&fx.trusted.cert)
            .unwrap()
            .x5t_s256();
        assert_eq!(v["x5t#S256"], expected);
        assert_eq!(v["subject"], "CN=lab,O=fhirwall tests");
        assert!(v["remote"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn client_sending_an_intermediate_chain_passes() {
    let fx = Fixture::new();
    let intermediate = fx.client_ca.intermediate("fhirwall test issuing CA");
    let client =
        intermediate.client(ClientOptions::new("x").uri("spiffe://test.example/via-intermediate"));
    assert_eq!(client.chain.len(), 2);
    let server = serve(
        fx.server_config(ClientAuth::Required, fx.roots()),
        fx.policy(),
        |s| s,
    )
    .await;
    let reply = server
        .get(&fx, Some(&client), Version::Tls13)
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["client"], "intermediate-clients");
}

/// RFC 8446 §4.4.2.4 / RFC 5246 §7.4.6: a certificate the server can't accept fails the
/// handshake. Under TLS 1.2 the client sees the alert during the handshake itself; under
/// TLS 1.3 after its Finished, when it reads. Either way no request reaches the service.
#[tokio::test]
async fn required_mode_refuses_bad_certificates_in_the_handshake() {
    let fx = Fixture::new();
    let expired = fx
        .client_ca
        .client(ClientOptions::new("clock").validity(Validity::Expired));
    let future = fx
        .client_ca
        .client(ClientOptions::new("clock").validity(Validity::Future));
    let server_only = fx
        .client_ca
        .client(ClientOptions::new("eku").eku(Eku::ServerAuthOnly));
    let other = fx.other_ca.client(ClientOptions::new("other"));
    let server = serve(
        fx.server_config(ClientAuth::Required, fx.roots()),
        fx.policy(),
        |s| s,
    )
    .await;

    let cases: [(&str, Option<&Issued>, Option<AlertDescription>); 5] = [
        ("no certificate", None, None),
        ("other CA", Some(&other), Some(AlertDescription::UnknownCA)),
        (
            "expired",
            Some(&expired),
            Some(AlertDescription::CertificateExpired),
        ),
        (
            "not yet valid",
            Some(&future),
            Some(AlertDescription::CertificateExpired),
        ),
        (
            "serverAuth-only EKU",
            Some(&server_only),
            Some(AlertDescription::UnsupportedCertificate),
        ),
    ];
    for (name, client, expected) in cases {
        let result = server.get(&fx, client, Version::Tls12).await;
        match expected {
            Some(expected) => assert_eq!(alert(result), expected, "{name}"),
            None => assert!(result.is_err(), "{name}: {result:?}"),
        }
        let result = server.get(&fx, client, Version::Tls13).await;
        assert!(result.is_err(), "{name} over TLS 1.3: {result:?}");
    }
    assert_eq!(server.hits(), 0);
    // The server is still serving.
    assert_eq!(
        server
            .get(&fx, Some(&fx.trusted), Version::Tls13)
            .await
            .unwrap()
            .status,
        200
    );
}

#[tokio::test]
async fn valid_but_not_allowlisted_is_403_forbidden() {
    let fx = Fixture::new();
    let server = serve(
        fx.server_config(ClientAuth::Required, fx.roots()),
        fx.policy(),
        |s| s,
    )
    .await;
    let reply = server
        .get(&fx, Some(&fx.unlisted), Version::Tls13)
        .await
        .unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(reply.issue_code(), "forbidden");
    assert_eq!(reply.header("content-type"), Some("application/fhir+json"));
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn optional_mode_answers_missing_certificates_with_401_login() {
    let fx = Fixture::new();
    let server = serve(
        fx.server_config(ClientAuth::Optional, fx.roots()),
        fx.policy(),
        |s| s,
    )
    .await;
    let reply = server.get(&fx, None, Version::Tls13).await.unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.issue_code(), "login");
    // A certificate that is sent is still verified in the handshake.
    let other = fx.other_ca.client(ClientOptions::new("other"));
    assert_eq!(
        alert(server.get(&fx, Some(&other), Version::Tls12).await),
        AlertDescription::UnknownCA
    );
    assert_eq!(
        server
            .get(&fx, Some(&fx.trusted), Version::Tls12)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn revoked_certificates_are_refused_by_crl() {
    // RFC 5280 §6.3: CRL checking in the handshake.
    let fx = Fixture::new();
    let revoked = fx.client_ca.client(ClientOptions::new("revoked"));
    let roots = fx
        .roots()
        .with_crl_pem(fx.client_ca.crl_pem(&[&revoked]).as_bytes())
        .unwrap();
    let server = serve(
        fx.server_config(ClientAuth::Required, roots),
        fx.policy(),
        |s| s,
    )
    .await;
    assert_eq!(
        alert(server.get(&fx, Some(&revoked), Version::Tls12).await),
        AlertDescription::CertificateRevoked
    );
    assert_eq!(
        server
            .get(&fx, Some(&fx.trusted), Version::Tls12)
            .await
            .unwrap()
            .status,
        200
    );
}

/// A TLS stack that verifies nothing, to show that the layer checks dates and key usage on
/// its own ("refused even if the TLS stack let them through").
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<dyn rustls::server::danger::ClientCertVerifier>);

impl rustls::server::danger::ClientCertVerifier for AcceptAnyCertificate {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[tokio::test]
async fn layer_refuses_dates_and_key_usage_even_if_tls_accepted_them() {
    let fx = Fixture::new();
    let server_cert = fx.server_ca.server(&["localhost"]);
    let provider = Arc::new(fhirwall::identity::hardened_crypto_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(fx.client_ca.root.clone()).unwrap();
    let webpki = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(Arc::new(AcceptAnyCertificate(webpki)))
        .with_single_cert(server_cert.chain.clone(), server_cert.private_key())
        .unwrap();
    let server = serve(Arc::new(config), fx.policy(), |s| s).await;

    let expired = fx
        .client_ca
        .client(ClientOptions::new("clock").validity(Validity::Expired));
    let future = fx
        .client_ca
        .client(ClientOptions::new("clock").validity(Validity::Future));
    let server_only = fx
        .client_ca
        .client(ClientOptions::new("eku").eku(Eku::ServerAuthOnly));
    for (client, status, code) in [
        (&expired, 401, "expired"),
        (&future, 401, "unknown"),
        (&server_only, 401, "unknown"),
    ] {
        let reply = server.get(&fx, Some(client), Version::Tls13).await.unwrap();
        assert_eq!(
            (reply.status, reply.issue_code().as_str()),
            (status, code),
            "{}",
            reply.body
        );
    }
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn policy_reload_applies_to_open_connections_without_dropping_them() {
    let fx = Fixture::new();
    let server = serve(
        fx.server_config(ClientAuth::Required, fx.roots()),
        fx.policy(),
        |s| s,
    )
    .await;
    let config = pki::client_config(&fx.server_ca, Some(&fx.trusted), Version::Tls13);
    let mut connection = pki::connect(server.addr, None, config).await.unwrap();
    assert_eq!(
        connection.get("/fhir/metadata", &[]).await.unwrap().status,
        200
    );

    let old = server.policy.replace(TrustPolicy::deny_all());
    let reply = connection.get("/fhir/metadata", &[]).await.unwrap();
    assert_eq!(
        (reply.status, reply.issue_code().as_str()),
        (403, "forbidden")
    );

    let renamed = TrustPolicy::builder()
        .allow(
            "lab-renamed",
            ClientMatch::thumbprint(
                &ClientIdentity::from_der(&fx.trusted.cert)
                    .unwrap()
                    .thumbprint_hex(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    server.policy.replace(renamed);
    let reply = connection.get("/fhir/metadata", &[]).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["client"], "lab-renamed");
    assert_eq!(old.client_names()[0], "lab");
}

#[tokio::test]
async fn a_stalled_handshake_neither_blocks_others_nor_lives_forever() {
    let fx = Fixture::new();
    let server = serve(
        fx.server_config(ClientAuth::Required, fx.roots()),
        fx.policy(),
        |s| s.handshake_timeout(Duration::from_millis(300)),
    )
    .await;
    // A client that connects and never says a word.
    let mut stalled = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Others are served meanwhile: handshakes run in their own tasks.
    assert_eq!(
        server
            .get(&fx, Some(&fx.trusted), Version::Tls13)
            .await
            .unwrap()
            .status,
        200
    );
    // The stalled connection is closed by the server once its handshake time is up (the
    // bound here only keeps a broken server from hanging the test).
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(30), stalled.read(&mut buf))
        .await
        .expect("the server never closed the stalled connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn http2_is_offered_by_alpn() {
    let fx = Fixture::new();
    let config = fx.server_config(ClientAuth::Required, fx.roots());
    assert_eq!(
        config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert!(config.ignore_client_order);
}
