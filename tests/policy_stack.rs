#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! A stack built from a policy enforces what the policy says, end to end through
//! `Router::oneshot`: SMART tokens from the configured issuer and key file (RFC 6750 §3 on
//! refusal), `.well-known/smart-configuration` (SMART App Launch 2.2 §"Conformance"), budgets
//! (429), and the declared routes (404).

use axum::{routing::get, Router};
use fhirwall::net::RemoteAddr;
use fhirwall::policy::Policy;
use http::{Request, StatusCode};
use tower::ServiceExt;

struct Setup {
    dir: std::path::PathBuf,
    signing: jsonwebtoken::EncodingKey,
}

impl Setup {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "fhirwall-policy-stack-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        std::fs::write(dir.join("issuer.pub.pem"), key.public_key_pem()).unwrap();
        let signing =
            jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
        Setup { dir, signing }
    }

    fn policy(&self, extra: &str) -> Policy {
        let text = format!(
            r#"
[service]
base_url = "https://fhir.example.org/fhir"

[transport]
require_tls = false

[[routes.resources]]
type = "Patient"
interactions = ["read"]

[tokens]
issuer = "https://auth.example.org"
public_keys_file = "issuer.pub.pem"
algorithms = ["ES256"]

[smart_configuration]
token_endpoint = "https://auth.example.org/token"
scopes_supported = ["patient/*.rs"]
{extra}
"#
        );
        Policy::from_toml_str_in(&text, "stack.toml", &self.dir).unwrap_or_else(|e| panic!("{e}"))
    }

    fn token(&self, patient: &str) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({
            "iss": "https://auth.example.org",
            "aud": "https://fhir.example.org/fhir",
            "exp": now + 600,
            "scope": "patient/*.rs",
            "patient": patient,
            "client_id": "app",
        });
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        jsonwebtoken::encode(&header, &claims, &self.signing).unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn app(policy: &Policy) -> Router {
    Router::new()
        .route(
            "/fhir/Patient/{id}",
            get(
                |axum::extract::Path(id): axum::extract::Path<String>| async move {
                    (
                        [("content-type", "application/fhir+json")],
                        format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#),
                    )
                },
            ),
        )
        .layer(policy.build().unwrap())
}

async fn send(app: &Router, path: &str, token: Option<&str>) -> http::Response<axum::body::Body> {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut request = request.body(axum::body::Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(RemoteAddr("127.0.0.1:40000".parse().unwrap()));
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .unwrap()
        .to_bytes();
    http::Response::from_parts(parts, axum::body::Body::from(bytes))
}

#[tokio::test]
async fn tokens_from_the_configured_issuer_and_key_are_enforced() {
    let setup = Setup::new("tokens");
    let app = app(&setup.policy(""));
    // No token: 401 with an RFC 6750 challenge naming the default realm.
    let refused = send(&app, "/fhir/Patient/p1", None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    // The patient's own record: allowed.
    let token = setup.token("p1");
    assert_eq!(
        send(&app, "/fhir/Patient/p1", Some(&token)).await.status(),
        StatusCode::OK
    );
    // Another patient's: hidden (404, authorization.hidden_status default).
    assert_eq!(
        send(&app, "/fhir/Patient/p2", Some(&token)).await.status(),
        StatusCode::NOT_FOUND
    );
    // A token signed by another key: 401.
    let other = Setup::new("other");
    assert_eq!(
        send(&app, "/fhir/Patient/p1", Some(&other.token("p1")))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn smart_configuration_is_served_from_the_policy() {
    let setup = Setup::new("wellknown");
    let app = app(&setup.policy(""));
    let response = send(&app, "/fhir/.well-known/smart-configuration", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["token_endpoint"], "https://auth.example.org/token");
    assert_eq!(json["issuer"], "https://auth.example.org");
}

#[tokio::test]
async fn the_request_budget_of_the_policy_applies() {
    let setup = Setup::new("budget");
    let app = app(&setup.policy(
        "[budgets]\nrequests = \"3/hour\"\nresources = \"off\"\nkeys = [\"smart_client\"]\n",
    ));
    let token = setup.token("p1");
    for _ in 0..3 {
        assert_eq!(
            send(&app, "/fhir/Patient/p1", Some(&token)).await.status(),
            StatusCode::OK
        );
    }
    let over = send(&app, "/fhir/Patient/p1", Some(&token)).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(over.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn undeclared_routes_are_not_found() {
    let setup = Setup::new("routes");
    let app = app(&setup.policy(""));
    let token = setup.token("p1");
    assert_eq!(
        send(&app, "/fhir/Observation/o1", Some(&token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, "/admin", Some(&token)).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// An old base path declared in `[routes] aliases` reaches the same handler, with the
/// RFC 9745 §2 `Deprecation` header its sunset entry announces, and the same authorization:
/// the alias is a second door to the same routes, not a way around the rules.
#[tokio::test]
async fn an_alias_base_path_serves_the_same_routes_under_the_same_rules() {
    let setup = Setup::new("alias");
    let aliased = Policy::from_toml_str_in(
        r#"
[service]
base_url = "https://fhir.example.org/fhir"

[transport]
require_tls = false

[routes]
aliases = ["/fhir-v0"]

[[routes.resources]]
type = "Patient"
interactions = ["read"]

[[routes.sunsets]]
prefix = "/fhir-v0"
deprecated_at = "2026-01-01T00:00:00Z"
sunset_at = "2099-01-01T00:00:00Z"

[tokens]
issuer = "https://auth.example.org"
public_keys_file = "issuer.pub.pem"
algorithms = ["ES256"]
"#,
        "alias.toml",
        &setup.dir,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let handler = |axum::extract::Path(id): axum::extract::Path<String>| async move {
        (
            [("content-type", "application/fhir+json")],
            format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#),
        )
    };
    let app = Router::new()
        .route("/fhir/Patient/{id}", get(handler))
        .route("/fhir-v0/Patient/{id}", get(handler))
        .layer(aliased.build().unwrap());
    let token = setup.token("p1");
    let own = send(&app, "/fhir-v0/Patient/p1", Some(&token)).await;
    assert_eq!(own.status(), StatusCode::OK);
    assert!(own.headers().contains_key("deprecation"));
    assert_eq!(
        send(&app, "/fhir-v0/Patient/p2", Some(&token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, "/fhir-v0/Patient/p1", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, "/fhir-v0/Observation/o1", Some(&token))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}
