//! fhirwall's gateway demo: a FHIR R4 server to put fhirwall's layers in front of.
//!
//! ```text
//! cargo run --example gateway [-- --listen 127.0.0.1:8080] [--base /fhir] [--upstream http://host:port/fhir]
//! ```
//!
//! Without `--upstream` it serves the in-memory demo store (`fhirwall-demo`) loaded with sample
//! data; with it, it forwards every request under the base path to that FHIR server.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::process::ExitCode;

#[path = "support/redact_demo.rs"]
mod redact_demo;
#[path = "support/smart_demo.rs"]
mod smart_demo;

use axum::routing::get;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::Classifier;
use fhirwall::smart::SmartLayer;
use fhirwall_demo::{router, sample, upstream_router, DemoConfig, MemoryStore};

const USAGE: &str = "\
usage: cargo run --example gateway [-- OPTIONS]

options:
  --listen ADDR     address to listen on (default 127.0.0.1:8080)
  --base PATH       FHIR base path (default /fhir)
  --upstream URL    forward to this FHIR server (http://host:port/path) instead of the demo store
  --smart           require SMART tokens (a demo issuer signs them) and redact per client
  -h, --help        show this help";

struct Args {
    listen: SocketAddr,
    base: String,
    upstream: Option<String>,
    smart: bool,
}

/// `Ok(None)` means `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        base: "/fhir".to_owned(),
        upstream: None,
        smart: false,
    };
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        if name == "--smart" {
            parsed.smart = true;
            continue;
        }
        if !["--listen", "--base", "--upstream"].contains(&name.as_str()) {
            return Err(format!("unknown option {flag:?}"));
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value"))?;
        match name.as_str() {
            "--listen" => {
                parsed.listen = value.parse().map_err(|_| {
                    format!("--listen {value:?} is not an address like 127.0.0.1:8080")
                })?;
            }
            "--base" => parsed.base = value,
            _ => parsed.upstream = Some(value),
        }
    }
    Ok(Some(parsed))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("gateway: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = DemoConfig::for_address(args.listen, &args.base);

    let app = match &args.upstream {
        None => {
            let store = MemoryStore::new();
            let loaded = sample::load(&store, sample::DEFAULT_SEED);
            println!("demo FHIR server with {loaded} sample resources");
            router(store, config.clone())
        }
        Some(upstream) => match upstream_router(upstream, &config.base_path) {
            Ok(app) => {
                println!("forwarding {} to {upstream}", config.base_path);
                app
            }
            Err(e) => {
                eprintln!("gateway: {e}");
                return ExitCode::from(2);
            }
        },
    };

    // fhirwall layers, outermost first. axum applies the last `.layer` call outermost, so they
    // are listed here innermost first.
    let mut tokens = Vec::new();
    let app = if args.smart {
        let origin = format!("http://{}", args.listen);
        let issuer = match smart_demo::DemoIssuer::generate(
            &format!("{origin}/demo-issuer"),
            &config.base_url,
        ) {
            Ok(issuer) => issuer,
            Err(e) => {
                eprintln!("gateway: {e}");
                return ExitCode::FAILURE;
            }
        };
        let minted = issuer.sample_tokens("pat-1").and_then(|mut t| {
            let patient_app = smart_demo::DemoToken::new(redact_demo::PATIENT_APP)
                .scope("launch/patient openid fhirUser patient/*.rs")
                .patient("pat-ssn")
                .fhir_user("Patient/pat-ssn");
            t.push((
                "patient-app for pat-ssn (SSN redacted)",
                issuer.mint(&patient_app)?,
            ));
            let research = smart_demo::DemoToken::new(redact_demo::RESEARCH).scope("user/*.rs");
            t.push((
                "research (no identifiers, names, birth year only)",
                issuer.mint(&research)?,
            ));
            Ok(t)
        });
        match minted {
            Ok(t) => tokens = t,
            Err(e) => {
                eprintln!("gateway: {e}");
                return ExitCode::FAILURE;
            }
        }
        let jwks = issuer.jwks_json().to_owned();
        let fhir = app
            .layer(redact_demo::layer())
            .layer(SmartLayer::new(issuer.verifier()).realm("fhirwall-demo"))
            .layer(ClassifyLayer::new(Classifier::new(&config.base_path)));
        // The issuer's keys are public and live outside the FHIR base.
        axum::Router::new()
            .route(&issuer.jwks_path(), get(move || async move { jwks }))
            .fallback_service(fhir)
    } else {
        app.layer(ClassifyLayer::new(Classifier::new(&config.base_path)))
    };

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("gateway: can't listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let base = &config.base_url;
    println!(
        "listening on http://{}, FHIR base {base}\n\ntry:",
        args.listen
    );
    println!("  curl -s {base}/metadata");
    println!("  curl -s {base}/Patient/pat-1");
    println!("  curl -s '{base}/Observation?patient=pat-1&category=laboratory&_include=Observation:performer'");
    println!(
        "  curl -s '{base}/Patient?identifier=http://hl7.org/fhir/sid/us-ssn|'  # the SSN patient"
    );
    println!("  curl -s {base}/Patient/pat-ssn");
    println!("  curl -s '{base}/Patient/pat-1/$everything'");
    for (who, token) in &tokens {
        println!("\n{who}:\n  curl -s -H 'Authorization: Bearer {token}' {base}/Patient/pat-ssn");
    }
    println!("refused by fhirwall before reaching the server:");
    println!("  curl -si {base}/patient/pat-1          # 404: not an R4 resource type");
    println!("  curl -si {base}/Patient%2Fpat-1        # 400: encoded slash");
    println!("  curl -si -X DELETE {base}/Patient/pat-1 -H 'X-HTTP-Method-Override: GET'  # 400");
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, service).await {
        eprintln!("gateway: server error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
