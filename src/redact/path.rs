//! [`ElementPath`]: the FHIRPath subset redaction policies select elements with.

use std::fmt;
use std::str::FromStr;

/// The longest path text accepted, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// The element paths a redaction policy selects with: a small, documented subset of FHIRPath.
///
/// ```text
/// path    := root ( "." step )*
/// root    := resource-type | "*"                       Patient, Observation, * (any type)
/// step    := name [ "[x]" ] [ ".where(" field "=" 'value' ")" ]
///          | "extension('" url "')" | "modifierExtension('" url "')"
///          | "descendants()"
/// name    := [A-Za-z][A-Za-z0-9_]*
/// field   := name                                     a primitive member of the element
/// ```
///
/// - `Patient.telecom`, `Patient.address.line`: elements by name. Arrays are transparent, as in
///   FHIRPath: `Patient.address.line` is every line of every address.
/// - `Observation.value[x]`: a choice element, matching `valueQuantity`, `valueString`, ...
/// - `Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')`,
///   `Patient.telecom.where(use='home')`: only the repetitions whose `field` is exactly `value`.
/// - `Patient.extension('http://example.org/race')`: extensions by URL
///   (the same as `extension.where(url='...')`).
/// - `*.descendants().extension('http://example.org/x')`: at any depth under the root.
///
/// Selecting an element also selects its primitive sibling `_name` (id and extensions of a
/// primitive), so nothing of a removed value survives there.
///
/// ```
/// use fhirwall::redact::ElementPath;
///
/// let p: ElementPath = "Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')".parse().unwrap();
/// assert_eq!(p.root(), Some("Patient"));
/// assert_eq!(p.to_string(), "Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')");
/// assert!("Patient..name".parse::<ElementPath>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ElementPath {
    root: Option<String>,
    steps: Vec<Step>,
}

/// One step of an [`ElementPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// An element by name, possibly a choice (`value[x]`), possibly filtered.
    Element {
        /// The element name without `[x]`.
        name: String,
        /// Whether it was written `name[x]`.
        choice: bool,
        /// `where(field='value')`: keep only repetitions whose `field` equals `value`.
        filter: Option<Filter>,
    },
    /// `descendants()`: the following steps match at any depth (zero or more levels).
    Descendants,
}

/// A `where(field='value')` filter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Filter {
    /// The member compared (a primitive of the element: `system`, `use`, `url`).
    pub field: String,
    /// The exact value it must have.
    pub value: String,
}

/// Why a path did not parse. The message names the problem, never more than the policy text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid element path: {0}")]
pub struct PathError(pub &'static str);

impl ElementPath {
    /// The resource type the path starts at, `None` for `*`.
    pub fn root(&self) -> Option<&str> {
        self.root.as_deref()
    }

    /// The steps after the root.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The path of element definitions in the R4 tables (`Observation.value[x]`), ignoring
    /// filters; `None` when the path has `descendants()` or a `*` root.
    pub fn definition_path(&self) -> Option<String> {
        let mut out = self.root.clone()?;
        for step in &self.steps {
            match step {
                Step::Element { name, choice, .. } => {
                    out.push('.');
                    out.push_str(name);
                    if *choice {
                        out.push_str("[x]");
                    }
                }
                Step::Descendants => return None,
            }
        }
        Some(out)
    }
}

fn is_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads a single-quoted FHIRPath string starting at `rest` (after the opening quote); returns
/// the value and the text after the closing quote. `\'` and `\\` are the only escapes.
fn quoted(rest: &str) -> Result<(String, &str), PathError> {
    let mut value = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => return Ok((value, rest.get(i + 1..).unwrap_or(""))),
            '\\' => match chars.next() {
                Some((_, e @ ('\'' | '\\'))) => value.push(e),
                _ => return Err(PathError("unknown escape in a quoted string")),
            },
            c if c.is_control() => return Err(PathError("control character in a quoted string")),
            c => value.push(c),
        }
    }
    Err(PathError("unterminated quoted string"))
}

impl FromStr for ElementPath {
    type Err = PathError;

    fn from_str(text: &str) -> Result<Self, PathError> {
        if text.len() > MAX_PATH_LEN {
            return Err(PathError("path too long"));
        }
        let (root, mut rest) = match text.find('.') {
            Some(i) => (text.get(..i).unwrap_or(""), text.get(i..).unwrap_or("")),
            None => (text, ""),
        };
        let root = match root {
            "*" => None,
            r if is_name(r) && r.starts_with(|c: char| c.is_ascii_uppercase()) => {
                Some(r.to_string())
            }
            _ => return Err(PathError("the root must be a resource type or *")),
        };
        let mut steps: Vec<Step> = Vec::new();
        while !rest.is_empty() {
            rest = rest
                .strip_prefix('.')
                .ok_or(PathError("expected '.' between steps"))?;
            if let Some(after) = rest.strip_prefix("descendants()") {
                steps.push(Step::Descendants);
                rest = after;
                continue;
            }
            if let Some(after) = rest.strip_prefix("where(") {
                let Some(Step::Element { filter, .. }) = steps.last_mut() else {
                    return Err(PathError("where() must follow an element"));
                };
                if filter.is_some() {
                    return Err(PathError("only one where() per element"));
                }
                let eq = after
                    .find('=')
                    .ok_or(PathError("where() needs field='value'"))?;
                let field = after.get(..eq).unwrap_or("");
                if !is_name(field) {
                    return Err(PathError("where() field must be a name"));
                }
                let after = after
                    .get(eq + 1..)
                    .and_then(|a| a.strip_prefix('\''))
                    .ok_or(PathError("where() value must be quoted"))?;
                let (value, after) = quoted(after)?;
                rest = after
                    .strip_prefix(')')
                    .ok_or(PathError("where() is not closed"))?;
                *filter = Some(Filter {
                    field: field.to_string(),
                    value,
                });
                continue;
            }
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = rest.get(..end).unwrap_or("");
            if !is_name(name) {
                return Err(PathError("expected an element name"));
            }
            rest = rest.get(end..).unwrap_or("");
            if (name == "extension" || name == "modifierExtension") && rest.starts_with("('") {
                let (url, after) = quoted(rest.get(2..).unwrap_or(""))?;
                rest = after
                    .strip_prefix(')')
                    .ok_or(PathError("extension() is not closed"))?;
                steps.push(Step::Element {
                    name: name.to_string(),
                    choice: false,
                    filter: Some(Filter {
                        field: "url".into(),
                        value: url,
                    }),
                });
                continue;
            }
            let choice = if let Some(after) = rest.strip_prefix("[x]") {
                rest = after;
                true
            } else {
                false
            };
            steps.push(Step::Element {
                name: name.to_string(),
                choice,
                filter: None,
            });
        }
        if steps.is_empty() {
            return Err(PathError("a path must select an element below the root"));
        }
        if matches!(steps.last(), Some(Step::Descendants)) {
            return Err(PathError("descendants() must be followed by an element"));
        }
        Ok(ElementPath { root, steps })
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("'")
}

impl fmt::Display for ElementPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.as_deref().unwrap_or("*"))?;
        for step in &self.steps {
            match step {
                Step::Descendants => f.write_str(".descendants()")?,
                Step::Element {
                    name,
                    choice,
                    filter,
                } => {
                    write!(f, ".{name}")?;
                    if *choice {
                        f.write_str("[x]")?;
                    }
                    if let Some(filter) = filter {
                        write!(f, ".where({}=", filter.field)?;
                        write_quoted(f, &filter.value)?;
                        f.write_str(")")?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl serde::Serialize for ElementPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ElementPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether JSON member `key` is the element named by a step (`name`, or `name` + a type
/// suffix for a choice). A `_key` sibling is matched by the caller stripping the underscore.
#[inline(always)]
pub(crate) fn key_matches(key: &[u8], name: &str, choice: bool) -> bool {
    let name = name.as_bytes();
    if !choice {
        return super::strings::same(key, name);
    }
    match (key.get(..name.len()), key.get(name.len())) {
        (Some(prefix), Some(next)) => {
            next.is_ascii_uppercase() && super::strings::same(prefix, name)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        for text in [
            "Patient.telecom",
            "Patient.address.line",
            "Observation.value[x]",
            "Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')",
            "Patient.telecom.where(use='home')",
            "*.descendants().extension.where(url='http://x.org/a\\'b')",
        ] {
            let p: ElementPath = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
        }
        let e: ElementPath = "Patient.extension('http://x')".parse().unwrap();
        assert_eq!(e.to_string(), "Patient.extension.where(url='http://x')");
        assert_eq!(
            "Observation.value[x]"
                .parse::<ElementPath>()
                .unwrap()
                .definition_path()
                .unwrap(),
            "Observation.value[x]"
        );
    }

    #[test]
    fn refuses_malformed_paths() {
        for text in [
            "",
            "patient.name",
            "Patient",
            "Patient.",
            "Patient..name",
            "Patient.name.where(use=home)",
            "Patient.where(use='x')",
            "Patient.name.where(use='x').where(text='y')",
            "Patient.extension('x",
            "Patient.descendants()",
            "Patient.name[y]",
            "Patient.name-x",
        ] {
            assert!(text.parse::<ElementPath>().is_err(), "{text}");
        }
    }

    #[test]
    fn choice_keys() {
        assert!(key_matches(b"valueQuantity", "value", true));
        assert!(!key_matches(b"value", "value", true));
        assert!(!key_matches(b"valuequantity", "value", true));
        assert!(key_matches(b"value", "value", false));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_round_trips(text in "\\PC{0,60}") {
            if let Ok(p) = text.parse::<ElementPath>() {
                let again: ElementPath = p.to_string().parse().unwrap();
                proptest::prop_assert_eq!(again, p);
            }
        }

        #[test]
        fn structured_round_trip(
            root in "[A-Z][a-z]{0,8}",
            names in proptest::collection::vec("[a-z][a-zA-Z]{0,6}", 1..4),
            value in "[ -~]{0,12}",
        ) {
            let text = format!("{root}.{}.where(system='{}')", names.join("."),
                value.replace('\\', "\\\\").replace('\'', "\\'"));
            let p: ElementPath = text.parse().unwrap();
            proptest::prop_assert_eq!(p.to_string(), text);
        }
    }
}
