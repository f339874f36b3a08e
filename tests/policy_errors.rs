#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Policy files with each kind of mistake give the documented error: file, line, column, key
//! and what is wrong (issue #9, "Tests": unknown key, wrong type, bad CIDR, missing secret
//! file, contradictory settings). Cases: `tests/data/policy_errors.txt`.

use fhirwall::policy::{Policy, PolicyErrorKind};
use std::path::Path;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/policy");

struct Case {
    line: usize,
    snippet: String,
    position: String,
    key: String,
    fragment: String,
}

fn cases() -> Vec<Case> {
    let text = include_str!("data/policy_errors.txt");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.splitn(4, '|').map(str::trim).collect();
        assert_eq!(parts.len(), 4, "policy_errors.txt:{}: four fields", i + 1);
        out.push(Case {
            line: i + 1,
            snippet: parts[0].to_owned(),
            position: parts[1].to_owned(),
            key: parts[2].to_owned(),
            fragment: parts[3].to_owned(),
        });
    }
    out
}

fn load(snippet: &str) -> (String, Result<Policy, fhirwall::policy::PolicyError>) {
    match snippet.strip_prefix('@') {
        Some(file) => {
            let path = Path::new(DATA).join(file);
            (path.display().to_string(), Policy::load(&path))
        }
        None => {
            let text = snippet.replace("\\n", "\n");
            (
                "snippet.toml".to_owned(),
                Policy::from_toml_str_in(&text, "snippet.toml", DATA),
            )
        }
    }
}

#[test]
fn every_mistake_names_its_line_and_key() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let (origin, result) = load(&case.snippet);
        let Err(e) = result else {
            failures.push(format!(
                "policy_errors.txt:{}: loaded without error",
                case.line
            ));
            continue;
        };
        let position = match (e.line(), e.column()) {
            (Some(l), Some(c)) => format!("{l}:{c}"),
            _ => "-".to_owned(),
        };
        let shown = e.to_string();
        let expected_prefix = match position.as_str() {
            "-" => format!("{origin}: "),
            p => format!("{origin}:{p}: "),
        };
        if position != case.position
            || e.key() != case.key
            || !e.message().contains(&case.fragment)
            || !shown.starts_with(&expected_prefix)
        {
            failures.push(format!(
                "policy_errors.txt:{}: expected {} | {} | {}\n   got {shown}",
                case.line, case.position, case.key, case.fragment
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn kinds_are_reported() {
    let kind = |snippet: &str| load(snippet).1.unwrap_err().kind();
    assert_eq!(kind("[budgets]\\nrequets = 1"), PolicyErrorKind::UnknownKey);
    assert_eq!(
        kind("[transport]\\nrequire_tls = 1"),
        PolicyErrorKind::WrongType
    );
    assert_eq!(
        kind("[network]\\nallow = [\"x\"]"),
        PolicyErrorKind::InvalidValue
    );
    assert_eq!(kind("@missing_secret_file.toml"), PolicyErrorKind::Secret);
    assert_eq!(
        kind("@binding_required.toml"),
        PolicyErrorKind::Contradiction
    );
    assert_eq!(kind("[budgets\\nx = 1"), PolicyErrorKind::Syntax);
}

#[test]
fn a_missing_file_is_named() {
    let e = Policy::load(Path::new(DATA).join("no-such-policy.toml")).unwrap_err();
    assert_eq!(e.kind(), PolicyErrorKind::Io);
    assert!(
        e.to_string()
            .ends_with("no-such-policy.toml: cannot read the policy file: no such file"),
        "{e}"
    );
}

#[test]
fn secret_values_never_appear_in_errors() {
    let e = load("[tokens]\\nissuer = \"x\"\\ndanger_hmac_secret = \"hunter2-hunter2\"")
        .1
        .unwrap_err();
    assert!(!format!("{e} {e:?}").contains("hunter2"));
}
