#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The whole demo stack with the identity layer, served over real mutual TLS on 127.0.0.1
//! by `fhirwall::identity::TlsServer` (certificates generated with rcgen by the gateway's
//! `--tls` support): the trusted client is allowed, an unlisted certificate is refused by the
//! identity layer (403, audited), no certificate fails the handshake, and RFC 8705 §3
//! certificate-bound tokens only work on the certificate they are bound to.
#![cfg(feature = "rustls")]

mod stack_support;
#[path = "../examples/support/tls_demo.rs"]
mod tls_demo;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use fhirwall::identity::TlsServer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};
use stack_support::smart_demo::DemoToken;
use stack_support::StackDemo;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request over a fresh mutual-TLS connection: the raw HTTP/1.1 response, or the TLS
/// error.
async fn fetch(
    demo: &tls_demo::TlsDemo,
    addr: SocketAddr,
    cert: Option<(&Path, &Path)>,
    path: &str,
    token: Option<&str>,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&demo.ca_cert).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(cert).unwrap()],
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{auth}connection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// RFC 8705 §3.1: `x5t#S256` is the base64url SHA-256 of the certificate's DER.
fn x5t_s256(cert: &Path) -> String {
    let der = CertificateDer::from_pem_file(cert).unwrap();
    URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_ref()))
}

#[tokio::test]
async fn whole_stack_over_mutual_tls() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = tls_demo::TlsDemo::generate(addr, "/fhir").unwrap();
    let demo = StackDemo::new(addr, Some(tls.identity_layer()), None).await;
    assert_eq!(
        demo.layers[..5],
        ["audit", "firewall", "identity", "token gate", "classify"]
    );

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = TlsServer::new(tls.server_config());
    let app = demo.app.clone();
    let serving = tokio::spawn(async move {
        server
            .serve_with_shutdown(listener, app, async {
                let _ = stopped.await;
            })
            .await;
    });
    let trusted = Some((tls.client_cert.as_path(), tls.client_key.as_path()));
    let unlisted = Some((tls.unlisted_cert.as_path(), tls.unlisted_key.as_path()));

    // The trusted client: allowed, and the audit record names it.
    let reply = fetch(&tls, addr, trusted, "/fhir/metadata", None)
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("CapabilityStatement"), "{reply}");
    let record = demo.last_record();
    assert_eq!(record.decision.layer, "handler");
    assert_eq!(record.agent.client.as_deref(), Some("demo-client"));

    // The trusted client still needs a token for data (SMART behind mTLS).
    let reply = fetch(&tls, addr, trusted, "/fhir/Patient/pat-1", None)
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert_eq!(demo.last_record().decision.layer, "smart");
    let token = demo.token("clinician").unwrap();
    let reply = fetch(&tls, addr, trusted, "/fhir/Patient/pat-1", Some(&token))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // A valid certificate from the same CA, but not on the trust policy: 403, by identity.
    let reply = fetch(&tls, addr, unlisted, "/fhir/metadata", None)
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    assert!(reply.contains("\"code\":\"forbidden\""), "{reply}");
    let record = demo.last_record();
    assert_eq!(record.decision.layer, "identity");
    assert_eq!(record.decision.outcome, "refused");

    // No certificate: the handshake itself is refused; nothing reaches the stack.
    let before = demo.sink.records().len();
    assert!(fetch(&tls, addr, None, "/fhir/metadata", None)
        .await
        .is_err());
    assert_eq!(demo.sink.records().len(), before);

    // RFC 8705 §3: a token bound to the trusted client's certificate works on it ...
    let bound = |cert: &Path| {
        demo.issuer
            .mint(
                &DemoToken::clinician("example")
                    .claim("cnf", serde_json::json!({ "x5t#S256": x5t_s256(cert) })),
            )
            .unwrap()
    };
    let own = bound(&tls.client_cert);
    let reply = fetch(&tls, addr, trusted, "/fhir/Patient/pat-1", Some(&own))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // ... and a token bound to another certificate is refused on it (401, by smart).
    let foreign = bound(&tls.unlisted_cert);
    let reply = fetch(&tls, addr, trusted, "/fhir/Patient/pat-1", Some(&foreign))
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert_eq!(demo.last_record().decision.layer, "smart");

    let _ = stop.send(());
    serving.await.unwrap();
    std::fs::remove_dir_all(&tls.dir).unwrap();
}
