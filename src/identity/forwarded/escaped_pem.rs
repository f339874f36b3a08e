//! URL-escaped PEM: nginx's `$ssl_client_escaped_cert`, and the `Cert=` and `Chain=` values of
//! Envoy's XFCC.

use super::client_cert::MAX_CHAIN_CERTIFICATES;
use super::HeaderError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The longest URL-escaped PEM value read, in bytes.
pub const MAX_ESCAPED_PEM_LEN: usize = 64 * 1024;

/// Decodes URL-escaped PEM into its certificates, in order (at least one, at most
/// [`MAX_CHAIN_CERTIFICATES`]). Sections that are not certificates are ignored.
///
/// ```
/// use fhirwall::identity::forwarded::parse_escaped_pem;
///
/// let escaped = "-----BEGIN%20CERTIFICATE-----%0AAQID%0A-----END%20CERTIFICATE-----%0A";
/// let certs = parse_escaped_pem(escaped).unwrap();
/// assert_eq!(certs[0].as_ref(), &[1, 2, 3]);
/// ```
pub fn parse_escaped_pem(value: &str) -> Result<Vec<CertificateDer<'static>>, HeaderError> {
    if value.len() > MAX_ESCAPED_PEM_LEN {
        return Err(HeaderError::TooLong);
    }
    let pem: Vec<u8> = percent_encoding::percent_decode_str(value.trim()).collect();
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|_| HeaderError::Pem)?;
        if certs.len() >= MAX_CHAIN_CERTIFICATES {
            return Err(HeaderError::TooMany);
        }
        if cert.is_empty() {
            return Err(HeaderError::Pem);
        }
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(HeaderError::Pem);
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            "",
            "abc",
            "-----BEGIN%20CERTIFICATE-----%0A%%%%%0A-----END%20CERTIFICATE-----",
            "-----BEGIN%20CERTIFICATE-----%0AAQID",
        ] {
            assert!(parse_escaped_pem(bad).is_err(), "{bad:?}");
        }
    }
}
