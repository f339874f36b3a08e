//! A resource parsed only as far as the access checks read it.
//!
//! The compartment and granular checks read a handful of a resource's members (`resourceType`,
//! `id`, `contained`, and the first element of each compartment or scope-parameter path). The
//! rest is still parsed, just as strictly (a duplicate key anywhere, a string that is not
//! valid Unicode or a number out of range refuses the body), but no tree is built for it: a
//! `serde_json::Value` costs an allocation per string, array and object, about 40% of the
//! price of checking one Patient (28,500 instructions before, 16,900 after).

#[cfg(test)]
use super::json::RawObject;
use super::json::{strict_value, Strict};
use super::plain::top_members;
use crate::fhir::ResourceType;
use crate::unique_keys::KeySet;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// The resource in `bytes` with only the top-level members `wanted` (given the resource's
/// type) kept, or `None` where [`strict_value`] would refuse the bytes.
///
/// A body in the plain shape servers write is read by hand ([`super::plain`]) and only the
/// kept members are parsed with `serde_json`; anything else goes through a serde-driven pass,
/// one pass when `resourceType` comes first, as FHIR JSON writes it (members before it are
/// held raw until the type is known). Without a known `resourceType` every member is kept, so
/// the caller's own checks (and refusals) see what they always did.
pub(crate) fn sparse_resource<F>(bytes: &[u8], wanted: F) -> Option<Value>
where
    F: Fn(ResourceType, &str) -> bool,
{
    if let Some(members) = top_members(bytes) {
        return kept(&members, &wanted).map(Value::Object);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match de.deserialize_map(SparseVisitor(&wanted)) {
        Ok(map) => {
            de.end().ok()?;
            Some(Value::Object(map))
        }
        // Not an object, or not JSON: the full parse decides, as it always did.
        Err(_) => strict_value(bytes),
    }
}

/// The members of a body [`top_members`] read that the check wants, parsed.
fn kept<F>(members: &[(&str, &[u8])], wanted: &F) -> Option<Map<String, Value>>
where
    F: Fn(ResourceType, &str) -> bool,
{
    let mut out = Map::new();
    // `None` without a `resourceType` member, `Some(None)` for a type we don't know: then
    // every member is kept, as in the serde-driven pass.
    let mut rt: Option<Option<ResourceType>> = None;
    if let Some((name, text)) = members.iter().find(|(name, _)| *name == "resourceType") {
        let value = strict_value(text)?;
        rt = Some(value.as_str().and_then(ResourceType::from_name));
        out.insert((*name).to_owned(), value);
    }
    for (name, text) in members {
        let keep = match rt {
            Some(Some(t)) => *name != "resourceType" && wanted(t, name),
            _ => *name != "resourceType",
        };
        if keep {
            out.insert((*name).to_owned(), strict_value(text)?);
        }
    }
    Some(out)
}

struct SparseVisitor<'f, F>(&'f F);

impl<'de, F> Visitor<'de> for SparseVisitor<'_, F>
where
    F: Fn(ResourceType, &str) -> bool,
{
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut seen = KeySet::default();
        let mut out = Map::new();
        // `None` until `resourceType` is read; then `Some(None)` for a type we don't know
        // (everything kept).
        let mut rt: Option<Option<ResourceType>> = None;
        let mut pending: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
        while let Some(Key(key)) = access.next_key()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom("duplicate key"));
            }
            if key == "resourceType" {
                let Strict(value) = access.next_value()?;
                rt = Some(value.as_str().and_then(ResourceType::from_name));
                out.insert(key.into_owned(), value);
                continue;
            }
            match rt {
                None => pending.push((key, access.next_value()?)),
                Some(Some(t)) if !(self.0)(t, &key) => {
                    access.next_value::<Skip>()?;
                }
                Some(_) => {
                    let Strict(value) = access.next_value()?;
                    out.insert(key.into_owned(), value);
                }
            }
        }
        for (key, raw) in pending {
            let raw = raw.get().as_bytes();
            match rt {
                Some(Some(t)) if !(self.0)(t, &key) => {
                    strict_check(raw).ok_or_else(|| de::Error::custom("invalid member"))?;
                }
                _ => {
                    let value =
                        strict_value(raw).ok_or_else(|| de::Error::custom("invalid member"))?;
                    out.insert(key.into_owned(), value);
                }
            }
        }
        Ok(out)
    }
}

/// `Some` where [`strict_value`] would parse `bytes`, without building the value.
pub(crate) fn strict_check(bytes: &[u8]) -> Option<()> {
    serde_json::from_slice::<Skip>(bytes).ok().map(|_| ())
}

/// An object key, borrowed from the input unless it had escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Any JSON value, parsed and dropped: strict like [`strict_value`], without the tree.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        let mut seen = KeySet::default();
        while let Some(Key(key)) = map.next_key()? {
            if !seen.insert(key) {
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(keys: &'static [&'static str]) -> impl Fn(ResourceType, &str) -> bool {
        move |_, k| keys.contains(&k)
    }

    #[test]
    fn keeps_the_wanted_members_and_parses_the_rest_strictly() {
        let text = br#"{"resourceType":"Observation","id":"o1","code":{"text":"x"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1.50}}"#;
        let value = sparse_resource(text, only(&["resourceType", "id", "subject"])).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/p1"}})
        );
    }

    #[test]
    fn members_before_the_type_are_held_until_it_is_known() {
        let text = br#"{"code":{"text":"x"},"subject":{"reference":"Patient/p1"},"resourceType":"Observation"}"#;
        let value = sparse_resource(text, only(&["resourceType", "subject"])).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"resourceType":"Observation","subject":{"reference":"Patient/p1"}})
        );
        let bad = br#"{"code":{"a":1,"a":2},"resourceType":"Observation"}"#;
        assert!(sparse_resource(bad, only(&["resourceType"])).is_none());
        let no_type = br#"{"code":{"text":"x"},"id":"o1"}"#;
        assert_eq!(sparse_resource(no_type, only(&[])), strict_value(no_type));
        let odd_type = br#"{"resourceType":7,"code":{"text":"x"}}"#;
        assert_eq!(sparse_resource(odd_type, only(&[])), strict_value(odd_type));
    }

    #[test]
    fn refuses_what_the_full_parse_refuses() {
        let none = only(&["resourceType"]);
        for bad in [
            &br#"{"resourceType":"Patient","name":[{"family":"a","family":"b"}]}"#[..],
            br#"{"resourceType":"Patient","resourceType":"Patient"}"#,
            br#"{"resourceType":"Patient","gender":"\ud800"}"#,
            br#"{"resourceType":"Patient","x":1e400}"#,
            br#"{"resourceType":"Patient"} trailing"#,
            br#"{"resourceType":"Patient","x":[1,]}"#,
            br#"{"gender":"\ud800","resourceType":"Patient"}"#,
            br#"{"resourceType":"Patient","a":{"b":[{"c":1,"c":1}]}}"#,
        ] {
            assert!(
                strict_value(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert!(
                sparse_resource(bad, &none).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn escaped_keys_are_compared_decoded() {
        let text = br#"{"resourceType":"Patient","\u0069d":"p1","name":[{"\u0066amily":"a","family":"b"}]}"#;
        assert!(sparse_resource(text, only(&["resourceType", "id"])).is_none());
        let text = br#"{"resourceType":"Patient","\u0069d":"p1"}"#;
        let value = sparse_resource(text, only(&["resourceType", "id"])).unwrap();
        assert_eq!(value["id"], "p1");
    }

    #[test]
    fn without_a_known_type_the_whole_value_is_kept() {
        let text = br#"{"resourceType":"NotAType","id":"x","a":{"b":1}}"#;
        assert_eq!(
            sparse_resource(text, only(&[])),
            strict_value(text),
            "the caller refuses it as before"
        );
        assert_eq!(sparse_resource(b"[1,2]", only(&[])), strict_value(b"[1,2]"));
    }

    /// Every official R4 example (and every resource in the example Bundles), under patient,
    /// granular and user scopes, reading and writing: the access check gives the same answer
    /// on the sparse resource as on the whole one.
    #[test]
    fn the_check_answers_the_same_on_every_official_example() {
        use crate::smart::access::{permitted, reads_member};
        use crate::smart::decision::Need;
        use crate::smart::policy::AuthzPolicy;
        use crate::smart::scope::Permissions;
        use crate::smart::{AccessContext, MalformedScopes, ScopeSet};
        use std::io::Read;

        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/validate/examples-r4.tgz"
        );
        let file = std::fs::File::open(path).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut resources: Vec<Vec<u8>> = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if !entry.path().unwrap().to_string_lossy().ends_with(".json") {
                continue;
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            if let Some(entries) = value.get("entry").and_then(Value::as_array) {
                for e in entries {
                    if let Some(r) = e.get("resource") {
                        resources.push(serde_json::to_vec(r).unwrap());
                    }
                }
            }
            resources.push(bytes);
        }
        let patients = [
            "example", "pat1", "pat2", "f001", "f201", "xcda", "glossy", "infant",
        ];
        let contexts: Vec<AccessContext> = [
            "patient/*.rs",
            "patient/Observation.rs?category=laboratory patient/Condition.rs?category=problem-list-item",
            "patient/*.cruds?_tag=http://example.org/tags|a user/Encounter.rs?status=finished",
            "user/*.rs",
        ]
        .iter()
        .map(|s| {
            AccessContext::new(ScopeSet::parse(s, MalformedScopes::RefuseToken).unwrap())
                .with_patients(patients)
        })
        .collect();
        let policy = AuthzPolicy::default();
        let (mut allowed, mut denied) = (0, 0);
        for bytes in &resources {
            let whole = strict_value(bytes).unwrap();
            let Some(rt) = whole
                .get("resourceType")
                .and_then(Value::as_str)
                .and_then(ResourceType::from_name)
            else {
                continue;
            };
            for ctx in &contexts {
                let sparse = sparse_resource(bytes, |rt, key| reads_member(ctx, rt, key)).unwrap();
                for write in [false, true] {
                    let need = Need::all(if write {
                        Permissions::UPDATE
                    } else {
                        Permissions::READ
                    });
                    let expected = permitted(ctx, &policy, rt, &whole, need, &[], write);
                    let got = permitted(ctx, &policy, rt, &sparse, need, &[], write);
                    assert_eq!(got, expected, "{}", String::from_utf8_lossy(bytes));
                    if expected {
                        allowed += 1;
                    } else {
                        denied += 1;
                    }
                }
            }
        }
        assert!(resources.len() > 2_000, "{} resources", resources.len());
        assert!(
            allowed > 1_000 && denied > 1_000,
            "{allowed} allowed, {denied} denied"
        );
    }

    proptest::proptest! {
        /// On any body, and on any body with one byte changed: the sparse parse refuses
        /// exactly what the full parse refuses, never panics, and what it keeps equals the
        /// full parse's member.
        #[test]
        fn agrees_with_the_full_parse(
            members in proptest::collection::vec(("[a-z]{1,3}|resourceType|id|subject", super::super::plain::tests::json()), 0..6),
            rt in proptest::sample::select(vec!["Patient", "Observation", "Nope"]),
            type_at in 0usize..7,
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::prelude::any::<u8>(),
            mutate in proptest::prelude::any::<bool>(),
        ) {
            let mut text = String::from("{");
            let mut first = true;
            for (i, (k, v)) in members.iter().enumerate() {
                if i == type_at {
                    text.push_str(&format!("{}\"resourceType\":\"{rt}\"", if first { "" } else { "," }));
                    first = false;
                }
                text.push_str(&format!("{}\"{k}\":{v}", if first { "" } else { "," }));
                first = false;
            }
            text.push('}');
            let mut bytes = text.into_bytes();
            if mutate && !bytes.is_empty() {
                let i = cut.index(bytes.len());
                bytes[i] = byte;
            }
            let full = strict_value(&bytes);
            let sparse = sparse_resource(&bytes, only(&["resourceType", "subject"]));
            proptest::prop_assert_eq!(full.is_some(), sparse.is_some());
            if let (Some(Value::Object(full)), Some(Value::Object(sparse))) = (full, sparse) {
                for (k, v) in &sparse {
                    proptest::prop_assert_eq!(full.get(k), Some(v));
                }
            }
        }
    }

    #[test]
    fn many_keys_cost_lookups_not_their_square() {
        let mut text = String::from(r#"{"resourceType":"Patient","x":{"#);
        for i in 0..50_000 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        text.push_str(r#""k7":0}}"#);
        assert!(sparse_resource(text.as_bytes(), only(&["resourceType"])).is_none());
        // The same at the top level, where `RawObject` keeps the members.
        let mut text = String::from(r#"{"resourceType":"Bundle""#);
        for i in 0..50_000 {
            text.push_str(&format!(",\"k{i}\":{i}"));
        }
        assert!(RawObject::parse(format!("{text}}}").as_bytes()).is_some());
        text.push_str(r#","k49999":0}"#);
        assert!(RawObject::parse(text.as_bytes()).is_none());
    }
}
