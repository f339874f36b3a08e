//! The example policy (`examples/policy.toml`) with only its deployment ties replaced, served
//! by the whole stack around the demo FHIR store on 127.0.0.1: over real mutual TLS
//! (`fhirwall::identity::TlsServer`) and over plain TCP behind a "proxy" that forwards the
//! client certificate (Envoy XFCC), plus a tiny HTTP/1.1 client for both.
#![allow(dead_code)]

#[path = "../support/pki.rs"]
pub mod pki;

use fhirwall::identity::{ClientAuth, ClientCaRoots, ServerTlsConfig, TlsServer};
use fhirwall::policy::Policy;
use pki::{ClientOptions, Issued, Pki};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use toml::{Table, Value};

/// The example policy's text.
pub const EXAMPLE: &str = include_str!("../../examples/policy.toml");
/// The directory the example's own relative paths (salt, CapabilityStatement) are taken from.
pub const EXAMPLE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
/// The SAN URI of the example's `lab-ingest` client.
pub const LAB_URI: &str = "spiffe://lab.example/ns/prod/sa/ingest";

/// How a request reaches the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conn {
    /// Mutual TLS to `TlsServer`.
    Tls,
    /// Plain TCP, no forwarding headers.
    Tcp,
    /// Plain TCP from a trusted proxy: XFCC plus `X-Forwarded-Proto: https`.
    Xfcc,
    /// Plain TCP from a trusted proxy: XFCC but no `X-Forwarded-Proto`.
    XfccNoProto,
}

impl Conn {
    /// Parses a scenario's connection field.
    pub fn parse(text: &str) -> Conn {
        match text {
            "tls" => Conn::Tls,
            "tcp" => Conn::Tcp,
            "xfcc" => Conn::Xfcc,
            "xfcc-noproto" => Conn::XfccNoProto,
            other => panic!("unknown connection {other:?}"),
        }
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `issue[0].code` of an OperationOutcome body.
    pub fn issue_code(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        (json["resourceType"] == "OperationOutcome")
            .then(|| json["issue"][0]["code"].as_str().map(str::to_owned))
            .flatten()
    }
}

/// The served example policy and everything a test needs to talk to it.
pub struct Setup {
    pub dir: PathBuf,
    pub ca: Pki,
    pub lab: Issued,
    pub partner: Issued,
    pub stranger: Issued,
    signing: jsonwebtoken::EncodingKey,
    pub tls_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    pub audit: PathBuf,
    /// The edited policy text, for failure messages.
    pub policy_text: String,
    stop: Option<tokio::sync::watch::Sender<bool>>,
}

fn loopback() -> Value {
    Value::Array(vec![Value::String("127.0.0.0/8".into())])
}

/// The "proxy" address: a loopback address of its own, because from a trusted proxy only the
/// forwarded certificate counts, never the connection's own, so the mutual-TLS clients (on
/// 127.0.0.1) must not be proxies.
pub const PROXY_IP: &str = "127.0.0.2";

fn proxy() -> Value {
    Value::Array(vec![Value::String(format!("{PROXY_IP}/32"))])
}

fn table<'a>(t: &'a mut Table, key: &str) -> &'a mut Table {
    t.get_mut(key)
        .and_then(Value::as_table_mut)
        .unwrap_or_else(|| panic!("the example has no [{key}]"))
}

fn path_value(p: &std::path::Path) -> Value {
    Value::String(p.display().to_string())
}

/// The example with only what ties it to a real deployment replaced; every change is named.
fn edit_example(
    ca_file: &std::path::Path,
    key_file: &std::path::Path,
    audit_file: &std::path::Path,
    base_url: &str,
) -> String {
    let mut doc: Table = EXAMPLE.parse().unwrap();
    // service.base_url: the test server (it counts as local in references).
    table(&mut doc, "service").insert("base_url".into(), Value::String(base_url.into()));
    // network: the proxy is the test on its own loopback address; /admin's group on loopback.
    let network = table(&mut doc, "network");
    network.insert("trusted_proxies".into(), proxy());
    for group in network
        .get_mut("groups")
        .and_then(Value::as_array_mut)
        .unwrap()
    {
        group
            .as_table_mut()
            .unwrap()
            .insert("allow".into(), loopback());
    }
    // clients: the test CA instead of the deployment's, loopback instead of the lab's
    // network, and no access windows (always open, so the test does not depend on the clock).
    for client in doc
        .get_mut("clients")
        .and_then(Value::as_array_mut)
        .unwrap()
    {
        let client = client.as_table_mut().unwrap();
        if client.contains_key("issued_by") {
            client.insert("issued_by".into(), Value::Array(vec![path_value(ca_file)]));
        }
        if client.contains_key("networks") {
            client.insert("networks".into(), loopback());
        }
        client.remove("windows");
    }
    // forwarded_certificates: the "proxy" is the test on its own loopback address; the
    // certificates are verified against the test CA.
    let forwarded = table(&mut doc, "forwarded_certificates");
    forwarded.insert("proxies".into(), proxy());
    forwarded.insert("client_ca_file".into(), path_value(ca_file));
    // tokens: the issuer key the test signs with (issuer and audience stay the example's).
    table(&mut doc, "tokens").insert("public_keys_file".into(), path_value(key_file));
    // audit: a json_lines file the test reads back, instead of tracing.
    let mut sink = Table::new();
    sink.insert("kind".into(), Value::String("json_lines".into()));
    sink.insert("path".into(), path_value(audit_file));
    table(&mut doc, "audit").insert("sinks".into(), Value::Array(vec![Value::Table(sink)]));
    toml::to_string(&doc).unwrap()
}

impl Setup {
    /// Loads the edited example, builds the stack around the demo store, and serves it over
    /// mutual TLS and plain TCP on 127.0.0.1.
    pub async fn start(name: &str) -> Setup {
        let dir =
            std::env::temp_dir().join(format!("fhirwall-policy-tcp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca = Pki::new("fhirwall policy_tcp CA");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.root_pem()).unwrap();
        let lab = ca.client(ClientOptions::new("lab-ingest").uri(LAB_URI));
        let partner = ca.client(ClientOptions::new("portal").dns("portal.partner.example"));
        let stranger = ca.client(ClientOptions::new("stranger").uri("spiffe://lab.example/x"));
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key_file = dir.join("issuer.pub.pem");
        std::fs::write(&key_file, key.public_key_pem()).unwrap();
        let signing =
            jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
        let audit = dir.join("audit.jsonl");

        let tls_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls_addr = tls_listener.local_addr().unwrap();
        let tcp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp_addr = tcp_listener.local_addr().unwrap();
        let base_url = format!("https://{tls_addr}/fhir");
        let policy_text = edit_example(&ca_file, &key_file, &audit, &base_url);
        let policy = Policy::from_toml_str_in(&policy_text, "policy_tcp.toml", EXAMPLE_DIR)
            .unwrap_or_else(|e| panic!("{e}\n{policy_text}"));
        let stack = policy.build().unwrap_or_else(|e| panic!("{e}"));

        let store = fhirwall_demo::MemoryStore::new();
        fhirwall_demo::sample::load(&store, fhirwall_demo::sample::DEFAULT_SEED);
        let config = fhirwall_demo::DemoConfig::for_address(tls_addr, "/fhir");
        let app = fhirwall_demo::router(store, config).layer(stack);

        let server = ca.server(&["localhost"]);
        let tls_config = ServerTlsConfig::new()
            .server_certificate(server.chain.clone(), server.private_key())
            .client_ca_roots(ClientCaRoots::from_der([ca.root.clone()]).unwrap())
            .client_auth(ClientAuth::Required)
            .build()
            .unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tls_stopped = stopped.clone();
        let tls_app = app.clone();
        tokio::spawn(async move {
            TlsServer::new(tls_config)
                .serve_with_shutdown(tls_listener, tls_app, async move {
                    let _ = tls_stopped.changed().await;
                })
                .await;
        });
        let mut tcp_stopped = stopped;
        tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(tcp_listener, service)
                .with_graceful_shutdown(async move {
                    let _ = tcp_stopped.changed().await;
                })
                .await
                .unwrap();
        });
        Setup {
            dir,
            ca,
            lab,
            partner,
            stranger,
            signing,
            tls_addr,
            tcp_addr,
            audit,
            policy_text,
            stop: Some(stop),
        }
    }

    /// A certificate by the name the scenario file uses (`none` is none).
    pub fn cert(&self, name: &str) -> Option<&Issued> {
        match name {
            "none" => None,
            "lab" => Some(&self.lab),
            "partner" => Some(&self.partner),
            "stranger" => Some(&self.stranger),
            other => panic!("unknown certificate {other:?}"),
        }
    }

    /// A token by the name the scenario file uses (`none` is none): an RFC 9068 access token
    /// from the example's issuer for the example's audience.
    pub fn token(&self, name: &str) -> Option<String> {
        let (patient, scope) = match name {
            "none" => return None,
            "garbage" => return Some("not-a-jwt".into()),
            "p1" => (Some("pat-1"), "patient/*.rs"),
            "ssn" => (Some("pat-ssn"), "patient/*.rs"),
            "write" => (Some("pat-1"), "patient/*.cruds"),
            "user" => (None, "user/*.rs"),
            other => panic!("unknown token {other:?}"),
        };
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = serde_json::json!({
            "iss": "https://auth.example.org",
            "aud": "https://fhir.example.org/fhir",
            "sub": format!("user-{name}"),
            "iat": now,
            "exp": now + 600,
            "jti": format!("{name}-{now}"),
            "scope": scope,
            "client_id": "policy-tcp-app",
        });
        if let Some(patient) = patient {
            claims["patient"] = patient.into();
        }
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        Some(jsonwebtoken::encode(&header, &claims, &self.signing).unwrap())
    }

    /// Sends one request over a fresh connection of kind `conn`, presenting `cert` (over TLS
    /// or forwarded in XFCC).
    pub async fn send(
        &self,
        conn: Conn,
        cert: Option<&Issued>,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<Reply, String> {
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(token) = token {
            headers.push(("authorization".into(), format!("Bearer {token}")));
        }
        if matches!(conn, Conn::Xfcc | Conn::XfccNoProto) {
            if let Some(cert) = cert {
                headers.push((
                    "x-forwarded-client-cert".into(),
                    format!(
                        "By=spiffe://proxy.example/envoy;Cert=\"{}\"",
                        pki::url_escape(&cert.cert_pem)
                    ),
                ));
            }
        }
        if conn == Conn::Xfcc {
            headers.push(("x-forwarded-proto".into(), "https".into()));
        }
        if conn == Conn::Tls {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca.root.clone()).unwrap();
            let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
            let config = match cert {
                Some(c) => builder
                    .with_client_auth_cert(c.chain.clone(), c.private_key())
                    .unwrap(),
                None => builder.with_no_client_auth(),
            };
            let tcp = tokio::net::TcpStream::connect(self.tls_addr).await.unwrap();
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .map_err(|e| e.to_string())?;
            exchange(tls, method, path, &headers, body).await
        } else {
            // Forwarded requests come from the proxy's address; plain ones from 127.0.0.1.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            if conn != Conn::Tcp {
                socket
                    .bind(SocketAddr::new(PROXY_IP.parse().unwrap(), 0))
                    .unwrap();
            }
            let tcp = socket.connect(self.tcp_addr).await.unwrap();
            exchange(tcp, method, path, &headers, body).await
        }
    }

    /// The audit records written so far, as JSON.
    pub fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits (without a deadline assertion on speed: up to a generous bound) until there are
    /// more than `seen` records, and returns the newest.
    pub async fn record_after(&self, seen: usize) -> serde_json::Value {
        for _ in 0..1000 {
            let records = self.records();
            if records.len() > seen {
                return records.last().unwrap().clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no audit record after {seen}");
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/1.1 request with `connection: close`, read to the end.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<&str>,
) -> Result<Reply, String> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\naccept: application/fhir+json\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "content-type: application/fhir+json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw).await {
        // A peer that closes without close_notify still sent a whole response.
        if raw.is_empty() || e.kind() != std::io::ErrorKind::UnexpectedEof {
            return Err(e.to_string());
        }
    }
    parse(&raw)
}

fn parse(raw: &[u8]) -> Result<Reply, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no response head: {}", String::from_utf8_lossy(raw)))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
            let size =
                usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body
    } else {
        rest.to_vec()
    };
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
