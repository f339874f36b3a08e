//! Bearer-token verification: signed JWTs against static keys or a JWKS, RFC 7662
//! introspection, and the verified-token cache.
//!
//! - [`bearer_token`] finds the token: the `Authorization` header only (RFC 6750 §2.1); a
//!   token in the query is refused with `invalid_request`.
//! - [`JwtVerifier`] checks a signed JWT access token against a static [`KeySet`] (PEM or JWK
//!   Set) or, with feature `jwks`, keys fetched from a JWKS URL or by OpenID/SMART discovery
//!   ([`jwks::JwksSource`]).
//! - [`IntrospectionVerifier`] (feature `jwks`) asks the authorization server about opaque
//!   tokens (RFC 7662).
//!
//! Both implement [`VerifyToken`](crate::smart::VerifyToken) and cache what they verified: found
//! by a keyed SipHash of the token (random key per cache), confirmed by a constant-time
//! comparison with the whole token verified, bounded in size, never past the token's `exp`.
//!
//! Decisions worth knowing:
//!
//! - **Algorithms** come from an allowlist: by default RS256/384/512, PS256/384/512, ES256,
//!   ES384, EdDSA. `none` does not exist here in any spelling. HMAC needs
//!   [`danger_hmac_secret`](JwtVerifierBuilder::danger_hmac_secret) and then excludes every
//!   public key, so an HS256 token can never be checked with a public key as its secret. A
//!   key verifies only the algorithms of its type (and only its own `alg` when it has one).
//! - **A token never chooses its own key**: tokens whose header carries `jwk`, `jku`, `x5u` or
//!   `x5c` are refused (not merely ignored, so that a later change can't start trusting them).
//!   `kid` is a bounded string that is only compared, never used as a path, URL or query.
//! - **No extensions**: a header with `crit` (or `b64`, `enc`, `zip`) is refused (RFC 7515
//!   §4.1.11), and so is a JWE (five segments) or a nested JWT.
//! - **Claims**: `exp` is required; `exp`, `nbf` and `iat` are checked with a leeway (60 s by
//!   default); `iss` must equal the configured issuer and `aud` name a configured audience (the
//!   FHIR base URL), both compared exactly; `typ` is checked when configured (`at+jwt`, RFC
//!   9068). Duplicate JSON member names are refused anywhere in header or claims.
//! - **Rejections** are [`TokenRejection`](crate::smart::TokenRejection)s with fixed reasons
//!   that never include token contents or key ids: `invalid_token` (401) for every bad token,
//!   `invalid_request` (400) for a token in the wrong place, `Unavailable` (503) when keys or
//!   the introspection endpoint cannot be reached, so the token cannot be checked.
//!
//! ```
//! use fhirwall::smart::token::{bearer_token, JwtVerifier, KeySet};
//! use fhirwall::smart::VerifyToken;
//! use http::HeaderMap;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # // The authorization server's side: a key pair and a signed access token.
//! # let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
//! # let public_pem = key.public_key_pem();
//! # let signing = jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
//! # let now = jsonwebtoken::get_current_timestamp();
//! # let claims = serde_json::json!({
//! #     "iss": "https://auth.example.org", "aud": "https://fhir.example.org/r4",
//! #     "exp": now + 600, "scope": "patient/*.rs", "patient": "123",
//! # });
//! # let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
//! # let signed = jsonwebtoken::encode(&header, &claims, &signing).unwrap();
//! let verifier = JwtVerifier::builder()
//!     .issuer("https://auth.example.org")
//!     .audience("https://fhir.example.org/r4")
//!     .keys(KeySet::from_pem(&public_pem).unwrap())
//!     .build()
//!     .unwrap();
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("authorization", format!("Bearer {signed}").parse().unwrap());
//! let uri = "/r4/Patient/123".parse().unwrap();
//! let token = bearer_token(&headers, &uri).unwrap().expect("a bearer token");
//!
//! // The first request checks the signature; later ones are answered from the cache.
//! assert!(verifier.verify_cached(token).is_none());
//! let claims = verifier.verify(token).await.unwrap();
//! assert_eq!(claims.get_str("patient"), Some("123"));
//! assert!(verifier.verify_cached(token).is_some());
//!
//! // A tampered token is refused.
//! let tampered = format!("{token}x");
//! assert!(verifier.verify(&tampered).await.is_err());
//! # }
//! ```

mod alg;
mod bearer;
mod cache;
mod checks;
mod json;
mod jws;
mod jwt;
mod keys;

#[cfg(feature = "jwks")]
mod http;
#[cfg(feature = "jwks")]
pub mod introspect;
#[cfg(feature = "jwks")]
pub mod jwks;

pub use alg::Algorithm;
pub use bearer::{bearer_token, body_carries_access_token};
pub use jwt::{
    BuildError, JwtVerifier, JwtVerifierBuilder, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_MAX_AGE,
    DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN,
};
pub use keys::{Key, KeyError, KeySet, KeyType, MAX_KEYS, MAX_KID_LEN};

#[cfg(feature = "jwks")]
pub use introspect::{IntrospectionVerifier, IntrospectionVerifierBuilder};
#[cfg(feature = "jwks")]
pub use jwks::JwksSource;
