//! RFC 9440 `Client-Cert` and `Client-Cert-Chain`: DER certificates as RFC 8941 Structured
//! Field byte sequences (`:<base64>:`).
//!
//! `Client-Cert` is an Item (RFC 9440 §2.2); `Client-Cert-Chain` a List of Items (§2.3), the
//! certificates that chain the leaf towards a trust anchor. Parameters (RFC 8941 §3.1.2) are
//! read and ignored, since RFC 9440 defines none.

use super::HeaderError;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// The longest `Client-Cert` or `Client-Cert-Chain` value read, in bytes.
pub const MAX_CLIENT_CERT_LEN: usize = 64 * 1024;
/// The most certificates read from `Client-Cert-Chain`.
pub const MAX_CHAIN_CERTIFICATES: usize = 8;

// RFC 8941 §4.2.7: parsers SHOULD accept missing padding and non-zero padding bits.
const SF_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Parses a `Client-Cert` value into the DER bytes of the certificate.
///
/// ```
/// use fhirwall::identity::forwarded::parse_client_cert;
///
/// assert_eq!(parse_client_cert(":AQID:").unwrap(), vec![1, 2, 3]);
/// assert!(parse_client_cert("AQID").is_err());
/// ```
pub fn parse_client_cert(value: &str) -> Result<Vec<u8>, HeaderError> {
    if value.len() > MAX_CLIENT_CERT_LEN {
        return Err(HeaderError::TooLong);
    }
    let mut parser = Parser::new(value);
    parser.skip_sp();
    let der = parser.item()?;
    parser.skip_sp();
    if !parser.at_end() {
        return Err(HeaderError::Syntax);
    }
    Ok(der)
}

/// Parses a `Client-Cert-Chain` value (several field lines joined with `, `) into DER
/// certificates, in order. An empty value is an empty chain.
pub fn parse_client_cert_chain(value: &str) -> Result<Vec<Vec<u8>>, HeaderError> {
    if value.len() > MAX_CLIENT_CERT_LEN {
        return Err(HeaderError::TooLong);
    }
    let mut parser = Parser::new(value);
    parser.skip_sp();
    let mut chain = Vec::new();
    if parser.at_end() {
        return Ok(chain);
    }
    loop {
        if chain.len() >= MAX_CHAIN_CERTIFICATES {
            return Err(HeaderError::TooMany);
        }
        chain.push(parser.item()?);
        parser.skip_ows();
        if parser.at_end() {
            return Ok(chain);
        }
        if !parser.eat(b',') {
            return Err(HeaderError::Syntax);
        }
        parser.skip_ows();
        if parser.at_end() {
            // RFC 8941 §4.2.1: a trailing comma fails parsing.
            return Err(HeaderError::Syntax);
        }
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(value: &'a str) -> Self {
        Parser {
            bytes: value.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.bytes.get(start..self.pos).unwrap_or_default()
    }

    /// A byte-sequence item and its (ignored) parameters.
    fn item(&mut self) -> Result<Vec<u8>, HeaderError> {
        if !self.eat(b':') {
            return Err(HeaderError::Syntax);
        }
        let b64 = self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        if !self.eat(b':') {
            return Err(HeaderError::Syntax);
        }
        let der = SF_BASE64.decode(b64).map_err(|_| HeaderError::Base64)?;
        if der.is_empty() {
            return Err(HeaderError::Syntax);
        }
        self.parameters()?;
        Ok(der)
    }

    /// RFC 8941 §4.2.3.2, values checked for shape and dropped.
    fn parameters(&mut self) -> Result<(), HeaderError> {
        let mut count = 0;
        while self.eat(b';') {
            count += 1;
            if count > 32 {
                return Err(HeaderError::TooMany);
            }
            self.skip_sp();
            let first = self.peek().ok_or(HeaderError::Syntax)?;
            if !(first.is_ascii_lowercase() || first == b'*') {
                return Err(HeaderError::Syntax);
            }
            self.take_while(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'-' | b'.' | b'*')
            });
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Ok(())
    }

    fn bare_item(&mut self) -> Result<(), HeaderError> {
        match self.peek().ok_or(HeaderError::Syntax)? {
            b'?' => {
                self.pos += 1;
                if !(self.eat(b'0') || self.eat(b'1')) {
                    return Err(HeaderError::Syntax);
                }
            }
            b'"' => {
                self.pos += 1;
                loop {
                    match self.peek().ok_or(HeaderError::Syntax)? {
                        b'"' => {
                            self.pos += 1;
                            break;
                        }
                        b'\\' => {
                            self.pos += 1;
                            if !(self.eat(b'"') || self.eat(b'\\')) {
                                return Err(HeaderError::Syntax);
                            }
                        }
                        0x20..=0x7e => self.pos += 1,
                        _ => return Err(HeaderError::Syntax),
                    }
                }
            }
            b':' => {
                self.pos += 1;
                self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                if !self.eat(b':') {
                    return Err(HeaderError::Syntax);
                }
            }
            b'-' | b'0'..=b'9' => {
                self.eat(b'-');
                let number = self.take_while(|b| b.is_ascii_digit() || b == b'.');
                if number.is_empty()
                    || number.len() > 16
                    || !number.first().is_some_and(u8::is_ascii_digit)
                {
                    return Err(HeaderError::Syntax);
                }
            }
            b if b.is_ascii_alphabetic() || b == b'*' => {
                self.take_while(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b));
            }
            _ => return Err(HeaderError::Syntax),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8941_byte_sequences() {
        // RFC 8941 §3.3.5: ":cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:"
        let der = parse_client_cert(":cHJldGVuZCB0aGlzIGlzIGJpbmFyeSBjb250ZW50Lg==:").unwrap();
        assert_eq!(der, b"pretend this is binary content.");
        // §4.2.7: missing padding is accepted.
        assert_eq!(parse_client_cert(":AQI:").unwrap(), vec![1, 2]);
        // Parameters are read and ignored.
        assert_eq!(
            parse_client_cert(":AQI:;a=1;b;c=\"x\\\"y\";d=?0;e=tok/en").unwrap(),
            vec![1, 2]
        );
    }

    #[test]
    fn chains_are_lists() {
        assert_eq!(parse_client_cert_chain("").unwrap().len(), 0);
        assert_eq!(
            parse_client_cert_chain(":AQI:, :AwQ:").unwrap(),
            vec![vec![1, 2], vec![3, 4]]
        );
        assert!(parse_client_cert_chain(":AQI:,").is_err());
        assert!(parse_client_cert_chain("(:AQI:)").is_err());
        let long = [":AQI:"; MAX_CHAIN_CERTIFICATES + 1].join(",");
        assert_eq!(parse_client_cert_chain(&long), Err(HeaderError::TooMany));
    }

    #[test]
    fn items_are_single() {
        // Two field lines joined are a list, not an Item.
        assert!(parse_client_cert(":AQI:, :AwQ:").is_err());
        assert!(parse_client_cert("::").is_err());
        assert!(parse_client_cert(":A-B_:").is_err());
    }
}
