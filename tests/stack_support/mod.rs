//! The whole-stack tests' demo: the gateway's demo stack (`examples/support/stack_demo.rs`) in
//! front of the demo FHIR store with sample data, a demo SMART issuer, and an in-memory audit
//! sink.
#![allow(dead_code)]

#[path = "../../examples/support/smart_demo.rs"]
pub mod smart_demo;
#[path = "../../examples/support/stack_demo.rs"]
pub mod stack_demo;

use axum::Router;
use fhirwall::audit::{AuditLayer, AuditRecord, MemorySink};
use fhirwall::identity::TrustedClientLayer;
use fhirwall::limit::{BudgetLayer, MemoryStore};
use fhirwall::smart::SmartLayer;
use fhirwall_demo::{router, sample, DemoConfig};
use smart_demo::{DemoIssuer, DemoToken};
use std::net::SocketAddr;

/// The demo app behind the whole stack, with what the tests need to drive it.
pub struct StackDemo {
    /// The demo FHIR store behind the `Fhirwall` layer.
    pub app: Router,
    /// Where the audit layer writes.
    pub sink: MemorySink,
    /// The SMART issuer the stack trusts.
    pub issuer: DemoIssuer,
    /// The layers the stack runs, outermost first.
    pub layers: Vec<&'static str>,
}

impl StackDemo {
    /// The demo served as if at `addr`, with the identity layer when given and the demo
    /// budgets unless others are given.
    pub async fn new(
        addr: SocketAddr,
        identity: Option<TrustedClientLayer>,
        budgets: Option<BudgetLayer<MemoryStore>>,
    ) -> StackDemo {
        let store = fhirwall_demo::MemoryStore::new();
        sample::load(&store, sample::DEFAULT_SEED);
        let config = DemoConfig::for_address(addr, "/fhir");
        let app = router(store, config.clone());
        let cs = stack_demo::capability_statement(app.clone(), "/fhir").await;
        let issuer =
            DemoIssuer::generate(&format!("http://{addr}/demo-issuer"), &config.base_url).unwrap();
        let sink = MemorySink::new();
        let mut stack = stack_demo::DemoStack::new("/fhir", &cs, AuditLayer::new(sink.clone()))
            .smart(SmartLayer::new(issuer.verifier()).realm("fhirwall-demo"));
        if let Some(identity) = identity {
            stack = stack.identity(identity);
        }
        if let Some(budgets) = budgets {
            stack = stack.budgets(budgets);
        }
        let stack = stack.build().unwrap();
        let layers = stack.layers();
        StackDemo {
            app: app.layer(stack),
            sink,
            issuer,
            layers,
        }
    }

    /// A token by the name the scenario files use (`none` is no token).
    pub fn token(&self, name: &str) -> Option<String> {
        let claims = match name {
            "none" => return None,
            "garbage" => return Some("not-a-jwt".to_owned()),
            "patient-1" => DemoToken::patient_app("pat-1"),
            "patient-ssn" => DemoToken::new(stack_demo::PATIENT_APP)
                .scope("launch/patient openid fhirUser patient/*.rs")
                .patient("pat-ssn")
                .fhir_user("Patient/pat-ssn"),
            "clinician" => DemoToken::clinician("example"),
            "research" => DemoToken::new(stack_demo::RESEARCH).scope("user/*.rs"),
            "lab" => DemoToken::lab_system(),
            other => DemoToken::new(other).scope("user/*.rs"),
        };
        Some(self.issuer.mint(&claims).unwrap())
    }

    /// The last audit record.
    pub fn last_record(&self) -> AuditRecord {
        self.sink.records().pop().expect("an audit record")
    }
}

/// One line of `tests/data/stack_scenarios.txt`:
/// `name | token | peer | method | path | body | status | code | layer | checks`.
#[derive(Debug)]
pub struct Scenario {
    pub line: usize,
    pub name: String,
    pub token: String,
    pub peer: String,
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    pub status: u16,
    pub code: Option<String>,
    pub layer: String,
    pub checks: Vec<String>,
}

/// Every scenario of the file.
pub fn scenarios() -> Vec<Scenario> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/stack_scenarios.txt"
    ))
    .unwrap();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(" | ").map(str::trim).collect();
        assert_eq!(f.len(), 10, "line {}: 10 fields expected: {line}", i + 1);
        let opt = |s: &str| (s != "-").then(|| s.to_owned());
        out.push(Scenario {
            line: i + 1,
            name: f[0].to_owned(),
            token: f[1].to_owned(),
            peer: f[2].to_owned(),
            method: f[3].to_owned(),
            path: f[4].to_owned(),
            body: opt(f[5]),
            status: f[6].parse().unwrap(),
            code: opt(f[7]),
            layer: f[8].to_owned(),
            checks: opt(f[9])
                .map(|c| c.split(';').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default(),
        });
    }
    out
}

/// Checks a response body and audit record against a scenario's `checks`:
/// `has:TEXT`, `lacks:TEXT`, `redacted` (the record counts redactions).
pub fn check(s: &Scenario, body: &str, record: &AuditRecord) {
    for c in &s.checks {
        if let Some(text) = c.strip_prefix("has:") {
            assert!(
                body.contains(text),
                "line {} {}: body lacks {text:?}: {body}",
                s.line,
                s.name
            );
        } else if let Some(text) = c.strip_prefix("lacks:") {
            assert!(
                !body.contains(text),
                "line {} {}: body has {text:?}: {body}",
                s.line,
                s.name
            );
        } else if c == "redacted" {
            assert!(
                record.redactions.unwrap_or(0) > 0,
                "line {} {}: no redactions recorded: {record:?}",
                s.line,
                s.name
            );
        } else {
            panic!("line {}: unknown check {c:?}", s.line);
        }
    }
}

/// The first issue's code of an `OperationOutcome` body.
pub fn issue_code(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    (json["resourceType"] == "OperationOutcome")
        .then(|| json["issue"][0]["code"].as_str().map(str::to_owned))
        .flatten()
}
