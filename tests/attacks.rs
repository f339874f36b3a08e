#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The attack corpus through the real stack (fhirwall issue #10, part 3): forged tokens
//! (RFC 8725), cross-patient attempts on every FHIR R4 interaction (§2.23, §3.1.0),
//! `_include`/`_revinclude`/`_has`/chain oracles, scope smuggling (SMART App Launch 2.0 §3),
//! path tricks (RFC 3986), parameter pollution, duplicate JSON keys (RFC 8259 §4), huge and
//! deep bodies, XML and gzip responses against redaction, forged forwarding headers, budget
//! evasion, and stalled request bodies.
//!
//! The cases are data, one per line, in `tests/data/attacks/*.txt` (format at the top of
//! each file). Every case asserts the exact status and OperationOutcome code, that the audit
//! layer recorded it, and that no byte of the sample SSN, nor (for tokens without user-level
//! scopes) any of pat-2's data, appears in the response body or headers.
#![cfg(all(
    feature = "rustls",
    feature = "mtls",
    feature = "smart",
    feature = "redact",
    feature = "validate",
    feature = "limit",
    feature = "firewall",
    feature = "audit"
))]

mod attacks_support;

use attacks_support::{profile, send, token, Attempt, Kind, Reply, Secrets, Stack, Stall};
use axum::body::Body;
use fhirwall::limit::{BudgetLayer, MemoryStore, Rate};
use fhirwall::net::RemoteAddr;
use http::Request;
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tower::ServiceExt;

/// One line of a `tests/data/attacks/*.txt` file.
struct Case {
    at: String,
    name: String,
    stack: Kind,
    token: String,
    peer: String,
    method: String,
    path: String,
    headers: String,
    body: String,
    status: u16,
    code: Option<String>,
    checks: Vec<String>,
}

fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/attacks")
}

/// The cases of every request file (all but `budget_evasion.txt`), by file.
fn corpus() -> BTreeMap<String, Vec<Case>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !file.ends_with(".txt") || file == "budget_evasion.txt" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut cases = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split(" | ").map(str::trim).collect();
            assert_eq!(f.len(), 11, "{file}:{}: 11 fields expected: {line}", i + 1);
            let opt = |s: &str| (s != "-").then(|| s.to_owned());
            cases.push(Case {
                at: format!("{file}:{}", i + 1),
                name: f[0].to_owned(),
                stack: Kind::parse(f[1]),
                token: f[2].to_owned(),
                peer: f[3].to_owned(),
                method: f[4].to_owned(),
                path: f[5].to_owned(),
                headers: f[6].to_owned(),
                body: f[7].to_owned(),
                status: f[8].parse().unwrap(),
                code: opt(f[9]),
                checks: opt(f[10])
                    .map(|c| c.split(';').map(|s| s.trim().to_owned()).collect())
                    .unwrap_or_default(),
            });
        }
        files.insert(file, cases);
    }
    files
}

/// What one case got wrong, if anything.
fn judge(
    case: &Case,
    reply: &Reply,
    sees_all: bool,
    secrets: &Secrets,
    internals: &[String],
) -> Vec<String> {
    let mut wrong = Vec::new();
    let code = reply.issue_code();
    if reply.status != case.status || code != case.code {
        wrong.push(format!(
            "want {} {}, got {} {}",
            case.status,
            case.code.as_deref().unwrap_or("-"),
            reply.status,
            code.as_deref().unwrap_or("-")
        ));
    }
    for leak in secrets.leaks(reply, sees_all) {
        wrong.push(format!("LEAK: {leak}"));
    }
    let body = reply.text();
    for c in &case.checks {
        if let Some(text) = c.strip_prefix("has:") {
            if !body.contains(text) {
                wrong.push(format!("body lacks {text:?}"));
            }
        } else if let Some(text) = c.strip_prefix("lacks:") {
            if body.contains(text) {
                wrong.push(format!("body has {text:?}"));
            }
        } else {
            panic!("{}: unknown check {c:?}", case.at);
        }
    }
    // RFC 6750 §3: a 401 from the SMART layer carries a Bearer challenge, with
    // error="invalid_token" when a token was sent and refused (§3.1). The identity layer's
    // 401 (no client certificate, stack mtls) has none.
    if reply.status == 401 {
        let challenge = reply
            .headers
            .get(http::header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        match challenge {
            None if case.stack == Kind::Mtls => {}
            None => wrong.push("401 without a Bearer challenge".to_owned()),
            Some(c) if !c.starts_with("Bearer ") => wrong.push(format!("challenge {c:?}")),
            Some(c)
                if code.as_deref() == Some("security")
                    && !c.contains("error=\"invalid_token\"") =>
            {
                wrong.push(format!("refused token without invalid_token: {c:?}"))
            }
            Some(_) => {}
        }
    }
    // Nothing internal in a refusal: no token text, no key ids (DESIGN "Rules").
    if reply.status >= 400 {
        let mut everything = body.clone();
        for (name, value) in &reply.headers {
            everything.push_str(&format!(
                "\n{name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        for secret in internals {
            if everything.contains(secret.as_str()) {
                wrong.push(format!("refusal shows {secret:?}"));
            }
        }
    }
    wrong
}

/// What a refusal must never show: the parts of the token sent, and the key ids.
fn internals(token: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = ["rsa-1", "ec-256", "ec-384", "ed-1", "attacker"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if let Some(token) = token {
        out.extend(
            token
                .split('.')
                .filter(|p| p.len() >= 16)
                .map(str::to_owned),
        );
    }
    out
}

/// Every request file, line by line, against one stack of each kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_corpus_through_the_whole_stack() {
    let secrets = Secrets::new();
    let mut stacks = BTreeMap::new();
    for kind in [Kind::Smart, Kind::Mtls, Kind::Upstream] {
        stacks.insert(
            kind,
            Stack::new(kind, attacks_support::large_budgets()).await,
        );
    }
    let pat2_before = pat2_compartment(&stacks[&Kind::Smart].store);
    let files = corpus();
    let mut failures = Vec::new();
    let mut total = 0;
    let mut counts = Vec::new();
    for (file, cases) in &files {
        counts.push(format!("{file}: {}", cases.len()));
        total += cases.len();
        for case in cases {
            let stack = &stacks[&case.stack];
            let (bearer, sees_all) = match case.token.as_str() {
                "-" => (None, false),
                cell => {
                    let (t, sees_all) = token(cell);
                    (Some(t), sees_all)
                }
            };
            let before = stack.records();
            let attempt = Attempt {
                token: bearer,
                peer: &case.peer,
                method: &case.method,
                path: &case.path,
                headers: &case.headers,
                body: &case.body,
            };
            let reply = tokio::time::timeout(Duration::from_secs(60), send(&stack.app, &attempt))
                .await
                .unwrap_or_else(|_| panic!("{} {}: no answer", case.at, case.name));
            let mut shown = internals(attempt.token.as_deref());
            // Tokens sent in headers or the query are the attacker's own, but must not
            // come back either.
            for cell in [
                case.path.as_str(),
                case.headers.as_str(),
                case.body.as_str(),
            ] {
                if cell.contains("$token:") {
                    let expanded = attacks_support::expand(cell);
                    shown.extend(
                        expanded
                            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                            .filter(|p| p.len() >= 40)
                            .map(str::to_owned),
                    );
                }
            }
            let mut wrong = judge(case, &reply, sees_all, &secrets, &shown);
            // The audit layer sees every request, refusals included.
            if stack.records() != before + 1 {
                wrong.push(format!("{} audit records", stack.records() - before));
            } else if let Some(record) = stack.last_record() {
                if record.status != reply.status {
                    wrong.push(format!("audit recorded status {}", record.status));
                }
            }
            if !wrong.is_empty() {
                let body: String = reply.text().chars().take(300).collect();
                failures.push(format!(
                    "{} {}: {} ({body})",
                    case.at,
                    case.name,
                    wrong.join("; ")
                ));
            }
        }
    }
    eprintln!("attack corpus: {total} cases ({})", counts.join(", "));
    assert!(total >= 400, "the corpus shrank to {total}");
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // No write in the corpus touched pat-2's compartment.
    assert_eq!(pat2_compartment(&stacks[&Kind::Smart].store), pat2_before);
}

/// pat-2's record and every resource that references it, as stored.
fn pat2_compartment(store: &fhirwall_demo::MemoryStore) -> Vec<String> {
    let mut out = vec![store.read("Patient", "pat-2").unwrap().to_string()];
    for kind in ["Observation", "Encounter", "Condition", "MedicationRequest"] {
        for resource in store.all(kind) {
            let text = resource.to_string();
            if text.contains("\"Patient/pat-2\"") {
                out.push(text);
            }
        }
    }
    out.sort();
    assert!(out.len() > 10);
    out
}

/// The leak detector is not vacuous: a clinician (user/*.cruds) legitimately sees pat-2 and
/// the SSN, and the detector says so when told the reader should not.
#[tokio::test]
async fn the_leak_detector_finds_what_it_looks_for() {
    let secrets = Secrets::new();
    let stack = Stack::new(Kind::Smart, attacks_support::large_budgets()).await;
    let (clinician, sees_all) = token("clinician");
    assert!(sees_all);
    for (path, want) in [
        ("/fhir/Patient/pat-2", "pat-2 data"),
        ("/fhir/Observation/obs-2-1", "pat-2 data"),
        ("/fhir/Patient/pat-ssn", "SSN"),
        ("/fhir/Patient/pat-2/$everything", "pat-2 data"),
    ] {
        let reply = send(
            &stack.app,
            &Attempt {
                token: Some(clinician.clone()),
                peer: "127.0.0.1",
                method: "GET",
                path,
                headers: "-",
                body: "-",
            },
        )
        .await;
        assert_eq!(reply.status, 200, "{path}");
        let leaks = secrets.leaks(&reply, false);
        assert!(
            leaks.iter().any(|l| l.starts_with(want)),
            "{path}: {leaks:?}"
        );
    }
    // A gzip body is looked into, and headers are looked at.
    let gzipped = {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(br#"{"identifier":[{"value":"999-12-3456"}]}"#)
            .unwrap();
        gz.finish().unwrap()
    };
    let mut headers = http::HeaderMap::new();
    headers.insert("x-debug", http::HeaderValue::from_static("Patient/pat-2"));
    let reply = Reply {
        status: 200,
        headers,
        body: gzipped,
    };
    let leaks = secrets.leaks(&reply, false);
    assert!(leaks.iter().any(|l| l.starts_with("SSN")), "{leaks:?}");
    assert!(
        leaks.iter().any(|l| l.starts_with("pat-2 data")),
        "{leaks:?}"
    );
    assert!(!attacks_support::contains_word("pat-20 pat-21", "pat-2"));
    assert!(attacks_support::contains_word("\"Patient/pat-2\"", "pat-2"));
    assert!(!profile("pat1").sees_all);
}

/// Budgets per client (fhirwall limit layer): rotating addresses, forwarding headers,
/// tokens or token client_ids under one client certificate never resets a budget
/// (`tests/data/attacks/budget_evasion.txt`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_evasion_corpus() {
    let text = std::fs::read_to_string(data_dir().join("budget_evasion.txt")).unwrap();
    let mut failures = Vec::new();
    let mut cases = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        cases += 1;
        let f: Vec<&str> = line.split(" | ").map(str::trim).collect();
        assert_eq!(f.len(), 8, "line {}: 8 fields expected", i + 1);
        let list = |s: &str| -> Vec<String> {
            if s == "-" {
                Vec::new()
            } else {
                s.split(" ~ ").map(|x| x.trim().to_owned()).collect()
            }
        };
        let (kind, tokens, certs, peers, xffs) = (
            Kind::parse(f[1]),
            list(f[2]),
            list(f[3]),
            list(f[4]),
            list(f[5]),
        );
        let budgets = BudgetLayer::new(MemoryStore::default())
            .requests(Some(Rate::per_minute(5)))
            .resources(Some(Rate::per_minute(1_000)));
        let stack = Stack::new(kind, budgets).await;
        let mut statuses = Vec::new();
        for n in 0..10 {
            let pick = |l: &Vec<String>| l.get(n % l.len().max(1)).cloned();
            let mut headers = Vec::new();
            if let Some(cert) = pick(&certs) {
                headers.push(format!("x-forwarded-client-cert: $xfcc:{cert}"));
            }
            if let Some(xff) = pick(&xffs) {
                headers.push(format!("X-Forwarded-For: {xff}"));
            }
            let headers = if headers.is_empty() {
                "-".to_owned()
            } else {
                headers.join(" && ")
            };
            let peer = pick(&peers).unwrap();
            let reply = send(
                &stack.app,
                &Attempt {
                    token: pick(&tokens).map(|t| token(&t).0),
                    peer: &peer,
                    method: "GET",
                    path: f[6],
                    headers: &headers,
                    body: "-",
                },
            )
            .await;
            if reply.status == 429 {
                let ok = reply.issue_code().as_deref() == Some("throttled")
                    && reply.headers.contains_key(http::header::RETRY_AFTER);
                if !ok {
                    failures.push(format!(
                        "line {}: a 429 without throttled/Retry-After",
                        i + 1
                    ));
                }
            }
            statuses.push(reply.status);
        }
        eprintln!("{}: {statuses:?}", f[0]);
        let allowed = statuses.iter().take_while(|s| **s != 429).count();
        let rest_refused = statuses[allowed..].iter().all(|s| *s == 429);
        let got = if allowed == statuses.len() {
            "all".to_owned()
        } else {
            allowed.to_string()
        };
        if got != f[7] || !rest_refused || statuses[..allowed].iter().any(|s| *s != 200) {
            failures.push(format!(
                "line {} {}: want {}, got {statuses:?}",
                i + 1,
                f[0],
                f[7]
            ));
        }
    }
    assert!(cases >= 10, "the budget corpus shrank");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Sends `body` (which stalls after its first bytes) and waits at most a minute: the stack
/// must answer without waiting for the rest.
async fn send_stalled(app: &axum::Router, method: &str, path: &str, token: Option<&str>) -> u16 {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/fhir+json");
    if let Some(token) = token {
        builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut request = builder
        .body(Body::new(Stall::new("{\"resourceType\":")))
        .unwrap();
    request
        .extensions_mut()
        .insert(RemoteAddr(SocketAddr::from(([127, 0, 0, 1], 50_000))));
    let response = tokio::time::timeout(Duration::from_secs(60), app.clone().oneshot(request))
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: the stack waited for a stalled body"))
        .unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

/// Slowloris-style bodies: refusals that don't need the body come without reading it, so an
/// unauthenticated or unauthorized client can't hold the stack on a body that never ends.
/// (fhirwall itself has no body read timeout: a write the client may make waits for its
/// body, which the server in front must bound.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_are_not_waited_for_when_the_answer_is_known() {
    let stack = Stack::new(Kind::Smart, attacks_support::large_budgets()).await;
    let pat1 = token("pat1").0;
    // No token: RFC 6750 §3.1, refused before the body.
    assert_eq!(
        send_stalled(&stack.app, "POST", "/fhir/Observation", None).await,
        401
    );
    assert_eq!(
        send_stalled(&stack.app, "PUT", "/fhir/Patient/pat-1", None).await,
        401
    );
    // A batch or POST _search must be classified from its body; the token gate answers
    // first (RFC 6750 §3.1), so a client without a token can't hold a request open.
    assert_eq!(send_stalled(&stack.app, "POST", "/fhir", None).await, 401);
    assert_eq!(
        send_stalled(&stack.app, "POST", "/fhir/Patient/_search", None).await,
        401
    );
    assert_eq!(
        send_stalled(&stack.app, "POST", "/fhir", Some("not.a.token")).await,
        401
    );
    // Read-only token: a write is refused on its scopes, before the body.
    assert_eq!(
        send_stalled(&stack.app, "POST", "/fhir/Observation", Some(&pat1)).await,
        403
    );
    // A read of another patient with a stalling body: refused on the request.
    assert_eq!(
        send_stalled(&stack.app, "GET", "/fhir/Patient/pat-2", Some(&pat1)).await,
        404
    );
    // An address outside the allowlist: refused by the firewall first.
    let mut request = Request::post("/fhir/Observation")
        .body(Body::new(Stall::new("{")))
        .unwrap();
    request
        .extensions_mut()
        .insert(RemoteAddr(SocketAddr::from(([10, 1, 2, 3], 50_000))));
    let response =
        tokio::time::timeout(Duration::from_secs(60), stack.app.clone().oneshot(request))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(response.status(), 403);
    // mTLS stack: a client without a certificate, from the proxy's address or not.
    let mtls = Stack::new(Kind::Mtls, attacks_support::large_budgets()).await;
    assert_eq!(
        send_stalled(&mtls.app, "POST", "/fhir", Some(&pat1)).await,
        401
    );
}
