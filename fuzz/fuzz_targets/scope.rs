//! The SMART scope grammar (`smart::Scope`, `smart::ScopeSet`).
//!
//! Invariants: no panic; a scope that parses prints as text that parses again to a scope with
//! the same access; a set accepted under `RefuseToken` dropped nothing and equals the set read
//! under `DropScope`; the scope claim as a string and as an array of strings read the same.
#![no_main]

use fhirwall::fhir::ResourceType;
use fhirwall::smart::{MalformedScopes, Permissions, Scope, ScopeSet};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const PROBES: [ResourceType; 4] = [
    ResourceType::Patient,
    ResourceType::Observation,
    ResourceType::Binary,
    ResourceType::AuditEvent,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scope) = Scope::parse(text) {
        let shown = scope.to_string();
        let again = Scope::parse(&shown)
            .unwrap_or_else(|e| panic!("{text:?} printed as {shown:?}, which fails: {e:?}"));
        if let (Some(a), Some(b)) = (scope.as_resource(), again.as_resource()) {
            assert_eq!(a.context(), b.context());
            assert_eq!(a.resource_type(), b.resource_type());
            assert_eq!(a.permissions(), b.permissions());
            assert_eq!(a.params(), b.params());
        } else {
            assert_eq!(scope.as_resource().is_some(), again.as_resource().is_some());
        }
    }
    let strict = ScopeSet::parse(text, MalformedScopes::RefuseToken);
    let lenient = ScopeSet::parse(text, MalformedScopes::DropScope);
    if let Ok(strict) = &strict {
        assert_eq!(strict.dropped(), 0);
        let lenient = lenient
            .as_ref()
            .expect("lenient refused what strict accepted");
        assert_eq!(strict.to_string(), lenient.to_string());
        for rt in PROBES {
            for needed in [Permissions::READ, Permissions::SEARCH, Permissions::CREATE] {
                assert_eq!(
                    strict.grants_any(rt, needed),
                    lenient.grants_any(rt, needed)
                );
                let _ = strict.grants_unconditionally(rt, needed);
            }
        }
        let _ = strict.grants_every_type_unconditionally(Permissions::READ);
    }
    let array = Value::Array(
        text.split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect(),
    );
    let from_array = ScopeSet::from_claim(&array, MalformedScopes::RefuseToken);
    assert_eq!(
        strict.as_ref().map(|s| s.to_string()).ok(),
        from_array.as_ref().map(|s| s.to_string()).ok()
    );
});
