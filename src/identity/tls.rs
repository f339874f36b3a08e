//! A hardened rustls server configuration for mutual TLS (feature `rustls`).
//!
//! - TLS 1.3 and TLS 1.2 only;
//! - AEAD cipher suites with forward secrecy only: TLS 1.3 AES-256-GCM, AES-128-GCM,
//!   ChaCha20-Poly1305; TLS 1.2 ECDHE (ECDSA or RSA) with the same three;
//! - the server's cipher-suite order wins over the client's; no 0-RTT data;
//! - client certificates verified by webpki against the [`ClientCaRoots`] (chain, signatures,
//!   `clientAuth` extended key usage, validity, and CRLs when given), and
//!   [`ClientAuth::Required`] unless you name [`ClientAuth::Optional`].

use super::forwarded::{ChainRejection, VerifyClientChain};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientCertVerifierBuilder, WebPkiClientVerifier};
use rustls::{CertificateError, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A TLS setup step that failed: which file or item, and why, in words an operator can act
/// on. Key material never appears in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A file could not be read or is not PEM.
    #[error("cannot read {what} from {}: {reason}", path.display())]
    Read {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (an I/O or PEM syntax error).
        reason: String,
    },
    /// PEM input holds none of what was expected.
    #[error("{source_name} holds no {what} (expected a PEM \"{label}\" block)")]
    Empty {
        /// What was expected.
        what: &'static str,
        /// The PEM block label expected.
        label: &'static str,
        /// The file, or "the PEM input".
        source_name: String,
    },
    /// PEM input is malformed.
    #[error("{source_name} is not valid PEM for {what}: {reason}")]
    Pem {
        /// What was expected.
        what: &'static str,
        /// The file, or "the PEM input".
        source_name: String,
        /// The PEM parser's message.
        reason: String,
    },
    /// A client CA certificate cannot be a trust anchor.
    #[error("client CA certificate #{index} is not usable as a trust anchor: {reason}")]
    BadRoot {
        /// Position in the input, from 1.
        index: usize,
        /// Why.
        reason: String,
    },
    /// No client CA roots were given.
    #[error("no client CA roots: client certificates can't be verified without them")]
    NoClientRoots,
    /// No server certificate was given.
    #[error("no server certificate and key were given")]
    NoServerCertificate,
    /// The client certificate verifier could not be built (such as from a bad CRL).
    #[error("the client certificate verifier could not be built: {0}")]
    Verifier(String),
    /// rustls refused the server certificate and key (such as a key that doesn't match).
    #[error("the server certificate or key was refused: {0}")]
    ServerCertificate(String),
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|e| TlsSetupError::Read {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn certificates_from_pem(
    pem: &[u8],
    what: &'static str,
    source_name: String,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::Pem {
            what,
            source_name: source_name.clone(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::Empty {
            what,
            label: "CERTIFICATE",
            source_name,
        });
    }
    Ok(certs)
}

fn crls_from_pem(
    pem: &[u8],
    source_name: String,
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsSetupError> {
    const WHAT: &str = "certificate revocation lists";
    let crls = CertificateRevocationListDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::Pem {
            what: WHAT,
            source_name: source_name.clone(),
            reason: e.to_string(),
        })?;
    if crls.is_empty() {
        return Err(TlsSetupError::Empty {
            what: WHAT,
            label: "X509 CRL",
            source_name,
        });
    }
    Ok(crls)
}

fn key_from_pem(pem: &[u8], source_name: String) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    const WHAT: &str = "a private key";
    // The PEM parser's messages name positions, never key bytes.
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsSetupError::Empty {
            what: WHAT,
            label: "PRIVATE KEY",
            source_name,
        },
        other => TlsSetupError::Pem {
            what: WHAT,
            source_name,
            reason: other.to_string(),
        },
    })
}

/// The crypto provider of the hardened configuration: aws-lc-rs with only the cipher suites
/// listed on [`ServerTlsConfig`], and its default key exchange groups (X25519MLKEM768,
/// X25519, P-256, P-384).
pub fn hardened_crypto_provider() -> CryptoProvider {
    use aws_lc_rs::cipher_suite as cs;
    CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..aws_lc_rs::default_provider()
    }
}

/// The certificate authorities client certificates must chain to, with optional CRLs.
#[derive(Clone, Debug)]
pub struct ClientCaRoots {
    roots: Vec<CertificateDer<'static>>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    allow_unknown_revocation: bool,
    end_entity_revocation_only: bool,
}

impl ClientCaRoots {
    /// Roots from DER certificates (at least one, each usable as a trust anchor).
    pub fn from_der(
        roots: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Self, TlsSetupError> {
        let roots: Vec<_> = roots.into_iter().collect();
        if roots.is_empty() {
            return Err(TlsSetupError::NoClientRoots);
        }
        let this = ClientCaRoots {
            roots,
            crls: Vec::new(),
            intermediates: Vec::new(),
            allow_unknown_revocation: false,
            end_entity_revocation_only: false,
        };
        this.root_store()?;
        Ok(this)
    }

    /// Roots from PEM text (one or more `CERTIFICATE` blocks).
    pub fn from_pem(pem: &[u8]) -> Result<Self, TlsSetupError> {
        Self::from_der(certificates_from_pem(
            pem,
            "client CA certificates",
            "the PEM input".to_owned(),
        )?)
    }

    /// Roots from a PEM file.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, TlsSetupError> {
        let path = path.as_ref();
        let what = "client CA certificates";
        let pem = read_file(what, path)?;
        Self::from_der(certificates_from_pem(
            &pem,
            what,
            path.display().to_string(),
        )?)
    }

    /// Adds CRLs (DER). With CRLs, a certificate whose issuer has no CRL here is refused,
    /// unless [`allow_unknown_revocation_status`](Self::allow_unknown_revocation_status).
    pub fn with_crls(
        mut self,
        crls: impl IntoIterator<Item = CertificateRevocationListDer<'static>>,
    ) -> Self {
        self.crls.extend(crls);
        self
    }

    /// Adds CRLs from PEM text (`X509 CRL` blocks).
    pub fn with_crl_pem(self, pem: &[u8]) -> Result<Self, TlsSetupError> {
        Ok(self.with_crls(crls_from_pem(pem, "the PEM input".to_owned())?))
    }

    /// Adds CRLs from a PEM file.
    pub fn with_crl_pem_file(self, path: impl AsRef<Path>) -> Result<Self, TlsSetupError> {
        let path = path.as_ref();
        let pem = read_file("certificate revocation lists", path)?;
        Ok(self.with_crls(crls_from_pem(&pem, path.display().to_string())?))
    }

    /// Accepts certificates whose revocation status no configured CRL covers (by default they
    /// are refused once any CRL is configured).
    pub fn allow_unknown_revocation_status(mut self) -> Self {
        self.allow_unknown_revocation = true;
        self
    }

    /// Checks revocation of the client's own certificate only, not of intermediates.
    pub fn only_check_end_entity_revocation(mut self) -> Self {
        self.end_entity_revocation_only = true;
        self
    }

    /// Intermediates to complete forwarded chains with (nginx forwards only the leaf). They are
    /// not trust anchors: a chain through them must still reach a root. Not used in the TLS
    /// handshake, where the client sends its own chain.
    pub fn with_intermediates(
        mut self,
        intermediates: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Self {
        self.intermediates.extend(intermediates);
        self
    }

    fn root_store(&self) -> Result<Arc<RootCertStore>, TlsSetupError> {
        let mut store = RootCertStore::empty();
        for (i, root) in self.roots.iter().enumerate() {
            store
                .add(root.clone())
                .map_err(|e| TlsSetupError::BadRoot {
                    index: i + 1,
                    reason: e.to_string(),
                })?;
        }
        Ok(Arc::new(store))
    }

    fn verifier_builder(
        &self,
        provider: Arc<CryptoProvider>,
    ) -> Result<ClientCertVerifierBuilder, TlsSetupError> {
        let mut builder = WebPkiClientVerifier::builder_with_provider(self.root_store()?, provider)
            .with_crls(self.crls.iter().cloned());
        if self.allow_unknown_revocation {
            builder = builder.allow_unknown_revocation_status();
        }
        if self.end_entity_revocation_only {
            builder = builder.only_check_end_entity_revocation();
        }
        Ok(builder)
    }

    /// A verifier for forwarded certificate chains, equal to the one the TLS handshake uses.
    pub fn chain_verifier(&self) -> Result<WebPkiChainVerifier, TlsSetupError> {
        let verifier = self
            .verifier_builder(Arc::new(hardened_crypto_provider()))?
            .build()
            .map_err(|e| TlsSetupError::Verifier(e.to_string()))?;
        Ok(WebPkiChainVerifier {
            verifier,
            intermediates: self.intermediates.clone(),
        })
    }
}

/// Verifies forwarded client chains with webpki, through rustls's client certificate
/// verifier; built by [`ClientCaRoots::chain_verifier`].
#[derive(Clone)]
pub struct WebPkiChainVerifier {
    verifier: Arc<dyn ClientCertVerifier>,
    intermediates: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for WebPkiChainVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPkiChainVerifier")
            .field("extra_intermediates", &self.intermediates.len())
            .finish_non_exhaustive()
    }
}

impl VerifyClientChain for WebPkiChainVerifier {
    fn verify(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), ChainRejection> {
        let result = if self.intermediates.is_empty() {
            self.verifier.verify_client_cert(leaf, intermediates, now)
        } else {
            let mut all: Vec<CertificateDer<'_>> = intermediates.to_vec();
            all.extend(self.intermediates.iter().cloned());
            self.verifier.verify_client_cert(leaf, &all, now)
        };
        result.map(|_| ()).map_err(|e| match e {
            rustls::Error::InvalidCertificate(e) => rejection(e),
            _ => ChainRejection::UntrustedIssuer,
        })
    }
}

fn rejection(error: CertificateError) -> ChainRejection {
    match error {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            ChainRejection::Expired
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            ChainRejection::NotYetValid
        }
        CertificateError::Revoked
        | CertificateError::UnknownRevocationStatus
        | CertificateError::ExpiredRevocationList
        | CertificateError::ExpiredRevocationListContext { .. } => ChainRejection::Revoked,
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            ChainRejection::WrongKeyUsage
        }
        CertificateError::BadEncoding | CertificateError::UnhandledCriticalExtension => {
            ChainRejection::BadCertificate
        }
        _ => ChainRejection::UntrustedIssuer,
    }
}

/// Whether clients must present a certificate in the handshake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// A client without a certificate fails the handshake (TLS alert `certificate_required`
    /// in TLS 1.3). The default.
    #[default]
    Required,
    /// A client may connect without a certificate (a certificate it does send is still
    /// verified). Use it when the [`TrustedClientLayer`](super::TrustedClientLayer) should
    /// answer certificate-less requests with a 401 `OperationOutcome`, or when a trusted proxy
    /// connects without one and forwards its clients' certificates in a header.
    Optional,
}

/// Builds the hardened [`ServerConfig`]:
///
/// - TLS 1.3 and TLS 1.2 only;
/// - AEAD cipher suites with forward secrecy only: TLS 1.3 AES-256-GCM, AES-128-GCM,
///   ChaCha20-Poly1305; TLS 1.2 ECDHE (ECDSA or RSA) with the same three;
/// - the server's cipher-suite order wins over the client's; no 0-RTT data;
/// - client certificates verified by webpki against the [`ClientCaRoots`] (chain, signatures,
///   `clientAuth` extended key usage, validity, and CRLs when given), and
///   [`ClientAuth::Required`] unless you name [`ClientAuth::Optional`].
///
/// ```no_run
/// use fhirwall::identity::{ClientAuth, ClientCaRoots, ServerTlsConfig};
///
/// # fn f() -> Result<(), fhirwall::identity::TlsSetupError> {
/// let config = ServerTlsConfig::new()
///     .server_certificate_pem_files("server.pem", "server.key")?
///     .client_ca_roots(ClientCaRoots::from_pem_file("client-ca.pem")?.with_crl_pem_file("client-ca.crl")?)
///     .client_auth(ClientAuth::Required)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct ServerTlsConfig {
    chain: Vec<CertificateDer<'static>>,
    key: Option<PrivateKeyDer<'static>>,
    client_roots: Option<ClientCaRoots>,
    client_auth: ClientAuth,
    alpn: Option<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for ServerTlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTlsConfig")
            .field("chain_len", &self.chain.len())
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("client_roots", &self.client_roots)
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

impl ServerTlsConfig {
    /// An empty builder: client certificates required, ALPN `h2` and `http/1.1`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The server's certificate chain (leaf first) and private key.
    pub fn server_certificate(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.chain = chain;
        self.key = Some(key);
        self
    }

    /// The server's certificate chain and key from PEM text.
    pub fn server_certificate_pem(
        self,
        chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, TlsSetupError> {
        let chain = certificates_from_pem(
            chain_pem,
            "the server certificate",
            "the PEM input".to_owned(),
        )?;
        let key = key_from_pem(key_pem, "the PEM input".to_owned())?;
        Ok(self.server_certificate(chain, key))
    }

    /// The server's certificate chain and key from PEM files.
    pub fn server_certificate_pem_files(
        self,
        chain_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<Self, TlsSetupError> {
        let (chain_path, key_path) = (chain_path.as_ref(), key_path.as_ref());
        let what = "the server certificate";
        let chain = certificates_from_pem(
            &read_file(what, chain_path)?,
            what,
            chain_path.display().to_string(),
        )?;
        let key = key_from_pem(
            &read_file("a private key", key_path)?,
            key_path.display().to_string(),
        )?;
        Ok(self.server_certificate(chain, key))
    }

    /// The CAs client certificates must chain to (required).
    pub fn client_ca_roots(mut self, roots: ClientCaRoots) -> Self {
        self.client_roots = Some(roots);
        self
    }

    /// Whether a client certificate is required (default [`ClientAuth::Required`]).
    pub fn client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// ALPN protocols, in preference order (default `h2`, `http/1.1`).
    pub fn alpn_protocols(mut self, protocols: Vec<Vec<u8>>) -> Self {
        self.alpn = Some(protocols);
        self
    }

    /// The rustls configuration.
    pub fn build(self) -> Result<Arc<ServerConfig>, TlsSetupError> {
        let roots = self.client_roots.ok_or(TlsSetupError::NoClientRoots)?;
        let key = self.key.ok_or(TlsSetupError::NoServerCertificate)?;
        if self.chain.is_empty() {
            return Err(TlsSetupError::NoServerCertificate);
        }
        let provider = Arc::new(hardened_crypto_provider());
        let mut verifier = roots.verifier_builder(provider.clone())?;
        if self.client_auth == ClientAuth::Optional {
            verifier = verifier.allow_unauthenticated();
        }
        let verifier = verifier
            .build()
            .map_err(|e| TlsSetupError::Verifier(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsSetupError::Verifier(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain, key)
            .map_err(|e| TlsSetupError::ServerCertificate(e.to_string()))?;
        config.ignore_client_order = true;
        config.max_early_data_size = 0;
        config.alpn_protocols = self
            .alpn
            .unwrap_or_else(|| vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_has_only_aead_suites_with_forward_secrecy() {
        let provider = hardened_crypto_provider();
        assert_eq!(provider.cipher_suites.len(), 9);
        for suite in provider.cipher_suites {
            let name = format!("{:?}", suite.suite());
            assert!(name.contains("GCM") || name.contains("CHACHA20"), "{name}");
            assert!(
                name.starts_with("TLS13_") || name.contains("ECDHE"),
                "{name}"
            );
        }
    }

    #[test]
    fn clear_errors_for_bad_inputs() {
        let err = ClientCaRoots::from_pem_file("/nonexistent/ca.pem").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let err = ClientCaRoots::from_pem(b"not pem").unwrap_err();
        assert!(matches!(err, TlsSetupError::Empty { .. }), "{err}");
        let err = ClientCaRoots::from_pem(
            b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap_err();
        assert!(matches!(err, TlsSetupError::Pem { .. }), "{err}");
        let err = ClientCaRoots::from_pem(
            b"-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, TlsSetupError::BadRoot { index: 1, .. }),
            "{err}"
        );
        let err = ServerTlsConfig::new().build().unwrap_err();
        assert!(matches!(err, TlsSetupError::NoClientRoots), "{err}");
        let err = ServerTlsConfig::new()
            .server_certificate_pem(b"", b"")
            .unwrap_err();
        assert!(matches!(err, TlsSetupError::Empty { .. }), "{err}");
    }
}
