#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Audit (issue #8 §6): one record per request, every refusal from every layer recorded with
//! the deciding layer, no token or key material in the output, size rotation, and drops under
//! overload counted and reported.

mod firewall_support;

use axum::{routing::get, Router};
use fhirwall::audit::{
    AuditCaptureLayer, AuditLayer, AuditRecord, AuditSink, JsonLinesFile, MemorySink, NonBlocking,
};
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::{Classifier, Interaction, ResourceType};
use fhirwall::firewall::{FirewallLayer, FixedClock, IpRule, RouteInventory, Sunset};
use fhirwall::identity::{ClientMatch, TrustPolicy, TrustedClientLayer};
use fhirwall::smart::{
    AuthzPolicy, SmartLayer, TokenFuture, TokenRejection, VerifiedClaims, VerifyToken,
};
use firewall_support::{send, serve};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.SECRET-TOKEN-PAYLOAD.SIGNATURE";
const QUERY_TOKEN: &str = "SECRET-QUERY-TOKEN";
const KEY_PEM: &str =
    "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-----END PRIVATE KEY-----";

/// Refuses every token (a stand-in for a real verifier: the refusal is what is audited).
struct Nobody;
impl VerifyToken for Nobody {
    fn verify_cached(&self, _: &str) -> Option<Result<Arc<VerifiedClaims>, TokenRejection>> {
        Some(Err(TokenRejection::invalid_token("unknown token")))
    }
    fn verify(&self, _: &str) -> TokenFuture {
        Box::pin(async { Err(TokenRejection::invalid_token("unknown token")) })
    }
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fhirwall-audit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The whole stack in the recommended order, writing to a JSON-lines file.
async fn stack(path: &std::path::Path) -> std::net::SocketAddr {
    let routes = RouteInventory::new("/fhir")
        .alias_base("/fhir-v0")
        .declare(
            ResourceType::Patient,
            [Interaction::Read, Interaction::SearchType],
        )
        .declare(ResourceType::Group, [Interaction::Read]);
    let clock = Arc::new(FixedClock::at(2_000_000_000));
    let firewall = FirewallLayer::builder(routes)
        .group("/fhir/Group", IpRule::allow(["10.0.0.0/8"]).unwrap())
        .sunset(Sunset::new("/fhir-v0", 1_700_000_000, 1_800_000_000).successor("/fhir"))
        .clock(clock)
        .build();
    let sink = JsonLinesFile::create(path).unwrap();
    Router::new()
        .route("/fhir/Patient/{id}", get(|| async { "{}" }))
        .route("/fhir/Patient", get(|| async { "{}" }))
        .route("/fhir/metadata", get(|| async { "{}" }))
        .layer(AuditCaptureLayer::new())
        .layer(
            SmartLayer::new(Nobody)
                .realm("test")
                .policy(AuthzPolicy::new()),
        )
        .layer(ClassifyLayer::new(Classifier::new("/fhir")))
        .layer(firewall)
        .layer(AuditLayer::new(sink))
        .pipe(serve)
        .await
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

/// (target, headers, status, deciding layer, reason)
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str, &'a str);

#[tokio::test]
async fn every_refusal_is_recorded_with_its_deciding_layer() {
    let dir = temp("refusals");
    let path = dir.join("audit.jsonl");
    let addr = stack(&path).await;
    // (target, headers, status, layer, reason)
    let cases: &[Case<'_>] = &[
        ("/backdoor", &[], 404, "firewall", "undeclared-route"),
        ("/fhir/Group/1", &[], 403, "firewall", "address-not-allowed"),
        ("/fhir-v0/Patient/1", &[], 410, "firewall", "sunset"),
        ("/fhir/Patient?name=%zz", &[], 400, "classify", "bad-query"),
        ("/fhir/Patient/1", &[], 401, "smart", ""),
        (
            "/fhir/Patient/1",
            &[(
                "Authorization",
                "Bearer eyJhbGciOiJSUzI1NiJ9.SECRET-TOKEN-PAYLOAD.SIGNATURE",
            )],
            401,
            "smart",
            "",
        ),
        ("/fhir/metadata", &[], 200, "handler", ""),
    ];
    for (target, headers, status, _, _) in cases {
        let r = send(addr, "GET", target, headers).await;
        assert_eq!(r.status, *status, "{target}");
    }
    let records = lines(&path);
    assert_eq!(records.len(), cases.len(), "one record per request");
    for (record, (target, _, status, layer, reason)) in records.iter().zip(cases) {
        assert_eq!(record["status"], *status, "{target}: {record}");
        assert_eq!(record["decision"]["layer"], *layer, "{target}: {record}");
        if !reason.is_empty() {
            assert_eq!(record["decision"]["reason"], *reason, "{target}: {record}");
        }
        let refused = *status >= 400;
        assert_eq!(
            record["decision"]["outcome"],
            if refused { "refused" } else { "allowed" }
        );
        assert_eq!(record["outcome"], if refused { "4" } else { "0" });
        assert_eq!(record["type"], "rest");
        assert_eq!(record["address"], "127.0.0.1");
        assert!(record["latency_us"].is_u64());
        assert!(record["time"].as_str().unwrap().ends_with('Z'));
    }
    // The probe is marked, and its path kept.
    assert_eq!(records[0]["probe"], true);
    assert_eq!(records[0]["path"], "/backdoor");
    // A classified request is described by its interaction, type and id.
    assert_eq!(records[4]["subtype"], "read");
    assert_eq!(records[4]["resource_type"], "Patient");
    assert_eq!(records[4]["id"], "1");
    assert_eq!(records[4]["action"], "R");
    assert_eq!(records[6]["subtype"], "capabilities");
}

#[tokio::test]
async fn identity_refusals_are_recorded() {
    let dir = temp("identity");
    let path = dir.join("audit.jsonl");
    let policy = TrustPolicy::builder()
        .allow("lab", ClientMatch::san_dns("lab.example").unwrap())
        .build()
        .unwrap();
    let addr = Router::new()
        .route("/fhir/Patient/{id}", get(|| async { "{}" }))
        .layer(AuditCaptureLayer::new())
        .layer(TrustedClientLayer::new(policy))
        .layer(AuditLayer::new(JsonLinesFile::create(&path).unwrap()))
        .pipe(serve)
        .await;
    // No TLS, no certificate.
    let r = send(addr, "GET", "/fhir/Patient/1", &[]).await;
    assert_eq!(r.status, 401);
    let records = lines(&path);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["decision"]["layer"], "identity");
    assert_eq!(records[0]["decision"]["reason"], "missing-certificate");
}

#[tokio::test]
async fn audit_output_holds_no_token_or_key_material() {
    let dir = temp("secrets");
    let path = dir.join("audit.jsonl");
    let addr = stack(&path).await;
    let auth = format!("Bearer {TOKEN}");
    let query = format!("/fhir/Patient?access_token={QUERY_TOKEN}&family=Smith&_count=5");
    let probe = format!("/fhir/Patient?client_secret={QUERY_TOKEN}&key={QUERY_TOKEN}");
    send(
        addr,
        "GET",
        "/fhir/Patient/1",
        &[
            ("Authorization", &auth),
            ("Cookie", "session=SECRET-COOKIE"),
        ],
    )
    .await;
    send(addr, "GET", &query, &[("Authorization", &auth)]).await;
    send(addr, "GET", &probe, &[("X-Client-Cert", KEY_PEM)]).await;
    send(
        addr,
        "GET",
        "/fhir/metadata",
        &[("Authorization", &auth), ("X-Api-Key", "SECRET-API-KEY")],
    )
    .await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 4);
    for needle in [
        "SECRET",
        "eyJhbGci",
        "SIGNATURE",
        "Bearer",
        "BEGIN",
        "PRIVATE KEY",
        "MIIEvQ",
        "Smith", // identifying: hashed by default
    ] {
        assert!(
            !text.contains(needle),
            "found {needle:?} in the audit output:\n{text}"
        );
    }
    // The names of the parameters are still recorded; identifying values as hashes.
    let records = lines(&path);
    let q = records[1]["query"].as_array().unwrap();
    assert!(q
        .iter()
        .any(|p| p["name"] == "access_token" && p.get("value").is_none()));
    assert!(q
        .iter()
        .any(|p| p["name"] == "family" && p["value"].as_str().unwrap().starts_with("sha256:")));
    assert!(q.iter().any(|p| p["name"] == "_count" && p["value"] == "5"));
}

#[test]
fn file_sink_rotates_by_size() {
    let dir = temp("rotation");
    let path = dir.join("audit.jsonl");
    let sink = JsonLinesFile::create(&path).unwrap().max_bytes(600).keep(2);
    for _ in 0..40 {
        sink.record(record());
    }
    assert!(path.exists());
    assert!(dir.join("audit.jsonl.1").exists());
    assert!(dir.join("audit.jsonl.2").exists());
    assert!(!dir.join("audit.jsonl.3").exists());
    for f in ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.len() <= 600, "{f}: {}", text.len());
        for line in text.lines() {
            let _: Value = serde_json::from_str(line).unwrap();
        }
    }
    assert_eq!(sink.errors(), 0);
}

fn record() -> AuditRecord {
    let sink = MemorySink::new();
    // Records are only built by the layer; take one from a real request.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        use tower::ServiceExt;
        let svc = tower::service_fn(|_req: http::Request<String>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        });
        let svc = tower::Layer::layer(&AuditLayer::new(sink.clone()), svc);
        svc.oneshot(
            http::Request::get("/fhir/Patient/1")
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    });
    sink.records().pop().unwrap()
}

/// A sink that holds the writer until released.
#[derive(Clone)]
struct Gate {
    open: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    inner: MemorySink,
}

impl AuditSink for Gate {
    fn record(&self, record: AuditRecord) {
        let (lock, cvar) = &*self.open;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cvar.wait(open).unwrap();
        }
        self.inner.record(record);
    }
}

#[test]
fn non_blocking_sink_counts_and_reports_what_it_drops() {
    let memory = MemorySink::new();
    let gate = Gate {
        open: Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new())),
        inner: memory.clone(),
    };
    let sink = NonBlocking::with_capacity(gate.clone(), 1);
    let r = record();
    // The writer takes at most one and blocks on it, one more waits in the channel: of 10,
    // at least 8 are dropped, and `record` never waited.
    for _ in 0..10 {
        sink.record(r.clone());
    }
    let dropped = sink.dropped();
    assert!(dropped >= 8, "{dropped}");
    {
        let (lock, cvar) = &*gate.open;
        *lock.lock().unwrap() = true;
        cvar.notify_all();
    }
    drop(sink);
    // The writer drains, then reports the drops as records of their own.
    let reported = |records: &[AuditRecord]| -> u64 {
        records
            .iter()
            .filter(|r| r.subtype == "audit-dropped")
            .map(|r| {
                let reason = r.decision.reason.strip_prefix("dropped ").unwrap();
                reason
                    .strip_suffix(" records")
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum()
    };
    let mut records = memory.records();
    for _ in 0..500 {
        records = memory.records();
        let kept = records
            .iter()
            .filter(|r| r.subtype != "audit-dropped")
            .count() as u64;
        if kept == 10 - dropped && reported(&records) == dropped {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(reported(&records), dropped, "every drop is reported");
    let kept = records
        .iter()
        .filter(|r| r.subtype != "audit-dropped")
        .count() as u64;
    assert_eq!(kept, 10 - dropped, "every record not dropped is written");
}

/// A sink that takes its time over each record, like a slow disk.
#[derive(Clone)]
struct Slow(MemorySink);

impl AuditSink for Slow {
    fn record(&self, record: AuditRecord) {
        std::thread::sleep(std::time::Duration::from_millis(2));
        self.0.record(record);
    }
}

#[test]
fn dropping_the_last_non_blocking_clone_writes_every_queued_record_first() {
    let memory = MemorySink::new();
    let sink = NonBlocking::new(Slow(memory.clone()));
    let other = sink.clone();
    for _ in 0..100 {
        sink.record(record());
    }
    drop(sink);
    // Another clone still sends: nothing waits yet.
    other.record(record());
    drop(other);
    // The last clone gone, every record is with the sink: a server that stops and then
    // exits loses none (about 200 ms of writing, well inside the bound).
    assert_eq!(memory.records().len(), 101);
}
