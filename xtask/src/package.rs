//! Reading the official `hl7.fhir.r4.core` npm package (a gzipped tarball) into memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use serde_json::Value;

/// The file name of the core package inside the R4 directory.
pub const PACKAGE_FILE: &str = "hl7.fhir.r4.core.tgz";

/// The resources of the core package that the tables are generated from.
///
/// Every collection is keyed and therefore iterated in a fixed order, so that the generated
/// output never depends on the order of the entries in the tarball.
#[derive(Debug, Default)]
pub struct Package {
    /// `StructureDefinition-*.json`, keyed by file name.
    pub structure_definitions: BTreeMap<String, Value>,
    /// `SearchParameter-*.json`, keyed by file name.
    pub search_parameters: BTreeMap<String, Value>,
    /// `CompartmentDefinition-patient.json`.
    pub patient_compartment: Option<Value>,
    /// `ValueSet-*.json`, keyed by canonical URL.
    pub value_sets: BTreeMap<String, Value>,
    /// `CodeSystem-*.json`, keyed by canonical URL.
    pub code_systems: BTreeMap<String, Value>,
}

impl Package {
    /// Reads `<r4_dir>/hl7.fhir.r4.core.tgz`.
    pub fn load(r4_dir: &Path) -> Result<Package, String> {
        let path = r4_dir.join(PACKAGE_FILE);
        let file = File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut archive = tar::Archive::new(GzDecoder::new(file));
        let entries = archive
            .entries()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut package = Package::default();
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("bad entry in {}: {e}", path.display()))?;
            let name = entry
                .path()
                .map_err(|e| format!("bad entry name in {}: {e}", path.display()))?
                .to_string_lossy()
                .into_owned();
            let Some(file_name) = name.strip_prefix("package/") else {
                continue;
            };
            if file_name.contains('/') || !file_name.ends_with(".json") {
                continue;
            }
            let wanted = [
                "StructureDefinition-",
                "SearchParameter-",
                "ValueSet-",
                "CodeSystem-",
            ]
            .iter()
            .any(|prefix| file_name.starts_with(prefix))
                || file_name == "CompartmentDefinition-patient.json";
            if !wanted {
                continue;
            }
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read {name}: {e}"))?;
            let value: Value =
                serde_json::from_str(&text).map_err(|e| format!("invalid JSON in {name}: {e}"))?;
            package.add(file_name, value)?;
        }
        if package.structure_definitions.is_empty() || package.search_parameters.is_empty() {
            return Err(format!(
                "{} does not look like hl7.fhir.r4.core",
                path.display()
            ));
        }
        Ok(package)
    }

    fn add(&mut self, file_name: &str, value: Value) -> Result<(), String> {
        let file_name = file_name.to_owned();
        if file_name.starts_with("StructureDefinition-") {
            self.structure_definitions.insert(file_name, value);
        } else if file_name.starts_with("SearchParameter-") {
            self.search_parameters.insert(file_name, value);
        } else if file_name.starts_with("CompartmentDefinition-") {
            self.patient_compartment = Some(value);
        } else {
            let url = str_field(&value, "url")
                .ok_or_else(|| format!("{file_name} has no url"))?
                .to_owned();
            let map = if file_name.starts_with("ValueSet-") {
                &mut self.value_sets
            } else {
                &mut self.code_systems
            };
            if map.insert(url.clone(), value).is_some() {
                return Err(format!("{url} is defined twice in the package"));
            }
        }
        Ok(())
    }
}

/// The string member `key` of a JSON object.
pub fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// The array member `key` of a JSON object (empty if absent).
pub fn array_field<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The boolean member `key` of a JSON object (`false` if absent).
pub fn bool_field(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The string elements of the array member `key` of a JSON object.
pub fn strings(value: &Value, key: &str) -> Vec<String> {
    array_field(value, key)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}
