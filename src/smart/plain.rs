//! The fast path of the sparse parse ([`super::sparse`]): one hand-written pass
//! ([`plain_json`](crate::plain_json)) over a body in the plain shape FHIR servers write.
//!
//! It answers only when it is sure that [`strict_value`](super::json::strict_value) accepts the
//! whole body, and then gives the top-level members as text. On anything else it answers
//! `None` and the serde-driven parse decides, as before:
//! - a repeated member name at any depth (refused there), and a member name with escapes (it
//!   would have to be decoded to compare);
//! - a `\u` escape (a lone surrogate is refused there), a control character, invalid UTF-8;
//! - a number with an exponent or longer than [`MAX_NUMBER`] (`serde_json` refuses one past
//!   the range of `f64`);
//! - an object with more than [`MAX_KEYS`] members (the repeat check here compares each name
//!   with those before it), nesting past [`MAX_DEPTH`], and everything that is not JSON.

use crate::plain_json::{Scanner, MAX_DEPTH};

/// Objects with more members go to the full parse.
const MAX_KEYS: usize = 64;
/// Numbers with more characters go to the full parse: a number that is not a 64-bit integer
/// is read as an `f64`, which overflows past about 1.8e308 (309 digits).
const MAX_NUMBER: usize = 300;

/// The top-level members of the JSON object `bytes` (name, value as written), in order, when
/// the whole body is surely accepted by the strict parse; `None` when not sure.
pub(super) fn top_members(bytes: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    let mut s = Scanner { b: bytes, i: 0 };
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    // Sized for a typical resource, so that neither grows while it is read.
    let mut names: Vec<&[u8]> = Vec::with_capacity(32);
    let mut members: Vec<(&str, &[u8])> = Vec::with_capacity(24);
    s.object(|s, name| {
        if members.len() >= MAX_KEYS || members.iter().any(|(n, _)| n.as_bytes() == name) {
            return None;
        }
        let start = s.i;
        value(s, 2, &mut names)?;
        members.push((std::str::from_utf8(name).ok()?, s.b.get(start..s.i)?));
        Some(())
    })?;
    s.ws();
    (s.i == bytes.len()).then_some(members)
}

/// One value at nesting `depth`, checked as the strict parse would. `names` holds the member
/// names of the objects being read, innermost last.
fn value<'a>(s: &mut Scanner<'a>, depth: usize, names: &mut Vec<&'a [u8]>) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    match s.peek()? {
        b'{' => {
            let base = names.len();
            s.object(|s, name| {
                let seen = names.get(base..)?;
                if seen.len() >= MAX_KEYS || seen.contains(&name) {
                    return None;
                }
                names.push(name);
                value(s, depth + 1, names)
            })?;
            names.truncate(base);
            Some(())
        }
        b'[' => s.list(b'[', b']', |s| value(s, depth + 1, names)),
        b'-' | b'0'..=b'9' => {
            let start = s.i;
            s.number()?;
            let text = s.b.get(start..s.i)?;
            (text.len() <= MAX_NUMBER && !text.iter().any(|c| matches!(c, b'e' | b'E')))
                .then_some(())
        }
        _ => s.value(depth),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::json::strict_value;
    use super::*;

    #[test]
    fn gives_the_top_level_members_as_written() {
        let body = br#" {"resourceType":"Patient","id":"p1","name":[{"family":"a\nb"}],"x":1.50} "#;
        let members = top_members(body).unwrap();
        let names: Vec<&str> = members.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["resourceType", "id", "name", "x"]);
        assert_eq!(members[2].1, br#"[{"family":"a\nb"}]"#);
        assert_eq!(members[3].1, b"1.50");
    }

    /// Each of these the fast path hands to the full parse (which accepts some of them).
    #[test]
    fn hands_over_what_it_is_not_sure_of() {
        let deep = format!(
            "{{\"a\":{}1{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        let wide = format!(
            "{{\"a\":{{{}}}}}",
            (0..=MAX_KEYS)
                .map(|i| format!("\"k{i}\":1"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let long = format!("{{\"a\":{}}}", "1".repeat(MAX_NUMBER + 1));
        for body in [
            &br#"{"a":1,"a":2}"#[..],
            br#"{"a":{"b":1,"b":2}}"#,
            br#"{"a":[{"b":1},{"b":2,"c":{"d":1,"d":1}}]}"#,
            br#"{"\u0061":1}"#,
            br#"{"a":"\ud800"}"#,
            br#"{"a":"\u0041"}"#,
            br#"{"a":1e400}"#,
            br#"{"a":1E2}"#,
            br#"{"a":"x"} 1"#,
            br#"{"a":[1,]}"#,
            b"[1]",
            b"",
            deep.as_bytes(),
            wide.as_bytes(),
            long.as_bytes(),
        ] {
            assert!(
                top_members(body).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // The same names in sibling objects are not repeats.
        assert!(top_members(br#"{"a":[{"b":1},{"b":2}],"c":{"b":3}}"#).is_some());
    }

    /// JSON text with repeated keys, escapes, exponents and deep nesting now and then (also
    /// the sparse parse's property test draws from it).
    pub(in crate::smart) fn json() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        // Mostly the plain shape the fast path reads, so that it answers often; now and then
        // something it must hand over.
        let leaf = prop_oneof![
            2 => Just(String::from("null")),
            2 => any::<bool>().prop_map(|b| b.to_string()),
            4 => any::<i64>().prop_map(|n| n.to_string()),
            4 => (any::<i32>(), 0u32..1000).prop_map(|(a, b)| format!("{a}.{b:03}")),
            6 => "[a-z é]{0,6}".prop_map(|s| serde_json::Value::from(s).to_string()),
            1 => any::<f64>().prop_map(|n| format!("{n:?}")),
            1 => Just(String::from("1e400")),
            1 => Just(String::from(r#""\ud800""#)),
            1 => Just(String::from(r#""\n\/\"""#)),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(
                    (
                        prop_oneof![8 => "[abc]", 1 => Just(String::from("\\u0061"))],
                        inner
                    ),
                    0..4
                )
                .prop_map(|m| {
                    let members: Vec<String> =
                        m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    proptest::proptest! {
        /// Sound: whenever the fast path answers, the strict parse accepts the body and has the
        /// same top-level members, on generated bodies and on bodies with one byte changed or
        /// cut short.
        #[test]
        fn answers_only_what_the_strict_parse_accepts(
            body in json(),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::prelude::any::<u8>(),
            damage in 0u8..4,
        ) {
            let mut bytes = format!("{{\"resourceType\":\"Patient\",\"x\":{body}}}").into_bytes();
            let i = at.index(bytes.len());
            match damage {
                1 => bytes[i] = byte,
                2 => bytes.truncate(i),
                // 0 and 3: as generated
                _ => {}
            }
            if let Some(members) = top_members(&bytes) {
                let full = strict_value(&bytes);
                proptest::prop_assert!(full.is_some(), "{}", String::from_utf8_lossy(&bytes));
                let full = full.unwrap();
                let object = full.as_object().unwrap();
                proptest::prop_assert_eq!(members.len(), object.len());
                for (name, text) in members {
                    let member = strict_value(text);
                    proptest::prop_assert_eq!(object.get(name), member.as_ref());
                }
            }
        }
    }
}
