#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The committed JSON Schema of the policy file (`docs/policy.schema.json`) is the one the
//! policy types generate. Regenerate with
//! `FHIRWALL_BLESS=1 cargo test -p fhirwall --features schema --test policy_schema`.
#![cfg(feature = "schema")]

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/policy.schema.json");

#[test]
fn committed_schema_is_generated_schema() {
    let generated = serde_json::to_string_pretty(&fhirwall::policy::json_schema()).unwrap() + "\n";
    if std::env::var_os("FHIRWALL_BLESS").is_some() {
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")).unwrap();
        std::fs::write(COMMITTED, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/policy.schema.json is stale: run FHIRWALL_BLESS=1 cargo test -p fhirwall --features schema --test policy_schema"
    );
}

#[test]
fn schema_refuses_unknown_keys_everywhere() {
    let schema = fhirwall::policy::json_schema();
    assert_eq!(schema["additionalProperties"], false);
    let defs = schema["$defs"].as_object().unwrap();
    for name in [
        "Budgets",
        "TrustedClientSpec",
        "Tokens",
        "Validation",
        "Audit",
    ] {
        assert_eq!(defs[name]["additionalProperties"], false, "{name}");
    }
}
