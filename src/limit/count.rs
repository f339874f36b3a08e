//! Counting a response's resources in one pass, keeping nothing.
//!
//! [`response::parse`](super::response::parse) borrows every member and entry so a response
//! can be cut byte-exact, which takes three passes over the entries. Most responses fit the
//! budget and are never cut, so they are counted here in a single pass instead
//! ([`scan`](super::scan), by hand: `serde_json` skipping the resources cost three times as
//! much). This pass accepts only the plain shape of a FHIR JSON body; on anything else (an
//! error, a repeated member, an entry that is not an object, an escape it won't decode) it
//! gives up and the caller counts with `parse`, whose verdict stands. So the two can never
//! disagree: property tests check it.

use super::response::{parse, BodyKind, Uncountable};
use super::scan::quick;

/// The resources `body` holds, counted as [`parse`] counts them.
pub(crate) fn count(body: &[u8], kind: BodyKind) -> Result<u64, Uncountable> {
    if kind == BodyKind::Json {
        if let Some(n) = quick(body) {
            return Ok(n);
        }
    }
    parse(body, kind).map(|parsed| parsed.count())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    fn slow(body: &[u8]) -> Result<u64, Uncountable> {
        parse(body, BodyKind::Json).map(|p| p.count())
    }

    /// Each line: a body and the count `parse` gives it (`-` for uncountable). The single
    /// pass must agree on every one, or hand it over.
    const CASES: &[(&str, Option<u64>)] = &[
        (r#"{"resourceType":"Patient","id":"1"}"#, Some(1)),
        (r#"{"resourceType":"OperationOutcome","issue":[]}"#, Some(0)),
        // A number past f64's range is still JSON (RFC 8259 §6 leaves the range open); both
        // passes count it, neither reads it as a float.
        (
            r#"{"resourceType":"Observation","valueQuantity":{"value":1e400}}"#,
            Some(1),
        ),
        (r#"{"resourceType":"Bundle","type":"searchset"}"#, Some(0)),
        (
            r#"{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient"},"search":{"mode":"match"}},{"resource":{"resourceType":"Patient"},"search":{"mode":"include"}},{"resource":{"resourceType":"OperationOutcome"},"search":{"mode":"outcome"}}]}"#,
            Some(2),
        ),
        (
            r#"{"entry":[{"resource":{}},{"fullUrl":"x"},{"resource":null}],"resourceType":"Bundle"}"#,
            Some(1),
        ),
        (
            r#"{"resourceType":"Bundle","entry":[{"resource":{},"search":{"mode":null}}]}"#,
            Some(1),
        ),
        (
            r#"{"resourceType":"Bundle","entry":[{"resource":{},"search":null}]}"#,
            Some(1),
        ),
        (
            r#"{"resource\u0054ype":"Bundle","entry":[{"resource":{},"search":{"mode":"outc\u006fme"}}]}"#,
            Some(0),
        ),
        (r#"{"resourceType":"Patient","entry":7}"#, Some(1)),
        (r#"{"resourceType":"Bundle","entry":7}"#, None),
        (r#"{"resourceType":"Bundle","entry":[7]}"#, None),
        (r#"{"resourceType":"Bundle","entry":[],"entry":[]}"#, None),
        (r#"{"resourceType":"Bundle","resourceType":"Bundle"}"#, None),
        (
            r#"{"resourceType":"Bundle","entry":[{"resource":{},"resource":{}}]}"#,
            None,
        ),
        (r#"{"resourceType":7}"#, None),
        (r#"{"id":"1"}"#, None),
        (r#"[1,2]"#, None),
        (r#"{"resourceType":"Patient"} x"#, None),
        (r#"{"resourceType":"Patient""#, None),
        ("  ", Some(0)),
        // Escapes the single pass won't decode are left to the full parse.
        (r#"{"resourceType":"Patient","name":"\u00e9"}"#, Some(1)),
        (r#"{"resourceType":"Patient","a":"\x"}"#, None),
        (r#"{"resourceType":"Patient","a":01}"#, None),
        (r#"{"resourceType":"Patient","a":1.}"#, None),
        (r#"{"resourceType":"Patient","a":-}"#, None),
        (r#"{"resourceType":"Patient","a":tru}"#, None),
        (r#"{"resourceType":"Patient","a":[1,]}"#, None),
        (r#"{"resourceType":"Patient","a":{"b":1,}}"#, None),
        (r#"{"resourceType":"Patient",}"#, None),
        (
            r#"{"resourceType":"Patient","a":"x
y"}"#,
            None,
        ),
    ];

    #[test]
    fn the_single_pass_counts_as_parse_does() {
        for (body, want) in CASES {
            let got = count(body.as_bytes(), BodyKind::Json).ok();
            assert_eq!(got, *want, "{body}");
            assert_eq!(slow(body.as_bytes()).ok(), *want, "parse: {body}");
            if let Some(n) = quick(body.as_bytes()) {
                assert_eq!(Some(n), *want, "quick: {body}");
            }
        }
    }

    fn member() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(r#""resource":{"resourceType":"Patient"}"#.to_owned()),
            Just(r#""resource":null"#.to_owned()),
            Just(r#""search":{"mode":"match"}"#.to_owned()),
            Just(r#""search":{"mode":"outcome"}"#.to_owned()),
            Just(r#""search":{"mode":7}"#.to_owned()),
            Just(r#""search":[1]"#.to_owned()),
            Just(r#""search":{"mode":"outcome","mode":"match"}"#.to_owned()),
            Just(r#""fullUrl":"urn:x""#.to_owned()),
            Just(r#""resource":{"resourceType":"Patient","name":[{"text":"Zo\u00eb \"Z\"\n","given":["Zoë"]}],"x":[-0.5e+3,1E2,0,true,false,null,{}],"y":{"\u0061":1}}"#.to_owned()),
            Just(r#""resource":[[[[[[[[[[1]]]]]]]]]]"#.to_owned()),
            Just(r#""search" : { "score" : 1.50 , "mode" : "include" }"#.to_owned()),
            Just(r#""search":{"mode":"outc\u006fme"}"#.to_owned()),
            Just(r#""request":{"url":"Patient?name=a\/b\\c\t"}"#.to_owned()),
        ]
    }

    fn entry() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => proptest::collection::vec(member(), 0..4).prop_map(|m| format!("{{{}}}", m.join(","))),
            1 => Just("[]".to_owned()),
            1 => Just("null".to_owned()),
        ]
    }

    fn top() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just(r#""resourceType":"Bundle""#.to_owned()),
            Just(r#""resourceType":"Patient""#.to_owned()),
            Just(r#""resourceType":"OperationOutcome""#.to_owned()),
            Just(r#""type":"searchset""#.to_owned()),
            proptest::collection::vec(entry(), 0..5)
                .prop_map(|e| format!(r#""entry":[{}]"#, e.join(","))),
            Just(r#""entry":{}"#.to_owned()),
            Just(r#""total":3"#.to_owned()),
        ];
        proptest::collection::vec(pieces, 0..5).prop_map(|p| format!("{{{}}}", p.join(",")))
    }

    proptest! {
        /// The single pass never disagrees with the full parse it stands in for.
        #[test]
        fn quick_agrees_with_parse(body in top()) {
            prop_assert_eq!(count(body.as_bytes(), BodyKind::Json).ok(), slow(body.as_bytes()).ok());
            if let Some(n) = quick(body.as_bytes()) {
                prop_assert_eq!(Some(n), slow(body.as_bytes()).ok(), "{}", body);
            }
        }

        /// Any body with one byte changed, or cut short: wherever the single pass still
        /// answers, the full parse gives the same count.
        #[test]
        fn quick_agrees_on_damaged_bodies(
            body in top(),
            at in any::<proptest::sample::Index>(),
            byte in prop_oneof![
                Just(b'"'), Just(b'\\'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'),
                Just(b','), Just(b':'), Just(b'-'), Just(b'.'), Just(b'e'), Just(b'0'),
                Just(0x1f), Just(0xc3), Just(0xff), any::<u8>()
            ],
            cut in any::<bool>(),
        ) {
            let mut bytes = body.into_bytes();
            let i = at.index(bytes.len().max(1)).min(bytes.len().saturating_sub(1));
            if cut {
                bytes.truncate(i);
            } else if let Some(b) = bytes.get_mut(i) {
                *b = byte;
            }
            if let Some(n) = quick(&bytes) {
                prop_assert_eq!(Some(n), slow(&bytes).ok(), "{}", String::from_utf8_lossy(&bytes));
            }
        }

        /// Arbitrary bytes: no panic, and agreement wherever the single pass answers.
        #[test]
        fn quick_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Some(n) = quick(&body) {
                prop_assert_eq!(Some(n), slow(&body).ok());
            }
        }
    }
}
