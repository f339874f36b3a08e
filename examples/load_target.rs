//! The server `benches/load.sh` drives: one FHIR handler, served bare or behind fhirwall.
//!
//! ```text
//! cargo run --release --example load_target -- --listen 127.0.0.1:18080 --layers all --info FILE \
//!     [--handler canned|store]
//! ```
//!
//! With `--handler canned` (the default) the handler answers three requests with bytes
//! captured once at start from the demo store (so the handler itself costs next to nothing and
//! what is measured is the stack): `GET {base}/Patient/pat-1`, `GET {base}/Observation?_count=50`
//! (a searchset of 50 Observations) and `POST {base}/Patient` (201 with the body echoed). With
//! `--handler store` the demo's in-memory R4 server answers them itself (it looks the resource
//! up, runs the search, stores the created Patient and serialises every answer), which is closer
//! to what a real FHIR server costs per request.
//!
//! `--layers` is `none` (bare axum), `all`, or a comma list of `audit`, `firewall`, `identity`,
//! `smart`, `limit`, `validate`, `redact` (the classifier comes with any of them). `identity`
//! trusts a client certificate forwarded by a proxy at 127.0.0.1 in Envoy's
//! `x-forwarded-client-cert` header: the per-request cost of the identity layer is the same as
//! behind a TLS listener once the connection's certificate is parsed, and the load generator
//! (wrk) needs no client certificate support. The `--info` file receives, as JSON, the headers
//! a client must send (`authorization`, `x-forwarded-client-cert`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::process::ExitCode;

#[path = "support/redact_demo.rs"]
mod redact_demo;
#[path = "support/smart_demo.rs"]
mod smart_demo;
#[path = "support/tls_demo.rs"]
mod tls_demo;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use fhirwall::audit::{AuditLayer, JsonLinesFile, NonBlocking};
use fhirwall::fhir::{Classifier, ResourceType};
use fhirwall::firewall::{IpRule, RouteInventory};
use fhirwall::identity::{ClientCaRoots, ForwardedCertificates, ForwardedFormat};
use fhirwall::limit::{BudgetLayer, MemoryStore, Rate};
use fhirwall::net::TrustedProxies;
use fhirwall::smart::SmartLayer;
use fhirwall::stack::Fhirwall;
use fhirwall::validate::{ValidateConfig, ValidateLayer};
use fhirwall_demo::{router, sample, DemoConfig, MemoryStore as DemoStore};
use tower::ServiceExt;

const BASE: &str = "/fhir";
const LAYERS: [&str; 7] = [
    "audit", "firewall", "identity", "smart", "limit", "validate", "redact",
];

struct Args {
    listen: SocketAddr,
    layers: Vec<String>,
    info: Option<std::path::PathBuf>,
    store: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 18080)),
        layers: Vec::new(),
        info: None,
        store: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                args.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?;
            }
            "--layers" => {
                let v = value()?;
                args.layers = match v.as_str() {
                    "none" => Vec::new(),
                    "all" => LAYERS.iter().map(|s| (*s).to_owned()).collect(),
                    list => list.split(',').map(str::to_owned).collect(),
                };
                if let Some(bad) = args.layers.iter().find(|l| !LAYERS.contains(&l.as_str())) {
                    return Err(format!("unknown layer {bad:?}; known: {LAYERS:?}"));
                }
            }
            "--info" => args.info = Some(value()?.into()),
            "--handler" => {
                args.store = match value()?.as_str() {
                    "canned" => false,
                    "store" => true,
                    other => return Err(format!("--handler: {other:?} is not canned or store")),
                };
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// The three fixed answers, captured from the demo store.
#[derive(Clone)]
struct Canned {
    patient: Bytes,
    searchset: Bytes,
}

async fn capture(app: &Router, uri: &str) -> Result<Bytes, String> {
    let request = axum::http::Request::get(uri)
        .body(axum::body::Body::empty())
        .map_err(|e| e.to_string())?;
    let response = app
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| e.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!("{uri}: {}", response.status()));
    }
    axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .map_err(|e| e.to_string())
}

fn fhir(bytes: Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/fhir+json")], bytes)
}

fn handler(canned: Canned) -> Router {
    let patient = canned.patient.clone();
    let searchset = canned.searchset.clone();
    Router::new()
        .route(
            &format!("{BASE}/Patient/{{id}}"),
            get(move || {
                let body = patient.clone();
                async move { fhir(body) }
            }),
        )
        .route(
            &format!("{BASE}/Observation"),
            get(move || {
                let body = searchset.clone();
                async move { fhir(body) }
            }),
        )
        .route(
            &format!("{BASE}/Patient"),
            axum::routing::post(|body: Bytes| async move {
                (StatusCode::CREATED, fhir(body)).into_response()
            }),
        )
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let on = |name: &str| args.layers.iter().any(|l| l == name);

    let store = DemoStore::default();
    sample::load(&store, sample::DEFAULT_SEED);
    let config = DemoConfig::for_address(args.listen, BASE);
    let demo = router(store, config);
    let canned = Canned {
        patient: capture(&demo, &format!("{BASE}/Patient/pat-1")).await?,
        searchset: capture(&demo, &format!("{BASE}/Observation?_count=50")).await?,
    };
    let capability = capture(&demo, &format!("{BASE}/metadata")).await?;
    let app = if args.store { demo } else { handler(canned) };

    let mut info = serde_json::Map::new();
    let service = if args.layers.is_empty() {
        app
    } else {
        let mut builder = Fhirwall::builder().classifier(Classifier::new(BASE));
        if on("audit") {
            let path =
                std::env::temp_dir().join(format!("fhirwall-load-{}.jsonl", std::process::id()));
            let sink = JsonLinesFile::create(&path).map_err(|e| e.to_string())?;
            builder = builder.audit(AuditLayer::new(NonBlocking::new(sink)));
        }
        if on("firewall") {
            let routes = RouteInventory::from_capability_statement(BASE, &capability)
                .map_err(|e| e.to_string())?
                .classifier(Classifier::new(BASE))
                .compartment(ResourceType::Patient);
            let local = IpRule::allow(["127.0.0.0/8", "::1/128"]).map_err(|e| e.to_string())?;
            builder = builder.firewall(routes, |f| f.allow(local));
        }
        if on("identity") {
            let tls = tls_demo::TlsDemo::generate(args.listen, BASE)?;
            let roots = ClientCaRoots::from_pem_file(&tls.ca_cert).map_err(|e| e.to_string())?;
            let verifier = roots.chain_verifier().map_err(|e| e.to_string())?;
            let proxies = TrustedProxies::new(["127.0.0.1/32"]).map_err(|e| e.to_string())?;
            let forwarded = ForwardedCertificates::new(proxies, ForwardedFormat::Xfcc, verifier);
            builder = builder.identity(tls.identity_layer().forwarded(forwarded));
            let pem = std::fs::read_to_string(&tls.client_cert).map_err(|e| e.to_string())?;
            let escaped: String =
                percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            info.insert(
                "x-forwarded-client-cert".into(),
                format!("Cert=\"{escaped}\"").into(),
            );
        }
        if on("smart") {
            let issuer = smart_demo::DemoIssuer::generate(
                "http://127.0.0.1/load-issuer",
                &format!("http://{}{BASE}", args.listen),
            )?;
            let token = issuer.mint(&smart_demo::DemoToken::clinician("example"))?;
            info.insert("authorization".into(), format!("Bearer {token}").into());
            builder = builder.smart(SmartLayer::new(issuer.verifier()).realm("fhirwall-load"));
        }
        if on("limit") {
            // Large enough never to trip: the point is the cost of counting.
            let per_minute = 1_000_000_000;
            builder = builder.budgets(
                BudgetLayer::new(MemoryStore::default())
                    .requests(Some(Rate::per_minute(per_minute)))
                    .resources(Some(Rate::per_minute(per_minute)))
                    .max_in_flight(Some(10_000)),
            );
        }
        if on("validate") {
            builder = builder.validate(ValidateLayer::new(ValidateConfig::new()));
        }
        if on("redact") {
            builder = builder.redact(redact_demo::layer());
        }
        let stack = builder.build().map_err(|e| e.to_string())?;
        app.layer(stack)
    };

    if let Some(path) = &args.info {
        let text = serde_json::Value::Object(info).to_string();
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("{}: {e}", args.listen))?;
    println!(
        "load target on http://{}{BASE} with layers: {}",
        args.listen,
        if args.layers.is_empty() {
            "none".to_owned()
        } else {
            args.layers.join(",")
        }
    );
    axum::serve(
        listener,
        service.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load_target: {e}");
            ExitCode::FAILURE
        }
    }
}
