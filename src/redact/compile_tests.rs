//! Tests of the policy compiler (in their own file to keep `compile.rs` readable).
use super::*;

fn rule(path: &str, action: Action) -> Policy {
    Policy {
        rules: vec![Rule::new([path], action).unwrap()],
        ..Policy::default()
    }
}

#[test]
fn typos_are_refused() {
    assert!(Redactor::new(rule("Patient.telcom", Action::Remove)).is_err());
    assert!(Redactor::new(rule("Patiant.telecom", Action::Remove)).is_err());
    assert!(Redactor::new(rule("Patient.name.family", Action::Remove)).is_ok());
    assert!(Redactor::new(rule("Observation.value[x]", Action::Remove)).is_ok());
    assert!(Redactor::new(rule("Questionnaire.item.item.text", Action::Remove)).is_ok());
}

#[test]
fn mask_values_must_fit() {
    let m = |v| Action::Mask { value: Some(v) };
    assert!(Redactor::new(rule("Patient.active", m(serde_json::json!(true)))).is_ok());
    assert!(Redactor::new(rule("Patient.active", m(serde_json::json!("x")))).is_err());
    assert!(Redactor::new(rule("Patient.name", m(serde_json::json!("x")))).is_err());
    assert!(Redactor::new(rule("Patient.gender", Action::YearOnly)).is_err());
}

fn with_callers(when: Option<CallerMatch>, except: Option<CallerMatch>) -> Policy {
    let mut rule = Rule::new(["Patient.telecom"], Action::Remove).unwrap();
    rule.when = when;
    rule.except = except;
    Policy {
        rules: vec![rule],
        ..Policy::default()
    }
}

fn predicates(names: &[&str]) -> CallerMatch {
    CallerMatch {
        predicates: names.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn unknown_predicates_are_refused_with_rule_and_name() {
    // A typo in `when` would silently switch the rule off for everyone.
    let policy = with_callers(Some(predicates(&["on-cal"])), None);
    let err = Redactor::builder(policy.clone())
        .predicate("on-call", |_, _| true)
        .build()
        .unwrap_err();
    assert!(
        err.0.starts_with("rule 0: unknown predicate \"on-cal\""),
        "{err}"
    );
    assert!(Redactor::new(policy.clone()).is_err());
    assert!(Redactor::builder(policy.clone())
        .predicate("on-cal", |_, _| true)
        .build()
        .is_ok());
    assert!(Redactor::builder(policy)
        .declare_predicate("on-cal")
        .build()
        .is_ok());
    // In `except` and in a label rule's `except` too.
    let except = with_callers(None, Some(predicates(&["x"])));
    assert!(Redactor::new(except).unwrap_err().0.contains("\"x\""));
    let labels = Policy {
        labels: vec![LabelRule {
            system: None,
            codes: vec!["R".into()],
            except: predicates(&["y"]),
        }],
        ..Policy::default()
    };
    let err = Redactor::new(labels).unwrap_err();
    assert!(
        err.0.starts_with("label rule 0: unknown predicate \"y\""),
        "{err}"
    );
}

#[test]
fn names_that_could_never_match_are_refused() {
    let clients = |c: &str| Some(CallerMatch::clients([c]));
    assert!(Redactor::new(with_callers(clients(""), None)).is_err());
    assert!(Redactor::new(with_callers(clients(" research"), None)).is_err());
    assert!(Redactor::new(with_callers(clients("research"), None)).is_ok());
    let scopes = |s: &str| Some(CallerMatch::scopes([s]));
    assert!(Redactor::new(with_callers(scopes(""), None)).is_err());
    assert!(Redactor::new(with_callers(scopes("user/*.rs"), None)).is_ok());
    #[cfg(feature = "smart")]
    {
        // Callers' scopes are in SMART v2 syntax: the v1 spelling would never match.
        let err = Redactor::new(with_callers(scopes("user/*.read"), None)).unwrap_err();
        assert!(err.0.contains("user/*.rs"), "{err}");
        assert!(Redactor::new(with_callers(scopes("Patient/*.rs"), None)).is_err());
    }
    let empty_rule = Policy {
        rules: vec![Rule::new(Vec::<String>::new(), Action::Remove).unwrap()],
        ..Policy::default()
    };
    assert!(Redactor::new(empty_rule).is_err());
    let no_types = Policy {
        rules: vec![Rule::remove_resources(Vec::<String>::new())],
        ..Policy::default()
    };
    assert!(Redactor::new(no_types).is_err());
    let no_codes = Policy {
        labels: vec![LabelRule {
            system: None,
            codes: vec![],
            except: CallerMatch::default(),
        }],
        ..Policy::default()
    };
    assert!(Redactor::new(no_codes).is_err());
    assert!(Redactor::new(Policy {
        rules: vec![Rule::remove_resources(["Patiant"])],
        ..Policy::default()
    })
    .is_err());
}

#[test]
fn loose_paths_and_filter_fields_must_name_r4_elements() {
    for ok in [
        "*.meta.tag",
        "*.identifier",
        "*.descendants().extension('urn:x')",
        "*.descendants().identifier.where(system='urn:x')",
        "Patient.descendants().value[x]",
        "Patient.identifier.where(system='urn:x')",
        "Patient.telecom.where(use='home')",
        "Patient.extension('urn:x')",
    ] {
        assert!(Redactor::new(rule(ok, Action::Remove)).is_ok(), "{ok}");
    }
    for bad in [
        "*.telcom",
        "*.descendants().extenson.where(url='urn:x')",
        "*.descendants().identifier.where(sytem='urn:x')",
        "Patient.identifier.where(sytem='urn:x')",
        "Patient.telecom.where(usage='home')",
        "Patiant.descendants().identifier",
        "Patient.contact.descendants().valu[x]",
    ] {
        assert!(Redactor::new(rule(bad, Action::Remove)).is_err(), "{bad}");
    }
}

#[test]
fn required_elements_are_known() {
    // FHIR R4 Observation.status is 1..1.
    let r = Redactor::new(rule("Observation.status", Action::Remove)).unwrap();
    assert!(r.inner.selectors.first().unwrap().required);
}
