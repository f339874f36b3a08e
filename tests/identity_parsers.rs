#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The forwarded-certificate header parsers: table-driven cases from `tests/data/xfcc.txt` and
//! `tests/data/client_cert_header.txt`, and property tests (no panic on any input, and
//! round trips of what a proxy would send).
#![cfg(feature = "mtls")]

use base64::Engine;
use fhirwall::identity::forwarded::{
    parse_client_cert, parse_client_cert_chain, parse_escaped_pem, parse_xfcc,
};
use proptest::prelude::*;

/// Expands `{repeat:N:TEXT}`.
fn expand(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("{repeat:") {
        out.push_str(&rest[..start]);
        let spec = &rest[start + "{repeat:".len()..];
        let (count, after) = spec.split_once(':').unwrap();
        let end = after.find('}').unwrap();
        out.push_str(&after[..end].repeat(count.parse().unwrap()));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn cases(file: &str) -> Vec<(usize, String)> {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect()
}

#[test]
fn xfcc_table() {
    // Envoy "HTTP header manipulation": x-forwarded-client-cert grammar.
    let cases = cases("xfcc.txt");
    assert!(cases.len() >= 40, "{}", cases.len());
    for (line, text) in cases {
        let (expect, value) = text.split_once('\t').unwrap_or((&text, ""));
        let value = expand(value);
        let parsed = parse_xfcc(&value);
        let mut words = expect.split(' ');
        match words.next().unwrap() {
            "err" => assert!(
                parsed.is_err(),
                "line {line}: expected an error, got {parsed:?}"
            ),
            "ok" => {
                let elements = parsed.unwrap_or_else(|e| panic!("line {line}: {e}"));
                let count: usize = words.next().unwrap().parse().unwrap();
                assert_eq!(elements.len(), count, "line {line}");
                let last = elements.last().unwrap();
                for check in words {
                    let (key, want) = check.split_once('=').unwrap();
                    let got = last.get_unique(key).unwrap();
                    if want == "-" {
                        assert_eq!(got, None, "line {line}: {key}");
                    } else {
                        assert_eq!(got, Some(want), "line {line}: {key}");
                    }
                }
            }
            other => panic!("line {line}: unknown expectation {other:?}"),
        }
    }
}

#[test]
fn client_cert_table() {
    // RFC 9440 §2 with RFC 8941 §3.3.5 / §4.2, and nginx's URL-escaped PEM.
    let cases = cases("client_cert_header.txt");
    assert!(cases.len() >= 45, "{}", cases.len());
    for (line, text) in cases {
        let mut parts = text.splitn(3, '\t');
        let kind = parts.next().unwrap();
        let expect = parts.next().unwrap();
        let value = expand(parts.next().unwrap_or(""));
        let result: Result<usize, String> = match kind {
            "cert" => parse_client_cert(&value)
                .map(|d| d.len())
                .map_err(|e| e.to_string()),
            "chain" => parse_client_cert_chain(&value)
                .map(|c| c.len())
                .map_err(|e| e.to_string()),
            "pem" => parse_escaped_pem(&value)
                .map(|c| c.len())
                .map_err(|e| e.to_string()),
            other => panic!("line {line}: unknown kind {other:?}"),
        };
        match expect.split_once(' ') {
            None if expect == "err" => {
                assert!(
                    result.is_err(),
                    "line {line}: expected an error, got {result:?}"
                )
            }
            Some(("ok", n)) => assert_eq!(result, Ok(n.parse().unwrap()), "line {line}"),
            _ => panic!("line {line}: unknown expectation {expect:?}"),
        }
    }
}

fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\\\""))
}

proptest! {
    #[test]
    fn xfcc_never_panics(value in ".{0,300}") {
        let _ = parse_xfcc(&value);
    }

    #[test]
    fn xfcc_never_panics_on_near_miss_syntax(value in "[a-zA-Z=;,\" \\\\]{0,200}") {
        let _ = parse_xfcc(&value);
    }

    /// What a proxy writes (values quoted, quotes escaped) parses back to the same pairs.
    #[test]
    fn xfcc_round_trips(
        elements in prop::collection::vec(
            prop::collection::vec(("[A-Za-z][A-Za-z0-9_-]{0,8}", "[ -~]{0,40}"), 1..6),
            1..6,
        )
    ) {
        // A backslash right before the closing quote would read as an escaped quote, so a
        // writer never ends a value with one; neither do these.
        let elements: Vec<Vec<(String, String)>> = elements
            .into_iter()
            .map(|pairs| pairs.into_iter().map(|(k, v)| (k, v.trim_end_matches('\\').to_owned())).collect())
            .collect();
        let header = elements
            .iter()
            .map(|pairs| pairs.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect::<Vec<_>>().join(";"))
            .collect::<Vec<_>>()
            .join(",");
        let parsed = parse_xfcc(&header).unwrap();
        prop_assert_eq!(parsed.len(), elements.len());
        for (got, want) in parsed.iter().zip(&elements) {
            let got: Vec<(String, String)> = got.pairs().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn client_cert_never_panics(value in ".{0,300}") {
        let _ = parse_client_cert(&value);
        let _ = parse_client_cert_chain(&value);
    }

    #[test]
    fn client_cert_never_panics_on_near_miss_syntax(value in "[:A-Za-z0-9+/=;,\"?*. \\t\\\\()-]{0,200}") {
        let _ = parse_client_cert(&value);
        let _ = parse_client_cert_chain(&value);
    }

    /// RFC 8941 §4.1.8 serialization of any DER bytes parses back (RFC 9440 §2.2).
    #[test]
    fn client_cert_round_trips(der in prop::collection::vec(any::<u8>(), 1..600)) {
        let header = format!(":{}:", base64::engine::general_purpose::STANDARD.encode(&der));
        prop_assert_eq!(parse_client_cert(&header).unwrap(), der);
    }

    #[test]
    fn client_cert_chain_round_trips(chain in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..200), 0..8)) {
        let header = chain
            .iter()
            .map(|der| format!(":{}:", base64::engine::general_purpose::STANDARD.encode(der)))
            .collect::<Vec<_>>()
            .join(", ");
        prop_assert_eq!(parse_client_cert_chain(&header).unwrap(), chain);
    }

    #[test]
    fn escaped_pem_never_panics(value in ".{0,300}") {
        let _ = parse_escaped_pem(&value);
    }

    /// nginx's escaping of a PEM certificate parses back to its DER.
    #[test]
    fn escaped_pem_round_trips(der in prop::collection::vec(any::<u8>(), 1..600)) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        let escaped = percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC).to_string();
        let certs = parse_escaped_pem(&escaped).unwrap();
        prop_assert_eq!(certs.len(), 1);
        prop_assert_eq!(certs[0].as_ref(), der.as_slice());
    }
}
