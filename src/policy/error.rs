//! [`PolicyError`]: what is wrong with a policy file, and where.

/// The kind of mistake a [`PolicyError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// The file could not be read.
    Io,
    /// Not TOML.
    Syntax,
    /// A key the policy format does not have (a typo must never switch a protection off).
    UnknownKey,
    /// A value of the wrong TOML type.
    WrongType,
    /// A required key is absent.
    MissingKey,
    /// A value of the right type that means nothing (a bad CIDR, rate, scope, URL ...).
    InvalidValue,
    /// A secret could not be read, or was written inline without the explicit opt-in.
    Secret,
    /// Settings that contradict each other.
    Contradiction,
    /// A layer refused the settings when it was built.
    Build,
}

/// A policy file that cannot be used, with the file, line, column and key it is about.
///
/// Displayed like a compiler message:
/// `policy.toml:14:12: budgets.requests: "30/minit" is not a rate (expected N/second|minute|hour|day or "off")`.
/// Secret values never appear in it; the names of environment variables and files do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct PolicyError {
    pub(crate) origin: String,
    pub(crate) position: Option<(usize, usize)>,
    pub(crate) key: String,
    pub(crate) message: String,
    pub(crate) kind: PolicyErrorKind,
}

impl PolicyError {
    pub(crate) fn new(
        origin: &str,
        kind: PolicyErrorKind,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        PolicyError {
            origin: origin.to_owned(),
            position: None,
            key: key.into(),
            message: message.into(),
            kind,
        }
    }

    pub(crate) fn at(mut self, position: Option<(usize, usize)>) -> Self {
        self.position = position;
        self
    }

    /// The file name (or the origin given to
    /// [`Policy::from_toml_str`](super::Policy::from_toml_str)).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The 1-based line, when the mistake has a place in the file.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|(line, _)| line)
    }

    /// The 1-based column (in characters), when the mistake has a place in the file.
    pub fn column(&self) -> Option<usize> {
        self.position.map(|(_, column)| column)
    }

    /// The key path (`budgets.requests`, `clients[1].networks[0]`); empty for the whole file.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The kind of mistake.
    pub fn kind(&self) -> PolicyErrorKind {
        self.kind
    }
}

impl PolicyError {
    fn render(&self) -> String {
        let mut out = self.origin.clone();
        if let Some((line, column)) = self.position {
            out.push_str(&format!(":{line}:{column}"));
        }
        out.push_str(": ");
        if !self.key.is_empty() {
            out.push_str(&self.key);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}
