//! Property tests on the untrusted inputs of token verification: the bearer parser (RFC 6750
//! §2.1) and the JWT verifier never panic, never accept garbage, and refuse every one-character
//! change to a valid token (RFC 7515 §5.2: the signature covers every byte of the input).
#![cfg(feature = "smart")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod smart_token_support;

use fhirwall::smart::token::bearer_token;
use fhirwall::smart::VerifyToken;
use http::{HeaderMap, HeaderValue, Uri};
use proptest::prelude::*;
use serde_json::json;
use smart_token_support::*;
use std::sync::OnceLock;

const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

fn verifier() -> &'static fhirwall::smart::token::JwtVerifier {
    static V: OnceLock<fhirwall::smart::token::JwtVerifier> = OnceLock::new();
    V.get_or_init(corpus_verifier)
}

fn valid_tokens() -> &'static [String] {
    static T: OnceLock<Vec<String>> = OnceLock::new();
    T.get_or_init(|| {
        ["rs256", "ps256", "es256", "es384", "eddsa"]
            .iter()
            .map(|s| valid_token(s, json!({})))
            .collect()
    })
}

proptest! {
    /// RFC 6750 §2.1: any header values and any query never make the parser panic, and a
    /// token it returns is a non-empty b64token.
    #[test]
    fn bearer_parser_never_panics(
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..3),
        query in "[ -~]{0,60}",
    ) {
        let mut headers = HeaderMap::new();
        for value in values {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                headers.append(http::header::AUTHORIZATION, value);
            }
        }
        if let Ok(uri) = format!("/fhir/Patient?{query}").parse::<Uri>() {
            if let Ok(Some(token)) = bearer_token(&headers, &uri) {
                prop_assert!(!token.is_empty());
                prop_assert!(!token.contains(' '));
            }
        }
    }

    /// Every `Bearer <b64token>`, in any letter case of the scheme, gives back the token.
    #[test]
    fn bearer_round_trip(token in "[A-Za-z0-9._~+/-]{1,60}={0,2}", upper in any::<bool>()) {
        let scheme = if upper { "BEARER" } else { "Bearer" };
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, format!("{scheme} {token}").parse().unwrap());
        let uri: Uri = "/fhir/metadata".parse().unwrap();
        prop_assert_eq!(bearer_token(&headers, &uri).unwrap(), Some(token.as_str()));
    }

    /// Arbitrary strings are refused without a panic, by both entry points.
    #[test]
    fn verifier_refuses_arbitrary_strings(text in any::<String>()) {
        prop_assert!(!matches!(verifier().verify_cached(&text), Some(Ok(_))));
        prop_assert!(ready(verifier().verify(&text)).is_err());
    }

    /// Strings in the JWT alphabet, with dots, are refused without a panic.
    #[test]
    fn verifier_refuses_jwt_shaped_garbage(text in "[A-Za-z0-9_.-]{0,400}") {
        prop_assert!(ready(verifier().verify(&text)).is_err());
    }

    /// Three base64url segments of arbitrary bytes (so the JSON and signature decoders see
    /// arbitrary input) are refused without a panic.
    #[test]
    fn verifier_refuses_arbitrary_segments(
        header in proptest::collection::vec(any::<u8>(), 0..120),
        payload in proptest::collection::vec(any::<u8>(), 0..120),
        signature in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let token = format!("{}.{}.{}", b64(header), b64(payload), b64(signature));
        prop_assert!(ready(verifier().verify(&token)).is_err());
    }

    /// RFC 7515 §5.2: changing any one character of a valid token (header, claims or
    /// signature) makes it invalid, for every algorithm.
    #[test]
    fn any_one_character_change_is_refused(which in 0usize..5, at in any::<prop::sample::Index>(), with in 0usize..B64URL.len()) {
        let token = &valid_tokens()[which];
        let at = at.index(token.len());
        let replacement = B64URL.as_bytes()[with] as char;
        prop_assume!(token.as_bytes()[at] as char != replacement);
        let mut changed = token.clone();
        changed.replace_range(at..at + 1, &replacement.to_string());
        prop_assert!(ready(verifier().verify(&changed)).is_err(), "accepted {changed}");
    }
}
