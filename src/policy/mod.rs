//! The whole stack from one TOML policy file (feature `policy`), validated on load and
//! reloadable.
//!
//! The people who decide security policy are rarely the people who write Rust, so the
//! policy is a file: trusted clients, token issuer, scope and operation rules, redaction,
//! budgets, validation limits, declared routes and sunsets, transport rules and audit sinks
//! (see [`PolicyDocument`] for every section, and `examples/policy.toml` for a documented
//! example). [`Policy::load`] reads and checks it completely, [`Policy::build`] turns it into a
//! [`Fhirwall`](crate::stack::Fhirwall) stack through the stack builder, and a
//! [`PolicyHandle`] swaps in a new policy atomically while requests are being served.
//!
//! - **Unknown keys are refused** everywhere, so a typo never switches a protection off.
//! - **Errors name the file, line, column and key** and say what is wrong
//!   ([`PolicyError`]): `policy.toml:14:12: budgets.requests: "30/minit" is not a rate
//!   (expected N/second|minute|hour|day, or "off")`.
//! - **Secrets by reference**: `{ env = "NAME" }` or `{ file = "path" }` ([`SecretRef`]);
//!   an inline secret is refused unless it says `danger_inline_secret = true`. Secrets never
//!   appear in `Debug` output or error messages.
//! - **Published documentation** from the same file: the CapabilityStatement's
//!   `rest.security` ([`Policy::patch_capability_statement`]) and
//!   `.well-known/smart-configuration` ([`Policy::smart_configuration`]); with feature
//!   `schema`, a JSON Schema of the file for editors ([`json_schema`]).
//!
//! ```
//! use fhirwall::policy::Policy;
//!
//! let policy = Policy::from_toml_str(r#"
//!     [service]
//!     base_path = "/fhir"
//!     base_url = "https://fhir.example.org/fhir"
//!
//!     [[clients]]
//!     name = "lab-ingest"
//!     san_uris = ["spiffe://lab.example/ns/prod/sa/ingest"]
//!     networks = ["10.20.0.0/16"]
//!
//!     [[routes.resources]]
//!     type = "Observation"
//!     interactions = ["create", "read", "search-type"]
//!
//!     [budgets]
//!     requests = "300/minute"
//! "#, "policy.toml")?;
//! let stack = policy.build()?;
//! assert!(stack.layers().contains(&"identity"));
//!
//! let typo = Policy::from_toml_str("[budgets]\nrequests = \"30/minit\"\n", "policy.toml")
//!     .unwrap_err();
//! assert_eq!(typo.key(), "budgets.requests");
//! assert_eq!(typo.line(), Some(2));
//! # Ok::<(), fhirwall::policy::PolicyError>(())
//! ```
//!
//! ## Reloading
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use fhirwall::policy::PolicyHandle;
//!
//! let handle = PolicyHandle::load("/etc/fhirwall/policy.toml")?;
//! let app: Router = Router::new()
//!     .route("/fhir/metadata", get(|| async { "{}" }))
//!     .layer(handle.clone());
//! // On SIGHUP (or from an admin endpoint):
//! if let Err(error) = handle.reload() {
//!     eprintln!("policy not reloaded, the old one stays in force: {error}");
//! }
//! # Ok::<(), fhirwall::policy::PolicyError>(())
//! ```

mod build;
mod document;
mod document_limits;
mod document_smart;
mod error;
mod locate;
mod macros;
mod publish;
mod reload;
#[cfg(feature = "schema")]
mod schema;
mod secret;
mod to_firewall;
mod to_identity;
mod to_layers;
mod to_smart;
pub mod values;

pub use document::*;
pub use document_limits::*;
pub use document_smart::*;
pub use error::{PolicyError, PolicyErrorKind};
pub use publish::{OAUTH_URIS_EXTENSION, SECURITY_SERVICE_SYSTEM};
pub use reload::{PolicyHandle, PolicyVersion, Reloadable, ReloadableFuture, Snapshot};
#[cfg(feature = "schema")]
pub use schema::json_schema;
pub use secret::{Secret, SecretRef, SecretSource};
pub use to_firewall::FirewallSettings;

use locate::{line_col, parse_path, path_at, refine_to_element, render, span_of};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest policy file read, in bytes: a policy is hand-written text.
pub const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;

/// A loaded and checked policy file.
///
/// Loading resolves every secret and reads every referenced file, and checks every setting
/// by building each layer's configuration once, so a policy that loads builds.
#[derive(Clone)]
pub struct Policy {
    document: PolicyDocument,
    origin: String,
    base_dir: PathBuf,
    text: Arc<str>,
}

impl Policy {
    /// Reads and checks the policy file at `path`; relative paths inside it are taken from
    /// its directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| {
            PolicyError::new(
                &origin,
                PolicyErrorKind::Io,
                "",
                format!("cannot read the policy file: {}", secret::io_reason(&e)),
            )
        })?;
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::new(
                &origin,
                PolicyErrorKind::Io,
                "",
                format!("the policy file is larger than {MAX_POLICY_BYTES} bytes"),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            PolicyError::new(
                &origin,
                PolicyErrorKind::Syntax,
                "",
                "the policy file is not UTF-8",
            )
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &origin, base)
    }

    /// Reads and checks a policy from text; `origin` names it in errors (a file name), and
    /// relative paths inside it are taken from the current directory.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        Self::parse(text, origin, PathBuf::new())
    }

    /// Like [`from_toml_str`](Self::from_toml_str), with relative paths taken from `base_dir`.
    pub fn from_toml_str_in(
        text: &str,
        origin: &str,
        base_dir: impl Into<PathBuf>,
    ) -> Result<Policy, PolicyError> {
        Self::parse(text, origin, base_dir.into())
    }

    fn parse(text: &str, origin: &str, base_dir: PathBuf) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::new(
                origin,
                PolicyErrorKind::Io,
                "",
                format!("the policy is larger than {MAX_POLICY_BYTES} bytes"),
            ));
        }
        let document: PolicyDocument =
            toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
        let mut policy = Policy {
            document,
            origin: origin.to_owned(),
            base_dir,
            text: text.into(),
        };
        policy.resolve_secrets()?;
        policy.check()?;
        Ok(policy)
    }

    fn resolve_secrets(&mut self) -> Result<(), PolicyError> {
        let base = self.base_dir.clone();
        let ctx = Ctx {
            origin: &self.origin,
            text: &self.text,
            base_dir: &base,
        };
        let doc = &mut self.document;
        let mut refs: Vec<(&str, &mut SecretRef)> = Vec::new();
        if let Some(s) = doc
            .tokens
            .as_mut()
            .and_then(|t| t.danger_hmac_secret.as_mut())
        {
            refs.push(("tokens.danger_hmac_secret", s));
        }
        if let Some(s) = doc.budgets.store.redis_url.as_mut() {
            refs.push(("budgets.store.redis_url", s));
        }
        if let Some(s) = doc.audit.salt.as_mut() {
            refs.push(("audit.salt", s));
        }
        for (key, secret) in refs {
            secret
                .resolve(&base)
                .map_err(|message| ctx.err(PolicyErrorKind::Secret, key, message))?;
        }
        Ok(())
    }

    /// The parsed document.
    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    /// The name errors give the file.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The directory relative paths are taken from.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The FHIR base path (`service.base_path`, default `/fhir`).
    pub fn base_path(&self) -> &str {
        self.document
            .service
            .base_path
            .as_deref()
            .unwrap_or("/fhir")
    }

    pub(crate) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            origin: &self.origin,
            text: &self.text,
            base_dir: &self.base_dir,
        }
    }
}

// The text is left out: it may hold an inline secret.
impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("origin", &self.origin)
            .field("base_dir", &self.base_dir)
            .field("document", &self.document)
            .finish_non_exhaustive()
    }
}

/// Turns toml's error (a span and a message) into ours (line, column, key).
fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> PolicyError {
    let message = e.message().trim().to_owned();
    let kind = if message.starts_with("unknown field") || message.starts_with("unknown variant") {
        if message.starts_with("unknown variant") {
            PolicyErrorKind::InvalidValue
        } else {
            PolicyErrorKind::UnknownKey
        }
    } else if message.starts_with("invalid type") {
        PolicyErrorKind::WrongType
    } else if message.starts_with("missing field") {
        PolicyErrorKind::MissingKey
    } else if message.contains("secret") {
        PolicyErrorKind::Secret
    } else if toml::de::DeTable::parse(text).is_err() {
        PolicyErrorKind::Syntax
    } else {
        PolicyErrorKind::InvalidValue
    };
    let (key, position) = match e.span() {
        Some(span) if kind == PolicyErrorKind::Syntax => {
            (String::new(), Some(line_col(text, span.start)))
        }
        Some(span) => {
            let path = path_at(text, span.start);
            match refine_to_element(text, &path, &message) {
                Some((element, at)) => (render(&element), Some(line_col(text, at.start))),
                None => (render(&path), Some(line_col(text, span.start))),
            }
        }
        None => (String::new(), None),
    };
    PolicyError::new(origin, kind, key, message).at(position)
}

/// What conversions need to report an error at a key and to find files.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) origin: &'a str,
    pub(crate) text: &'a str,
    pub(crate) base_dir: &'a Path,
}

impl Ctx<'_> {
    /// An error about `key` (a path like `clients[0].networks[1]`), placed at its line.
    pub(crate) fn err(
        &self,
        kind: PolicyErrorKind,
        key: &str,
        message: impl Into<String>,
    ) -> PolicyError {
        let position = span_of(self.text, &parse_path(key)).map(|s| line_col(self.text, s.start));
        PolicyError::new(self.origin, kind, key, message).at(position)
    }

    pub(crate) fn invalid(&self, key: &str, message: impl Into<String>) -> PolicyError {
        self.err(PolicyErrorKind::InvalidValue, key, message)
    }

    pub(crate) fn contradiction(&self, key: &str, message: impl Into<String>) -> PolicyError {
        self.err(PolicyErrorKind::Contradiction, key, message)
    }

    /// A file named in the policy, relative to the policy file.
    pub(crate) fn path(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }

    /// Reads a file named at `key`.
    pub(crate) fn read(&self, key: &str, path: &Path) -> Result<Vec<u8>, PolicyError> {
        let full = self.path(path);
        std::fs::read(&full).map_err(|e| {
            self.err(
                PolicyErrorKind::InvalidValue,
                key,
                format!("cannot read {}: {}", full.display(), secret::io_reason(&e)),
            )
        })
    }
}

#[cfg(test)]
mod tests;
