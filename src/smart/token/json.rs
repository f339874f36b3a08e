//! JSON as the token checks need it: objects whose member names are unique at every depth.
//!
//! RFC 7515 §5.2 and RFC 7519 §4 let a reader either refuse duplicate member names or keep the
//! last one. Two readers that pick differently (a proxy and the server behind it) can be made to
//! see two different tokens in the same bytes, so duplicates are refused.

use crate::smart::json::strict_value;
use serde_json::{Map, Value};

/// Reads a JSON object, refusing duplicate member names at any depth and anything but an
/// object at the top. The same strict reading as the SMART response checks
/// ([`strict_value`]), so a token, a JWK Set and an upstream resource are held to one rule.
pub(crate) fn strict_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match strict_value(bytes) {
        Some(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// A NumericDate (RFC 7519 §2): a non-negative JSON number of seconds, fractions dropped.
pub(crate) fn numeric_date(value: &Value) -> Option<u64> {
    let number = value.as_number()?;
    if let Some(n) = number.as_u64() {
        return Some(n);
    }
    let f = number.as_f64()?;
    // Saturating `as` keeps absurd dates absurd (far future or zero) rather than wrapping.
    (f.is_finite() && f >= 0.0).then(|| f.floor() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_every_depth() {
        assert!(strict_object(br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_some());
        assert!(strict_object(br#"{"a":1,"a":2}"#).is_none());
        assert!(strict_object(br#"{"a":{"c":1,"c":1}}"#).is_none());
        assert!(strict_object(br#"{"a":[{"c":1,"c":1}]}"#).is_none());
        assert!(strict_object(b"[1]").is_none());
        assert!(strict_object(b"\"x\"").is_none());
        assert!(strict_object(b"{} trailing").is_none());
        assert!(
            strict_object(br#"{"exp":1e400}"#).is_none(),
            "not a finite number"
        );
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(numeric_date(&serde_json::json!(10)), Some(10));
        assert_eq!(numeric_date(&serde_json::json!(10.9)), Some(10));
        assert_eq!(numeric_date(&serde_json::json!(-1)), None);
        assert_eq!(numeric_date(&serde_json::json!(-0.5)), None);
        assert_eq!(numeric_date(&serde_json::json!("10")), None);
        assert_eq!(numeric_date(&serde_json::json!(null)), None);
    }
}
