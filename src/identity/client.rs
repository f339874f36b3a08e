//! [`ClientIdentity`]: what fhirwall reads from a client's leaf certificate, once.

use super::name::DistinguishedName;
use crate::net::CertificateThumbprint;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_parser::extensions::{GeneralName, ParsedExtension};

/// Who is on the other end: the facts of a verified client leaf certificate.
///
/// Built once per connection (fhirwall's TLS server does it at the handshake) or once per
/// verified forwarded certificate, and shared as `Arc<ClientIdentity>` in the request
/// extensions, so each request costs an `Arc` clone, not a certificate parse.
///
/// Nothing here is secret (certificates are public), so `Debug` shows everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIdentity {
    subject: DistinguishedName,
    issuer: DistinguishedName,
    serial: Vec<u8>,
    not_before: i64,
    not_after: i64,
    dns_names: Vec<String>,
    uris: Vec<String>,
    emails: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    thumbprint: CertificateThumbprint,
    spki_sha256: [u8; 32],
    authority_key_id: Option<Vec<u8>>,
    subject_key_id: Option<Vec<u8>>,
    client_auth_usage: bool,
}

/// A certificate that could not be read as an X.509 v3 certificate.
///
/// Deliberately without detail: the parser's message would describe attacker-chosen bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the certificate is not a well-formed X.509 certificate")]
pub struct CertificateParseError;

/// How a certificate's validity window relates to a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Validity {
    /// Inside the window.
    Valid,
    /// Before `notBefore`.
    NotYetValid,
    /// After `notAfter`.
    Expired,
}

impl ClientIdentity {
    /// Reads a DER certificate. Trailing bytes after the certificate are refused.
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateParseError> {
        let (rest, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|_| CertificateParseError)?;
        if !rest.is_empty() {
            return Err(CertificateParseError);
        }
        let mut identity = ClientIdentity {
            subject: DistinguishedName::from_x509(cert.subject()),
            issuer: DistinguishedName::from_x509(cert.issuer()),
            serial: cert.raw_serial().to_vec(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            dns_names: Vec::new(),
            uris: Vec::new(),
            emails: Vec::new(),
            ip_addresses: Vec::new(),
            thumbprint: CertificateThumbprint(Sha256::digest(der).into()),
            spki_sha256: Sha256::digest(cert.public_key().raw).into(),
            authority_key_id: None,
            subject_key_id: None,
            client_auth_usage: true,
        };
        // Duplicate extensions make a certificate malformed (RFC 5280 §4.2).
        let extensions = cert.extensions_map().map_err(|_| CertificateParseError)?;
        for extension in extensions.values() {
            match extension.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        identity.add_general_name(name);
                    }
                }
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    identity.authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
                ParsedExtension::SubjectKeyIdentifier(ski) => {
                    identity.subject_key_id = Some(ski.0.to_vec());
                }
                // RFC 5280 §4.2.1.12: with the extension present, the key may be used only for
                // the purposes listed.
                ParsedExtension::ExtendedKeyUsage(eku) if !(eku.client_auth || eku.any) => {
                    identity.client_auth_usage = false;
                }
                // TLS client authentication signs the handshake (RFC 8446 §4.4.3).
                ParsedExtension::KeyUsage(ku) if !ku.digital_signature() => {
                    identity.client_auth_usage = false;
                }
                ParsedExtension::ParseError { .. } if extension.critical => {
                    return Err(CertificateParseError);
                }
                _ => {}
            }
        }
        Ok(identity)
    }

    fn add_general_name(&mut self, name: &GeneralName<'_>) {
        match name {
            GeneralName::DNSName(dns) => self.dns_names.push((*dns).to_owned()),
            GeneralName::URI(uri) => self.uris.push((*uri).to_owned()),
            GeneralName::RFC822Name(email) => self.emails.push((*email).to_owned()),
            GeneralName::IPAddress(bytes) => {
                if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                    self.ip_addresses.push(IpAddr::from(v4));
                } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                    self.ip_addresses.push(IpAddr::from(v6));
                }
            }
            _ => {}
        }
    }

    /// The subject distinguished name.
    pub fn subject(&self) -> &DistinguishedName {
        &self.subject
    }

    /// The issuer distinguished name (the issuing CA's subject).
    pub fn issuer(&self) -> &DistinguishedName {
        &self.issuer
    }

    /// The serial number's bytes, as encoded (big-endian).
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// The serial number as lower-case hex.
    pub fn serial_hex(&self) -> String {
        hex(&self.serial)
    }

    /// `notBefore`, in seconds since the Unix epoch (negative before 1970).
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// `notAfter`, in seconds since the Unix epoch.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Where `at` falls in the validity window, with `leeway` of clock skew allowed on both
    /// ends.
    pub fn validity_at(&self, at: SystemTime, leeway: Duration) -> Validity {
        let now = unix_seconds(at);
        let leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
        if now < self.not_before.saturating_sub(leeway) {
            Validity::NotYetValid
        } else if now > self.not_after.saturating_add(leeway) {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }

    /// Subject alternative names of type DNS.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// Subject alternative names of type URI (such as SPIFFE IDs).
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// Subject alternative names of type email (rfc822Name).
    pub fn emails(&self) -> &[String] {
        &self.emails
    }

    /// Subject alternative names of type IP address.
    pub fn ip_addresses(&self) -> &[IpAddr] {
        &self.ip_addresses
    }

    /// The SHA-256 thumbprint of the certificate's DER.
    pub fn thumbprint(&self) -> CertificateThumbprint {
        self.thumbprint
    }

    /// The thumbprint as lower-case hex (what `openssl x509 -fingerprint -sha256` shows,
    /// without colons).
    pub fn thumbprint_hex(&self) -> String {
        hex(&self.thumbprint.0)
    }

    /// The thumbprint in the base64url form (no padding) of RFC 8705 §3.1 `x5t#S256`.
    pub fn x5t_s256(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.thumbprint.0)
    }

    /// The SHA-256 of the DER SubjectPublicKeyInfo: a pin that survives re-issuing the
    /// certificate with the same key.
    pub fn spki_sha256(&self) -> [u8; 32] {
        self.spki_sha256
    }

    /// The SPKI pin in standard base64 (the `pin-sha256` form of RFC 7469 §2.4, and curl's
    /// `--pinnedpubkey sha256//...`).
    pub fn spki_pin(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.spki_sha256)
    }

    /// The authority key identifier (the issuing CA's key id), if the certificate has one.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.authority_key_id.as_deref()
    }

    /// The subject key identifier, if the certificate has one (a CA's, to match leaves'
    /// authority key identifiers).
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.subject_key_id.as_deref()
    }

    /// Whether the key usages allow TLS client authentication: any extended key usage
    /// extension lists `clientAuth` (or `anyExtendedKeyUsage`), and any key usage extension
    /// allows `digitalSignature`.
    pub fn allows_client_auth(&self) -> bool {
        self.client_auth_usage
    }
}

pub(crate) fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused() {
        assert_eq!(ClientIdentity::from_der(b""), Err(CertificateParseError));
        assert_eq!(
            ClientIdentity::from_der(&[0x30, 0x03, 0x02, 0x01, 0x01]),
            Err(CertificateParseError)
        );
    }

    #[test]
    fn unix_seconds_before_epoch_is_negative() {
        let t = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(unix_seconds(t), -10);
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(5)), 5);
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f]), "00ab0f");
    }
}
