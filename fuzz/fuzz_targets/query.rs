//! The query parser (`fhir::Query`): raw query strings and form bodies.
//!
//! Invariants: no panic; an accepted query has at most `max_params` parameters, every index
//! below `len()` is readable, and no value holds a control character.
#![no_main]

use fhirwall::fhir::Query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let max = usize::from(limit % 128);
    let Ok(query) = Query::parse(raw, max) else {
        return;
    };
    assert!(query.len() <= max);
    for i in 0..query.len() {
        assert!(query.param(i).is_some());
    }
    assert!(query.param(query.len()).is_none());
    for p in query.params() {
        let _ = (p.name(), p.modifier(), p.chain(), p.is_chained(), p.kind());
        let _ = p.raw_value();
        for v in p.values() {
            let text = v.text();
            assert!(
                !text.chars().any(char::is_control),
                "control character in {text:?}"
            );
            let _ = v.split('|');
            let _ = v.split('$');
        }
        let _ = p.value(usize::MAX);
        let _ = query.get(p.name()).count();
    }
    let _ = (query.count(), query.format(), query.summary());
});
