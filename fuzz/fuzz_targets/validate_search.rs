//! The validator's search-parameter checks (`validate::check_search`) on queries parsed from
//! arbitrary strings. The first byte holds flags (bit 0 `Prefer: handling=lenient`, bit 1 a
//! `max_count(10)` config), the second the type's index in `ResourceType::ALL` (past the end:
//! a system-level search).
//!
//! Invariants: no panic; a refusal is a 4xx with at least one problem, each naming a parameter
//! of the query in its expression.
#![no_main]

use fhirwall::fhir::{Query, ResourceType};
use fhirwall::validate::{check_search, ValidateConfig};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn configs() -> &'static [ValidateConfig; 2] {
    static CONFIGS: OnceLock<[ValidateConfig; 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| [ValidateConfig::new(), ValidateConfig::new().max_count(10)])
}

fuzz_target!(|data: &[u8]| {
    let [flags, index, rest @ ..] = data else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(query) = Query::parse(raw, 100) else {
        return;
    };
    let resource_type = ResourceType::ALL.get(usize::from(*index)).copied();
    let lenient = flags & 1 == 1;
    let config = &configs()[usize::from((flags >> 1) & 1)];
    if let Err(rejection) = check_search(&query, resource_type, lenient, config) {
        assert!(rejection.status().is_client_error());
        assert!(!rejection.problems().is_empty());
        let _ = rejection.to_outcome().to_json();
    }
});
