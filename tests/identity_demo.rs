#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The gateway's `--tls` mode (`examples/support/tls_demo.rs`): generated files, a real
//! mutual-TLS server, and the printed curl lines run with the real curl when it is installed.
#![cfg(feature = "rustls")]

#[path = "../examples/support/tls_demo.rs"]
mod tls_demo;

use axum::routing::get;
use axum::{Extension, Router};
use fhirwall::identity::TrustedClient;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::process::Command;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn metadata(Extension(client): Extension<TrustedClient>) -> String {
    format!(
        "{{\"resourceType\":\"CapabilityStatement\",\"client\":\"{}\"}}",
        client.name()
    )
}

/// One `GET` with the demo's files, as curl would do it; the status line, or the error.
async fn fetch(
    demo: &tls_demo::TlsDemo,
    addr: std::net::SocketAddr,
    cert: Option<(&std::path::Path, &std::path::Path)>,
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
    let _ = tls
        .write_all(b"GET /fhir/metadata HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .await;
    let mut response = Vec::new();
    tls.read_to_end(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8(response).unwrap();
    Ok(text)
}

#[tokio::test]
async fn tls_mode_generates_working_certificates_and_curl_lines() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let demo = tls_demo::TlsDemo::generate(addr, "/fhir").unwrap();
    for file in [
        &demo.ca_cert,
        &demo.server_cert,
        &demo.server_key,
        &demo.client_cert,
        &demo.client_key,
    ] {
        assert!(file.is_file(), "{}", file.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&demo.client_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys are private to their owner");
    }
    assert_eq!(
        demo.curl,
        format!(
            "curl --cacert {} --cert {} --key {} https://127.0.0.1:{}/fhir/metadata",
            demo.ca_cert.display(),
            demo.client_cert.display(),
            demo.client_key.display(),
            addr.port()
        )
    );
    assert!(demo.instructions().contains(&demo.curl));
    // What the gateway prints at start (visible with --nocapture).
    #[allow(clippy::print_stdout)]
    {
        println!("{}", demo.instructions());
    }

    let app = Router::new().route("/fhir/metadata", get(metadata));
    let server_demo = demo.clone();
    tokio::spawn(async move { tls_demo::serve(&server_demo, listener, app).await });

    let trusted = fetch(&demo, addr, Some((&demo.client_cert, &demo.client_key)))
        .await
        .unwrap();
    assert!(trusted.starts_with("HTTP/1.1 200"), "{trusted}");
    assert!(trusted.contains("\"client\":\"demo-client\""), "{trusted}");
    let unlisted = fetch(&demo, addr, Some((&demo.unlisted_cert, &demo.unlisted_key)))
        .await
        .unwrap();
    assert!(unlisted.starts_with("HTTP/1.1 403"), "{unlisted}");
    assert!(unlisted.contains("\"code\":\"forbidden\""), "{unlisted}");
    assert!(fetch(&demo, addr, None).await.is_err());

    // The printed lines themselves, with the real curl, where the machine has one.
    if Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let run = |line: String| {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = line.split(' ').skip(1).collect();
                Command::new("curl")
                    .args(["-sS", "-w", "\n%{http_code}", "--max-time", "20"])
                    .args(args)
                    .output()
                    .unwrap()
            })
        };
        let ok = run(demo.curl.clone()).await.unwrap();
        let out = String::from_utf8_lossy(&ok.stdout);
        assert!(
            out.ends_with("\n200") && out.contains("demo-client"),
            "{out}"
        );
        let forbidden = run(demo.curl_unlisted.clone()).await.unwrap();
        let out = String::from_utf8_lossy(&forbidden.stdout);
        assert!(out.ends_with("\n403") && out.contains("forbidden"), "{out}");
        let refused = run(demo.curl_no_cert.clone()).await.unwrap();
        assert!(!refused.status.success(), "{refused:?}");
        #[allow(clippy::print_stdout)]
        for (line, output) in [
            (&demo.curl, &ok),
            (&demo.curl_unlisted, &forbidden),
            (&demo.curl_no_cert, &refused),
        ] {
            println!(
                "$ {line}\n{}\n[{}] {}",
                String::from_utf8_lossy(&output.stdout),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    std::fs::remove_dir_all(&demo.dir).unwrap();
}
