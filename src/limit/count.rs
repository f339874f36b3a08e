//! Counting a response's resources in one pass, keeping nothing.
//!
//! [`response::parse`](super::response::parse) borrows every member and entry so a response
//! can be cut byte-exact, which takes three passes over the entries. Most responses fit the
//! budget and are never cut, so they are counted here in a single pass instead. This pass
//! accepts only the plain shape of a FHIR JSON body; on anything else (an error, a repeated
//! member, an entry that is not an object) it gives up and the caller counts with `parse`,
//! whose verdict stands. So the two can never disagree: a property test checks it.

use super::response::{parse, BodyKind, Uncountable};
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use std::fmt;

/// The resources `body` holds, counted as [`parse`] counts them.
pub(crate) fn count(body: &[u8], kind: BodyKind) -> Result<u64, Uncountable> {
    if kind == BodyKind::Json {
        if let Some(n) = quick(body) {
            return Ok(n);
        }
    }
    parse(body, kind).map(|parsed| parsed.count())
}

/// The single pass; `None` hands the body to [`parse`].
fn quick(body: &[u8]) -> Option<u64> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let top = (&mut de).deserialize_map(TopVisitor).ok()?;
    de.end().ok()?;
    match top.resource_type? {
        Kind::Bundle => top.entries,
        Kind::OperationOutcome => Some(0),
        Kind::Other => Some(1),
    }
}

/// The members that matter, by name.
enum Key {
    ResourceType,
    Type,
    Entry,
    Resource,
    Search,
    Mode,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Key, E> {
                Ok(match name {
                    "resourceType" => Key::ResourceType,
                    "type" => Key::Type,
                    "entry" => Key::Entry,
                    "resource" => Key::Resource,
                    "search" => Key::Search,
                    "mode" => Key::Mode,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Bundle,
    OperationOutcome,
    Other,
}

/// A string compared without being kept.
struct Is(&'static str);

impl<'de> DeserializeSeed<'de> for Is {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Is {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<bool, E> {
        Ok(s == self.0)
    }
}

struct Top {
    resource_type: Option<Kind>,
    /// Counted as if the body were a Bundle; `None` when there is no `entry`.
    entries: Option<u64>,
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a FHIR resource")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut resource_type = None;
        let mut seen_type = false;
        let mut entries = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::ResourceType if resource_type.is_none() => {
                    let name: ResourceName = map.next_value()?;
                    resource_type = Some(name.0);
                }
                Key::Type if !seen_type => {
                    seen_type = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Entry if entries.is_none() => {
                    entries = Some(map.next_value_seed(EntryList)?);
                }
                Key::ResourceType | Key::Type | Key::Entry => {
                    return Err(A::Error::custom("repeated member"));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Top {
            resource_type,
            // A Bundle without `entry` holds nothing.
            entries: Some(entries.unwrap_or(0)),
        })
    }
}

struct ResourceName(Kind);

impl<'de> serde::Deserialize<'de> for ResourceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ResourceName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a resource type")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ResourceName, E> {
                Ok(ResourceName(match s {
                    "Bundle" => Kind::Bundle,
                    "OperationOutcome" => Kind::OperationOutcome,
                    _ => Kind::Other,
                }))
            }
        }
        d.deserialize_str(V)
    }
}

/// `Bundle.entry`: counts the entries with a resource that are not `search.mode = outcome`.
struct EntryList;

impl<'de> DeserializeSeed<'de> for EntryList {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntryList {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0u64;
        while let Some(counted) = seq.next_element_seed(Entry)? {
            n += u64::from(counted);
        }
        Ok(n)
    }
}

struct Entry;

impl<'de> DeserializeSeed<'de> for Entry {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Entry {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an entry object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut resource: Option<bool> = None;
        let mut outcome: Option<bool> = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Resource if resource.is_none() => {
                    let value: Option<IgnoredAny> = map.next_value()?;
                    resource = Some(value.is_some());
                }
                Key::Search if outcome.is_none() => {
                    let mode: Option<SearchMode> = map.next_value()?;
                    outcome = Some(mode.is_some_and(|m| m.outcome));
                }
                Key::Resource | Key::Search => {
                    return Err(A::Error::custom("repeated member"));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(resource == Some(true) && outcome != Some(true))
    }
}

/// `entry.search`, reduced to whether its mode is `outcome`.
struct SearchMode {
    outcome: bool,
}

impl<'de> serde::Deserialize<'de> for SearchMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SearchMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an entry's search object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SearchMode, A::Error> {
                let mut outcome = None;
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Mode if outcome.is_none() => {
                            let is: Option<bool> = map.next_value_seed(OptionalIs("outcome"))?;
                            outcome = Some(is.unwrap_or(false));
                        }
                        Key::Mode => return Err(A::Error::custom("repeated member")),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(SearchMode {
                    outcome: outcome.unwrap_or(false),
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// A string or `null`, compared without being kept.
struct OptionalIs(&'static str);

impl<'de> DeserializeSeed<'de> for OptionalIs {
    type Value = Option<bool>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<bool>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalIs {
    type Value = Option<bool>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Option<bool>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<bool>, D::Error> {
        Is(self.0).deserialize(d).map(Some)
    }
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

        /// Arbitrary bytes: no panic, and agreement wherever the single pass answers.
        #[test]
        fn quick_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Some(n) = quick(&body) {
                prop_assert_eq!(Some(n), slow(&body).ok());
            }
        }
    }
}
