//! Forwarded client-certificate headers (`identity::forwarded`): Envoy XFCC, RFC 9440
//! `Client-Cert`/`Client-Cert-Chain`, nginx URL-escaped PEM, and the certificate reading
//! (`ClientIdentity::from_der`) and RFC 4514 names they lead to.
//!
//! The first byte chooses the parser. Invariants: no panic; a `Client-Cert` byte sequence
//! round-trips (RFC 9440 §2.1, RFC 8941 §3.3.5); an XFCC element never has more pairs than
//! the limit, nor a value repeated where `get_unique` says it is unique.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use fhirwall::identity::forwarded::{
    parse_client_cert, parse_client_cert_chain, parse_escaped_pem, parse_xfcc, MAX_CLIENT_CERT_LEN,
    MAX_XFCC_ELEMENTS, MAX_XFCC_PAIRS,
};
use fhirwall::identity::{ClientIdentity, DistinguishedName};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime};

fn read_certificate(der: &[u8]) {
    if let Ok(identity) = ClientIdentity::from_der(der) {
        let _ = identity.subject().to_string();
        let _ = identity.issuer().to_string();
        let _ = identity.serial_hex();
        let _ = identity.validity_at(SystemTime::now(), Duration::from_secs(60));
        let _ = (identity.dns_names(), identity.uris());
        let _ = format!("{identity:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 6 {
        0 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(elements) = parse_xfcc(text) {
                assert!(elements.len() <= MAX_XFCC_ELEMENTS);
                for element in &elements {
                    assert!(element.pairs().count() <= MAX_XFCC_PAIRS);
                    for key in ["hash", "cert", "chain", "subject", "uri", "by", "dns"] {
                        if let Ok(Some(_)) = element.get_unique(key) {
                            assert_eq!(element.get_all(key).count(), 1);
                        }
                    }
                    if let Ok(Some(subject)) = element.get_unique("subject") {
                        let _ = DistinguishedName::parse(subject);
                    }
                }
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(der) = parse_client_cert(text) {
                read_certificate(&der);
            }
        }
        2 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(chain) = parse_client_cert_chain(text) {
                for der in &chain {
                    read_certificate(der);
                }
            }
        }
        3 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(certs) = parse_escaped_pem(text) {
                for der in &certs {
                    read_certificate(der);
                }
            }
        }
        4 => {
            // Arbitrary DER through certificate reading, and its RFC 9440 round trip.
            read_certificate(rest);
            let header = format!(":{}:", STANDARD.encode(rest));
            if !rest.is_empty() && header.len() <= MAX_CLIENT_CERT_LEN {
                assert_eq!(parse_client_cert(&header).as_deref(), Ok(rest));
                let chain = format!("{header}, {header}");
                if chain.len() <= MAX_CLIENT_CERT_LEN {
                    let parsed = parse_client_cert_chain(&chain).expect("a two-item chain");
                    assert_eq!(parsed.len(), 2);
                }
            }
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(name) = DistinguishedName::parse(text) {
                let shown = name.to_string();
                let _ = DistinguishedName::parse(&shown);
            }
        }
    }
});
