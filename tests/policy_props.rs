#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The policy loader is a parser of operator input: no input makes it panic, and every error
//! it reports points inside the text.

use fhirwall::policy::Policy;
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../examples/policy.toml");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/policy");

fn check(text: &str) {
    if let Err(e) = Policy::from_toml_str_in(text, "p.toml", DATA) {
        let lines = text.lines().count() + 1;
        if let Some(line) = e.line() {
            assert!(line >= 1 && line <= lines, "line {line} of {lines}: {e}");
        }
        assert!(e.to_string().starts_with("p.toml"));
    }
}

/// TOML-ish fragments: section headers, keys from the format, values of every type.
fn tomlish() -> impl Strategy<Value = String> {
    let header = prop::sample::select(vec![
        "[service]",
        "[network]",
        "[transport]",
        "[routes]",
        "[[clients]]",
        "[tokens]",
        "[authorization]",
        "[budgets]",
        "[budgets.caps]",
        "[budgets.store]",
        "[validation]",
        "[audit]",
        "[[audit.sinks]]",
        "[[routes.resources]]",
        "[[routes.sunsets]]",
        "[redaction]",
        "[[redaction.rules]]",
        "[smart_configuration]",
        "[forwarded_certificates]",
        "[x.y.z]",
    ]);
    let key = prop::sample::select(vec![
        "name",
        "requests",
        "resources",
        "allow",
        "deny",
        "type",
        "interactions",
        "issuer",
        "audiences",
        "salt",
        "kind",
        "paths",
        "action",
        "max_count",
        "networks",
        "windows",
        "san_dns",
        "require_tls",
        "prefix",
        "sunset_at",
        "public_keys_file",
        "base_path",
        "danger_no_authentication",
        "token_endpoint",
        "scopes_supported",
        "hidden_status",
    ]);
    let value = prop_oneof![
        "\"[ -~]{0,20}\"".prop_map(|s| s),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("[\"10.0.0.0/8\", \"Patient\"]".to_owned()),
        Just("{ env = \"HOME\" }".to_owned()),
        Just("{ file = \"issuer.pub.pem\" }".to_owned()),
        Just("\"30/minute\"".to_owned()),
        Just("[{ tz = \"UTC\", days = \"Mon\", hours = \"00:00-24:00\" }]".to_owned()),
        "[ -~\\n]{0,12}".prop_map(|s| s),
    ];
    let line = prop_oneof![
        header.prop_map(str::to_owned),
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
    ];
    prop::collection::vec(line, 0..24).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tomlish_input_never_panics(text in tomlish()) {
        check(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn damaged_example_never_panics(cut in 0usize..EXAMPLE.len(), len in 0usize..40, insert in "[ -~\\n]{0,8}") {
        let mut text = EXAMPLE.to_owned();
        let mut start = cut.min(text.len());
        while !text.is_char_boundary(start) { start -= 1; }
        let mut end = (start + len).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        text.replace_range(start..end, &insert);
        // Relative paths of the example are from examples/.
        let _ = Policy::from_toml_str_in(&text, "p.toml", concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    }
}
