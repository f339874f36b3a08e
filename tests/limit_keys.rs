#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Key extraction, table-driven (tests/data/limit_keys.txt): trusted client, then token
//! client_id, then peer IP with trusted-proxy handling of X-Forwarded-For; groups.
#![cfg(all(feature = "mtls", feature = "smart"))]

use fhirwall::identity::TrustedClient;
use fhirwall::limit::{ClientKey, KeyExtractor, KeySource};
use fhirwall::net::{RemoteAddr, TrustedProxies};
use fhirwall::smart::{AccessContext, ScopeSet};
use http::Request;

#[test]
fn keys_table() {
    let keys = KeyExtractor::new([
        KeySource::TrustedClient,
        KeySource::SmartClient,
        KeySource::PeerIp(TrustedProxies::new(["10.0.0.0/8"]).unwrap()),
    ])
    .group(
        "partners",
        ["partner-a", "partner-b"].map(|n| ClientKey::new("mtls", n).unwrap()),
    );
    let mut cases = 0;
    for line in include_str!("data/limit_keys.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split(" | ").map(str::trim).collect();
        let mut request = Request::get("/fhir/Patient/1");
        if cols[3] != "-" {
            request = request.header("x-forwarded-for", cols[3]);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        if cols[0] != "-" {
            parts.extensions.insert(TrustedClient::new(cols[0]));
        }
        if cols[1] != "-" {
            parts
                .extensions
                .insert(AccessContext::new(ScopeSet::new()).with_client_id(cols[1]));
        }
        if cols[2] != "-" {
            parts
                .extensions
                .insert(RemoteAddr(cols[2].parse().unwrap()));
        }
        let got = keys.extract(&parts).map(|k| k.to_string());
        let expected = (cols[4] != "-").then(|| cols[4].to_owned());
        assert_eq!(got, expected, "{line}");
        cases += 1;
    }
    assert!(cases >= 10);
}

#[test]
fn keys_are_bounded() {
    assert!(ClientKey::new("ip", "").is_none());
    assert!(ClientKey::new("x", &"a".repeat(300)).is_none());
    assert_eq!(ClientKey::new("x", "y").unwrap().as_str(), "x:y");
}
