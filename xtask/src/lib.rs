//! Developer tasks for fhirwall: the generator of the FHIR R4 tables in `src/fhir/tables`.
//!
//! [`generate`] reads the official core package `hl7.fhir.r4.core` 4.0.1 (the npm tarball
//! `hl7.fhir.r4.core.tgz`) and returns the text of every generated file. The output depends only
//! on the package: everything is sorted, so two runs give identical bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod elements;
mod emit;
pub mod package;
mod paths;
mod resources;
mod search;
mod valuesets;

pub use emit::HEADER;

/// Counts that describe one generation, for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Concrete resource types.
    pub resource_types: usize,
    /// Resource-specific search parameter rows (one per base type and code).
    pub search_param_rows: usize,
    /// Rows of the COMMON table (parameters of every resource type).
    pub common_search_params: usize,
    /// Distinct SearchParameter resources behind the rows.
    pub search_parameters: usize,
    /// Resource types in the Patient compartment.
    pub compartment_types: usize,
    /// StructureDefinitions the element table is made from.
    pub structures: usize,
    /// Elements.
    pub elements: usize,
    /// Primitive types.
    pub primitives: usize,
    /// Value sets of required bindings that could be fully expanded.
    pub value_sets_complete: usize,
    /// Value sets of required bindings that could not.
    pub value_sets_incomplete: usize,
}

/// The generated files (file name → contents) and their statistics.
pub fn generate_with_stats(r4_dir: &Path) -> Result<(BTreeMap<String, String>, Stats), String> {
    let package = package::Package::load(r4_dir)?;
    let types = resources::resource_types(&package)?;
    let params = search::collect(&package, &types)?;
    let compartment = search::patient_compartment(&package, &params)?;
    let tables = elements::collect(&package, &types)?;
    let complete = tables.value_sets.values().filter(|v| v.complete).count();
    let stats = Stats {
        resource_types: types.len(),
        search_param_rows: params.rows.len(),
        common_search_params: params.common.len(),
        search_parameters: params.count,
        compartment_types: compartment.len(),
        structures: tables.structures,
        elements: tables.elements.len(),
        primitives: tables.primitives.len(),
        value_sets_complete: complete,
        value_sets_incomplete: tables.value_sets.len() - complete,
    };
    let mut files = BTreeMap::new();
    files.insert("resource_types.rs".to_owned(), resources::emit(&types));
    files.insert("search_params.rs".to_owned(), search::emit(&params, &types));
    files.insert(
        "compartment.rs".to_owned(),
        search::emit_compartment(&compartment),
    );
    files.insert("elements.rs".to_owned(), elements::emit_elements(&tables));
    files.insert(
        "valuesets.rs".to_owned(),
        elements::emit_value_sets(&tables),
    );
    Ok((files, stats))
}

/// The generated files: file name (inside `src/fhir/tables`) → contents.
///
/// `r4_dir` is the directory holding `hl7.fhir.r4.core.tgz`.
pub fn generate(r4_dir: &Path) -> Result<BTreeMap<String, String>, String> {
    generate_with_stats(r4_dir).map(|(files, _)| files)
}

/// The workspace root (the parent of the xtask crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The R4 directory: `FHIR_R4_DIR` if set, else `../shared/fhir-r4` next to the workspace root.
pub fn default_r4_dir() -> PathBuf {
    match std::env::var_os("FHIR_R4_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("../shared/fhir-r4"),
    }
}

/// Where the tables live: `<root>/src/fhir/tables`.
pub fn default_out_dir() -> PathBuf {
    workspace_root().join("src/fhir/tables")
}

/// The names of the generated files whose contents differ from (or are missing in) `out_dir`.
pub fn stale_files(files: &BTreeMap<String, String>, out_dir: &Path) -> Vec<String> {
    files
        .iter()
        .filter(|(name, contents)| {
            std::fs::read_to_string(out_dir.join(name))
                .map_or(true, |on_disk| &on_disk != *contents)
        })
        .map(|(name, _)| name.clone())
        .collect()
}
