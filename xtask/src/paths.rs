//! Element paths from a search parameter's FHIRPath expression.
//!
//! Only the simple shapes that the core package uses are understood; anything else yields no
//! path for that part of the expression:
//!
//! - `Type.a.b` gives `a.b`, and so does `a.b` (relative to the resource);
//! - `(Type.a as X)` and `(Type.a as X).b` give `a` and `a.b`;
//! - `.as(X)` and `.ofType(X)` are dropped;
//! - `.where(...)` filters are dropped (`Type.a.where(system='phone')` gives `a`,
//!   `Type.a.where(type='x').b` gives `a.b`);
//! - indexers are dropped (`Bundle.entry[0].resource` gives `entry.resource`);
//! - any other function (`extension('…')`, `exists()`, …) or operator makes the part
//!   underivable.

/// Splits `text` at every top-level occurrence of `separator` (outside parentheses, brackets and
/// quotes).
fn split_top_level(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, c) if c == separator && depth == 0 => {
                parts.push(text.get(start..i).unwrap_or_default());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or_default());
    parts
}

/// The byte index of the parenthesis closing the one that opens `text`.
fn closing_paren(text: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Removes a top-level ` as Type` cast from the end of `text`.
fn strip_as(text: &str) -> &str {
    let words = split_top_level(text, ' ');
    match words.as_slice() {
        [path, "as", _] => path,
        _ => text,
    }
}

/// The path of one `|`-separated part of an expression, relative to `base`.
fn part_path(part: &str, base: &str) -> Option<String> {
    let mut part = part.trim().to_owned();
    if part.starts_with('(') {
        let close = closing_paren(&part)?;
        let inner = strip_as(part.get(1..close)?.trim()).to_owned();
        let rest = part.get(close + 1..)?.to_owned();
        part = format!("{inner}{rest}");
    }
    let part = strip_as(&part);
    let all: Vec<&str> = split_top_level(part, '.');
    let segments = match all.split_first() {
        Some((first, rest)) if *first == base => rest,
        // A path relative to the resource (`name | alias` on InsurancePlan).
        Some((first, _)) if first.starts_with(|c: char| c.is_ascii_lowercase()) => all.as_slice(),
        _ => return None,
    };
    let mut path: Vec<&str> = Vec::new();
    for &segment in segments {
        let name = segment.split('[').next().unwrap_or_default();
        let is_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && name.starts_with(|c: char| c.is_ascii_alphabetic());
        let is_index = segment
            .get(name.len()..)
            .is_some_and(|rest| rest.is_empty() || is_indexer(rest));
        if is_name && is_index {
            path.push(name);
        } else if ["where(", "as(", "ofType("]
            .iter()
            .any(|f| segment.starts_with(f) && segment.ends_with(')'))
        {
            continue;
        } else {
            return None;
        }
    }
    if path.is_empty() {
        None
    } else {
        Some(path.join("."))
    }
}

fn is_indexer(text: &str) -> bool {
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
}

/// The element paths (relative to `base`, sorted, without duplicates) that `expression` selects
/// on resources of type `base`.
pub fn derive_paths(expression: &str, base: &str) -> Vec<String> {
    let mut paths: Vec<String> = split_top_level(expression, '|')
        .into_iter()
        .filter_map(|part| part_path(part, base))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

#[cfg(test)]
mod tests {
    use super::derive_paths;

    #[test]
    fn simple_and_filtered_paths() {
        assert_eq!(
            derive_paths("Observation.subject", "Observation"),
            ["subject"]
        );
        assert_eq!(
            derive_paths(
                "Account.subject.where(resolve() is Patient) | Observation.subject",
                "Account"
            ),
            ["subject"]
        );
        assert_eq!(
            derive_paths(
                "Patient.telecom.where(system='phone') | Person.telecom",
                "Patient"
            ),
            ["telecom"]
        );
        assert_eq!(
            derive_paths(
                "Library.relatedArtifact.where(type='depends-on').resource",
                "Library"
            ),
            ["relatedArtifact.resource"]
        );
        assert_eq!(
            derive_paths("Bundle.entry[0].resource", "Bundle"),
            ["entry.resource"]
        );
        assert_eq!(
            derive_paths("Encounter.participant.individual", "Encounter"),
            ["participant.individual"]
        );
    }

    #[test]
    fn casts() {
        assert_eq!(
            derive_paths("(Observation.value as CodeableConcept).text", "Observation"),
            ["value.text"]
        );
        assert_eq!(
            derive_paths(
                "(DeviceRequest.code as CodeableConcept) | (DeviceRequest.code as Reference)",
                "DeviceRequest"
            ),
            ["code"]
        );
        assert_eq!(
            derive_paths(
                "Condition.onset.as(Age) | Condition.onset.as(Range)",
                "Condition"
            ),
            ["onset"]
        );
        assert_eq!(
            derive_paths(
                "QuestionnaireResponse.item.where(hasExtension('x')).answer.value.ofType(Reference)",
                "QuestionnaireResponse"
            ),
            ["item.answer.value"]
        );
    }

    #[test]
    fn underivable() {
        assert!(derive_paths(
            "Patient.deceased.exists() and Patient.deceased != false",
            "Patient"
        )
        .is_empty());
        assert!(derive_paths("Device.extension('http://x')", "Device").is_empty());
        assert!(derive_paths("Observation", "Observation").is_empty());
        assert!(derive_paths("", "Observation").is_empty());
        assert!(derive_paths("MedicationRequest.subject", "Medication").is_empty());
        assert!(derive_paths("exists()", "Patient").is_empty());
    }
}
