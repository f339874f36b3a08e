//! Client certificates forwarded by a TLS-terminating proxy.
//!
//! Off by default. When a [`ForwardedCertificates`] is given to the
//! [`TrustedClientLayer`](super::TrustedClientLayer), requests whose TCP peer is one of its
//! [`TrustedProxies`] are judged by the certificate in one configured header instead of the
//! connection's own:
//!
//! | [`ForwardedFormat`] | header | encoding |
//! |---|---|---|
//! | [`Xfcc`](ForwardedFormat::Xfcc) | `x-forwarded-client-cert` | Envoy: `Cert="<URL-escaped PEM>"`, optional `Chain=`, `Hash=` |
//! | [`ClientCert`](ForwardedFormat::ClientCert) | `client-cert`, `client-cert-chain` | RFC 9440: RFC 8941 byte sequences of DER |
//! | [`EscapedPem`](ForwardedFormat::EscapedPem) | `ssl-client-cert` (configurable) | nginx `$ssl_client_escaped_cert`: URL-escaped PEM |
//!
//! The proxy is trusted to pass on what its client presented, not to have checked it: the
//! chain from the header is verified again here, against the configured client CA roots,
//! with a [`VerifyClientChain`]. With the `rustls` feature that is
//! `ClientCaRoots::chain_verifier` (webpki, the same code as the TLS handshake: chain,
//! signatures, `clientAuth` EKU, validity, CRLs). Without it, bring your own implementation;
//! fhirwall does not verify X.509 signatures itself.
//!
//! For XFCC, the rightmost element is used: the one added by the proxy that connected to us.
//! Configure Envoy with `forward_client_cert_details: SANITIZE_SET` and
//! `set_current_client_cert_details: { cert: true, chain: true }`.
//!
//! Every known forwarded-certificate header is removed from every request before it reaches
//! the service, whether it was used or not, so a client can't forge one for a service (or an
//! upstream FHIR server) further in.

mod client_cert;
mod escaped_pem;
mod xfcc;

pub use client_cert::{
    parse_client_cert, parse_client_cert_chain, MAX_CHAIN_CERTIFICATES, MAX_CLIENT_CERT_LEN,
};
pub use escaped_pem::{parse_escaped_pem, MAX_ESCAPED_PEM_LEN};
pub use xfcc::{parse_xfcc, XfccElement, MAX_XFCC_ELEMENTS, MAX_XFCC_LEN, MAX_XFCC_PAIRS};

use super::client::{hex, ClientIdentity};
use super::decision::{CertificateSource, IdentityRefusal};
use crate::net::{CertificateThumbprint, TrustedProxies};
use http::header::{HeaderMap, HeaderName};
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// A forwarded-certificate header that could not be read. Messages are fixed sentences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Longer than the format's limit.
    #[error("the header is too long")]
    TooLong,
    /// More elements, pairs, parameters or certificates than the format's limit.
    #[error("the header has too many elements")]
    TooMany,
    /// Not the format's syntax.
    #[error("the header is not well-formed")]
    Syntax,
    /// A byte sequence is not base64.
    #[error("the header holds invalid base64")]
    Base64,
    /// URL-escaped PEM holds no readable certificate.
    #[error("the header holds no readable PEM certificate")]
    Pem,
    /// A key that may appear once appears more than once.
    #[error("the header repeats a field")]
    Duplicate,
    /// The certificate does not have the hash the header gives for it.
    #[error("the header's hash does not match its certificate")]
    HashMismatch,
}

/// Which header a trusted proxy forwards client certificates in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForwardedFormat {
    /// Envoy's `x-forwarded-client-cert`.
    Xfcc,
    /// RFC 9440 `Client-Cert` and `Client-Cert-Chain`.
    ClientCert,
    /// nginx-style URL-escaped PEM in one header ([`ForwardedCertificates::escaped_pem_header`],
    /// default `ssl-client-cert`).
    EscapedPem,
}

impl ForwardedFormat {
    fn source(self) -> CertificateSource {
        match self {
            ForwardedFormat::Xfcc => CertificateSource::Xfcc,
            ForwardedFormat::ClientCert => CertificateSource::ClientCertHeader,
            ForwardedFormat::EscapedPem => CertificateSource::EscapedPem,
        }
    }
}

/// Why a chain was not verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChainRejection {
    /// No path to a configured root, or a bad signature.
    UntrustedIssuer,
    /// Revoked, or revocation status unknown where it is required.
    Revoked,
    /// Not valid for TLS client authentication.
    WrongKeyUsage,
    /// After `notAfter`.
    Expired,
    /// Before `notBefore`.
    NotYetValid,
    /// Malformed or otherwise unacceptable.
    BadCertificate,
}

impl From<ChainRejection> for IdentityRefusal {
    fn from(rejection: ChainRejection) -> Self {
        match rejection {
            ChainRejection::UntrustedIssuer => IdentityRefusal::UntrustedIssuer,
            ChainRejection::Revoked => IdentityRefusal::Revoked,
            ChainRejection::WrongKeyUsage => IdentityRefusal::WrongKeyUsage,
            ChainRejection::Expired => IdentityRefusal::Expired,
            ChainRejection::NotYetValid => IdentityRefusal::NotYetValid,
            ChainRejection::BadCertificate => IdentityRefusal::UnreadableCertificate,
        }
    }
}

/// Verifies a forwarded client certificate chain the way a TLS server verifies a client's.
pub trait VerifyClientChain: Send + Sync + 'static {
    /// Checks that `leaf`, with the help of `intermediates`, chains to a trusted root, is
    /// valid at `now` for TLS client authentication, and is not revoked.
    fn verify(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), ChainRejection>;
}

/// The default [`ForwardedCertificates::cache_capacity`].
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

/// The default header of [`ForwardedFormat::EscapedPem`].
pub const DEFAULT_ESCAPED_PEM_HEADER: &str = "ssl-client-cert";

/// Headers the identity layer always removes: the ones fhirwall reads, and the names other
/// proxies and servers commonly use for the same purpose.
pub const STRIPPED_HEADERS: &[&str] = &[
    "x-forwarded-client-cert",
    "client-cert",
    "client-cert-chain",
    "ssl-client-cert",
    "x-ssl-client-cert",
    "x-ssl-cert",
    "x-client-cert",
    "x-amzn-mtls-clientcert",
];

/// Trust in a TLS-terminating proxy's forwarded client certificates; see the
/// [module docs](self).
///
/// ```
/// # #[cfg(feature = "rustls")] {
/// use fhirwall::identity::forwarded::{ForwardedCertificates, ForwardedFormat};
/// use fhirwall::identity::ClientCaRoots;
/// use fhirwall::net::TrustedProxies;
///
/// # fn f(roots: ClientCaRoots) -> Result<ForwardedCertificates, Box<dyn std::error::Error>> {
/// let forwarded = ForwardedCertificates::new(
///     TrustedProxies::new(["10.0.0.0/24"])?,
///     ForwardedFormat::Xfcc,
///     roots.chain_verifier()?,
/// );
/// # Ok(forwarded) }
/// # }
/// ```
pub struct ForwardedCertificates {
    proxies: TrustedProxies,
    format: ForwardedFormat,
    escaped_pem_header: HeaderName,
    verifier: Arc<dyn VerifyClientChain>,
    cache: Mutex<HashMap<[u8; 32], Arc<ClientIdentity>>>,
    cache_capacity: usize,
}

impl std::fmt::Debug for ForwardedCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardedCertificates")
            .field("proxies", &self.proxies)
            .field("format", &self.format)
            .field("escaped_pem_header", &self.escaped_pem_header)
            .field("cache_capacity", &self.cache_capacity)
            .finish_non_exhaustive()
    }
}

/// What one request's forwarded header yielded.
pub(crate) enum Extracted {
    /// No forwarded certificate header.
    None,
    /// A verified certificate.
    Verified(Arc<ClientIdentity>),
    /// A refusal, with the certificate's thumbprint when one was read.
    Refused(IdentityRefusal, Option<CertificateThumbprint>),
}

impl ForwardedCertificates {
    /// Believes `format` headers from `proxies`, verifying their chains with `verifier`.
    pub fn new(
        proxies: TrustedProxies,
        format: ForwardedFormat,
        verifier: impl VerifyClientChain,
    ) -> Self {
        Self::with_shared_verifier(proxies, format, Arc::new(verifier))
    }

    /// Like [`new`](Self::new), with a verifier shared with other code.
    pub fn with_shared_verifier(
        proxies: TrustedProxies,
        format: ForwardedFormat,
        verifier: Arc<dyn VerifyClientChain>,
    ) -> Self {
        ForwardedCertificates {
            proxies,
            format,
            escaped_pem_header: HeaderName::from_static(DEFAULT_ESCAPED_PEM_HEADER),
            verifier,
            cache: Mutex::new(HashMap::new()),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// The header [`ForwardedFormat::EscapedPem`] reads (default `ssl-client-cert`, as the
    /// Kubernetes ingress-nginx controller sends; nginx itself leaves the name to your
    /// `proxy_set_header`). It is stripped from untrusted requests too.
    pub fn escaped_pem_header(mut self, name: HeaderName) -> Self {
        self.escaped_pem_header = name;
        self
    }

    /// How many verified forwarded certificates are remembered (by the SHA-256 of the header
    /// bytes), so a proxy's keep-alive connection carrying many clients doesn't verify each
    /// chain on every request. Default [`DEFAULT_CACHE_CAPACITY`]; `0` turns the cache off.
    /// Validity dates are still checked on every request; the cache is emptied when full.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// The proxies whose headers are believed.
    pub fn proxies(&self) -> &TrustedProxies {
        &self.proxies
    }

    /// The header format read.
    pub fn format(&self) -> ForwardedFormat {
        self.format
    }

    /// Where certificates read by this configuration come from.
    pub fn source(&self) -> CertificateSource {
        self.format.source()
    }

    pub(crate) fn is_trusted(&self, peer: IpAddr) -> bool {
        self.proxies.is_trusted(peer)
    }

    pub(crate) fn header_name(&self) -> &HeaderName {
        &self.escaped_pem_header
    }

    /// Reads, verifies and caches the forwarded certificate of a request from a trusted
    /// proxy.
    pub(crate) fn extract(&self, headers: &HeaderMap, now: SystemTime) -> Extracted {
        let (leaf_value, chain_value) = match self.raw_values(headers) {
            Ok(Some(values)) => values,
            Ok(None) => return Extracted::None,
            Err(_) => return Extracted::Refused(IdentityRefusal::MalformedHeader, None),
        };
        let key = self.cache_key(&leaf_value, chain_value.as_deref());
        if let Some(hit) = self.cached(&key) {
            return Extracted::Verified(hit);
        }
        let (leaf, intermediates) = match self.decode(&leaf_value, chain_value.as_deref()) {
            Ok(decoded) => decoded,
            Err(_) => return Extracted::Refused(IdentityRefusal::MalformedHeader, None),
        };
        let thumbprint = CertificateThumbprint(Sha256::digest(&leaf).into());
        let Ok(identity) = ClientIdentity::from_der(&leaf) else {
            return Extracted::Refused(IdentityRefusal::UnreadableCertificate, Some(thumbprint));
        };
        let unix = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or_default());
        if let Err(rejection) = self.verifier.verify(&leaf, &intermediates, unix) {
            return Extracted::Refused(rejection.into(), Some(thumbprint));
        }
        if !identity.allows_client_auth() {
            return Extracted::Refused(IdentityRefusal::WrongKeyUsage, Some(thumbprint));
        }
        let identity = Arc::new(identity);
        self.remember(key, identity.clone());
        Extracted::Verified(identity)
    }

    /// The header text for this format: `Ok(None)` when there is none.
    fn raw_values(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<(String, Option<String>)>, HeaderError> {
        match self.format {
            ForwardedFormat::Xfcc => {
                Ok(
                    joined(headers, "x-forwarded-client-cert", ",", MAX_XFCC_LEN)?
                        .map(|v| (v, None)),
                )
            }
            ForwardedFormat::ClientCert => {
                let Some(leaf) = single(headers, &HeaderName::from_static("client-cert"))? else {
                    return Ok(None);
                };
                let chain = joined(headers, "client-cert-chain", ", ", MAX_CLIENT_CERT_LEN)?;
                Ok(Some((leaf, chain)))
            }
            ForwardedFormat::EscapedPem => {
                Ok(single(headers, &self.escaped_pem_header)?.map(|v| (v, None)))
            }
        }
    }

    /// Leaf DER and intermediates from the header text.
    fn decode(
        &self,
        leaf_value: &str,
        chain_value: Option<&str>,
    ) -> Result<(CertificateDer<'static>, Vec<CertificateDer<'static>>), HeaderError> {
        let (leaf, mut rest) = match self.format {
            ForwardedFormat::Xfcc => {
                let elements = parse_xfcc(leaf_value)?;
                let element = elements.last().ok_or(HeaderError::Syntax)?;
                let cert = element.get_unique("cert")?.ok_or(HeaderError::Syntax)?;
                let mut certs = parse_escaped_pem(cert)?.into_iter();
                let leaf = certs.next().ok_or(HeaderError::Pem)?;
                if certs.next().is_some() {
                    return Err(HeaderError::TooMany);
                }
                if let Some(hash) = element.get_unique("hash")? {
                    if !hash.eq_ignore_ascii_case(&hex(&Sha256::digest(&leaf))) {
                        return Err(HeaderError::HashMismatch);
                    }
                }
                let chain = match element.get_unique("chain")? {
                    Some(chain) => parse_escaped_pem(chain)?,
                    None => Vec::new(),
                };
                (leaf, chain)
            }
            ForwardedFormat::ClientCert => {
                let leaf = CertificateDer::from(parse_client_cert(leaf_value)?);
                let chain = match chain_value {
                    Some(chain) => parse_client_cert_chain(chain)?
                        .into_iter()
                        .map(CertificateDer::from)
                        .collect(),
                    None => Vec::new(),
                };
                (leaf, chain)
            }
            ForwardedFormat::EscapedPem => {
                let mut certs = parse_escaped_pem(leaf_value)?.into_iter();
                let leaf = certs.next().ok_or(HeaderError::Pem)?;
                (leaf, certs.collect())
            }
        };
        // Chains may or may not repeat the leaf (Envoy's Chain does).
        rest.retain(|c| c.as_ref() != leaf.as_ref());
        Ok((leaf, rest))
    }

    fn cache_key(&self, leaf: &str, chain: Option<&str>) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update([self.format as u8]);
        hasher.update(self.escaped_pem_header.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(leaf.as_bytes());
        hasher.update([0]);
        if let Some(chain) = chain {
            hasher.update(chain.as_bytes());
        }
        hasher.finalize().into()
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Arc<ClientIdentity>> {
        if self.cache_capacity == 0 {
            return None;
        }
        let cache = match self.cache.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        cache.get(key).cloned()
    }

    fn remember(&self, key: [u8; 32], identity: Arc<ClientIdentity>) {
        if self.cache_capacity == 0 {
            return;
        }
        let mut cache = match self.cache.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cache.len() >= self.cache_capacity {
            cache.clear();
        }
        cache.insert(key, identity);
    }
}

/// Every line of a header joined with `separator`, as text (visible ASCII only).
fn joined(
    headers: &HeaderMap,
    name: &'static str,
    separator: &str,
    limit: usize,
) -> Result<Option<String>, HeaderError> {
    let mut out: Option<String> = None;
    for value in headers.get_all(name) {
        let text = value.to_str().map_err(|_| HeaderError::Syntax)?;
        let joined = out.get_or_insert_with(String::new);
        if !joined.is_empty() {
            joined.push_str(separator);
        }
        if joined.len() + text.len() > limit {
            return Err(HeaderError::TooLong);
        }
        joined.push_str(text);
    }
    Ok(out)
}

/// A header that must appear at most once.
fn single(headers: &HeaderMap, name: &HeaderName) -> Result<Option<String>, HeaderError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HeaderError::Duplicate);
    }
    first
        .to_str()
        .map(|s| Some(s.to_owned()))
        .map_err(|_| HeaderError::Syntax)
}
