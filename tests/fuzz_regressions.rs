#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Inputs found by the fuzz targets in `fuzz/` (and hostile inputs kept next to them), replayed
//! through the same public entry points: each must not panic and must get exactly the answer
//! its file expects.
//!
//! One file per input in `tests/data/fuzz/<target>/`. The first line is the expectation,
//! `expect: <answer>`; everything after that line's `\n` is the input, byte for byte, in the
//! form the target reads it:
//!
//! | target | input | answers |
//! |---|---|---|
//! | `classify` | `METHOD target` line, header lines, empty line, body | `ok`, or the refusal's status (`404`) |
//! | `query` | a query string | `ok`, `refused` |
//! | `scope` | a scope string | `ok`, `refused` (under `MalformedScopes::RefuseToken`) |
//! | `token` | a bearer token | `invalid_token` (against a static ES256 key) |
//! | `forwarded` | a selector byte (0 XFCC, 1 `Client-Cert`, 2 `Client-Cert-Chain`, 3 escaped PEM, 4 DER, 5 RFC 4514 name), then the value | `ok`, `refused` |
//! | `redact` | a selector byte (bit 0: caller `research`; bit 1: NDJSON), then the body | `unchanged`, `changed`, `hidden`, `refused` |
//! | `validate_body` | a request body | `ok`, or the refusal's status (`400`, `422`) |
//! | `validate_search` | a flags byte (bit 0 lenient, bit 1 `max_count(10)`), a byte with the type's index in `ResourceType::ALL` (past the end: system level), then the query | `ok`, `unparsed`, or the refusal's status |
//!
//! A crash input from `fuzz/artifacts/<target>/` becomes a case by prepending the expectation
//! line (for `classify` and `token`, whose fuzz inputs are structured, write the request or
//! token it stands for).

use std::fs;
use std::path::{Path, PathBuf};

/// Every case of one target: (file name, expectation, input).
fn cases(target: &str) -> Vec<(String, String, Vec<u8>)> {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "fuzz", target]
        .iter()
        .collect();
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        out.push(read_case(&path));
    }
    out.sort();
    assert!(!out.is_empty(), "no cases in {}", dir.display());
    out
}

fn read_case(path: &Path) -> (String, String, Vec<u8>) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = fs::read(path).unwrap();
    let split = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or_else(|| panic!("{name}: no expectation line"));
    let head = std::str::from_utf8(&bytes[..split]).unwrap();
    let expect = head
        .strip_prefix("expect: ")
        .unwrap_or_else(|| panic!("{name}: the first line must be `expect: <answer>`"))
        .trim()
        .to_owned();
    (name, expect, bytes[split + 1..].to_vec())
}

fn text(name: &str, input: &[u8]) -> String {
    String::from_utf8(input.to_vec()).unwrap_or_else(|_| panic!("{name}: not UTF-8"))
}

/// FHIR R4 §3.1.0 (RESTful API) through `fhir::Classifier`: paths, queries, headers and
/// batch/transaction Bundles the fuzzer found or that attack the classifier.
#[test]
fn classify_cases() {
    use fhirwall::fhir::Classifier;
    use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

    let classifier = Classifier::new("/fhir");
    for (name, expect, input) in cases("classify") {
        let end = input
            .windows(2)
            .position(|w| w == b"\n\n")
            .map_or(input.len(), |p| p + 2);
        let head = std::str::from_utf8(&input[..end]).unwrap();
        let body = &input[end..];
        let mut lines = head.lines();
        let (method, target) = lines.next().unwrap().split_once(' ').unwrap();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let uri: Uri = target.parse().unwrap();
        let mut headers = HeaderMap::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once(": ").unwrap();
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let got = match classifier.classify(&method, &uri, &headers, body) {
            Ok(_) => "ok".to_owned(),
            Err(refused) => refused.status().as_u16().to_string(),
        };
        assert_eq!(got, expect, "{name}");
    }
}

/// RFC 3986 §3.4 and FHIR R4 §3.1.1.5 search syntax through `fhir::Query::parse`.
#[test]
fn query_cases() {
    use fhirwall::fhir::Query;

    for (name, expect, input) in cases("query") {
        let raw = text(&name, &input);
        let got = match Query::parse(&raw, 100) {
            Ok(q) => {
                for p in q.params() {
                    for v in p.values() {
                        let _ = v.split('|');
                    }
                }
                "ok"
            }
            Err(_) => "refused",
        };
        assert_eq!(got, expect, "{name}");
    }
}

/// SMART App Launch 2.2 §"Scopes for requesting FHIR resources" through `smart::ScopeSet`.
#[cfg(feature = "smart")]
#[test]
fn scope_cases() {
    use fhirwall::smart::{MalformedScopes, ScopeSet};

    for (name, expect, input) in cases("scope") {
        let raw = text(&name, &input);
        let lenient = ScopeSet::parse(&raw, MalformedScopes::DropScope);
        let got = match ScopeSet::parse(&raw, MalformedScopes::RefuseToken) {
            Ok(set) => {
                assert_eq!(set.to_string(), lenient.unwrap().to_string(), "{name}");
                "ok"
            }
            Err(_) => "refused",
        };
        assert_eq!(got, expect, "{name}");
    }
}

/// RFC 7515 §7.1 / RFC 7519 / RFC 6750 §3.1: hostile tokens against a static ES256 key are
/// `invalid_token`, never a panic.
#[cfg(feature = "smart")]
#[test]
fn token_cases() {
    use fhirwall::smart::token::{JwtVerifier, KeySet};
    use fhirwall::smart::{TokenRejectionKind, VerifyToken};
    use std::task::{Context, Poll, Waker};

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let verifier = JwtVerifier::builder()
        .issuer("https://auth.example.org")
        .audience("https://fhir.example.org/r4")
        .keys(KeySet::from_pem(&key.public_key_pem()).unwrap())
        .build()
        .unwrap();
    for (name, expect, input) in cases("token") {
        let token = text(&name, &input);
        let mut future = verifier.verify(&token);
        let Poll::Ready(result) = future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        else {
            panic!("{name}: static-key verification waited");
        };
        let got = match result {
            Ok(_) => "ok",
            Err(r) if r.kind == TokenRejectionKind::InvalidToken => "invalid_token",
            Err(_) => "other",
        };
        assert_eq!(got, expect, "{name}");
    }
}

/// Envoy XFCC, RFC 9440 `Client-Cert`/`Client-Cert-Chain`, nginx escaped PEM, X.509 DER and
/// RFC 4514 names through `identity::forwarded` and `identity`.
#[cfg(feature = "mtls")]
#[test]
fn forwarded_cases() {
    use fhirwall::identity::forwarded::{
        parse_client_cert, parse_client_cert_chain, parse_escaped_pem, parse_xfcc,
    };
    use fhirwall::identity::{ClientIdentity, DistinguishedName};

    for (name, expect, input) in cases("forwarded") {
        let (&mode, rest) = input.split_first().unwrap();
        let value = || text(&name, rest);
        let ok = match mode {
            0 => parse_xfcc(&value()).is_ok(),
            1 => {
                parse_client_cert(&value()).is_ok_and(|der| ClientIdentity::from_der(&der).is_ok())
            }
            2 => parse_client_cert_chain(&value()).is_ok(),
            3 => parse_escaped_pem(&value()).is_ok(),
            4 => ClientIdentity::from_der(rest).is_ok(),
            5 => DistinguishedName::parse(&value()).is_ok(),
            other => panic!("{name}: unknown selector {other}"),
        };
        assert_eq!(if ok { "ok" } else { "refused" }, expect, "{name}");
    }
}

/// The redaction engine, fail-closed on what it can't read and idempotent on what it changes;
/// the policy is the fuzz target's.
#[cfg(feature = "redact")]
#[test]
fn redact_cases() {
    use fhirwall::redact::{Caller, Policy, Redacted, Redactor};

    let policy: Policy = serde_json::from_value(serde_json::json!({
        "rules": [
            {"paths": ["Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')"], "action": {"kind": "remove"}},
            {"paths": ["Patient.telecom.where(use='home')"], "action": {"kind": "remove"}},
            {"paths": ["Observation.value[x]"], "action": {"kind": "mask"}},
            {"paths": ["Observation.status"], "action": {"kind": "mask", "value": "unknown"}},
            {"paths": ["Observation.code"], "action": {"kind": "remove"}},
            {"paths": ["Patient.birthDate"], "action": {"kind": "year_only"}},
            {"paths": ["Patient.name.family"], "action": {"kind": "mask", "value": "***"}},
            {"paths": ["Patient.extension('http://ex.org/race')"], "action": {"kind": "remove"}},
            {"paths": ["*.descendants().extension('http://ex.org/x')"], "action": {"kind": "remove"}},
            {"paths": ["Patient.address.line", "Patient.name.given"], "action": {"kind": "remove"}},
            {"paths": ["*.descendants().identifier"], "action": {"kind": "remove"}, "when": {"clients": ["research"]}},
            {"resources": ["Condition"], "action": {"kind": "remove_resource"}}
        ],
        "labels": [
            {"codes": ["R", "V"]},
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "codes": ["PSY", "HIV"], "except": {"clients": ["research"]}}
        ]
    }))
    .unwrap();
    let redactor = Redactor::new(policy).unwrap();
    let plans = [
        redactor.plan(&Caller::anonymous()),
        redactor.plan(&Caller::anonymous().with_client("research")),
    ];
    for (name, expect, input) in cases("redact") {
        let (&selector, body) = input.split_first().unwrap();
        let plan = &plans[usize::from(selector & 1)];
        let result = if selector & 2 == 0 {
            plan.redact(body)
        } else {
            plan.redact_ndjson(body)
        };
        let got = match &result {
            Ok(Redacted::Unchanged) => "unchanged",
            Ok(Redacted::Changed { body: out, .. }) => {
                let out = out.to_vec();
                let again = if selector & 2 == 0 {
                    serde_json::from_slice::<serde_json::Value>(&out)
                        .unwrap_or_else(|e| panic!("{name}: output is not JSON: {e}"));
                    plan.redact(&out)
                } else {
                    plan.redact_ndjson(&out)
                };
                assert_eq!(again, Ok(Redacted::Unchanged), "{name}: not idempotent");
                "changed"
            }
            Ok(Redacted::Hidden) => "hidden",
            Err(_) => "refused",
        };
        assert_eq!(got, expect, "{name}");
    }
}

/// RFC 8259 strictness and FHIR R4 JSON structure (§2.6.2) through `validate::check_resource`.
#[cfg(feature = "validate")]
#[test]
fn validate_body_cases() {
    use fhirwall::validate::{check_resource, ValidateConfig};

    let config = ValidateConfig::new();
    for (name, expect, input) in cases("validate_body") {
        let got = match check_resource(&input, &config) {
            Ok(_) => "ok".to_owned(),
            Err(r) => {
                assert!(!r.problems().is_empty(), "{name}");
                r.status().as_u16().to_string()
            }
        };
        assert_eq!(got, expect, "{name}");
    }
}

/// FHIR R4 §3.1.1 search parameters through `validate::check_search`.
#[cfg(feature = "validate")]
#[test]
fn validate_search_cases() {
    use fhirwall::fhir::{Query, ResourceType};
    use fhirwall::validate::{check_search, ValidateConfig};

    let configs = [ValidateConfig::new(), ValidateConfig::new().max_count(10)];
    for (name, expect, input) in cases("validate_search") {
        let [flags, index, rest @ ..] = &input[..] else {
            panic!("{name}: no flags and type bytes");
        };
        let raw = text(&name, rest);
        let resource_type = ResourceType::ALL.get(usize::from(*index)).copied();
        let config = &configs[usize::from((flags >> 1) & 1)];
        let got = match Query::parse(&raw, 100) {
            Err(_) => "unparsed".to_owned(),
            Ok(q) => match check_search(&q, resource_type, flags & 1 == 1, config) {
                Ok(()) => "ok".to_owned(),
                Err(r) => r.status().as_u16().to_string(),
            },
        };
        assert_eq!(got, expect, "{name}");
    }
}
