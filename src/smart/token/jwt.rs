//! [`JwtVerifier`]: signed JWT access tokens checked against static keys or a JWKS.

use super::cache::TokenCache;
use super::checks::{check_audience, check_issuer, check_times, unix_now};
use super::jws::{parse, HeaderRules, Jws};
use super::keys::{Key, KeyError, KeySet};
use super::Algorithm;
use crate::smart::{TokenFuture, TokenRejection, VerifiedClaims, VerifyToken};
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "jwks")]
use super::jwks::{JwksSource, RemoteKeys};

pub(crate) const TOO_LARGE: TokenRejection =
    TokenRejection::invalid_token("the token is too large");
pub(crate) const NO_KEY: TokenRejection = TokenRejection::invalid_token("no key matches the token");
const BAD_SIGNATURE: TokenRejection =
    TokenRejection::invalid_token("the token signature is invalid");

/// Default clock-skew allowance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Default longest token accepted, in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;
/// Default number of verified tokens cached.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Default longest time a verified token stays cached (it never outlives its `exp` either).
pub const DEFAULT_CACHE_MAX_AGE: Duration = Duration::from_secs(300);

/// A configuration that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No issuer was configured: every token's `iss` must be checked.
    #[error("an issuer is required")]
    MissingIssuer,
    /// No audience was configured: every token's `aud` must name this server.
    #[error("at least one audience (the FHIR base URL) is required")]
    MissingAudience,
    /// None of `keys`, `jwks` or `danger_hmac_secret` was given.
    #[error("a key source is required (keys, jwks or danger_hmac_secret)")]
    MissingKeys,
    /// More than one of `keys`, `jwks` and `danger_hmac_secret` was given.
    #[error("keys, jwks and danger_hmac_secret exclude each other")]
    SeveralKeySources,
    /// The algorithm allowlist is empty.
    #[error("the algorithm allowlist is empty")]
    NoAlgorithms,
    /// HMAC and asymmetric algorithms in one allowlist, or HMAC without a configured secret.
    #[error("HMAC algorithms need danger_hmac_secret, and then only HMAC algorithms are allowed")]
    AlgorithmConfusion,
    /// A key could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An endpoint URL is not an absolute `https` URL (or `http` with `insecure_allow_http`).
    #[error("not an absolute https URL: {0}")]
    BadUrl(String),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    BadSetting(&'static str),
    /// The HTTP client could not be set up.
    #[error("the HTTP client could not be built")]
    HttpClient,
}

/// Verifies signed JWT access tokens (RFC 7519, RFC 9068) and caches the verified ones.
///
/// Checks, in order: size; compact form (three segments; five, a JWE, is refused); header
/// (`alg` in the allowlist, case-sensitive, never `none`; no `jwk`, `jku`, `x5u`, `x5c`: a
/// token never chooses its own key; no `crit`, `b64`, `enc`, `zip`; `kid` a bounded string; `typ`
/// when required; no nested `cty: JWT`); duplicate JSON member names anywhere; the signature,
/// with a key whose type fits `alg` (and whose own `alg`, if any, equals it); then `exp`
/// (required), `nbf` and `iat` with leeway, `iss` (required, exact) and `aud` (required, one of
/// the configured audiences, exact).
///
/// Key choice: a key with a `kid` matches only tokens naming that `kid`; a key without one
/// matches any token; a token without `kid` is tried against every key of the right type (at
/// most [`MAX_KEYS`](super::MAX_KEYS)). `kid` is only ever compared, never used as a path or URL.
///
/// Clones share the key source and the cache.
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    typ: Option<String>,
    leeway: u64,
    max_token_len: usize,
    keys: KeySource,
    cache: TokenCache,
}

enum KeySource {
    Static(KeySet),
    #[cfg(feature = "jwks")]
    Remote(Box<RemoteKeys>),
}

/// Why a signature check did not pass: no candidate key at all (which may be worth a JWKS
/// refresh), or a refusal.
enum SignatureFailure {
    NoKey,
    Rejected(TokenRejection),
}

impl JwtVerifier {
    /// A builder; see [`JwtVerifierBuilder`] for the settings and their defaults.
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder::default()
    }

    /// The accepted issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.inner.audiences
    }
}

impl Inner {
    fn rules(&self) -> HeaderRules<'_> {
        HeaderRules {
            algorithms: &self.algorithms,
            typ: self.typ.as_deref(),
        }
    }

    fn verify_static(
        &self,
        token: &str,
        keys: &KeySet,
    ) -> Result<Arc<VerifiedClaims>, TokenRejection> {
        if token.len() > self.max_token_len {
            return Err(TOO_LARGE);
        }
        let jws = parse(token, &self.rules())?;
        match check_signature(&jws, keys) {
            Ok(()) => self.finish(token, jws),
            Err(SignatureFailure::NoKey) => Err(NO_KEY),
            Err(SignatureFailure::Rejected(r)) => Err(r),
        }
    }

    #[cfg(feature = "jwks")]
    async fn verify_remote(
        &self,
        token: &str,
        remote: &RemoteKeys,
    ) -> Result<Arc<VerifiedClaims>, TokenRejection> {
        if token.len() > self.max_token_len {
            return Err(TOO_LARGE);
        }
        let jws = parse(token, &self.rules())?;
        let keys = remote.keys().await?;
        match check_signature(&jws, &keys) {
            Ok(()) => {}
            Err(SignatureFailure::Rejected(r)) => return Err(r),
            Err(SignatureFailure::NoKey) => {
                // Perhaps the issuer rotated keys: refetch, at a bounded rate.
                let keys = remote.keys_for_unknown_kid().await?;
                match check_signature(&jws, &keys) {
                    Ok(()) => {}
                    Err(SignatureFailure::NoKey) => return Err(NO_KEY),
                    Err(SignatureFailure::Rejected(r)) => return Err(r),
                }
            }
        }
        self.finish(token, jws)
    }

    /// The claim checks, after the signature: nothing in the claims is believed before.
    fn finish(&self, token: &str, jws: Jws<'_>) -> Result<Arc<VerifiedClaims>, TokenRejection> {
        let now = unix_now();
        let exp = check_times(&jws.claims, now, self.leeway, true)?;
        check_issuer(&jws.claims, &self.issuer, true)?;
        check_audience(&jws.claims, &self.audiences, true)?;
        let claims = Arc::new(VerifiedClaims::new(jws.claims, exp));
        if self.cache.enabled() {
            self.cache.insert(token, Arc::clone(&claims), now);
        }
        Ok(claims)
    }
}

fn check_signature(jws: &Jws<'_>, keys: &KeySet) -> Result<(), SignatureFailure> {
    let mut tried = false;
    for key in keys.candidates(jws.alg, jws.kid.as_deref()) {
        tried = true;
        if signature_ok(key, jws) {
            return Ok(());
        }
    }
    Err(if tried {
        SignatureFailure::Rejected(BAD_SIGNATURE)
    } else {
        SignatureFailure::NoKey
    })
}

fn signature_ok(key: &Key, jws: &Jws<'_>) -> bool {
    // `accepts` already tied the algorithm to the key type; the provider checks it again.
    if !key.accepts(jws.alg) {
        return false;
    }
    match (DEFAULT_PROVIDER.verifier_factory)(&jws.alg.to_jwt(), key.decoding()) {
        Ok(verifier) => verifier
            .verify(jws.signing_input.as_bytes(), &jws.signature)
            .is_ok(),
        Err(_) => false,
    }
}

impl VerifyToken for JwtVerifier {
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
        match &self.inner.keys {
            KeySource::Static(keys) => {
                Box::pin(std::future::ready(self.inner.verify_static(token, keys)))
            }
            #[cfg(feature = "jwks")]
            KeySource::Remote(_) => {
                if token.len() > self.inner.max_token_len {
                    return Box::pin(std::future::ready(Err(TOO_LARGE)));
                }
                let inner = Arc::clone(&self.inner);
                let token = token.to_owned();
                Box::pin(async move {
                    match &inner.keys {
                        KeySource::Remote(remote) => inner.verify_remote(&token, remote).await,
                        KeySource::Static(keys) => inner.verify_static(&token, keys),
                    }
                })
            }
        }
    }
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let mut d = f.debug_struct("JwtVerifier");
        d.field("issuer", &inner.issuer)
            .field("audiences", &inner.audiences)
            .field("algorithms", &inner.algorithms)
            .field("typ", &inner.typ)
            .field("leeway_secs", &inner.leeway)
            .field("max_token_len", &inner.max_token_len);
        match &inner.keys {
            KeySource::Static(keys) => d.field("keys", keys),
            #[cfg(feature = "jwks")]
            KeySource::Remote(remote) => d.field("jwks", remote),
        };
        d.finish_non_exhaustive()
    }
}

/// Settings of a [`JwtVerifier`]. `issuer`, at least one `audience` and one key source
/// (`keys`, `jwks` or `danger_hmac_secret`) are required.
///
/// | setting | default |
/// |---------|---------|
/// | [`algorithms`](Self::algorithms) | [`Algorithm::DEFAULT_ALLOWED`] (RS*, PS*, ES256, ES384, EdDSA); HS256/384/512 with `danger_hmac_secret` |
/// | [`require_typ`](Self::require_typ) | none (any `typ`, or none) |
/// | [`leeway`](Self::leeway) | [`DEFAULT_LEEWAY`] (60 s) |
/// | [`max_token_len`](Self::max_token_len) | [`DEFAULT_MAX_TOKEN_LEN`] (16 KiB) |
/// | [`cache_capacity`](Self::cache_capacity) | [`DEFAULT_CACHE_CAPACITY`] (10 000; 0 turns the cache off) |
/// | [`cache_max_age`](Self::cache_max_age) | [`DEFAULT_CACHE_MAX_AGE`] (5 min, and never past `exp`) |
#[derive(Debug)]
pub struct JwtVerifierBuilder {
    issuer: Option<String>,
    audiences: Vec<String>,
    algorithms: Option<Vec<Algorithm>>,
    typ: Option<String>,
    leeway: Duration,
    max_token_len: usize,
    cache_capacity: usize,
    cache_max_age: Duration,
    keys: Option<KeySet>,
    hmac: Option<Result<Key, KeyError>>,
    #[cfg(feature = "jwks")]
    jwks: Option<JwksSource>,
}

impl Default for JwtVerifierBuilder {
    fn default() -> Self {
        JwtVerifierBuilder {
            issuer: None,
            audiences: Vec::new(),
            algorithms: None,
            typ: None,
            leeway: DEFAULT_LEEWAY,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            cache_max_age: DEFAULT_CACHE_MAX_AGE,
            keys: None,
            hmac: None,
            #[cfg(feature = "jwks")]
            jwks: None,
        }
    }
}

impl JwtVerifierBuilder {
    /// The one accepted `iss`, compared exactly (required).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// An accepted `aud`: the FHIR base URL, compared exactly (at least one required; call
    /// again to accept several).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The algorithm allowlist, replacing the default.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Requires this header `typ` (for example `at+jwt`, RFC 9068 §2.1), compared as a media
    /// type (case-insensitive, `application/` optional).
    pub fn require_typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat` (whole seconds).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The longest token accepted, in bytes.
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// How many verified tokens are cached (0 turns the cache off).
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// The longest a verified token stays cached; it also never outlives its `exp`.
    pub fn cache_max_age(mut self, age: Duration) -> Self {
        self.cache_max_age = age;
        self
    }

    /// Verifies with this static key set.
    pub fn keys(mut self, keys: KeySet) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Verifies with keys fetched from a JWKS URL or found by discovery (feature `jwks`).
    #[cfg(feature = "jwks")]
    pub fn jwks(mut self, source: JwksSource) -> Self {
        self.jwks = Some(source);
        self
    }

    /// Verifies HS256/384/512 tokens with this shared secret (at least 32 bytes; HS384 needs
    /// 48 and HS512 64). Dangerous: anyone holding the secret can mint tokens, so the
    /// resource server can forge its own. It cannot be combined with public keys or
    /// asymmetric algorithms, so an HMAC token is never checked against a public key used as
    /// a secret.
    pub fn danger_hmac_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.hmac = Some(Key::hmac(secret.as_ref()));
        self
    }

    /// The verifier, or what is wrong with the settings.
    pub fn build(self) -> Result<JwtVerifier, BuildError> {
        let issuer = self
            .issuer
            .filter(|i| !i.is_empty())
            .ok_or(BuildError::MissingIssuer)?;
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(BuildError::MissingAudience);
        }
        #[cfg(feature = "jwks")]
        let remote = self.jwks.is_some();
        #[cfg(not(feature = "jwks"))]
        let remote = false;
        let sources = usize::from(self.keys.is_some())
            + usize::from(self.hmac.is_some())
            + usize::from(remote);
        if sources > 1 {
            return Err(BuildError::SeveralKeySources);
        }
        let hmac = self.hmac.transpose()?;
        let algorithms = match (self.algorithms, hmac.is_some()) {
            (Some(algs), _) => algs,
            (None, true) => vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
            (None, false) => Algorithm::DEFAULT_ALLOWED.to_vec(),
        };
        if algorithms.is_empty() {
            return Err(BuildError::NoAlgorithms);
        }
        let with_secret = hmac.is_some() || self.keys.as_ref().is_some_and(KeySet::has_hmac);
        if algorithms.iter().any(|a| a.is_hmac() != with_secret) {
            return Err(BuildError::AlgorithmConfusion);
        }
        let keys = if let Some(key) = hmac {
            KeySource::Static(KeySet::new([key])?)
        } else if let Some(keys) = self.keys {
            KeySource::Static(keys)
        } else {
            #[cfg(feature = "jwks")]
            match self.jwks {
                Some(source) => KeySource::Remote(Box::new(RemoteKeys::new(source)?)),
                None => return Err(BuildError::MissingKeys),
            }
            #[cfg(not(feature = "jwks"))]
            return Err(BuildError::MissingKeys);
        };
        Ok(JwtVerifier {
            inner: Arc::new(Inner {
                issuer,
                audiences: self.audiences,
                algorithms,
                typ: self.typ,
                leeway: self.leeway.as_secs(),
                max_token_len: self.max_token_len,
                keys,
                cache: TokenCache::new(self.cache_capacity, self.cache_max_age.as_secs()),
            }),
        })
    }
}
