//! The official FHIR R4 examples (package `hl7.fhir.r4.examples` 4.0.1, stored as
//! `tests/data/validate/examples-r4.tgz`, a copy of `../shared/fhir-r4/examples-r4.tgz`).

use std::io::Read;

/// Every JSON example as (file name, bytes), sorted by name.
pub fn json_examples() -> Vec<(String, Vec<u8>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/validate/examples-r4.tgz"
    );
    let file = std::fs::File::open(path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.push((name.rsplit('/').next().unwrap().to_owned(), bytes));
    }
    out.sort();
    out
}
