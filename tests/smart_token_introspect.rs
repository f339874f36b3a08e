//! RFC 7662 token introspection against a real endpoint served by axum on 127.0.0.1: active,
//! inactive, expired and foreign tokens, caching bounded by `exp`, client authentication, and
//! endpoint failures.
#![cfg(feature = "jwks")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use fhirwall::smart::token::{BuildError, IntrospectionVerifier};
use fhirwall::smart::{TokenRejectionKind, VerifyToken};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "https://fhir.test/r4";
const CLIENT_ID: &str = "fhir gateway";
const CLIENT_SECRET: &str = "s3cr:et&+=%";

#[derive(Clone, Default)]
struct Calls(Arc<Mutex<HashMap<String, usize>>>);

impl Calls {
    fn of(&self, token: &str) -> usize {
        self.0.lock().unwrap().get(token).copied().unwrap_or(0)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn form_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8()
        .unwrap()
        .into_owned()
}

/// The endpoint: checks client authentication (RFC 7662 §2.1, RFC 6749 §2.3.1) and answers
/// by the token's name.
async fn introspect(State(calls): State<Calls>, headers: HeaderMap, body: String) -> Response {
    let expected_type = "application/x-www-form-urlencoded";
    if headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap() != expected_type {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .unwrap()
        .to_str()
        .unwrap();
    let encoded = auth.strip_prefix("Basic ").unwrap();
    let pair = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    let (id, secret) = pair.split_once(':').unwrap();
    if form_decode(id) != CLIENT_ID || form_decode(secret) != CLIENT_SECRET {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let form: HashMap<String, String> = body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (form_decode(k), form_decode(v)))
        .collect();
    assert_eq!(
        form.get("token_type_hint").map(String::as_str),
        Some("access_token")
    );
    let token = form.get("token").unwrap().clone();
    *calls.0.lock().unwrap().entry(token.clone()).or_default() += 1;
    let now = now();
    let active = json!({
        "active": true, "scope": "launch/patient patient/*.rs", "client_id": "app-1",
        "sub": "user-1", "patient": "123", "iss": ISSUER, "aud": AUDIENCE,
        "exp": now + 3600, "token_type": "Bearer",
    });
    let with = |patch: serde_json::Value| {
        let mut answer = active.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                answer.as_object_mut().unwrap().remove(k);
            } else {
                answer[k] = v.clone();
            }
        }
        axum::Json(answer).into_response()
    };
    match token.as_str() {
        "good" | "good+/=~" | "good-2" => with(json!({})),
        "no-exp" => with(json!({"exp": null})),
        "aud-array" => with(json!({"aud": ["https://other.example", AUDIENCE]})),
        "no-iss-no-aud" => with(json!({"iss": null, "aud": null})),
        "inactive" => axum::Json(json!({"active": false})).into_response(),
        "expired" => with(json!({"exp": now - 3600})),
        "expired-within-leeway" => with(json!({"exp": now - 20})),
        "not-yet-valid" => with(json!({"nbf": now + 3600})),
        "wrong-aud" => with(json!({"aud": "https://other.example/r4"})),
        "wrong-iss" => with(json!({"iss": "https://attacker.example"})),
        "active-as-string" => with(json!({"active": "true"})),
        "no-active" => with(json!({"active": null})),
        "not-json" => "active=true".into_response(),
        "duplicate-active" => r#"{"active":false,"active":true}"#.into_response(),
        "server-error" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "huge" => format!(r#"{{"active":true,"pad":"{}"}}"#, "x".repeat(1 << 20)).into_response(),
        _ => axum::Json(json!({"active": false})).into_response(),
    }
}

struct Server {
    endpoint: String,
    calls: Calls,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Calls::default();
    let app = Router::new()
        .route("/introspect", post(introspect))
        .with_state(calls.clone());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        endpoint: format!("http://{addr}/introspect"),
        calls,
        task,
    }
}

fn verifier(endpoint: &str) -> IntrospectionVerifier {
    IntrospectionVerifier::builder(endpoint)
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .max_response_bytes(64 * 1024)
        .insecure_allow_http()
        .build()
        .unwrap()
}

async fn outcome(v: &IntrospectionVerifier, token: &str) -> Result<(), TokenRejectionKind> {
    v.verify(token).await.map(|_| ()).map_err(|r| r.kind)
}

/// RFC 7662 §2.2: an active token's answer becomes the verified claims, and is cached.
#[tokio::test]
async fn rfc7662_active_token_is_verified_and_cached() {
    let server = start().await;
    let v = verifier(&server.endpoint);
    assert!(v.verify_cached("good").is_none());
    let claims = v.verify("good").await.unwrap();
    assert_eq!(claims.get_str("patient"), Some("123"));
    assert_eq!(claims.get_str("scope"), Some("launch/patient patient/*.rs"));
    assert!(claims.expires_at().is_some());
    let cached = v.verify_cached("good").unwrap().unwrap();
    assert!(Arc::ptr_eq(&claims, &cached));
    assert_eq!(server.calls.of("good"), 1);

    for token in ["no-exp", "aud-array", "no-iss-no-aud"] {
        assert_eq!(outcome(&v, token).await, Ok(()), "{token}");
    }
}

/// RFC 7662 §2.2: `active: false`, an expired or not-yet-valid answer, and a foreign issuer
/// or audience are `invalid_token`, and are not cached.
#[tokio::test]
async fn rfc7662_inactive_expired_and_foreign_tokens_are_invalid() {
    let server = start().await;
    let v = verifier(&server.endpoint);
    for token in [
        "inactive",
        "expired",
        "not-yet-valid",
        "wrong-aud",
        "wrong-iss",
        "unknown",
    ] {
        assert_eq!(
            outcome(&v, token).await,
            Err(TokenRejectionKind::InvalidToken),
            "{token}"
        );
        assert!(v.verify_cached(token).is_none(), "{token}");
        assert_eq!(
            outcome(&v, token).await,
            Err(TokenRejectionKind::InvalidToken),
            "{token}"
        );
        assert_eq!(
            server.calls.of(token),
            2,
            "{token}: refusals are not cached"
        );
    }
}

/// The cache never outlives `exp`: a token accepted within the leeway after its `exp` is not
/// cached, so it is introspected again.
#[tokio::test]
async fn cache_is_bounded_by_the_token_expiry() {
    let server = start().await;
    let v = verifier(&server.endpoint);
    assert_eq!(outcome(&v, "expired-within-leeway").await, Ok(()));
    assert!(v.verify_cached("expired-within-leeway").is_none());
    assert_eq!(outcome(&v, "expired-within-leeway").await, Ok(()));
    assert_eq!(server.calls.of("expired-within-leeway"), 2);

    let uncached = IntrospectionVerifier::builder(server.endpoint.as_str())
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .cache_capacity(0)
        .insecure_allow_http()
        .build()
        .unwrap();
    assert_eq!(outcome(&uncached, "good-2").await, Ok(()));
    assert!(uncached.verify_cached("good-2").is_none());
}

/// Client credentials and the token are form-encoded (RFC 6749 §2.3.1, RFC 7662 §2.1), so
/// reserved characters survive.
#[tokio::test]
async fn credentials_and_token_are_form_encoded() {
    let server = start().await;
    let v = verifier(&server.endpoint);
    assert_eq!(outcome(&v, "good+/=~").await, Ok(()));
    let wrong = IntrospectionVerifier::builder(server.endpoint.as_str())
        .client_credentials(CLIENT_ID, "wrong")
        .insecure_allow_http()
        .build()
        .unwrap();
    assert_eq!(
        outcome(&wrong, "good").await,
        Err(TokenRejectionKind::Unavailable)
    );
}

/// An answer that can't be trusted means the token could not be checked: 503, never 200.
#[tokio::test]
async fn malformed_answers_and_errors_are_unavailable() {
    let server = start().await;
    let v = verifier(&server.endpoint);
    for token in [
        "active-as-string",
        "no-active",
        "not-json",
        "duplicate-active",
        "server-error",
        "huge",
    ] {
        assert_eq!(
            outcome(&v, token).await,
            Err(TokenRejectionKind::Unavailable),
            "{token}"
        );
    }
}

#[tokio::test]
async fn endpoint_down_is_unavailable_and_oversize_tokens_are_never_sent() {
    let server = start().await;
    let v = verifier(&server.endpoint);
    let huge = "a".repeat(fhirwall::smart::token::DEFAULT_MAX_TOKEN_LEN + 1);
    assert_eq!(
        outcome(&v, &huge).await,
        Err(TokenRejectionKind::InvalidToken)
    );
    assert_eq!(server.calls.of(&huge), 0);
    server.task.abort();
    let _ = server.task.await;
    assert_eq!(
        outcome(&v, "good").await,
        Err(TokenRejectionKind::Unavailable)
    );
}

#[test]
fn builder_rules_and_redacted_debug() {
    let err = |b: fhirwall::smart::token::IntrospectionVerifierBuilder| b.build().unwrap_err();
    assert!(matches!(
        err(IntrospectionVerifier::builder("http://127.0.0.1:1/i").client_credentials("a", "b")),
        BuildError::BadUrl(_)
    ));
    assert!(matches!(
        err(IntrospectionVerifier::builder(
            "https://as.example/introspect"
        )),
        BuildError::BadSetting(_)
    ));
    let v = IntrospectionVerifier::builder("https://as.example/introspect")
        .client_credentials("gateway", "very-secret-value")
        .build()
        .unwrap();
    let debug = format!("{v:?}");
    assert!(
        debug.contains("gateway") && !debug.contains("very-secret-value"),
        "{debug}"
    );
    let builder = IntrospectionVerifier::builder("https://as.example/introspect")
        .client_credentials("gateway", "very-secret-value");
    assert!(!format!("{builder:?}").contains("very-secret-value"));
}
