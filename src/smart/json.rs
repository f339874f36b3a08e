//! JSON as the checks need it: values parsed strictly (a duplicate key is an error, so the check
//! and the client can't read two different resources out of one body), and objects kept as raw
//! members so that what is passed on unchanged stays byte-exact.

use super::sparse::Key;
use crate::unique_keys::KeySet;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// A JSON value parsed with duplicate object keys refused.
pub(crate) fn strict_value(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Strict>(bytes).ok().map(|s| s.0)
}

/// A [`strict_value`] inside a larger deserialization.
pub(crate) struct Strict(pub(crate) Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json refuses 1e400 itself; this keeps a non-finite number from ever becoming
        // `null` (what `Value::from(f64::INFINITY)` gives) whatever the reader.
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if out.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate key"));
            }
        }
        Ok(Value::Object(out))
    }
}

/// A JSON object as its members in order, each value raw; duplicate keys refused.
pub(crate) struct RawObject<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawObject<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<Self> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let object = RawObject::deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(object)
    }

    pub(crate) fn parse_raw(raw: &'a RawValue) -> Option<Self> {
        Self::parse(raw.get().as_bytes())
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find_map(|(k, v)| (k == key).then_some(*v))
    }

    /// The members in order, keys decoded.
    pub(crate) fn members(&self) -> impl Iterator<Item = (&str, &'a RawValue)> + '_ {
        self.members.iter().map(|(k, v)| (&**k, *v))
    }

    /// The string member `key`, if it is a string.
    pub(crate) fn get_str(&self, key: &str) -> Option<String> {
        serde_json::from_str::<String>(self.get(key)?.get()).ok()
    }

    /// Writes the object back, members in order; `replace` returns `Some(None)` to drop a
    /// member, `Some(Some(json))` to replace its value, `None` to keep it.
    pub(crate) fn write<F>(&self, mut replace: F) -> Vec<u8>
    where
        F: FnMut(&str) -> Option<Option<String>>,
    {
        let mut out = Vec::with_capacity(
            self.members
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + 2,
        );
        out.push(b'{');
        let mut first = true;
        for (key, value) in &self.members {
            let written: Option<String> = match replace(key) {
                Some(None) => continue,
                Some(Some(new)) => Some(new),
                None => None,
            };
            if !first {
                out.push(b',');
            }
            first = false;
            // Serializing a String cannot fail.
            out.extend_from_slice(serde_json::to_string(key).unwrap_or_default().as_bytes());
            out.push(b':');
            match &written {
                Some(new) => out.extend_from_slice(new.as_bytes()),
                None => out.extend_from_slice(value.get().as_bytes()),
            }
        }
        out.push(b'}');
        out
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawObject<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject<'a>, A::Error> {
                let mut members: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::new();
                let mut seen = KeySet::default();
                while let Some(Key(key)) = map.next_key()? {
                    let value: &'a RawValue = map.next_value()?;
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom("duplicate key"));
                    }
                    members.push((key, value));
                }
                Ok(RawObject { members })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A JSON array's elements, raw.
pub(crate) fn raw_array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused() {
        assert!(strict_value(br#"{"a":1,"a":2}"#).is_none());
        assert!(strict_value(br#"{"a":{"b":1,"b":1}}"#).is_none());
        assert!(strict_value(br#"[{"a":1},{"a":2}]"#).is_some());
        assert!(RawObject::parse(br#"{"a":1,"a":2}"#).is_none());
    }

    #[test]
    fn raw_members_stay_byte_exact() {
        let text =
            br#"{"resourceType":"Bundle","total":3,"entry":[{"resource":{"valueDecimal":1.50}}]}"#;
        let object = RawObject::parse(text).unwrap();
        let out = object.write(|k| (k == "total").then_some(None));
        assert_eq!(
            out,
            br#"{"resourceType":"Bundle","entry":[{"resource":{"valueDecimal":1.50}}]}"#
        );
    }
}
