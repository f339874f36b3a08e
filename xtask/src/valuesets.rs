//! Expanding the value sets of required bindings from the package's ValueSets and CodeSystems.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::package::{array_field, str_field, strings, Package};

/// A (system, code) pair.
type Coded = (String, String);

/// The result of expanding one value set.
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    /// The codes found, sorted and deduplicated (without their systems).
    pub codes: Vec<String>,
    /// Whether `codes` is the whole value set.
    pub complete: bool,
}

/// Removes a `|version` suffix from a canonical URL.
pub fn strip_version(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}

/// Expands value sets, remembering the results.
pub struct Expander<'a> {
    package: &'a Package,
    done: BTreeMap<String, (BTreeSet<Coded>, bool)>,
    in_progress: BTreeSet<String>,
}

impl<'a> Expander<'a> {
    /// An expander over the ValueSets and CodeSystems of `package`.
    pub fn new(package: &'a Package) -> Self {
        Expander {
            package,
            done: BTreeMap::new(),
            in_progress: BTreeSet::new(),
        }
    }

    /// Expands the value set with canonical `url` (any `|version` is ignored).
    ///
    /// The expansion is incomplete when the value set or a code system it needs is not in the
    /// package (or not complete there), or when it uses a filter.
    pub fn expand(&mut self, url: &str) -> Expansion {
        let (set, complete) = self.expand_coded(strip_version(url));
        let codes: BTreeSet<String> = set.into_iter().map(|(_, code)| code).collect();
        Expansion {
            codes: codes.into_iter().collect(),
            complete,
        }
    }

    fn expand_coded(&mut self, url: &str) -> (BTreeSet<Coded>, bool) {
        if let Some(done) = self.done.get(url) {
            return done.clone();
        }
        if !self.in_progress.insert(url.to_owned()) {
            // A value set that includes itself: give up on it.
            return (BTreeSet::new(), false);
        }
        let package = self.package;
        let result = match package.value_sets.get(url).and_then(|vs| vs.get("compose")) {
            None => (BTreeSet::new(), false),
            Some(compose) => {
                let mut set = BTreeSet::new();
                let mut complete = true;
                for include in array_field(compose, "include") {
                    let (codes, ok) = self.include(include);
                    set.extend(codes);
                    complete &= ok;
                }
                for exclude in array_field(compose, "exclude") {
                    let (codes, ok) = self.include(exclude);
                    // Not knowing everything that is excluded, the rest may be too much.
                    complete &= ok;
                    set.retain(|c| !codes.contains(c));
                }
                (set, complete)
            }
        };
        self.in_progress.remove(url);
        self.done.insert(url.to_owned(), result.clone());
        result
    }

    /// The codes of one `compose.include` (or `exclude`) entry.
    fn include(&mut self, include: &Value) -> (BTreeSet<Coded>, bool) {
        let mut complete = true;
        let mut result: Option<BTreeSet<Coded>> = None;
        if let Some(system) = str_field(include, "system") {
            let concepts = array_field(include, "concept");
            let codes: BTreeSet<Coded> = if !array_field(include, "filter").is_empty() {
                complete = false;
                BTreeSet::new()
            } else if !concepts.is_empty() {
                concepts
                    .iter()
                    .filter_map(|c| str_field(c, "code"))
                    .map(|code| (system.to_owned(), code.to_owned()))
                    .collect()
            } else {
                match self.package.code_systems.get(system) {
                    Some(cs) if str_field(cs, "content") == Some("complete") => {
                        let mut codes = BTreeSet::new();
                        collect_concepts(system, array_field(cs, "concept"), &mut codes);
                        codes
                    }
                    _ => {
                        complete = false;
                        BTreeSet::new()
                    }
                }
            };
            result = Some(codes);
        }
        for url in strings(include, "valueSet") {
            let (codes, ok) = self.expand_coded(strip_version(&url));
            complete &= ok;
            result = Some(match result {
                None => codes,
                Some(previous) => previous.intersection(&codes).cloned().collect(),
            });
        }
        match result {
            Some(codes) => (codes, complete),
            None => (BTreeSet::new(), false),
        }
    }
}

/// Adds the codes of `concepts` and of their nested concepts.
fn collect_concepts(system: &str, concepts: &[Value], out: &mut BTreeSet<Coded>) {
    for concept in concepts {
        if let Some(code) = str_field(concept, "code") {
            out.insert((system.to_owned(), code.to_owned()));
        }
        collect_concepts(system, array_field(concept, "concept"), out);
    }
}
