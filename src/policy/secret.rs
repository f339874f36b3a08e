//! Secrets by reference: `{ env = "NAME" }` or `{ file = "path" }`, never inline by default.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A secret value read from the environment or a file. Its `Debug` shows no content; read it
/// with [`expose`](Self::expose) where it is handed to the layer that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text, when it is UTF-8.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where a secret comes from.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretSource {
    /// `{ env = "NAME" }`: the environment variable `NAME`.
    Env(String),
    /// `{ file = "path" }`: a file, relative to the policy file's directory; one trailing
    /// newline is ignored.
    File(PathBuf),
    /// `{ inline = "...", danger_inline_secret = true }`: written in the policy file itself.
    /// Dangerous: policy files get copied, committed and pasted into tickets.
    Inline(Secret),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => f.debug_tuple("Env").field(name).finish(),
            SecretSource::File(path) => f.debug_tuple("File").field(path).finish(),
            SecretSource::Inline(_) => f.write_str("Inline(..)"),
        }
    }
}

/// A secret in the policy file: a reference, resolved when the policy is loaded.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRef {
    source: SecretSource,
    value: Option<Secret>,
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRef")
            .field("source", &self.source)
            .field("resolved", &self.value.is_some())
            .finish()
    }
}

impl SecretRef {
    /// A reference to an environment variable.
    pub fn env(name: impl Into<String>) -> Self {
        SecretRef {
            source: SecretSource::Env(name.into()),
            value: None,
        }
    }

    /// A reference to a file (relative paths are taken from the policy file's directory).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SecretRef {
            source: SecretSource::File(path.into()),
            value: None,
        }
    }

    /// Where the secret comes from.
    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// The value, once resolved (every secret of a loaded [`Policy`](super::Policy) is).
    pub fn value(&self) -> Option<&Secret> {
        self.value.as_ref()
    }

    /// Reads the secret now; the message names the variable or file, never the value.
    pub(crate) fn resolve(&mut self, base: &Path) -> Result<&Secret, String> {
        let bytes: Arc<[u8]> = match &self.source {
            SecretSource::Env(name) => match std::env::var_os(name) {
                Some(v) if !v.is_empty() => v.into_encoded_bytes().into(),
                Some(_) => return Err(format!("environment variable {name} is empty")),
                None => return Err(format!("environment variable {name} is not set")),
            },
            SecretSource::File(path) => {
                let full = base.join(path);
                let mut bytes = std::fs::read(&full).map_err(|e| {
                    format!(
                        "cannot read secret file {}: {}",
                        full.display(),
                        io_reason(&e)
                    )
                })?;
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                    if bytes.last() == Some(&b'\r') {
                        bytes.pop();
                    }
                }
                if bytes.is_empty() {
                    return Err(format!("secret file {} is empty", full.display()));
                }
                bytes.into()
            }
            SecretSource::Inline(secret) => secret.0.clone(),
        };
        Ok(self.value.insert(Secret(bytes)))
    }
}

/// A short, stable reason for an I/O error (no OS-specific text).
pub(crate) fn io_reason(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file",
        std::io::ErrorKind::PermissionDenied => "permission denied",
        std::io::ErrorKind::IsADirectory => "it is a directory",
        _ => "it could not be read",
    }
}

const INLINE_REFUSED: &str = "an inline secret is refused: refer to it with { env = \"NAME\" } or \
     { file = \"path\" } (or write { inline = \"...\", danger_inline_secret = true })";

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

const FIELDS: &[&str] = &["env", "file", "inline", "danger_inline_secret"];

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret reference { env = \"NAME\" } or { file = \"path\" }")
    }

    // The value is never echoed: serde's own message would quote it.
    fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
        Err(E::custom(INLINE_REFUSED))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
        let mut env: Option<String> = None;
        let mut file: Option<PathBuf> = None;
        let mut inline: Option<String> = None;
        let mut opt_in = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "env" => env = Some(map.next_value()?),
                "file" => file = Some(map.next_value()?),
                "inline" => inline = Some(map.next_value::<InlineText>()?.0),
                "danger_inline_secret" => opt_in = map.next_value()?,
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            }
        }
        let source = match (env, file, inline) {
            (Some(name), None, None) if !name.is_empty() => SecretSource::Env(name),
            (None, Some(path), None) if !path.as_os_str().is_empty() => SecretSource::File(path),
            (None, None, Some(text)) if opt_in => {
                SecretSource::Inline(Secret(text.into_bytes().into()))
            }
            (None, None, Some(_)) => return Err(de::Error::custom(INLINE_REFUSED)),
            (None, None, None) => {
                return Err(de::Error::custom(
                    "a secret reference needs env = \"NAME\" or file = \"path\"",
                ))
            }
            _ => {
                return Err(de::Error::custom(
                    "a secret reference takes exactly one of env, file and inline, not empty",
                ))
            }
        };
        Ok(SecretRef {
            source,
            value: None,
        })
    }
}

/// A string read without echoing it in a type error.
struct InlineText(String);

impl<'de> Deserialize<'de> for InlineText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(InlineText)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for SecretRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretRef".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A secret by reference: { env = \"NAME\" } or { file = \"path\" } (relative to the policy file). Inline secrets need danger_inline_secret = true.",
            "type": "object",
            "properties": {
                "env": { "type": "string", "minLength": 1 },
                "file": { "type": "string", "minLength": 1 },
                "inline": { "type": "string" },
                "danger_inline_secret": { "type": "boolean" }
            },
            "additionalProperties": false,
            "oneOf": [
                { "required": ["env"] },
                { "required": ["file"] },
                { "required": ["inline", "danger_inline_secret"] }
            ]
        })
    }
}
