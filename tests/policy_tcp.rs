#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The whole stack loaded from the documented example policy (`examples/policy.toml`), with
//! only its deployment ties replaced (see `policy_tcp_support::edit_example`), served over real
//! mutual TLS (RFC 8446, RFC 8705 §2) and over plain TCP behind the forwarded-certificate proxy
//! path the example configures (Envoy XFCC, `X-Forwarded-Proto`), on 127.0.0.1. Each case of
//! `tests/data/policy_tcp.txt` checks the status, the OperationOutcome code and the audit
//! record naming the deciding layer; the budget (HTTP 429, RFC 6585 §4) is a loop of its own.
#![cfg(all(feature = "policy", feature = "rustls"))]

mod policy_tcp_support;

use policy_tcp_support::{Conn, Setup};

struct Case {
    line: usize,
    name: String,
    conn: Conn,
    cert: String,
    token: String,
    method: String,
    path: String,
    body: Option<String>,
    status: u16,
    code: Option<String>,
    layer: String,
    checks: Vec<String>,
}

fn cases() -> Vec<Case> {
    let text = include_str!("data/policy_tcp.txt");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(" | ").map(str::trim).collect();
        assert_eq!(f.len(), 11, "line {}: 11 fields expected: {line}", i + 1);
        let opt = |s: &str| (s != "-").then(|| s.to_owned());
        out.push(Case {
            line: i + 1,
            name: f[0].into(),
            conn: Conn::parse(f[1]),
            cert: f[2].into(),
            token: f[3].into(),
            method: f[4].into(),
            path: f[5].into(),
            body: opt(f[6]),
            status: f[7].parse().unwrap(),
            code: opt(f[8]),
            layer: f[9].into(),
            checks: opt(f[10])
                .map(|c| c.split(';').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default(),
        });
    }
    out
}

/// Every case of `tests/data/policy_tcp.txt`; all mismatches are reported together.
#[tokio::test]
async fn example_policy_over_tcp_and_tls() {
    let setup = Setup::start("cases").await;
    let mut failures = Vec::new();
    for case in cases() {
        let seen = setup.records().len();
        let token = setup.token(&case.token);
        let reply = match setup
            .send(
                case.conn,
                setup.cert(&case.cert),
                token.as_deref(),
                &case.method,
                &case.path,
                case.body.as_deref(),
            )
            .await
        {
            Ok(reply) => reply,
            Err(e) => {
                failures.push(format!(
                    "line {} {}: no response: {e}",
                    case.line, case.name
                ));
                continue;
            }
        };
        let record = setup.record_after(seen).await;
        let mut wrong = Vec::new();
        if reply.status != case.status {
            wrong.push(format!("status {}", reply.status));
        }
        if reply.issue_code() != case.code {
            wrong.push(format!("code {:?}", reply.issue_code()));
        }
        if record["decision"]["layer"] != case.layer.as_str() {
            wrong.push(format!("layer {}", record["decision"]["layer"]));
        }
        if record["status"] != reply.status {
            wrong.push(format!("audited status {}", record["status"]));
        }
        for check in &case.checks {
            let ok = if let Some(text) = check.strip_prefix("has:") {
                reply.body.contains(text)
            } else if let Some(text) = check.strip_prefix("lacks:") {
                !reply.body.contains(text)
            } else if let Some(name) = check.strip_prefix("header:") {
                reply.header(name).is_some()
            } else if let Some(spec) = check.strip_prefix("chars:") {
                let (element, n) = spec.split_once('=').unwrap();
                let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
                json[element]
                    .as_str()
                    .map(|v| v.chars().count().to_string())
                    == Some(n.to_owned())
            } else if let Some(name) = check.strip_prefix("client:") {
                record["agent"]["client"] == name
            } else if check == "redacted" {
                record["redactions"].as_u64().unwrap_or(0) > 0
            } else {
                panic!("line {}: unknown check {check:?}", case.line);
            };
            if !ok {
                wrong.push(format!("check {check}"));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "line {} {}: {}\n  reply: {:?}\n  record: {record}",
                case.line,
                case.name,
                wrong.join(", "),
                reply
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// RFC 8446 §4.4.2 / the example's `ClientAuth::Required`: no client certificate, no
/// handshake, and nothing reaches the stack (no audit record).
#[tokio::test]
async fn no_client_certificate_fails_the_handshake() {
    let setup = Setup::start("nocert").await;
    let token = setup.token("p1");
    let result = setup
        .send(
            Conn::Tls,
            None,
            token.as_deref(),
            "GET",
            "/fhir/Patient/pat-1",
            None,
        )
        .await;
    assert!(result.is_err(), "{result:?}");
    assert!(setup.records().is_empty());
}

/// The example's budget (`600/minute`, burst 600, a search costs 10) runs out after about 60
/// searches by lab-ingest: 429 with Retry-After (RFC 6585 §4, RFC 9110 §10.2.3), audited by the
/// limit layer; the count is only bounded below, so no timing is assumed.
#[tokio::test]
async fn budget_exhaustion_is_429_with_retry_after() {
    let setup = Setup::start("budget").await;
    let token = setup.token("p1");
    let lab = setup.cert("lab");
    let mut allowed = 0;
    let refused = loop {
        assert!(allowed < 600, "the budget never ran out");
        let reply = setup
            .send(
                Conn::Xfcc,
                lab,
                token.as_deref(),
                "GET",
                "/fhir/Observation?patient=pat-1",
                None,
            )
            .await
            .unwrap();
        match reply.status {
            200 => allowed += 1,
            429 => break reply,
            other => panic!("search {allowed}: status {other}: {}", reply.body),
        }
    };
    assert!(allowed >= 60, "only {allowed} searches before 429");
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    assert_eq!(refused.issue_code().as_deref(), Some("throttled"));
    let record = setup.records().pop().unwrap();
    assert_eq!(record["status"], 429);
    assert_eq!(record["decision"]["layer"], "limit");
    // The budget is lab-ingest's, not the connection's: over mutual TLS it is spent too.
    let reply = setup
        .send(
            Conn::Tls,
            lab,
            token.as_deref(),
            "GET",
            "/fhir/Observation?patient=pat-1",
            None,
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 429, "{reply:?}");
}

/// RFC 9745 §2 (Deprecation), RFC 8594 §3 (Sunset) and RFC 8288 `successor-version`: the
/// example's `/fhir-v0` alias is announced as deprecated with its sunset and successor.
#[tokio::test]
async fn deprecated_alias_is_announced() {
    let setup = Setup::start("sunset").await;
    let token = setup.token("p1");
    let reply = setup
        .send(
            Conn::Tls,
            setup.cert("lab"),
            token.as_deref(),
            "GET",
            "/fhir-v0/Patient/pat-1",
            None,
        )
        .await
        .unwrap();
    // 2026-01-01T00:00:00Z as an RFC 9651 date, and 2027-01-01 as an HTTP-date.
    assert_eq!(
        reply.header("deprecation"),
        Some("@1767225600"),
        "{reply:?}"
    );
    assert_eq!(
        reply.header("sunset"),
        Some("Fri, 01 Jan 2027 00:00:00 GMT"),
        "{reply:?}"
    );
    assert_eq!(
        reply.header("link"),
        Some("</fhir>; rel=\"successor-version\""),
        "{reply:?}"
    );
    let record = setup.record_after(0).await;
    assert_eq!(record["path"], "/fhir-v0/Patient/pat-1");
    assert_eq!(record["agent"]["client"], "lab-ingest");
}
