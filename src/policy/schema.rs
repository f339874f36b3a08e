//! The JSON Schema of the policy file (feature `schema`), for editors that check TOML
//! against a schema (Taplo, Even Better TOML).

use schemars::{json_schema, Schema, SchemaGenerator};

/// The JSON Schema (2020-12) of the policy file, generated from [`PolicyDocument`](super::PolicyDocument).
///
/// The repository commits it as `docs/policy.schema.json`; a test keeps the two equal.
///
/// ```
/// let schema = fhirwall::policy::json_schema();
/// assert_eq!(schema["title"], "fhirwall policy");
/// assert_eq!(schema["additionalProperties"], false);
/// ```
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(super::PolicyDocument);
    schema.insert("title".into(), "fhirwall policy".into());
    schema.insert(
        "$id".into(),
        "https://docs.rs/fhirwall/latest/policy.schema.json".into(),
    );
    schema.to_value()
}

fn caller_match() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "description": "Callers: any listed client name (mTLS trusted client or token client_id) or granted scope.",
        "properties": {
            "clients": { "type": "array", "items": { "type": "string" } },
            "scopes": { "type": "array", "items": { "type": "string" } }
        },
        "additionalProperties": false
    })
}

/// `[[redaction.rules]]`: the redact module's `Rule`.
pub(crate) fn redaction_rules(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "description": "Do `action` to the elements `paths` select (or hide whole `resources`), for the callers `when` selects except `except`.",
            "properties": {
                "resources": { "type": "array", "items": { "type": "string" } },
                "paths": { "type": "array", "items": { "type": "string" } },
                "action": {
                    "type": "object",
                    "properties": {
                        "kind": { "enum": ["remove", "mask", "year_only", "remove_resource"] },
                        "value": {}
                    },
                    "required": ["kind"],
                    "additionalProperties": false
                },
                "when": caller_match(),
                "except": caller_match(),
                "required": { "enum": ["mask", "remove"] }
            },
            "required": ["action"],
            "additionalProperties": false
        }
    })
}

/// `[[redaction.labels]]`: the redact module's `LabelRule`.
pub(crate) fn redaction_labels(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "description": "Hide resources carrying any of these meta.security codes, except from `except`.",
            "properties": {
                "system": { "type": "string" },
                "codes": { "type": "array", "items": { "type": "string" } },
                "except": caller_match()
            },
            "required": ["codes"],
            "additionalProperties": false
        }
    })
}
