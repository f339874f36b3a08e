//! The count the walk works out ([`Plan::redact_counted`]) against the budget layer's own
//! count of the body written (`limit::count`), which it stands in for: table cases
//! (tests/data/redact/counts.txt), every official R4 example under four policies, and
//! generated searchsets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::compile::{Plan, Redactor};
use super::outcome::Redacted;
use super::policy::{Action, Caller, LabelRule, Policy, Rule};
use crate::limit::count::count;
use crate::limit::response::BodyKind;
use proptest::prelude::*;

const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

fn redactor(name: &str) -> Redactor {
    let rules = match name {
        "labels" => Vec::new(),
        "selectors" => vec![Rule::new(["Patient.telecom"], Action::Remove).unwrap()],
        "bundle" => vec![Rule::new(["Bundle.entry.fullUrl"], Action::Remove).unwrap()],
        "hide" => vec![Rule::remove_resources(["Observation"])],
        other => panic!("unknown policy {other}"),
    };
    let labels = vec![LabelRule {
        system: Some(CONFIDENTIALITY.into()),
        codes: vec!["R".into()],
        except: Default::default(),
    }];
    Redactor::builder(Policy {
        rules,
        labels,
        ..Policy::default()
    })
    .max_body(64 << 20)
    .build()
    .unwrap()
}

/// The walk's count, checked against the budget's count of the body written whenever known;
/// `None` when the body is refused or hidden whole (no body is counted then).
fn counted(plan: &Plan, body: &[u8]) -> Option<Option<u64>> {
    let (redacted, n) = plan.redact_counted(body, true).ok()?;
    let out = match redacted {
        Redacted::Unchanged => body.to_vec(),
        Redacted::Changed { body, .. } => body.to_vec(),
        Redacted::Hidden => return None,
    };
    if let Some(n) = n {
        assert_eq!(
            count(&out, BodyKind::Json),
            Ok(n),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    Some(n)
}

#[test]
fn table_cases() {
    let mut cases = 0;
    for line in include_str!("../../tests/data/redact/counts.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split(" | ").map(str::trim).collect();
        let [policy, body, expected] = cols[..] else {
            panic!("{line}: expected 3 columns");
        };
        let expected = match expected {
            "-" => None,
            n => Some(n.parse::<u64>().unwrap()),
        };
        let plan = redactor(policy).plan(&Caller::anonymous());
        let got = counted(&plan, body.as_bytes()).unwrap_or_else(|| panic!("{line}: refused"));
        assert_eq!(got, expected, "{line}");
        cases += 1;
    }
    assert!(cases >= 25, "{cases}");
}

// Shared with the integration tests, where its function must be `pub`.
#[allow(unreachable_pub)]
#[path = "../../tests/support/r4_examples.rs"]
mod r4_examples;

/// Every official example, under each policy: a known count is always the budget's own. Most
/// are known (all but the Bundles of responses, bodies with an odd entry or `search`, and the
/// Bundles a `bundle` rule touches).
#[test]
fn official_examples_count_as_the_budget_counts() {
    let examples = r4_examples::json_examples();
    assert!(examples.len() >= 700);
    for policy in ["labels", "selectors", "bundle", "hide"] {
        let plan = redactor(policy).plan(&Caller::anonymous());
        let (mut known, mut total) = (0, 0);
        for (_, bytes) in &examples {
            if let Some(n) = counted(&plan, bytes) {
                total += 1;
                known += usize::from(n.is_some());
            }
        }
        // (`hide` hides the 64 single Observations whole: nothing to count.)
        assert!(total >= 650, "{policy}: {total}");
        println!("{policy}: the walk knows the count of {known} of {total} bodies");
        if policy != "bundle" {
            assert!(known * 100 >= total * 95, "{policy}: {known} of {total}");
        }
    }
}

fn entry() -> impl Strategy<Value = String> {
    // (A `null` resource is refused by redaction, as any resource that is not an object.)
    let resource = prop_oneof![
        Just(r#"{"resourceType":"Patient","id":"p"}"#.to_owned()),
        Just(r#"{"resourceType":"Observation","status":"final"}"#.to_owned()),
        Just(format!(
            r#"{{"resourceType":"Observation","meta":{{"security":[{{"system":"{CONFIDENTIALITY}","code":"R"}}]}}}}"#
        )),
        Just(r#"{"resourceType":"OperationOutcome","issue":[]}"#.to_owned()),
    ];
    let search = prop_oneof![
        Just(None),
        Just(Some("null".to_owned())),
        Just(Some("{}".to_owned())),
        Just(Some(r#"{"mode":"match"}"#.to_owned())),
        Just(Some(r#"{"mode":"include"}"#.to_owned())),
        Just(Some(r#"{"mode":"outcome"}"#.to_owned())),
        Just(Some(r#"{"mode":null}"#.to_owned())),
    ];
    (proptest::option::of(resource), search, any::<bool>()).prop_map(|(r, s, url)| {
        let mut members = Vec::new();
        if url {
            members.push(r#""fullUrl":"urn:uuid:1""#.to_owned());
        }
        if let Some(r) = r {
            members.push(format!(r#""resource":{r}"#));
        }
        if let Some(s) = s {
            members.push(format!(r#""search":{s}"#));
        }
        format!("{{{}}}", members.join(","))
    })
}

proptest! {
    /// Whatever the entries, their labels and search modes, a count the walk knows is the
    /// budget's count of what was written.
    #[test]
    fn generated_bundles_count_as_the_budget_counts(
        entries in proptest::collection::vec(entry(), 0..12),
        kind in prop_oneof![Just("searchset"), Just("collection"), Just("history"), Just("batch-response")],
        policy in prop_oneof![Just("labels"), Just("hide"), Just("selectors")],
    ) {
        let body = if entries.is_empty() {
            format!(r#"{{"resourceType":"Bundle","type":"{kind}"}}"#)
        } else {
            format!(r#"{{"resourceType":"Bundle","type":"{kind}","entry":[{}]}}"#, entries.join(","))
        };
        let plan = redactor(policy).plan(&Caller::anonymous());
        let n = counted(&plan, body.as_bytes());
        if kind != "batch-response" {
            prop_assert!(matches!(n, Some(Some(_))), "{body}");
        }
    }
}
