//! Verification keys: one [`Key`] from a PEM public key or a JWK, and a [`KeySet`] from a JWK
//! Set (RFC 7517 §5).
//!
//! Only public keys are read here. Shared secrets (HMAC) exist only through
//! [`JwtVerifierBuilder::danger_hmac_secret`](super::JwtVerifierBuilder::danger_hmac_secret),
//! so a JWK Set can never turn an HMAC algorithm on.

use super::Algorithm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// The most keys a [`KeySet`] holds. A token without `kid` is tried against every key of its
/// type, so the bound is also a bound on the work one such token can cause.
pub const MAX_KEYS: usize = 64;

/// The longest `kid` accepted, in bytes, in a key and in a token header.
pub const MAX_KID_LEN: usize = 256;

const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// The type of a verification key, which fixes the algorithms it can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA, 2048 to 8192 bits: RS256/384/512, PS256/384/512.
    Rsa,
    /// ECDSA on P-256: ES256 only.
    EcP256,
    /// ECDSA on P-384: ES384 only.
    EcP384,
    /// Ed25519: EdDSA only.
    Ed25519,
    /// A shared HMAC secret: HS256/384/512, each only if the secret is at least as long as the
    /// hash (RFC 7518 §3.2).
    Hmac,
}

/// Why a key or key set could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM text is not a `PUBLIC KEY` or `RSA PUBLIC KEY` of a supported type.
    #[error("not a supported PEM public key (RSA, EC P-256/P-384 or Ed25519 SubjectPublicKeyInfo, or PKCS#1 RSA)")]
    BadPem,
    /// A private key was given where a public key is expected.
    #[error("a private key was given where a public key is expected")]
    PrivateKey,
    /// The JWK is malformed or of an unsupported type.
    #[error("unsupported or malformed JWK: {0}")]
    BadJwk(&'static str),
    /// The JWK Set document is malformed.
    #[error("malformed JWK Set: {0}")]
    BadJwkSet(&'static str),
    /// The key set holds no key this crate can use for signatures.
    #[error("the key set holds no usable signature key")]
    NoUsableKey,
    /// The key set holds more than [`MAX_KEYS`] keys.
    #[error("the key set holds more than {MAX_KEYS} keys")]
    TooManyKeys,
    /// The `kid` is empty, longer than [`MAX_KID_LEN`] or holds control characters.
    #[error("the key id is empty, longer than {MAX_KID_LEN} bytes or holds control characters")]
    BadKid,
    /// The key's `alg` cannot be used with its type.
    #[error("algorithm {0} cannot be used with this key type")]
    AlgorithmMismatch(Algorithm),
    /// The HMAC secret is shorter than 32 bytes.
    #[error("an HMAC secret must be at least 32 bytes")]
    ShortSecret,
}

/// A public verification key (or an explicitly configured HMAC secret), with its optional
/// `kid` and `alg`.
///
/// `Debug` shows the type, `kid` and `alg`, never key material.
#[derive(Clone)]
pub struct Key {
    kid: Option<Arc<str>>,
    alg: Option<Algorithm>,
    key_type: KeyType,
    secret_len: usize,
    decoding: DecodingKey,
}

impl Key {
    /// A key from a PEM public key: `-----BEGIN PUBLIC KEY-----` (RSA, EC P-256, EC P-384 or
    /// Ed25519) or `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1). Private keys and certificates
    /// are refused.
    pub fn from_pem(pem: &str) -> Result<Key, KeyError> {
        let text = pem.trim();
        if text.contains("PRIVATE KEY-----") {
            return Err(KeyError::PrivateKey);
        }
        if !(text.starts_with("-----BEGIN PUBLIC KEY-----")
            || text.starts_with("-----BEGIN RSA PUBLIC KEY-----"))
        {
            return Err(KeyError::BadPem);
        }
        if let Ok(rsa) = DecodingKey::from_rsa_pem(text.as_bytes()) {
            let der = rsa.try_get_as_bytes().map_err(|_| KeyError::BadPem)?;
            let (n, e) = (DEFAULT_PROVIDER
                .key_utils
                .rsa_pub_components_from_public_key)(der)
            .map_err(|_| KeyError::BadPem)?;
            return Key::rsa(&n, &e).map_err(|_| KeyError::BadPem);
        }
        if let Ok(ec) = DecodingKey::from_ec_pem(text.as_bytes()) {
            let point = ec.try_get_as_bytes().map_err(|_| KeyError::BadPem)?;
            let key_type = match point {
                [4, rest @ ..] if rest.len() == 64 => KeyType::EcP256,
                [4, rest @ ..] if rest.len() == 96 => KeyType::EcP384,
                _ => return Err(KeyError::BadPem),
            };
            return Ok(Key::new(key_type, DecodingKey::from_ec_der(point)));
        }
        if let Ok(ed) = DecodingKey::from_ed_pem(text.as_bytes()) {
            let x = ed.try_get_as_bytes().map_err(|_| KeyError::BadPem)?;
            if x.len() != 32 {
                return Err(KeyError::BadPem);
            }
            return Ok(Key::new(KeyType::Ed25519, DecodingKey::from_ed_der(x)));
        }
        Err(KeyError::BadPem)
    }

    /// A key from one JWK (RFC 7517 §4) as JSON text: `kty` `RSA`, `EC` (`crv` `P-256` or
    /// `P-384`) or `OKP` (`crv` `Ed25519`, RFC 8037). `kid` and `alg` are kept; a JWK whose
    /// `use` is not `sig`, whose `key_ops` lack `verify`, that holds private members, or that
    /// is symmetric (`oct`) is refused.
    pub fn from_jwk(json: &str) -> Result<Key, KeyError> {
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(jwk)) => Key::from_jwk_object(&jwk),
            _ => Err(KeyError::BadJwk("not a JSON object")),
        }
    }

    pub(crate) fn from_jwk_object(jwk: &Map<String, Value>) -> Result<Key, KeyError> {
        let text = |name: &str| match jwk.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(KeyError::BadJwk("a member that must be a string is not")),
        };
        if ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
            .iter()
            .any(|m| jwk.contains_key(*m))
        {
            return Err(if jwk.contains_key("k") {
                KeyError::BadJwk("symmetric keys are never read from a JWK")
            } else {
                KeyError::PrivateKey
            });
        }
        if text("use")?.is_some_and(|u| u != "sig") {
            return Err(KeyError::BadJwk("not a signature key (use)"));
        }
        if let Some(ops) = jwk.get("key_ops") {
            let verifies = ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
            if !verifies {
                return Err(KeyError::BadJwk("not a verification key (key_ops)"));
            }
        }
        let key = match (text("kty")?, text("crv")?) {
            (Some("RSA"), _) => {
                let n = b64(text("n")?)?;
                let e = b64(text("e")?)?;
                Key::rsa(&n, &e)?
            }
            (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
                let (key_type, len) = if crv == "P-256" {
                    (KeyType::EcP256, 32)
                } else {
                    (KeyType::EcP384, 48)
                };
                let (x, y) = (b64(text("x")?)?, b64(text("y")?)?);
                if x.len() != len || y.len() != len {
                    return Err(KeyError::BadJwk("EC coordinates have the wrong length"));
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Key::new(key_type, DecodingKey::from_ec_der(&point))
            }
            (Some("OKP"), Some("Ed25519")) => {
                let x = b64(text("x")?)?;
                if x.len() != 32 {
                    return Err(KeyError::BadJwk("Ed25519 key has the wrong length"));
                }
                Key::new(KeyType::Ed25519, DecodingKey::from_ed_der(&x))
            }
            (Some("oct"), _) => {
                return Err(KeyError::BadJwk("symmetric keys are never read from a JWK"))
            }
            _ => return Err(KeyError::BadJwk("unsupported kty or crv")),
        };
        let key = match text("kid")? {
            Some(kid) => key.with_kid(kid)?,
            None => key,
        };
        match text("alg")? {
            None => Ok(key),
            Some(name) => {
                let alg = Algorithm::from_name(name).ok_or(KeyError::BadJwk("unsupported alg"))?;
                key.with_algorithm(alg)
            }
        }
    }

    /// An HMAC secret; crate-private so that only the `danger_` builder method reaches it.
    pub(crate) fn hmac(secret: &[u8]) -> Result<Key, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::ShortSecret);
        }
        let decoding = DecodingKey::from_secret(secret).map_err(|_| KeyError::ShortSecret)?;
        Ok(Key {
            secret_len: secret.len(),
            ..Key::new(KeyType::Hmac, decoding)
        })
    }

    fn rsa(n: &[u8], e: &[u8]) -> Result<Key, KeyError> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = match n.first() {
            Some(first) => (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
            None => 0,
        };
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(KeyError::BadJwk("RSA modulus is not 2048 to 8192 bits"));
        }
        let e_ok = e.len() <= 4 && e.last().is_some_and(|b| b & 1 == 1) && e != [1];
        if !e_ok {
            return Err(KeyError::BadJwk("RSA exponent is not a small odd number"));
        }
        Ok(Key::new(
            KeyType::Rsa,
            DecodingKey::from_rsa_raw_components(n, e),
        ))
    }

    fn new(key_type: KeyType, decoding: DecodingKey) -> Key {
        Key {
            kid: None,
            alg: None,
            key_type,
            secret_len: 0,
            decoding,
        }
    }

    /// The same key with this `kid`.
    pub fn with_kid(mut self, kid: &str) -> Result<Key, KeyError> {
        if !valid_kid(kid) {
            return Err(KeyError::BadKid);
        }
        self.kid = Some(kid.into());
        Ok(self)
    }

    /// The same key, restricted to one algorithm (a JWK's `alg`).
    pub fn with_algorithm(mut self, alg: Algorithm) -> Result<Key, KeyError> {
        if !self.type_allows(alg) {
            return Err(KeyError::AlgorithmMismatch(alg));
        }
        self.alg = Some(alg);
        Ok(self)
    }

    /// The key id.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key is restricted to, if any.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Whether this key may verify a signature made with `alg`: the algorithm fits the key
    /// type, and equals the key's own `alg` when it has one (no key type confusion).
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.type_allows(alg) && self.alg.is_none_or(|own| own == alg)
    }

    fn type_allows(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self.key_type {
            KeyType::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyType::EcP256 => alg == ES256,
            KeyType::EcP384 => alg == ES384,
            KeyType::Ed25519 => alg == EdDSA,
            KeyType::Hmac => match alg {
                HS256 => self.secret_len >= 32,
                HS384 => self.secret_len >= 48,
                HS512 => self.secret_len >= 64,
                _ => false,
            },
        }
    }

    /// Whether this key is a candidate for a token whose header names `kid`: a key with a
    /// `kid` matches only that `kid`; a key without one matches any.
    pub(crate) fn matches_kid(&self, kid: Option<&str>) -> bool {
        match (&self.kid, kid) {
            (Some(own), Some(kid)) => **own == *kid,
            (Some(_), None) | (None, _) => true,
        }
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("key_type", &self.key_type)
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A set of verification keys, cheap to clone (shared behind an `Arc`).
#[derive(Clone, Debug)]
pub struct KeySet {
    keys: Arc<[Key]>,
}

impl KeySet {
    /// A set of these keys. Refuses an empty set, more than [`MAX_KEYS`] keys, and an HMAC
    /// secret mixed with other keys.
    pub fn new(keys: impl IntoIterator<Item = Key>) -> Result<KeySet, KeyError> {
        let keys: Vec<Key> = keys.into_iter().take(MAX_KEYS + 1).collect();
        if keys.is_empty() {
            return Err(KeyError::NoUsableKey);
        }
        if keys.len() > MAX_KEYS {
            return Err(KeyError::TooManyKeys);
        }
        let hmac = keys.iter().filter(|k| k.key_type == KeyType::Hmac).count();
        if hmac > 0 && hmac != keys.len() {
            return Err(KeyError::BadJwkSet(
                "HMAC secrets cannot be mixed with public keys",
            ));
        }
        Ok(KeySet { keys: keys.into() })
    }

    /// A set of one PEM public key (see [`Key::from_pem`]).
    pub fn from_pem(pem: &str) -> Result<KeySet, KeyError> {
        KeySet::new([Key::from_pem(pem)?])
    }

    /// A set from a JWK Set document (`{"keys": [...]}`). Keys this crate cannot or must not
    /// use for verifying signatures (encryption keys, symmetric keys, unknown types or curves,
    /// private keys, malformed members) are skipped, as RFC 7517 §5 asks; a set left with no
    /// usable key is refused.
    pub fn from_jwks(json: &str) -> Result<KeySet, KeyError> {
        KeySet::from_jwks_bytes(json.as_bytes())
    }

    pub(crate) fn from_jwks_bytes(json: &[u8]) -> Result<KeySet, KeyError> {
        let doc = super::json::strict_object(json).ok_or(KeyError::BadJwkSet(
            "not a JSON object with unique member names",
        ))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(KeyError::BadJwkSet("no \"keys\" array"))?;
        let usable = keys
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|jwk| Key::from_jwk_object(jwk).ok());
        KeySet::new(usable)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always `false`: a key set is never empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys.
    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    /// The keys that may verify a token with this header `alg` and `kid`.
    pub(crate) fn candidates<'a>(
        &'a self,
        alg: Algorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Key> {
        self.keys
            .iter()
            .filter(move |k| k.accepts(alg) && k.matches_kid(kid))
    }

    pub(crate) fn has_hmac(&self) -> bool {
        self.keys.iter().any(|k| k.key_type == KeyType::Hmac)
    }
}

/// A `kid` we are willing to compare: bounded, no control characters. It is only ever
/// compared for equality, never used as a path, URL or query.
pub(crate) fn valid_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= MAX_KID_LEN && !kid.chars().any(char::is_control)
}

fn b64(value: Option<&str>) -> Result<Vec<u8>, KeyError> {
    let value = value.ok_or(KeyError::BadJwk("a required member is missing"))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| KeyError::BadJwk("a member is not unpadded base64url"))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn rfc7517_ec_jwk_is_read_with_kid_and_alg() {
        let key = Key::from_jwk(EC_JWK).unwrap();
        assert_eq!(key.key_type(), KeyType::EcP256);
        assert_eq!(key.kid(), Some("k1"));
        assert!(key.accepts(Algorithm::ES256));
        assert!(!key.accepts(Algorithm::ES384));
        assert!(!key.accepts(Algorithm::HS256));
        assert!(!format!("{key:?}").contains("f83O"));
    }

    #[test]
    fn rfc7517_refusals() {
        let refused = |json: &str| Key::from_jwk(json).is_err();
        assert!(refused(
            r#"{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}"#
        ));
        assert!(refused(
            &EC_JWK.replace("\"alg\":\"ES256\"", "\"alg\":\"RS256\"")
        ));
        assert!(refused(
            &EC_JWK.replace("\"alg\":\"ES256\"", "\"use\":\"enc\"")
        ));
        assert!(refused(
            &EC_JWK.replace("\"alg\":\"ES256\"", "\"d\":\"AAAA\"")
        ));
        assert!(refused(
            &EC_JWK.replace("\"alg\":\"ES256\"", "\"key_ops\":[\"sign\"]")
        ));
        assert!(refused(&EC_JWK.replace("P-256", "P-521")));
        assert!(refused(&EC_JWK.replace("\"k1\"", "\"\"")));
        assert!(refused(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#));
        assert!(refused("[]"));
    }

    #[test]
    fn rfc7517_5_sets_skip_unusable_keys() {
        let set = KeySet::from_jwks(&format!(
            r#"{{"keys":[{{"kty":"oct","k":"AAAA"}},{{"kty":"EC","crv":"X"}},{EC_JWK}]}}"#
        ))
        .unwrap();
        assert_eq!(set.len(), 1);
        assert!(KeySet::from_jwks(r#"{"keys":[{"kty":"oct","k":"AAAA"}]}"#).is_err());
        assert!(KeySet::from_jwks(r#"{"keys":[],"keys":[]}"#).is_err());
        assert!(KeySet::from_jwks(r#"{"nokeys":[]}"#).is_err());
    }

    #[test]
    fn rfc7518_3_2_hmac_secrets_are_long_enough_and_never_mixed() {
        assert_eq!(Key::hmac(&[7; 31]).unwrap_err(), KeyError::ShortSecret);
        let key = Key::hmac(&[7; 32]).unwrap();
        assert!(key.accepts(Algorithm::HS256));
        assert!(!key.accepts(Algorithm::HS384));
        assert!(!key.accepts(Algorithm::RS256));
        let ec = Key::from_jwk(EC_JWK).unwrap();
        assert!(KeySet::new([key, ec]).is_err());
    }

    #[test]
    fn pem_private_keys_are_refused() {
        let pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(Key::from_pem(pem).unwrap_err(), KeyError::PrivateKey);
        assert_eq!(Key::from_pem("hello").unwrap_err(), KeyError::BadPem);
    }
}
