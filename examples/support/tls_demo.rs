//! The gateway's `--tls` mode: a throwaway CA, server and client certificates (rcgen) in a
//! fresh temporary folder, fhirwall's hardened mutual-TLS server configuration, a trust
//! policy that knows one demo client, and the curl lines to try.
//!
//! This is a module, not an example target. The gateway includes it and calls it like this
//! (`--tls` needs the `rustls` feature: `cargo run --example gateway --features rustls -- --tls`;
//! without the feature `TlsDemo::generate` returns an error saying so, so the gateway needs no
//! `cfg` of its own):
//!
//! ```ignore
//! #[path = "support/tls_demo.rs"]
//! mod tls_demo;
//!
//! // in main, after building `app: axum::Router` (the FHIR routes with fhirwall's layers):
//! if args.tls {
//!     let demo = tls_demo::TlsDemo::generate(args.listen, &args.base)?; // Result<_, String>
//!     println!("{}", demo.instructions());
//!     let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| e.to_string())?;
//!     // Puts the TrustedClientLayer outermost around `app` and serves it over TLS; every
//!     // request then carries TrustedClient, Arc<ClientIdentity> and CertificateThumbprint.
//!     tls_demo::serve(&demo, listener, app).await?;
//! }
//! ```
//!
//! To place the identity layer elsewhere in the stack, take `demo.identity_layer()`, apply it
//! yourself, and serve with `tls_demo::serve_service(&demo, listener, service)`.
//!
//! The server requires a client certificate (`ClientAuth::Required`): curl without one fails
//! the handshake; with the demo client's it gets the FHIR response; with the second,
//! valid-but-unlisted client's it gets a 403 `OperationOutcome`.
#![allow(dead_code, unreachable_pub, clippy::print_stdout)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The demo client's SAN URI, which the demo trust policy allows as `demo-client`.
pub const DEMO_CLIENT_URI: &str = "spiffe://fhirwall.demo/client";

/// Everything `--tls` mode generated. Clones share the configuration and trust policy.
#[derive(Clone)]
pub struct TlsDemo {
    /// The temporary folder holding the files below.
    pub dir: PathBuf,
    /// The demo CA certificate (it signed the server and both clients).
    pub ca_cert: PathBuf,
    /// The server certificate.
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
    /// The trusted demo client's certificate.
    pub client_cert: PathBuf,
    /// The trusted demo client's key.
    pub client_key: PathBuf,
    /// A second client, signed by the same CA but not in the trust policy.
    pub unlisted_cert: PathBuf,
    /// The second client's key.
    pub unlisted_key: PathBuf,
    /// `curl` with the trusted client's certificate: the FHIR response.
    pub curl: String,
    /// `curl` with the unlisted client's certificate: 403 `forbidden`.
    pub curl_unlisted: String,
    /// `curl` without a client certificate: the TLS handshake is refused.
    pub curl_no_cert: String,
    #[cfg(feature = "rustls")]
    config: std::sync::Arc<rustls::ServerConfig>,
    #[cfg(feature = "rustls")]
    policy: fhirwall::identity::TrustPolicyHandle,
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = private;
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

struct Issued {
    cert_pem: String,
    key_pem: String,
}

fn issue(
    params: rcgen::CertificateParams,
    ca: &rcgen::Issuer<'_, rcgen::KeyPair>,
) -> Result<Issued, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, ca).map_err(|e| e.to_string())?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn client_params(name: &str, uri: &str) -> Result<rcgen::CertificateParams, String> {
    use rcgen::{DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType};
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "fhirwall demo");
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = vec![SanType::URI(uri.try_into().map_err(|e| format!("{e}"))?)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params);
    Ok(params)
}

fn validity(params: &mut rcgen::CertificateParams) {
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    params.not_before = (now - day).into();
    params.not_after = (now + 30 * day).into();
}

impl TlsDemo {
    /// Generates the certificates into a new temporary folder and builds the server
    /// configuration. `listen` is the gateway's listen address and `base` its FHIR base path;
    /// both go into the curl lines.
    pub fn generate(listen: SocketAddr, base: &str) -> Result<TlsDemo, String> {
        use rcgen::{BasicConstraints, DnType, IsCa, KeyUsagePurpose};

        if !cfg!(feature = "rustls") {
            return Err("--tls needs fhirwall's rustls feature: cargo run --example gateway --features rustls -- --tls".to_owned());
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("fhirwall-tls-demo-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

        let mut ca_params = rcgen::CertificateParams::default();
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "fhirwall demo");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "fhirwall demo CA (throwaway)");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut ca_params);
        let ca_key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(|e| e.to_string())?;

        let host = match listen.ip() {
            ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if !names.contains(&host.to_string()) {
            names.push(host.to_string());
        }
        let mut server_params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
        server_params.distinguished_name = rcgen::DistinguishedName::new();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "fhirwall demo gateway");
        server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        validity(&mut server_params);
        let server = issue(server_params, &ca)?;
        let client = issue(client_params("fhirwall demo client", DEMO_CLIENT_URI)?, &ca)?;
        let unlisted = issue(
            client_params(
                "fhirwall unlisted client",
                "spiffe://fhirwall.demo/unlisted",
            )?,
            &ca,
        )?;

        let path = |name: &str| dir.join(name);
        let files = [
            ("ca.pem", ca.pem(), false),
            ("server.pem", server.cert_pem.clone(), false),
            ("server.key", server.key_pem.clone(), true),
            ("client.pem", client.cert_pem.clone(), false),
            ("client.key", client.key_pem.clone(), true),
            ("unlisted.pem", unlisted.cert_pem.clone(), false),
            ("unlisted.key", unlisted.key_pem.clone(), true),
        ];
        for (name, contents, private) in &files {
            write(&path(name), contents, *private)?;
        }

        let url_host = match host {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let base = base.trim_end_matches('/');
        let url = format!("https://{url_host}:{}{base}/metadata", listen.port());
        let ca_path = path("ca.pem");
        let curl_with = |cert: &str, key: &str| {
            format!(
                "curl --cacert {} --cert {} --key {} {url}",
                ca_path.display(),
                path(cert).display(),
                path(key).display()
            )
        };

        Ok(TlsDemo {
            curl: curl_with("client.pem", "client.key"),
            curl_unlisted: curl_with("unlisted.pem", "unlisted.key"),
            curl_no_cert: format!("curl --cacert {} {url}", ca_path.display()),
            #[cfg(feature = "rustls")]
            config: server_config(&ca, &server)?,
            #[cfg(feature = "rustls")]
            policy: demo_policy()?.into(),
            ca_cert: ca_path,
            server_cert: path("server.pem"),
            server_key: path("server.key"),
            client_cert: path("client.pem"),
            client_key: path("client.key"),
            unlisted_cert: path("unlisted.pem"),
            unlisted_key: path("unlisted.key"),
            dir,
        })
    }

    /// What to print at start: where the files are and the three curl lines with what each
    /// should get.
    pub fn instructions(&self) -> String {
        format!(
            "mutual TLS is on: throwaway CA, server and client certificates are in {dir}\n\
             a client certificate is required, and only the demo client ({DEMO_CLIENT_URI}) is trusted.\n\n\
             trusted client (200, the CapabilityStatement):\n  {curl}\n\n\
             valid certificate, but not on the trust policy (403 OperationOutcome, code forbidden):\n  {unlisted}\n\n\
             no client certificate (the TLS handshake is refused):\n  {none}\n",
            dir = self.dir.display(),
            curl = self.curl,
            unlisted = self.curl_unlisted,
            none = self.curl_no_cert,
        )
    }
}

#[cfg(feature = "rustls")]
fn server_config(
    ca: &rcgen::CertifiedIssuer<'_, rcgen::KeyPair>,
    server: &Issued,
) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    use fhirwall::identity::{ClientAuth, ClientCaRoots, ServerTlsConfig};
    ServerTlsConfig::new()
        .server_certificate_pem(server.cert_pem.as_bytes(), server.key_pem.as_bytes())
        .and_then(|c| Ok(c.client_ca_roots(ClientCaRoots::from_pem(ca.pem().as_bytes())?)))
        .and_then(|c| c.client_auth(ClientAuth::Required).build())
        .map_err(|e| e.to_string())
}

#[cfg(feature = "rustls")]
fn demo_policy() -> Result<fhirwall::identity::TrustPolicy, String> {
    use fhirwall::identity::{ClientMatch, TrustPolicy};
    let rule = ClientMatch::san_uri(DEMO_CLIENT_URI).map_err(|e| e.to_string())?;
    TrustPolicy::builder()
        .allow("demo-client", rule)
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(feature = "rustls")]
impl TlsDemo {
    /// The identity layer with the demo trust policy.
    pub fn identity_layer(&self) -> fhirwall::identity::TrustedClientLayer {
        fhirwall::identity::TrustedClientLayer::new(self.policy.clone())
    }

    /// The hardened rustls server configuration (client certificates required).
    pub fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        self.config.clone()
    }
}

/// Serves `app` over mutual TLS with the identity layer outermost; runs until the process
/// ends.
pub async fn serve(
    demo: &TlsDemo,
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> Result<(), String> {
    #[cfg(feature = "rustls")]
    {
        let service = tower::Layer::layer(&demo.identity_layer(), app);
        serve_service(demo, listener, service).await
    }
    #[cfg(not(feature = "rustls"))]
    {
        let _ = (demo, listener, app);
        Err("--tls needs fhirwall's rustls feature".to_owned())
    }
}

/// Serves any service over the demo's mutual TLS configuration (no identity layer added).
#[cfg(feature = "rustls")]
pub async fn serve_service<S, B>(
    demo: &TlsDemo,
    listener: tokio::net::TcpListener,
    service: S,
) -> Result<(), String>
where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fhirwall::identity::TlsServer::new(demo.server_config())
        .serve(listener, service)
        .await;
    Ok(())
}
