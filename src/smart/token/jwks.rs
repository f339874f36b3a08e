//! Keys fetched over HTTP (feature `jwks`): a JWK Set URL (RFC 7517 §5), or one found through
//! OpenID Connect Discovery (`/.well-known/openid-configuration`) or SMART App Launch
//! discovery (`/.well-known/smart-configuration`), both giving `jwks_uri`.
//!
//! Rules, all bounded:
//!
//! - URLs must be `https` (unless [`insecure_allow_http`](JwksSource::insecure_allow_http));
//!   requests go straight to the server: redirects are not followed and environment proxies
//!   are not used; each has a timeout (default 5 s) and a response size cap (default 256 KiB);
//! - keys are fetched on first use and refetched when older than
//!   [`refresh_interval`](JwksSource::refresh_interval) (default 10 min);
//! - a token whose `kid` is unknown triggers a refetch (key rotation), at most once per
//!   [`min_refresh_interval`](JwksSource::min_refresh_interval) (default 30 s), and only one
//!   fetch runs at a time;
//! - when a fetch fails (timeout, error status, redirect, oversize or malformed document, a
//!   set with no usable key), the last good keys stay in use, and the next attempt waits for
//!   `min_refresh_interval`;
//! - a token that needs a key we could not fetch (no keys fetched yet, or an unknown `kid`
//!   while the endpoint fails) is refused as [`Unavailable`](crate::smart::TokenRejectionKind::Unavailable)
//!   (503), not as `invalid_token`: the key may well exist, and a client told its token is
//!   invalid would throw a good token away. An unknown `kid` after a successful refetch, or
//!   within `min_refresh_interval` of one, is `invalid_token`.
//!
//! ```
//! use fhirwall::smart::token::{JwksSource, JwtVerifier};
//! use std::time::Duration;
//!
//! // Nothing is fetched until the first token arrives.
//! let verifier = JwtVerifier::builder()
//!     .issuer("https://auth.example.org")
//!     .audience("https://fhir.example.org/r4")
//!     .require_typ("at+jwt")
//!     .jwks(
//!         JwksSource::openid_discovery("https://auth.example.org")
//!             .min_refresh_interval(Duration::from_secs(60)),
//!     )
//!     .build()
//!     .unwrap();
//! assert_eq!(verifier.issuer(), "https://auth.example.org");
//! ```

use super::http::{checked_url, client, get_json, FetchFailed};
use super::json::strict_object;
use super::jwt::NO_KEY;
use super::{BuildError, KeySet};
use crate::smart::{TokenRejection, TokenRejectionKind};
use reqwest::{Client, Url};
use serde_json::Value;
use std::fmt;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

const UNAVAILABLE: TokenRejection = TokenRejection {
    kind: TokenRejectionKind::Unavailable,
    reason: "the keys to check the token could not be fetched",
};

/// Default timeout of one fetch (connect and whole response).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default largest JWKS or discovery document read.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Default least time between two fetches caused by unknown `kid`s or after a failure.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Default age at which fetched keys are refetched.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
enum Location {
    Jwks(String),
    OpenId { issuer: String },
    Smart { fhir_base: String },
}

/// Where and how to fetch a JWK Set. See the [module docs](self) for the refresh rules.
#[derive(Clone, Debug)]
pub struct JwksSource {
    location: Location,
    timeout: Duration,
    max_response_bytes: usize,
    min_refresh_interval: Duration,
    refresh_interval: Duration,
    allow_http: bool,
}

impl JwksSource {
    fn new(location: Location) -> Self {
        JwksSource {
            location,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            allow_http: false,
        }
    }

    /// The JWK Set at this URL.
    pub fn url(jwks_uri: impl Into<String>) -> Self {
        JwksSource::new(Location::Jwks(jwks_uri.into()))
    }

    /// The `jwks_uri` of `{issuer}/.well-known/openid-configuration` (OpenID Connect
    /// Discovery 1.0 §4); the document's `issuer` must equal `issuer` exactly (§4.3).
    pub fn openid_discovery(issuer: impl Into<String>) -> Self {
        JwksSource::new(Location::OpenId {
            issuer: issuer.into(),
        })
    }

    /// The `jwks_uri` of `{fhir_base}/.well-known/smart-configuration` (SMART App Launch
    /// 2.x §2.1).
    pub fn smart_discovery(fhir_base: impl Into<String>) -> Self {
        JwksSource::new(Location::Smart {
            fhir_base: fhir_base.into(),
        })
    }

    /// Timeout of one request, connecting included (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest document read (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Least time between fetches caused by unknown `kid`s, and between retries after a
    /// failure (default [`DEFAULT_MIN_REFRESH_INTERVAL`]).
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// Age at which fetched keys are refetched (default [`DEFAULT_REFRESH_INTERVAL`]).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Allows `http` URLs (for tests on 127.0.0.1). Keys fetched over plain HTTP can be
    /// replaced by anyone on the path, who can then mint tokens.
    pub fn insecure_allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }
}

#[derive(Default)]
struct State {
    keys: Option<KeySet>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    last_failed: bool,
    /// The `jwks_uri` found by discovery; forgotten after a failure so it is rediscovered.
    discovered: Option<Url>,
}

/// A [`JwksSource`] in use: the HTTP client and the fetched keys.
pub(crate) struct RemoteKeys {
    source: JwksSource,
    document: Url,
    client: Client,
    state: RwLock<State>,
    refresh: tokio::sync::Mutex<()>,
}

impl RemoteKeys {
    pub(crate) fn new(source: JwksSource) -> Result<RemoteKeys, BuildError> {
        let allow = source.allow_http;
        let document = match &source.location {
            Location::Jwks(url) => checked_url(url, allow)?,
            Location::OpenId { issuer } => checked_url(
                &format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                ),
                allow,
            )?,
            Location::Smart { fhir_base } => checked_url(
                &format!(
                    "{}/.well-known/smart-configuration",
                    fhir_base.trim_end_matches('/')
                ),
                allow,
            )?,
        };
        if source.max_response_bytes == 0 || source.timeout.is_zero() {
            return Err(BuildError::BadSetting(
                "timeout and max_response_bytes must be positive",
            ));
        }
        Ok(RemoteKeys {
            client: client(source.timeout)?,
            source,
            document,
            state: RwLock::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    fn may_retry(&self, state: &State) -> bool {
        state
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.source.min_refresh_interval)
    }

    /// The keys to verify with: the fetched ones while fresh, else a refetch, else the last
    /// good ones.
    pub(crate) async fn keys(&self) -> Result<KeySet, TokenRejection> {
        let asked = Instant::now();
        let (keys, stale, may_retry) = {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            let stale = state
                .fetched_at
                .is_none_or(|t| t.elapsed() >= self.source.refresh_interval);
            (state.keys.clone(), stale, self.may_retry(&state))
        };
        match keys {
            Some(keys) if !stale || !may_retry => Ok(keys),
            None if !may_retry => Err(UNAVAILABLE),
            None => self.refetch(asked).await.map_err(|FetchFailed| UNAVAILABLE),
            Some(keys) => {
                // Stale but usable: while someone else refetches, don't wait for them.
                let Ok(guard) = self.refresh.try_lock() else {
                    return Ok(keys);
                };
                Ok(self.fetch_and_store(guard).await.unwrap_or(keys))
            }
        }
    }

    /// Keys after a refetch for an unknown `kid`, if the rate bound allows one.
    pub(crate) async fn keys_for_unknown_kid(&self) -> Result<KeySet, TokenRejection> {
        let asked = Instant::now();
        let (may_retry, last_failed) = {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            (self.may_retry(&state), state.last_failed)
        };
        if !may_retry {
            return Err(if last_failed { UNAVAILABLE } else { NO_KEY });
        }
        self.refetch(asked).await.map_err(|FetchFailed| UNAVAILABLE)
    }

    /// One fetch at a time; a caller that looked at the state at `asked` and then waited
    /// for another's fetch takes that fetch's result.
    async fn refetch(&self, asked: Instant) -> Result<KeySet, FetchFailed> {
        let guard = self.refresh.lock().await;
        {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            if state.last_attempt.is_some_and(|t| t >= asked) {
                return match (&state.keys, state.last_failed) {
                    (Some(keys), false) => Ok(keys.clone()),
                    _ => Err(FetchFailed),
                };
            }
        }
        self.fetch_and_store(guard).await
    }

    /// Fetches and records the outcome; the guard proves this is the only fetch running.
    async fn fetch_and_store(
        &self,
        _one_at_a_time: tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<KeySet, FetchFailed> {
        let discovered = self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .discovered
            .clone();
        let result = self.fetch(discovered).await;
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        state.last_attempt = Some(now);
        match result {
            Ok((keys, discovered)) => {
                state.keys = Some(keys.clone());
                state.fetched_at = Some(now);
                state.last_failed = false;
                state.discovered = discovered;
                Ok(keys)
            }
            Err(FetchFailed) => {
                state.last_failed = true;
                state.discovered = None;
                Err(FetchFailed)
            }
        }
    }

    async fn fetch(&self, discovered: Option<Url>) -> Result<(KeySet, Option<Url>), FetchFailed> {
        let cap = self.source.max_response_bytes;
        let jwks_uri = match (&self.source.location, discovered) {
            (Location::Jwks(_), _) => None,
            (_, Some(uri)) => Some(uri),
            (location, None) => Some(self.discover(location).await?),
        };
        let body = get_json(
            &self.client,
            jwks_uri.as_ref().unwrap_or(&self.document),
            cap,
        )
        .await?;
        let keys = KeySet::from_jwks_bytes(&body).map_err(|_| FetchFailed)?;
        Ok((keys, jwks_uri))
    }

    async fn discover(&self, location: &Location) -> Result<Url, FetchFailed> {
        let body = get_json(&self.client, &self.document, self.source.max_response_bytes).await?;
        let doc = strict_object(&body).ok_or(FetchFailed)?;
        if let Location::OpenId { issuer } = location {
            if doc.get("issuer").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(FetchFailed);
            }
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or(FetchFailed)?;
        checked_url(jwks_uri, self.source.allow_http).map_err(|_| FetchFailed)
    }
}

impl fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("document", &self.document.as_str())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}
