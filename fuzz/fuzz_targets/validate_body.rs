//! The validator's body checks (`validate::check_json`, `validate::check_resource`): strict
//! JSON and FHIR R4 structure, on arbitrary bytes.
//!
//! Invariants: no panic; what `check_json` accepts `serde_json` parses; a body
//! `check_resource` accepts passes `check_json`, is an object whose `resourceType` is the type
//! reported, and its `id` is the one reported; every refusal is a 4xx with at least one problem.
#![no_main]

use fhirwall::validate::{check_json, check_resource, ValidateConfig};
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::sync::OnceLock;

/// The members the check reports; every other member is skipped without being converted (so
/// numbers beyond `f64` parse, as they are valid JSON).
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    id: Option<String>,
}

fn config() -> &'static ValidateConfig {
    static CONFIG: OnceLock<ValidateConfig> = OnceLock::new();
    CONFIG.get_or_init(ValidateConfig::new)
}

fuzz_target!(|data: &[u8]| {
    let json_ok = check_json(data, 64).is_ok();
    if json_ok {
        assert!(
            serde_json::from_slice::<IgnoredAny>(data).is_ok(),
            "check_json accepted what serde_json refuses"
        );
    }
    match check_resource(data, config()) {
        Ok(checked) => {
            assert!(
                check_json(data, 128).is_ok(),
                "check_resource accepted bad JSON"
            );
            let head: Head = serde_json::from_slice(data).expect("accepted body parses");
            assert_eq!(
                head.resource_type.as_deref(),
                Some(checked.resource_type.as_str())
            );
            assert_eq!(head.id, checked.id);
        }
        Err(rejection) => {
            assert!(rejection.status().is_client_error());
            assert!(!rejection.problems().is_empty());
            let _ = rejection.to_outcome().to_json();
        }
    }
});
