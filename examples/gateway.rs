//! fhirwall's gateway: the whole fhirwall stack (`fhirwall::stack::Fhirwall`) in front of a
//! FHIR R4 server.
//!
//! ```text
//! cargo run --example gateway [-- --listen 127.0.0.1:8080] [--base /fhir] [--upstream URL]
//!                                 [--smart] [--tls] [--log-json] [--config policy.toml]
//! ```
//!
//! Without `--upstream` it serves the in-memory demo store (`fhirwall-demo`) loaded with sample
//! data; with it, it forwards every request under the base path to that FHIR server.
//!
//! Demo mode (no `--config`) runs, outermost first: audit (JSON lines on stderr), the firewall
//! (loopback addresses only; exactly the routes the server's CapabilityStatement lists, plus
//! the Patient compartment), classification, budgets per client, validation and redaction
//! (`examples/support/stack_demo.rs`). Two layers need credentials a first curl doesn't have,
//! so they are opt-in:
//!
//! - `--smart` adds the SMART layer with a throwaway token issuer: every data request then
//!   needs one of the printed tokens (`metadata` doesn't);
//! - `--tls` serves over mutual TLS with throwaway certificates and adds the trusted-client
//!   layer: only the printed demo client certificate gets in.
//!
//! `--config policy.toml` builds the whole stack from a policy file instead (`fhirwall::policy`),
//! and reloads it on SIGHUP: a bad new file is refused and the old policy keeps running.
//!
//! Logs go through `tracing` to stderr (`RUST_LOG` filters them, default `info`), human-readable,
//! or JSON with `--log-json`. Ctrl-C or SIGTERM stops accepting connections and lets requests in
//! flight finish.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[path = "support/smart_demo.rs"]
mod smart_demo;
#[path = "support/stack_demo.rs"]
mod stack_demo;
#[path = "support/tls_demo.rs"]
mod tls_demo;

use axum::routing::get;
use axum::Router;
use fhirwall::audit::{AuditLayer, AuditRecord, AuditSink, NonBlocking};
use fhirwall::fhir::Classifier;
use fhirwall::identity::TlsServer;
use fhirwall::smart::SmartLayer;
use fhirwall_demo::{router, sample, upstream_router, DemoConfig, MemoryStore};

const USAGE: &str = "\
usage: cargo run --example gateway [-- OPTIONS]

options:
  --listen ADDR     address to listen on (default 127.0.0.1:8080)
  --base PATH       FHIR base path (default /fhir)
  --upstream URL    forward to this FHIR server (http://host:port/path) instead of the demo store
  --smart           require SMART tokens (a demo issuer signs them; printed at start)
  --tls             serve over mutual TLS with demo certificates (printed at start)
  --config FILE     build the stack from this policy file (fhirwall::policy); SIGHUP reloads it
  --log-json        logs as JSON lines (default: human-readable); RUST_LOG filters them
  -h, --help        show this help";

struct Args {
    listen: SocketAddr,
    base: String,
    upstream: Option<String>,
    smart: bool,
    tls: bool,
    log_json: bool,
    config: Option<PathBuf>,
}

/// `Ok(None)` means `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        base: "/fhir".to_owned(),
        upstream: None,
        smart: false,
        tls: false,
        log_json: false,
        config: None,
    };
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.clone(), None),
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--smart" => parsed.smart = true,
            "--tls" => parsed.tls = true,
            "--log-json" => parsed.log_json = true,
            "--listen" | "--base" | "--upstream" | "--config" => {
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
                    "--config" => parsed.config = Some(PathBuf::from(value)),
                    _ => parsed.upstream = Some(value),
                }
            }
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    if parsed.config.is_some() && (parsed.smart || parsed.tls) {
        return Err(
            "--config takes tokens and trusted clients from the policy file: drop --smart/--tls"
                .to_owned(),
        );
    }
    Ok(Some(parsed))
}

fn init_logs(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
}

/// Audit records as JSON lines on stderr (written off the request path by [`NonBlocking`]).
struct StderrJsonLines;

impl AuditSink for StderrJsonLines {
    fn record(&self, record: AuditRecord) {
        use std::io::Write;
        let mut line = record.to_json();
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: no new connections; requests in flight finish");
}

/// The FHIR server behind the stack: the demo store, or a proxy to `--upstream`.
fn backend(args: &Args, config: &DemoConfig) -> Result<Router, String> {
    match &args.upstream {
        None => {
            let store = MemoryStore::new();
            let loaded = sample::load(&store, sample::DEFAULT_SEED);
            tracing::info!(
                resources = loaded,
                "demo FHIR store loaded with sample data"
            );
            Ok(router(store, config.clone()))
        }
        Some(upstream) => {
            let app = upstream_router(upstream, &config.base_path).map_err(|e| e.to_string())?;
            tracing::info!(%upstream, base = %config.base_path, "forwarding to the upstream FHIR server");
            Ok(app)
        }
    }
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
    init_logs(args.log_json);
    let result = match args.config.clone() {
        Some(path) => run_with_policy(&args, path).await,
        None => run_demo(&args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Demo mode: the whole stack from `stack_demo`, `--smart` and `--tls` as asked.
async fn run_demo(args: &Args) -> Result<(), String> {
    let scheme = if args.tls { "https" } else { "http" };
    let mut config = DemoConfig::for_address(args.listen, &args.base);
    config.base_url = config
        .base_url
        .replacen("http://", &format!("{scheme}://"), 1);
    let base_path = Classifier::new(&config.base_path).base_path().to_owned();
    let app = backend(args, &config)?;
    let cs = stack_demo::capability_statement(app.clone(), &base_path).await;
    let audit = AuditLayer::new(NonBlocking::new(StderrJsonLines));
    let mut stack = stack_demo::DemoStack::new(&base_path, &cs, audit);

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("can't listen on {}: {e}", args.listen))?;

    let tls = if args.tls {
        let demo = tls_demo::TlsDemo::generate(args.listen, &base_path)?;
        stack = stack.identity(demo.identity_layer());
        Some(demo)
    } else {
        None
    };

    let mut tokens = Vec::new();
    let mut jwks = None;
    if args.smart {
        let origin = format!("{scheme}://{}", args.listen);
        let issuer =
            smart_demo::DemoIssuer::generate(&format!("{origin}/demo-issuer"), &config.base_url)?;
        tokens = issuer.sample_tokens("pat-1")?;
        let patient_app = smart_demo::DemoToken::new(stack_demo::PATIENT_APP)
            .scope("launch/patient openid fhirUser patient/*.rs")
            .patient("pat-ssn")
            .fhir_user("Patient/pat-ssn");
        tokens.push((
            "patient-app for pat-ssn (SSN redacted)",
            issuer.mint(&patient_app)?,
        ));
        let research = smart_demo::DemoToken::new(stack_demo::RESEARCH).scope("user/*.rs");
        tokens.push((
            "research (no identifiers, names, birth year only)",
            issuer.mint(&research)?,
        ));
        stack = stack.smart(SmartLayer::new(issuer.verifier()).realm("fhirwall-demo"));
        jwks = Some((issuer.jwks_path(), issuer.jwks_json().to_owned()));
    }

    let stack = stack.build()?;
    tracing::info!(layers = ?stack.layers(), "fhirwall stack built");
    let mut app = app.layer(stack);
    if let Some((path, keys)) = jwks {
        // The issuer's keys are public and live outside the FHIR base (and the stack).
        app = Router::new()
            .route(&path, get(move || async move { keys }))
            .fallback_service(app);
    }

    print_start(args, &config.base_url, tls.as_ref(), &tokens);

    match &tls {
        Some(demo) => {
            TlsServer::new(demo.server_config())
                .serve_with_shutdown(listener, app, shutdown_signal())
                .await;
            // The throwaway keys are useless after the demo: don't leave them behind.
            let _ = std::fs::remove_dir_all(&demo.dir);
        }
        None => {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown_signal())
                .await
                .map_err(|e| format!("server error: {e}"))?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// What a new user needs: the URL, the layers, and curl lines with what each should get.
fn print_start(
    args: &Args,
    base: &str,
    tls: Option<&tls_demo::TlsDemo>,
    tokens: &[(&str, String)],
) {
    // With --tls every curl needs the demo client's files: one shell variable holds them.
    let (setup, curl) = match tls {
        Some(demo) => (
            Some(format!(
                "CURL=\"curl -s --cacert {} --cert {} --key {}\"",
                demo.ca_cert.display(),
                demo.client_cert.display(),
                demo.client_key.display()
            )),
            "$CURL".to_owned(),
        ),
        None => (None, "curl -s".to_owned()),
    };
    let auth = if tokens.is_empty() {
        ""
    } else {
        " -H \"Authorization: Bearer $TOKEN\""
    };
    println!("fhirwall gateway: FHIR base {base}");
    println!(
        "layers: audit (JSON lines on stderr), firewall, {}classify, {}budgets, validate, redact",
        if tls.is_some() {
            "identity (mTLS), "
        } else {
            ""
        },
        if tokens.is_empty() { "" } else { "smart, " },
    );
    if let Some(demo) = tls {
        println!("\n{}", demo.instructions());
    }
    if !tokens.is_empty() {
        println!("\nSMART tokens (valid 8 hours; set one as $TOKEN):");
        for (who, token) in tokens {
            println!("  {who}:\n    TOKEN={token}");
        }
    }
    if let Some(setup) = &setup {
        println!("\nfirst, in your shell (the trusted demo client's certificate):\n  {setup}");
    }
    println!("\nallowed:");
    println!("  {curl} {base}/metadata");
    println!("  {curl}{auth} {base}/Patient/pat-1");
    println!("  {curl}{auth} '{base}/Observation?patient=pat-1&category=laboratory&_include=Observation:performer'");
    println!("  {curl}{auth} {base}/Patient/pat-ssn    # the SSN patient (redacted for patient-app and research)");
    println!("\nrefused by fhirwall before reaching the server:");
    println!("  {curl} -i {base}/_debug/vars             # 404 firewall: undeclared route");
    println!("  {curl} -i {base}/patient/pat-1           # 404 firewall: not an R4 resource type");
    println!(
        "  {curl}{auth} -i '{base}/Patient?shoe-size=42'  # 400 validate: unknown search parameter"
    );
    println!(
        "  {curl}{auth} -i -X POST {base}/Patient -H 'Content-Type: application/fhir+json' -d '{{\"resourceType\":\"Patient\",\"birthDate\":\"1970-13-01\"}}'  # 422 validate"
    );
    println!(
        "  for i in $(seq 14); do {curl}{auth} -o /dev/null -w '%{{http_code}} ' '{base}/Patient?gender=female'; done; echo  # 429 budgets: a search costs 10 of {} a minute",
        stack_demo::REQUESTS_PER_MINUTE
    );
    let mut more = Vec::new();
    if tokens.is_empty() {
        more.push("--smart to require SMART tokens");
    }
    if tls.is_none() {
        more.push("--tls for mutual TLS");
    }
    if !more.is_empty() {
        println!("\n(add {})", more.join(", "));
    }
    println!("\nlistening on {}; Ctrl-C stops", args.listen);
}

/// `--config`: the stack from a policy file, reloaded on SIGHUP.
async fn run_with_policy(args: &Args, path: PathBuf) -> Result<(), String> {
    use fhirwall::policy::PolicyHandle;
    let handle = PolicyHandle::load(&path).map_err(|e| e.to_string())?;
    let snapshot = handle.current();
    let base_path = snapshot.policy().base_path().to_owned();
    tracing::info!(
        policy = %path.display(),
        layers = ?snapshot.stack().layers(),
        "policy loaded"
    );
    let config = DemoConfig::for_address(args.listen, &base_path);
    let app = backend(args, &config)?.layer(handle.clone());

    #[cfg(unix)]
    {
        let handle = handle.clone();
        let path = path.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                return;
            };
            while hangups.recv().await.is_some() {
                match handle.reload() {
                    Ok(version) => {
                        tracing::info!(policy = %path.display(), version, "policy reloaded")
                    }
                    Err(e) => tracing::error!(
                        policy = %path.display(),
                        error = %e,
                        "new policy refused; the old one keeps running"
                    ),
                }
            }
        });
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("can't listen on {}: {e}", args.listen))?;
    println!("fhirwall gateway: FHIR base {}", config.base_url);
    println!(
        "policy: {} (kill -HUP {} reloads it)",
        path.display(),
        std::process::id()
    );
    println!("  curl -s {}/metadata", config.base_url);
    println!("\nlistening on {}; Ctrl-C stops", args.listen);
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}
