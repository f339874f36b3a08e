//! Keys from a real JWKS endpoint served by axum on 127.0.0.1 (RFC 7517 §5, OpenID Connect
//! Discovery 1.0 §4, SMART App Launch 2.x §2.1): caching, key rotation, the bounded refresh
//! rate, outages with last-good keys, discovery, and fetch failures.
#![cfg(feature = "jwks")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod smart_token_support;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use fhirwall::smart::token::{BuildError, JwksSource, JwtVerifier};
use fhirwall::smart::{TokenRejectionKind, VerifyToken};
use serde_json::{json, Value};
use smart_token_support::*;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

const HOUR: Duration = Duration::from_secs(3600);

struct IdpState {
    jwks: Value,
    status: StatusCode,
    jwks_fetches: usize,
    discovery_fetches: usize,
    discovery_issuer: Option<String>,
}

#[derive(Clone)]
struct Idp(Arc<Mutex<IdpState>>);

impl Idp {
    fn set_jwks(&self, jwks: Value) {
        self.0.lock().unwrap().jwks = jwks;
    }
    fn set_status(&self, status: StatusCode) {
        self.0.lock().unwrap().status = status;
    }
    fn jwks_fetches(&self) -> usize {
        self.0.lock().unwrap().jwks_fetches
    }
    fn discovery_fetches(&self) -> usize {
        self.0.lock().unwrap().discovery_fetches
    }
}

struct Server {
    base: String,
    idp: Idp,
    task: JoinHandle<()>,
}

async fn jwks(State((idp, _)): State<(Idp, String)>) -> Response {
    let mut state = idp.0.lock().unwrap();
    state.jwks_fetches += 1;
    if state.status != StatusCode::OK {
        return state.status.into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        state.jwks.to_string(),
    )
        .into_response()
}

async fn discovery(State((idp, base)): State<(Idp, String)>) -> Response {
    let mut state = idp.0.lock().unwrap();
    state.discovery_fetches += 1;
    let issuer = state
        .discovery_issuer
        .clone()
        .unwrap_or_else(|| base.clone());
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/jwks.json"),
        "authorization_endpoint": format!("{base}/authorize"),
    }))
    .into_response()
}

async fn start(jwks_doc: Value) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let idp = Idp(Arc::new(Mutex::new(IdpState {
        jwks: jwks_doc,
        status: StatusCode::OK,
        jwks_fetches: 0,
        discovery_fetches: 0,
        discovery_issuer: None,
    })));
    let app = Router::new()
        .route("/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/fhir/.well-known/smart-configuration", get(discovery))
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/jwks.json")]) }),
        )
        .route(
            "/huge",
            get(|| async { format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(1 << 20)) }),
        )
        .route("/not-json", get(|| async { "<html>keys</html>" }))
        .route(
            "/unusable",
            get(|| async { r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"# }),
        )
        .with_state((idp.clone(), base.clone()));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { base, idp, task }
}

fn only(kids: &[&str]) -> Value {
    let all = trusted_jwks();
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
        .cloned()
        .collect();
    json!({ "keys": keys })
}

fn verifier(source: JwksSource) -> JwtVerifier {
    JwtVerifier::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwks(source.insecure_allow_http())
        .cache_capacity(0)
        .build()
        .unwrap()
}

async fn outcome(verifier: &JwtVerifier, token: &str) -> Result<(), TokenRejectionKind> {
    verifier.verify(token).await.map(|_| ()).map_err(|r| r.kind)
}

/// RFC 7517 §5: keys are fetched once and reused while fresh.
#[tokio::test]
async fn rfc7517_jwks_url_is_fetched_once_and_reused() {
    let server = start(trusted_jwks()).await;
    let v = verifier(JwksSource::url(format!("{}/jwks.json", server.base)));
    for signer in ["es256", "rs256", "ps256", "es384", "eddsa"] {
        assert_eq!(
            outcome(&v, &valid_token(signer, json!({}))).await,
            Ok(()),
            "{signer}"
        );
    }
    assert_eq!(server.idp.jwks_fetches(), 1);
}

/// Key rotation: a token signed by a key that appeared after the last fetch is verified
/// after one refetch triggered by its unknown `kid`.
#[tokio::test]
async fn key_rotation_new_kid_is_verified_after_one_refetch() {
    let server = start(only(&["ec-256"])).await;
    let source = JwksSource::url(format!("{}/jwks.json", server.base))
        .refresh_interval(HOUR)
        .min_refresh_interval(Duration::ZERO);
    let v = verifier(source);
    assert_eq!(outcome(&v, &valid_token("es256", json!({}))).await, Ok(()));
    assert_eq!(server.idp.jwks_fetches(), 1);

    server.idp.set_jwks(only(&["ec-256", "rsa-1"]));
    assert_eq!(outcome(&v, &valid_token("rs256", json!({}))).await, Ok(()));
    assert_eq!(server.idp.jwks_fetches(), 2);
    // Known now: no further fetch.
    assert_eq!(outcome(&v, &valid_token("ps256", json!({}))).await, Ok(()));
    assert_eq!(server.idp.jwks_fetches(), 2);

    // The old key is retired: tokens it signs are refused once the set no longer has it.
    server.idp.set_jwks(only(&["rsa-1"]));
    let retired = valid_token("es256", json!({"jti": "after-retirement"}));
    assert_eq!(
        outcome(&v, &retired).await,
        Ok(()),
        "still in the fetched set until refetch"
    );
    assert_eq!(
        outcome(&v, &valid_token("es384", json!({}))).await,
        Err(TokenRejectionKind::InvalidToken)
    );
    assert_eq!(server.idp.jwks_fetches(), 3);
    assert_eq!(
        outcome(&v, &retired).await,
        Err(TokenRejectionKind::InvalidToken)
    );
}

/// Unknown `kid`s cannot make the gateway hammer the key server: one refetch per
/// `min_refresh_interval`, and within it an unknown `kid` is `invalid_token`.
#[tokio::test]
async fn unknown_kid_refetch_is_rate_bounded() {
    let server = start(only(&["ec-256"])).await;
    let source = JwksSource::url(format!("{}/jwks.json", server.base)).min_refresh_interval(HOUR);
    let v = verifier(source);
    assert_eq!(outcome(&v, &valid_token("es256", json!({}))).await, Ok(()));
    server.idp.set_jwks(trusted_jwks());
    for i in 0..20 {
        let forged = valid_token("attacker-rs256", json!({ "jti": i }));
        assert_eq!(
            outcome(&v, &forged).await,
            Err(TokenRejectionKind::InvalidToken)
        );
    }
    // Even a genuinely new key waits for the interval: the bound holds for everyone.
    assert_eq!(
        outcome(&v, &valid_token("rs256", json!({}))).await,
        Err(TokenRejectionKind::InvalidToken)
    );
    assert_eq!(server.idp.jwks_fetches(), 1);
}

/// Outage: the last good keys keep verifying while the endpoint answers 500 or is gone; a
/// token whose key we could not fetch is `Unavailable` (503), never accepted.
#[tokio::test]
async fn outage_keeps_last_good_keys_and_unknown_kids_are_unavailable() {
    let server = start(only(&["ec-256"])).await;
    // Keys are always stale, so every verification tries the endpoint.
    let source = JwksSource::url(format!("{}/jwks.json", server.base))
        .refresh_interval(Duration::ZERO)
        .min_refresh_interval(Duration::ZERO);
    let v = verifier(source);
    assert_eq!(outcome(&v, &valid_token("es256", json!({}))).await, Ok(()));

    server.idp.set_status(StatusCode::INTERNAL_SERVER_ERROR);
    let before = server.idp.jwks_fetches();
    assert_eq!(
        outcome(&v, &valid_token("es256", json!({"jti": 1}))).await,
        Ok(())
    );
    assert!(server.idp.jwks_fetches() > before, "the endpoint was tried");
    assert_eq!(
        outcome(&v, &valid_token("rs256", json!({}))).await,
        Err(TokenRejectionKind::Unavailable)
    );

    server.task.abort();
    let _ = server.task.await;
    assert_eq!(
        outcome(&v, &valid_token("es256", json!({"jti": 2}))).await,
        Ok(())
    );
    assert_eq!(
        outcome(&v, &valid_token("rs256", json!({"jti": 2}))).await,
        Err(TokenRejectionKind::Unavailable)
    );
    // A forged token stays forged during an outage.
    assert_eq!(
        outcome(&v, &valid_token("other-es256", json!({}))).await,
        Err(TokenRejectionKind::InvalidToken)
    );
}

/// After a failed fetch the next attempt waits `min_refresh_interval`, so an outage (or a
/// key server answering errors) cannot turn every request into a fetch.
#[tokio::test]
async fn failed_fetch_backs_off_for_min_refresh_interval() {
    let server = start(only(&["ec-256"])).await;
    server.idp.set_status(StatusCode::INTERNAL_SERVER_ERROR);
    let v =
        verifier(JwksSource::url(format!("{}/jwks.json", server.base)).min_refresh_interval(HOUR));
    for i in 0..5 {
        assert_eq!(
            outcome(&v, &valid_token("es256", json!({ "jti": i }))).await,
            Err(TokenRejectionKind::Unavailable)
        );
    }
    server.idp.set_status(StatusCode::OK);
    assert_eq!(
        outcome(&v, &valid_token("es256", json!({}))).await,
        Err(TokenRejectionKind::Unavailable),
        "still backing off"
    );
    assert_eq!(server.idp.jwks_fetches(), 1);
}

/// No keys were ever fetched: nothing can be verified, and the answer is 503, not 401.
#[tokio::test]
async fn endpoint_down_from_the_start_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let v = verifier(
        JwksSource::url(format!("http://{addr}/jwks.json")).timeout(Duration::from_secs(2)),
    );
    assert_eq!(
        outcome(&v, &valid_token("es256", json!({}))).await,
        Err(TokenRejectionKind::Unavailable)
    );
}

/// OpenID Connect Discovery 1.0 §4: `jwks_uri` from `/.well-known/openid-configuration`,
/// whose `issuer` must equal the configured one (§4.3); discovery is not repeated per fetch.
#[tokio::test]
async fn openid_discovery_finds_jwks_uri_and_checks_issuer() {
    let server = start(trusted_jwks()).await;
    let v = JwtVerifier::builder()
        .issuer(server.base.clone())
        .audience(AUDIENCE)
        .jwks(
            JwksSource::openid_discovery(server.base.clone())
                .min_refresh_interval(Duration::ZERO)
                .insecure_allow_http(),
        )
        .build()
        .unwrap();
    let token = valid_token("es256", json!({"iss": server.base}));
    assert_eq!(outcome(&v, &token).await, Ok(()));
    assert_eq!(
        outcome(&v, &valid_token("rs256", json!({"iss": server.base}))).await,
        Ok(())
    );
    assert_eq!(
        (server.idp.discovery_fetches(), server.idp.jwks_fetches()),
        (1, 1)
    );

    server.idp.0.lock().unwrap().discovery_issuer = Some("https://impostor.example".into());
    let fresh = JwtVerifier::builder()
        .issuer(server.base.clone())
        .audience(AUDIENCE)
        .jwks(JwksSource::openid_discovery(server.base.clone()).insecure_allow_http())
        .build()
        .unwrap();
    assert_eq!(
        outcome(&fresh, &token).await,
        Err(TokenRejectionKind::Unavailable)
    );
}

/// SMART App Launch 2.x §2.1: `jwks_uri` from `{fhir base}/.well-known/smart-configuration`.
#[tokio::test]
async fn smart_discovery_finds_jwks_uri() {
    let server = start(trusted_jwks()).await;
    let v = verifier(JwksSource::smart_discovery(format!("{}/fhir", server.base)));
    assert_eq!(outcome(&v, &valid_token("eddsa", json!({}))).await, Ok(()));
    assert_eq!(server.idp.discovery_fetches(), 1);
}

/// Fetch failures (redirect, oversize, not JSON, no usable key) never install keys.
#[tokio::test]
async fn bad_documents_are_fetch_failures() {
    let server = start(trusted_jwks()).await;
    for path in ["/redirect", "/huge", "/not-json", "/unusable", "/missing"] {
        let source =
            JwksSource::url(format!("{}{path}", server.base)).max_response_bytes(64 * 1024);
        let v = verifier(source);
        assert_eq!(
            outcome(&v, &valid_token("es256", json!({}))).await,
            Err(TokenRejectionKind::Unavailable),
            "{path}"
        );
    }
}

/// Many first requests at once cause one fetch, not one each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_one_fetch() {
    let server = start(trusted_jwks()).await;
    let v =
        verifier(JwksSource::url(format!("{}/jwks.json", server.base)).min_refresh_interval(HOUR));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let v = v.clone();
            tokio::spawn(
                async move { outcome(&v, &valid_token("es256", json!({ "jti": i }))).await },
            )
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(()));
    }
    assert_eq!(server.idp.jwks_fetches(), 1);
}

/// Keys over plain HTTP can be replaced in flight: https is required unless explicitly
/// allowed, and URLs with credentials or fragments are refused.
#[test]
fn https_is_required_unless_insecure_allow_http() {
    let build = |source: JwksSource| {
        JwtVerifier::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .jwks(source)
            .build()
            .map(|_| ())
    };
    assert!(matches!(
        build(JwksSource::url("http://127.0.0.1:1/jwks.json")),
        Err(BuildError::BadUrl(_))
    ));
    assert!(matches!(
        build(JwksSource::url("ftp://keys.example/jwks")),
        Err(BuildError::BadUrl(_))
    ));
    assert!(matches!(
        build(JwksSource::url("https://u:p@keys.example/jwks")),
        Err(BuildError::BadUrl(_))
    ));
    assert!(matches!(
        build(JwksSource::url("/jwks.json")),
        Err(BuildError::BadUrl(_))
    ));
    assert!(build(JwksSource::url("https://keys.example/jwks.json")).is_ok());
    assert!(build(JwksSource::url("http://127.0.0.1:1/jwks.json").insecure_allow_http()).is_ok());
}
