//! Shared test PKI: a CA (and intermediates) that issue server and client certificates with
//! rcgen, with the options the tests need (expired, not yet valid, EKU, SANs, CRLs), plus a tiny
//! HTTPS/1.1 client over tokio-rustls for tests that talk to a real TLS server on 127.0.0.1.
//!
//! Include it with `#[path = "support/pki.rs"] mod pki;`. Every function here is used by some
//! test, not by all, hence the `dead_code` allowance.
#![allow(
    dead_code,
    unreachable_pub,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

static SERIAL: AtomicU64 = AtomicU64::new(1);

fn next_serial() -> SerialNumber {
    // Distinct serials per process, so CRL tests revoke exactly the certificate they mean.
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut bytes = vec![0x01];
    bytes.extend_from_slice(&n.to_be_bytes());
    bytes.extend_from_slice(&nanos.to_be_bytes());
    SerialNumber::from_slice(&bytes)
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// When a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// From an hour ago for a day.
    Current,
    /// From ten days ago until yesterday.
    Expired,
    /// From tomorrow for ten days.
    Future,
}

impl Validity {
    fn apply(self, params: &mut CertificateParams) {
        let now = SystemTime::now();
        let (from, to) = match self {
            Validity::Current => (now - HOUR, now + DAY),
            Validity::Expired => (now - 10 * DAY, now - DAY),
            Validity::Future => (now + DAY, now + 10 * DAY),
        };
        params.not_before = from.into();
        params.not_after = to.into();
    }
}

/// Which extended key usages a leaf certificate carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eku {
    /// `clientAuth` (what a TLS client certificate needs).
    ClientAuth,
    /// `serverAuth` only: the wrong key usage for a client.
    ServerAuthOnly,
    /// No EKU extension at all.
    None,
}

/// What to put in a client certificate.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Subject common name.
    pub common_name: String,
    /// Subject organization, if any.
    pub organization: Option<String>,
    /// SAN DNS names.
    pub dns: Vec<String>,
    /// SAN URIs (SPIFFE IDs and the like).
    pub uris: Vec<String>,
    /// SAN email addresses.
    pub emails: Vec<String>,
    /// Validity window.
    pub validity: Validity,
    /// Extended key usage.
    pub eku: Eku,
}

impl ClientOptions {
    /// A current client certificate with `clientAuth`, this CN and SAN URI
    /// `spiffe://test.example/<cn>`.
    pub fn new(common_name: &str) -> Self {
        ClientOptions {
            common_name: common_name.to_owned(),
            organization: Some("fhirwall tests".to_owned()),
            dns: Vec::new(),
            uris: vec![format!("spiffe://test.example/{common_name}")],
            emails: Vec::new(),
            validity: Validity::Current,
            eku: Eku::ClientAuth,
        }
    }

    /// Sets the validity window.
    pub fn validity(mut self, validity: Validity) -> Self {
        self.validity = validity;
        self
    }

    /// Sets the extended key usage.
    pub fn eku(mut self, eku: Eku) -> Self {
        self.eku = eku;
        self
    }

    /// Adds a SAN DNS name.
    pub fn dns(mut self, name: &str) -> Self {
        self.dns.push(name.to_owned());
        self
    }

    /// Adds a SAN URI.
    pub fn uri(mut self, uri: &str) -> Self {
        self.uris.push(uri.to_owned());
        self
    }

    /// Adds a SAN email.
    pub fn email(mut self, email: &str) -> Self {
        self.emails.push(email.to_owned());
        self
    }
}

/// A certificate issued by a [`Pki`], with its key and the chain to present.
pub struct Issued {
    /// The leaf certificate.
    pub cert: CertificateDer<'static>,
    /// The leaf's PKCS#8 key.
    pub key: PrivatePkcs8KeyDer<'static>,
    /// Leaf first, then the intermediates (never the root).
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf as PEM.
    pub cert_pem: String,
    /// The chain (leaf first) as PEM.
    pub chain_pem: String,
    /// The key as PEM.
    pub key_pem: String,
    /// The leaf's serial number.
    pub serial: SerialNumber,
}

impl Issued {
    /// The key as rustls wants it.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// A certificate authority (a root, or an intermediate under one).
pub struct Pki {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// This CA's certificate.
    pub cert: CertificateDer<'static>,
    /// This CA's certificate and those above it up to (not including) the root.
    intermediates: Vec<CertificateDer<'static>>,
    /// The root's certificate.
    pub root: CertificateDer<'static>,
    /// The CA's name.
    pub name: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "fhirwall test PKI");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(next_serial());
    params.key_identifier_method = KeyIdMethod::Sha256;
    let now = SystemTime::now();
    params.not_before = (now - DAY).into();
    params.not_after = (now + 365 * DAY).into();
    params
}

impl Pki {
    /// A new self-signed root CA.
    pub fn new(name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let issuer = CertifiedIssuer::self_signed(ca_params(name), key).unwrap();
        let cert = issuer.der().clone();
        Pki {
            issuer,
            root: cert.clone(),
            cert,
            intermediates: Vec::new(),
            name: name.to_owned(),
        }
    }

    /// An intermediate CA issued by this one.
    pub fn intermediate(&self, name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params(name);
        params.use_authority_key_identifier_extension = true;
        let issuer = CertifiedIssuer::signed_by(params, key, &self.issuer).unwrap();
        let cert = issuer.der().clone();
        let mut intermediates = vec![cert.clone()];
        intermediates.extend(self.intermediates.iter().cloned());
        Pki {
            issuer,
            cert,
            intermediates,
            root: self.root.clone(),
            name: name.to_owned(),
        }
    }

    /// The root as PEM (what a server loads as its client CA roots).
    pub fn root_pem(&self) -> String {
        pem("CERTIFICATE", &self.root)
    }

    fn issue(&self, mut params: CertificateParams) -> Issued {
        let key = KeyPair::generate().unwrap();
        let serial = next_serial();
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let cert = cert.der().clone();
        let mut chain = vec![cert.clone()];
        chain.extend(self.intermediates.iter().cloned());
        let chain_pem = chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
        let key_der = key.serialize_der();
        Issued {
            cert_pem: pem("CERTIFICATE", &cert),
            key_pem: pem("PRIVATE KEY", &key_der),
            cert,
            key: PrivatePkcs8KeyDer::from(key_der),
            chain,
            chain_pem,
            serial,
        }
    }

    /// A server certificate for these names (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Issued {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "fhirwall test server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        Validity::Current.apply(&mut params);
        self.issue(params)
    }

    /// A client certificate with these options.
    pub fn client(&self, options: ClientOptions) -> Issued {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(org) = &options.organization {
            params
                .distinguished_name
                .push(DnType::OrganizationName, org.as_str());
        }
        params
            .distinguished_name
            .push(DnType::CommonName, options.common_name.as_str());
        for name in &options.dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(name.as_str().try_into().unwrap()));
        }
        for uri in &options.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into().unwrap()));
        }
        for email in &options.emails {
            params
                .subject_alt_names
                .push(SanType::Rfc822Name(email.as_str().try_into().unwrap()));
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match options.eku {
            Eku::ClientAuth => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Eku::ServerAuthOnly => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Eku::None => Vec::new(),
        };
        options.validity.apply(&mut params);
        self.issue(params)
    }

    /// A CRL signed by this CA revoking these certificates.
    pub fn crl(&self, revoked: &[&Issued]) -> CertificateRevocationListDer<'static> {
        let now = SystemTime::now();
        let params = CertificateRevocationListParams {
            this_update: (now - HOUR).into(),
            next_update: (now + DAY).into(),
            crl_number: next_serial(),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|issued| RevokedCertParams {
                    serial_number: issued.serial.clone(),
                    revocation_time: (now - HOUR).into(),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().der().clone()
    }

    /// The CRL as PEM.
    pub fn crl_pem(&self, revoked: &[&Issued]) -> String {
        pem("X509 CRL", &self.crl(revoked))
    }
}

/// The URL-escaped form nginx's `$ssl_client_escaped_cert` and Envoy's XFCC `Cert=` use.
pub fn url_escape(text: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SET).to_string()
}

/// The RFC 8941 byte-sequence form (`:base64:`) RFC 9440 uses.
pub fn sf_binary(der: &[u8]) -> String {
    use base64::Engine;
    format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

#[cfg(feature = "rustls")]
pub use https::*;

#[cfg(feature = "rustls")]
mod https {
    use super::{Issued, Pki};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, RootCertStore};
    use std::net::{IpAddr, SocketAddr};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpSocket, TcpStream};
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::TlsConnector;

    /// Which TLS versions the test client offers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Version {
        /// TLS 1.2 only: a refused client certificate fails the handshake itself.
        Tls12,
        /// TLS 1.3 only: a refused client certificate shows after the client's Finished.
        Tls13,
    }

    /// A rustls client that trusts `server_ca` and presents `client` (if any).
    pub fn client_config(
        server_ca: &Pki,
        client: Option<&Issued>,
        version: Version,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(server_ca.root.clone()).unwrap();
        let versions: &[&rustls::SupportedProtocolVersion] = match version {
            Version::Tls12 => &[&rustls::version::TLS12],
            Version::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
        let mut config = match client {
            Some(issued) => builder
                .with_client_auth_cert(issued.chain.clone(), issued.private_key())
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        Arc::new(config)
    }

    /// One HTTP/1.1 response.
    #[derive(Debug)]
    pub struct Reply {
        /// Status code.
        pub status: u16,
        /// Headers, names lower-cased.
        pub headers: Vec<(String, String)>,
        /// Body as text.
        pub body: String,
    }

    impl Reply {
        /// The body as JSON.
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body)
                .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
        }

        /// A header's value.
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        /// `issue[0].code` of an OperationOutcome body.
        pub fn issue_code(&self) -> String {
            let v = self.json();
            assert_eq!(v["resourceType"], "OperationOutcome", "{}", self.body);
            v["issue"][0]["code"].as_str().unwrap().to_owned()
        }
    }

    /// Why a request got no HTTP response.
    #[derive(Debug)]
    pub enum Failure {
        /// The server sent this TLS alert.
        Alert(rustls::AlertDescription),
        /// Some other I/O outcome (a reset, an early close).
        Io(std::io::Error),
    }

    fn failure(e: std::io::Error) -> Failure {
        let alert = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .and_then(|err| match err {
                rustls::Error::AlertReceived(alert) => Some(*alert),
                _ => None,
            });
        match alert {
            Some(alert) => Failure::Alert(alert),
            None => Failure::Io(e),
        }
    }

    /// A TLS connection to a test server that can carry several requests.
    pub struct Connection {
        stream: TlsStream<TcpStream>,
        buffer: Vec<u8>,
    }

    const LIMIT: Duration = Duration::from_secs(20);

    /// Connects from `bind` (an address in 127.0.0.0/8, to play a given peer) to `addr`.
    pub async fn connect(
        addr: SocketAddr,
        bind: Option<IpAddr>,
        config: Arc<ClientConfig>,
    ) -> Result<Connection, Failure> {
        let socket = TcpSocket::new_v4().map_err(Failure::Io)?;
        if let Some(ip) = bind {
            socket.bind(SocketAddr::new(ip, 0)).map_err(Failure::Io)?;
        }
        let tcp = socket.connect(addr).await.map_err(Failure::Io)?;
        tcp.set_nodelay(true).map_err(Failure::Io)?;
        let connector = TlsConnector::from(config);
        let name = ServerName::try_from("localhost").unwrap();
        let stream = tokio::time::timeout(LIMIT, connector.connect(name, tcp))
            .await
            .map_err(|_| Failure::Io(std::io::ErrorKind::TimedOut.into()))?
            .map_err(failure)?;
        Ok(Connection {
            stream,
            buffer: Vec::new(),
        })
    }

    impl Connection {
        /// Sends `GET path` with these extra headers and reads one response.
        pub async fn get(
            &mut self,
            path: &str,
            headers: &[(&str, &str)],
        ) -> Result<Reply, Failure> {
            let mut request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n");
            for (name, value) in headers {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
            request.push_str("\r\n");
            // A refused certificate under TLS 1.3 can make the write fail; the alert, if it
            // arrived, is still read below.
            let written = self.stream.write_all(request.as_bytes()).await;
            let read = tokio::time::timeout(LIMIT, self.read_response())
                .await
                .map_err(|_| Failure::Io(std::io::ErrorKind::TimedOut.into()))?;
            match (written, read) {
                (_, Ok(reply)) => Ok(reply),
                (_, Err(Failure::Alert(a))) => Err(Failure::Alert(a)),
                (Err(e), Err(_)) => Err(failure(e)),
                (Ok(()), Err(e)) => Err(e),
            }
        }

        async fn fill(&mut self) -> Result<(), Failure> {
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).await.map_err(failure)?;
            if n == 0 {
                return Err(Failure::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.buffer.extend_from_slice(&chunk[..n]);
            Ok(())
        }

        async fn read_response(&mut self) -> Result<Reply, Failure> {
            let head_end = loop {
                if let Some(i) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i;
                }
                self.fill().await?;
            };
            let head = String::from_utf8(self.buffer[..head_end].to_vec()).unwrap();
            self.buffer.drain(..head_end + 4);
            let mut lines = head.split("\r\n");
            let status: u16 = lines
                .next()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let length = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| v.parse::<usize>().unwrap());
            let chunked = headers
                .iter()
                .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
            let body = if let Some(length) = length {
                while self.buffer.len() < length {
                    self.fill().await?;
                }
                self.buffer.drain(..length).collect::<Vec<u8>>()
            } else if chunked {
                let mut body = Vec::new();
                loop {
                    let line_end = loop {
                        if let Some(i) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                            break i;
                        }
                        self.fill().await?;
                    };
                    let size_text = String::from_utf8(self.buffer[..line_end].to_vec()).unwrap();
                    let size =
                        usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                            .unwrap();
                    self.buffer.drain(..line_end + 2);
                    while self.buffer.len() < size + 2 {
                        self.fill().await?;
                    }
                    body.extend(self.buffer.drain(..size));
                    self.buffer.drain(..2);
                    if size == 0 {
                        break;
                    }
                }
                body
            } else {
                Vec::new()
            };
            Ok(Reply {
                status,
                headers,
                body: String::from_utf8(body).unwrap(),
            })
        }
    }

    /// Connects, sends one `GET`, and returns the response.
    pub async fn get(
        addr: SocketAddr,
        bind: Option<IpAddr>,
        config: Arc<ClientConfig>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, Failure> {
        let mut connection = connect(addr, bind, config).await?;
        connection.get(path, headers).await
    }
}
