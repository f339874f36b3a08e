//! [`IntrospectionVerifier`]: opaque tokens checked by RFC 7662 token introspection (feature
//! `jwks`).
//!
//! Each token not in the cache is POSTed (`token=...&token_type_hint=access_token`) to the
//! authorization server's introspection endpoint with HTTP Basic client authentication
//! (RFC 7662 §2.1, credentials form-encoded first as RFC 6749 §2.3.1 asks). The answer:
//!
//! - `"active": true`, with `exp`, `nbf`, `iat` (leeway applied), `iss` and `aud` checked when
//!   present (§2.2 makes them optional): the answer's members become the [`VerifiedClaims`];
//! - `"active": false`, or a failed check: `invalid_token`;
//! - no answer, an error status, a redirect, an oversize or malformed answer (no boolean
//!   `active`): [`Unavailable`](crate::smart::TokenRejectionKind::Unavailable): the token could
//!   not be checked.
//!
//! Active answers are cached until the token's `exp` and at most
//! [`cache_max_age`](IntrospectionVerifierBuilder::cache_max_age) (default 5 min: how long a
//! revoked token can stay accepted). Inactive answers are not cached.
//!
//! ```
//! use fhirwall::smart::token::IntrospectionVerifier;
//!
//! let secret = std::env::var("INTROSPECTION_SECRET").unwrap_or_default();
//! let verifier = IntrospectionVerifier::builder("https://auth.example.org/introspect")
//!     .client_credentials("fhir-gateway", secret)
//!     .issuer("https://auth.example.org")
//!     .audience("https://fhir.example.org/r4")
//!     .build()
//!     .unwrap();
//! ```

use super::cache::TokenCache;
use super::checks::{check_audience, check_issuer, check_times, unix_now};
use super::http::{checked_url, client, read_capped, FetchFailed};
use super::json::strict_object;
use super::jwks::{DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT};
use super::jwt::{
    BuildError, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_MAX_AGE, DEFAULT_LEEWAY,
    DEFAULT_MAX_TOKEN_LEN, TOO_LARGE,
};
use crate::smart::{TokenFuture, TokenRejection, TokenRejectionKind, VerifiedClaims, VerifyToken};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, Url};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

const INACTIVE: TokenRejection = TokenRejection::invalid_token("the token is not active");
const UNCHECKED: TokenRejection = TokenRejection {
    kind: TokenRejectionKind::Unavailable,
    reason: "the token could not be checked",
};

/// `application/x-www-form-urlencoded` keeps only the unreserved characters as they are.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Verifies opaque tokens by RFC 7662 introspection; see the [module docs](self).
///
/// Clones share the HTTP client and the cache. `Debug` never shows the client secret.
#[derive(Clone)]
pub struct IntrospectionVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Url,
    client_id: String,
    authorization: HeaderValue,
    issuer: Option<String>,
    audiences: Vec<String>,
    leeway: u64,
    max_token_len: usize,
    max_response_bytes: usize,
    http: Client,
    cache: TokenCache,
}

impl IntrospectionVerifier {
    /// A builder for the introspection endpoint at this URL.
    pub fn builder(endpoint: impl Into<String>) -> IntrospectionVerifierBuilder {
        IntrospectionVerifierBuilder {
            endpoint: endpoint.into(),
            credentials: None,
            issuer: None,
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            timeout: DEFAULT_TIMEOUT,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            cache_max_age: DEFAULT_CACHE_MAX_AGE,
            allow_http: false,
        }
    }
}

impl Inner {
    async fn introspect(&self, token: &str) -> Result<Arc<VerifiedClaims>, TokenRejection> {
        let body = format!(
            "token={}&token_type_hint=access_token",
            utf8_percent_encode(token, FORM)
        );
        let response = self
            .http
            .post(self.endpoint.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|_| UNCHECKED)?;
        let answer = read_capped(response, self.max_response_bytes)
            .await
            .map_err(|FetchFailed| UNCHECKED)?;
        let claims = strict_object(&answer).ok_or(UNCHECKED)?;
        match claims.get("active") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => return Err(INACTIVE),
            _ => return Err(UNCHECKED),
        }
        let now = unix_now();
        let exp = check_times(&claims, now, self.leeway, false)?;
        if let Some(issuer) = &self.issuer {
            check_issuer(&claims, issuer, false)?;
        }
        if !self.audiences.is_empty() {
            check_audience(&claims, &self.audiences, false)?;
        }
        let claims = Arc::new(VerifiedClaims::new(claims, exp));
        if self.cache.enabled() {
            self.cache.insert(token, Arc::clone(&claims), now);
        }
        Ok(claims)
    }
}

impl VerifyToken for IntrospectionVerifier {
    fn verify_cached(&self, token: &str) -> Option<Result<Arc<VerifiedClaims>, TokenRejection>> {
        if token.len() > self.inner.max_token_len {
            return Some(Err(TOO_LARGE));
        }
        if !self.inner.cache.enabled() {
            return None;
        }
        self.inner.cache.get(token, unix_now()).map(Ok)
    }

    fn verify(&self, token: &str) -> TokenFuture {
        if token.len() > self.inner.max_token_len {
            return Box::pin(std::future::ready(Err(TOO_LARGE)));
        }
        let inner = Arc::clone(&self.inner);
        let token = token.to_owned();
        Box::pin(async move { inner.introspect(&token).await })
    }
}

impl fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifier")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &"[redacted]")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .finish_non_exhaustive()
    }
}

/// Settings of an [`IntrospectionVerifier`]. Client credentials are required.
///
/// | setting | default |
/// |---------|---------|
/// | [`issuer`](Self::issuer) | none: `iss` not checked |
/// | [`audience`](Self::audience) | none: `aud` not checked |
/// | [`leeway`](Self::leeway) | 60 s |
/// | [`timeout`](Self::timeout) | 5 s |
/// | [`max_token_len`](Self::max_token_len) | 16 KiB (longer tokens are never sent) |
/// | [`max_response_bytes`](Self::max_response_bytes) | 256 KiB |
/// | [`cache_capacity`](Self::cache_capacity) | 10 000 (0 turns the cache off) |
/// | [`cache_max_age`](Self::cache_max_age) | 5 min, and never past `exp` |
pub struct IntrospectionVerifierBuilder {
    endpoint: String,
    credentials: Option<(String, String)>,
    issuer: Option<String>,
    audiences: Vec<String>,
    leeway: Duration,
    timeout: Duration,
    max_token_len: usize,
    max_response_bytes: usize,
    cache_capacity: usize,
    cache_max_age: Duration,
    allow_http: bool,
}

impl IntrospectionVerifierBuilder {
    /// This resource server's client id and secret at the authorization server (required).
    pub fn client_credentials(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.credentials = Some((id.into(), secret.into()));
        self
    }

    /// Requires `iss`, when the answer has one, to equal this.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Accepts this `aud` (call again for several); when any is set, an answer's `aud`, if
    /// present, must name one.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Timeout of one introspection request, connecting included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest token sent for introspection, in bytes.
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// Largest introspection answer read.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// How many active tokens are cached (0 turns the cache off).
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// The longest an active answer stays cached; it also never outlives the token's `exp`.
    pub fn cache_max_age(mut self, age: Duration) -> Self {
        self.cache_max_age = age;
        self
    }

    /// Allows an `http` endpoint (for tests on 127.0.0.1): tokens and the client secret then
    /// cross the network in clear text.
    pub fn insecure_allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// The verifier, or what is wrong with the settings.
    pub fn build(self) -> Result<IntrospectionVerifier, BuildError> {
        let endpoint = checked_url(&self.endpoint, self.allow_http)?;
        let (client_id, secret) = self
            .credentials
            .ok_or(BuildError::BadSetting("client credentials are required"))?;
        if client_id.is_empty() {
            return Err(BuildError::BadSetting("the client id is empty"));
        }
        if self.max_response_bytes == 0 || self.timeout.is_zero() {
            return Err(BuildError::BadSetting(
                "timeout and max_response_bytes must be positive",
            ));
        }
        let pair = format!(
            "{}:{}",
            utf8_percent_encode(&client_id, FORM),
            utf8_percent_encode(&secret, FORM)
        );
        let mut authorization =
            HeaderValue::try_from(format!("Basic {}", STANDARD.encode(pair)))
                .map_err(|_| BuildError::BadSetting("the client credentials cannot be sent"))?;
        authorization.set_sensitive(true);
        Ok(IntrospectionVerifier {
            inner: Arc::new(Inner {
                endpoint,
                client_id,
                authorization,
                issuer: self.issuer,
                audiences: self.audiences,
                leeway: self.leeway.as_secs(),
                max_token_len: self.max_token_len,
                max_response_bytes: self.max_response_bytes,
                http: client(self.timeout)?,
                cache: TokenCache::new(self.cache_capacity, self.cache_max_age.as_secs()),
            }),
        })
    }
}

impl fmt::Debug for IntrospectionVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifierBuilder")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.credentials.as_ref().map(|(id, _)| id))
            .field("client_secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}
