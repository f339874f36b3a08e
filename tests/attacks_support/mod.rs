//! The attack corpus's stacks, tokens, request bodies and leak detector.
//!
//! Every stack is the whole `Fhirwall` (audit, firewall with the routes of the demo's
//! CapabilityStatement, SMART with a static key set, budgets, validation, redaction by the
//! demo policy, optionally identity from forwarded client certificates) in front of the demo
//! FHIR store with its sample data, or in front of a misbehaving upstream (`upstream`).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../support/pki.rs"]
pub mod pki;
#[path = "../../examples/support/redact_demo.rs"]
pub mod redact_demo;
#[path = "../smart_token_support/mod.rs"]
pub mod tokens;

mod bodies;
mod forge;
mod upstream;

pub use bodies::{make_body, Stall};
pub use forge::{profile, token};

use axum::body::Body;
use axum::Router;
use fhirwall::audit::{AuditLayer, AuditRecord, MemorySink};
use fhirwall::fhir::{Classifier, ResourceType};
use fhirwall::firewall::{IpRule, RouteInventory};
use fhirwall::identity::forwarded::{ForwardedCertificates, ForwardedFormat};
use fhirwall::identity::{ClientCaRoots, ClientMatch, TrustPolicy, TrustedClientLayer};
use fhirwall::limit::{BudgetLayer, MemoryStore, Rate};
use fhirwall::net::{RemoteAddr, TrustedProxies};
use fhirwall::smart::SmartLayer;
use fhirwall::stack::Fhirwall;
use fhirwall::validate::{ValidateConfig, ValidateLayer};
use fhirwall_demo::{router, sample, DemoConfig};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::BodyExt;
use pki::{sf_binary, url_escape, ClientOptions, Issued, Pki};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use tower::ServiceExt;

/// The address the demo believes it serves at (its `fullUrl`s and links).
pub const ADDR: &str = "127.0.0.1:8080";
/// The only address whose forwarded client certificates are believed (stack `mtls`).
pub const PROXY: &str = "127.0.0.2";
/// The second trusted proxy (for rotation under one certificate).
pub const PROXY2: &str = "127.0.0.3";

/// Which stack a case runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// No identity layer: SMART tokens only.
    Smart,
    /// Identity from `x-forwarded-client-cert` sent by [`PROXY`] or [`PROXY2`], and SMART.
    Mtls,
    /// Like `Smart`, in front of [`upstream`] (XML, gzip and mislabelled responses).
    Upstream,
}

impl Kind {
    pub fn parse(name: &str) -> Kind {
        match name {
            "smart" => Kind::Smart,
            "mtls" => Kind::Mtls,
            "upstream" => Kind::Upstream,
            other => panic!("unknown stack {other:?}"),
        }
    }
}

/// The client PKI: `lab` and `scraper` are allowed, `stranger` is issued by the same CA but
/// not in the policy, `rogue` is issued by another CA.
pub struct Clients {
    pub ca: Pki,
    pub other_ca: Pki,
    pub lab: Issued,
    pub scraper: Issued,
    pub stranger: Issued,
    pub rogue: Issued,
}

pub fn clients() -> &'static Clients {
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    CLIENTS.get_or_init(|| {
        let ca = Pki::new("fhirwall attacks client CA");
        let other_ca = Pki::new("fhirwall attacks other CA");
        let issue = |pki: &Pki, name: &str| {
            pki.client(ClientOptions::new(name).uri(&format!("spiffe://attacks.test/{name}")))
        };
        Clients {
            lab: issue(&ca, "lab"),
            scraper: issue(&ca, "scraper"),
            stranger: issue(&ca, "stranger"),
            rogue: issue(&other_ca, "lab"),
            ca,
            other_ca,
        }
    })
}

pub fn cert(name: &str) -> &'static Issued {
    let c = clients();
    match name {
        "lab" => &c.lab,
        "scraper" => &c.scraper,
        "stranger" => &c.stranger,
        "rogue" => &c.rogue,
        other => panic!("unknown client certificate {other:?}"),
    }
}

fn identity_layer() -> TrustedClientLayer {
    let c = clients();
    let uri = |name: &str| ClientMatch::san_uri(&format!("spiffe://attacks.test/{name}")).unwrap();
    let policy = TrustPolicy::builder()
        .allow("lab", uri("lab"))
        .allow("scraper", uri("scraper"))
        .build()
        .unwrap();
    let roots = ClientCaRoots::from_der([c.ca.root.clone()]).unwrap();
    let forwarded = ForwardedCertificates::new(
        TrustedProxies::new([format!("{PROXY}/32"), format!("{PROXY2}/32")]).unwrap(),
        ForwardedFormat::Xfcc,
        roots.chain_verifier().unwrap(),
    );
    TrustedClientLayer::new(policy).forwarded(forwarded)
}

/// Budgets large enough that the corpus never trips them.
pub fn large_budgets() -> BudgetLayer<MemoryStore> {
    BudgetLayer::new(MemoryStore::default())
        .requests(Some(Rate::per_minute(1_000_000)))
        .resources(Some(Rate::per_minute(1_000_000)))
}

/// One stack and what the checks need.
pub struct Stack {
    pub app: Router,
    pub sink: MemorySink,
    pub store: fhirwall_demo::MemoryStore,
}

async fn capability_statement(app: Router) -> Vec<u8> {
    let request = Request::get("/fhir/metadata").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

impl Stack {
    pub async fn new(kind: Kind, budgets: BudgetLayer<MemoryStore>) -> Stack {
        let store = fhirwall_demo::MemoryStore::new();
        sample::load(&store, sample::DEFAULT_SEED);
        let config = DemoConfig::for_address(ADDR.parse().unwrap(), "/fhir");
        let demo = router(store.clone(), config);
        let cs = capability_statement(demo.clone()).await;
        let inner = match kind {
            Kind::Upstream => upstream::router(cs.clone(), store.clone()),
            Kind::Smart | Kind::Mtls => demo,
        };
        let routes = RouteInventory::from_capability_statement("/fhir", &cs)
            .unwrap()
            .classifier(Classifier::new("/fhir"))
            .compartment(ResourceType::Patient);
        let local = IpRule::allow(["127.0.0.0/8", "::1/128"]).unwrap();
        let sink = MemorySink::new();
        let mut builder = Fhirwall::builder()
            .classifier(Classifier::new("/fhir"))
            .audit(AuditLayer::new(sink.clone()))
            .firewall(routes, |firewall| firewall.allow(local));
        if kind == Kind::Mtls {
            builder = builder.identity(identity_layer());
        }
        let stack = builder
            .smart(SmartLayer::new(tokens::corpus_verifier()).realm("fhirwall-attacks"))
            .budgets(budgets)
            .validate(ValidateLayer::new(ValidateConfig::new()))
            .redact(redact_demo::layer())
            .build()
            .unwrap();
        Stack {
            app: inner.layer(stack),
            sink,
            store,
        }
    }

    pub fn records(&self) -> usize {
        self.sink.records().len()
    }

    pub fn last_record(&self) -> Option<AuditRecord> {
        self.sink.records().pop()
    }
}

// ---------------------------------------------------------------- requests

/// Expands `$token:PROFILE`, `$xfcc:CERT`, `$cc:CERT` (RFC 9440 `Client-Cert`),
/// `$pem:CERT` (URL-escaped PEM) and `$ssn` in a path or header value.
pub fn expand(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let word: String = rest[1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
            .collect();
        let value = if let Some(p) = word.strip_prefix("token:") {
            token(p).0
        } else if let Some(name) = word.strip_prefix("xfcc:") {
            format!("Cert=\"{}\"", url_escape(&cert(name).cert_pem))
        } else if let Some(name) = word.strip_prefix("cc:") {
            sf_binary(cert(name).cert.as_ref())
        } else if let Some(name) = word.strip_prefix("pem:") {
            url_escape(&cert(name).cert_pem)
        } else if word.is_empty() || !word.contains(':') {
            // A FHIR `$operation` in a path.
            out.push('$');
            rest = &rest[1..];
            continue;
        } else {
            panic!("unknown expansion ${word} in {text:?}");
        };
        out.push_str(&value);
        rest = &rest[1 + word.len()..];
    }
    out.push_str(rest);
    out
}

/// One request of the corpus.
pub struct Attempt<'a> {
    pub token: Option<String>,
    pub peer: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a str,
    pub body: &'a str,
}

/// What came back, decoded for the checks.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first issue's code of an `OperationOutcome` body.
    pub fn issue_code(&self) -> Option<String> {
        let json: Value = serde_json::from_slice(&self.body).ok()?;
        (json["resourceType"] == "OperationOutcome")
            .then(|| json["issue"][0]["code"].as_str().map(str::to_owned))
            .flatten()
    }
}

/// Builds the request (headers: `Name: value` separated by ` && `) and sends it through the
/// stack with the peer address as `RemoteAddr` (`-`: none).
pub async fn send(app: &Router, a: &Attempt<'_>) -> Reply {
    let path = expand(a.path);
    let mut builder = Request::builder().method(a.method).uri(&path);
    let mut headers = HeaderMap::new();
    if let Some(token) = &a.token {
        headers.append(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
    }
    let mut content_type = false;
    if a.headers != "-" {
        for h in a.headers.split(" && ") {
            let (name, value) = h
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header {h:?}"));
            let name = HeaderName::from_bytes(name.trim().as_bytes()).unwrap();
            content_type |= name == CONTENT_TYPE;
            let value = expand(value.trim());
            headers.append(name, HeaderValue::from_bytes(value.as_bytes()).unwrap());
        }
    }
    let body = make_body(a.body);
    if a.body != "-" && !content_type {
        headers.append(
            CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json"),
        );
    }
    if let Some(len) = body.1 {
        headers
            .entry(http::header::CONTENT_LENGTH)
            .or_insert(HeaderValue::from(len));
    }
    for (name, value) in &headers {
        builder = builder.header(name, value);
    }
    let mut request = builder
        .body(body.0)
        .unwrap_or_else(|e| panic!("{} {path}: {e}", a.method));
    if a.peer != "-" {
        let peer: IpAddr = a.peer.parse().unwrap();
        request
            .extensions_mut()
            .insert(RemoteAddr(SocketAddr::new(peer, 50_000)));
    }
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: body.to_vec(),
    }
}

// ---------------------------------------------------------------- leaks

/// What must never come back: the sample SSN (to anyone in the corpus), and pat-2's data
/// (to anyone without user-level scopes).
pub struct Secrets {
    pub ssn: Vec<String>,
    pub other_patient: Vec<String>,
}

impl Secrets {
    /// pat-2's id, names, MRN, street, and the id of every resource in its compartment,
    /// read from a freshly loaded sample store.
    pub fn new() -> Secrets {
        let store = fhirwall_demo::MemoryStore::new();
        sample::load(&store, sample::DEFAULT_SEED);
        let mut other = BTreeSet::new();
        for marker in ["pat-2", "Noah", "Okafor", "Harbor Road", "100002"] {
            other.insert(marker.to_owned());
        }
        let reference = "\"Patient/pat-2\"";
        for kind in ResourceType::ALL {
            if matches!(kind, ResourceType::Patient) {
                continue;
            }
            for resource in store.all(kind.as_str()) {
                if resource.to_string().contains(reference) {
                    if let Some(id) = resource["id"].as_str() {
                        other.insert(id.to_owned());
                    }
                }
            }
        }
        assert!(other.len() > 10, "pat-2's compartment is in the sample");
        Secrets {
            ssn: vec![
                sample::SAMPLE_SSN.to_owned(),
                sample::SAMPLE_SSN.replace('-', ""),
            ],
            other_patient: other.into_iter().collect(),
        }
    }

    /// Every leak in a reply (body, decompressed if gzip, and headers).
    pub fn leaks(&self, reply: &Reply, sees_all: bool) -> Vec<String> {
        let mut texts = vec![reply.text()];
        if reply.body.starts_with(&[0x1f, 0x8b]) {
            use std::io::Read;
            let mut out = String::new();
            if flate2::read::GzDecoder::new(&reply.body[..])
                .read_to_string(&mut out)
                .is_ok()
            {
                texts.push(out);
            }
        }
        for (name, value) in &reply.headers {
            texts.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        let mut found = Vec::new();
        for text in &texts {
            for ssn in &self.ssn {
                if text.contains(ssn.as_str()) {
                    found.push(format!("SSN {ssn}"));
                }
            }
            if !sees_all {
                for marker in &self.other_patient {
                    if contains_word(text, marker) {
                        found.push(format!("pat-2 data {marker:?}"));
                    }
                }
            }
        }
        found
    }
}

/// `needle` occurs in `hay` not as part of a longer id (`pat-2` is not in `pat-20`).
pub fn contains_word(hay: &str, needle: &str) -> bool {
    let id_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    let mut from = 0;
    while let Some(at) = hay[from..].find(needle) {
        let start = from + at;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        if !before.is_some_and(id_char) && !after.is_some_and(id_char) {
            return true;
        }
        from = start + 1;
        while !hay.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}
