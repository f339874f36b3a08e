#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! SMART scope grammar from tests/data/scopes.txt (SMART App Launch 2.2 §"Scopes for
//! requesting FHIR resources", RFC 6749 §3.3), and property tests of the parser.

use fhirwall::smart::{MalformedScopes, Scope, ScopeError, ScopeSet, ScopeVersion};
use proptest::prelude::*;

/// `{TEXT*N}` → TEXT repeated N times; `{TAB}` → a tab.
fn expand(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .expect("unclosed {");
        let inner = &rest[start + 1..end];
        if inner == "TAB" {
            out.push('\t');
        } else {
            let (text, n) = inner.rsplit_once('*').expect("{TEXT*N}");
            out.push_str(&text.repeat(n.parse().unwrap()));
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn error_name(e: ScopeError) -> &'static str {
    match e {
        ScopeError::Empty => "empty",
        ScopeError::TooLong => "too-long",
        ScopeError::BadCharacter => "bad-character",
        ScopeError::BadContext => "bad-context",
        ScopeError::BadLaunchContext => "bad-launch-context",
        ScopeError::MissingPermissions => "missing-permissions",
        ScopeError::UnknownResourceType => "unknown-type",
        ScopeError::BadPermissions => "bad-permissions",
        ScopeError::GranularV1 => "granular-v1",
        ScopeError::BadGranularQuery => "bad-granular",
        ScopeError::BadClaim => "bad-claim",
        ScopeError::TooMany => "too-many",
        _ => "other-error",
    }
}

fn describe(result: Result<Scope, ScopeError>) -> String {
    match result {
        Err(e) => format!("err {}", error_name(e)),
        Ok(Scope::Resource(r)) => {
            let version = match r.version() {
                ScopeVersion::V1 => "v1",
                ScopeVersion::V2 => "v2",
            };
            if r.is_granular() {
                format!("resource {r} {version} params={}", r.params().len())
            } else {
                format!("resource {r} {version}")
            }
        }
        Ok(Scope::Other(text)) => format!("other {text}"),
        Ok(other) => other.to_string(),
    }
}

fn describe_set(policy: MalformedScopes, claim: &str) -> String {
    match ScopeSet::parse(claim, policy) {
        Err(_) => "err".to_owned(),
        Ok(set) => format!(
            "resources={} others={} dropped={}",
            set.resource_scopes().len(),
            set.other_scopes().len(),
            set.dropped()
        ),
    }
}

#[test]
fn scope_table() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/scopes.txt"
    ))
    .unwrap();
    let mut cases = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (input, expected) = line
            .rsplit_once(" => ")
            .unwrap_or_else(|| panic!("line {}: no =>", n + 1));
        let got = if let Some(rest) = input.strip_prefix("set:") {
            let (policy, claim) = rest.split_once(' ').unwrap_or((rest, ""));
            let policy = match policy {
                "refuse" => MalformedScopes::RefuseToken,
                "drop" => MalformedScopes::DropScope,
                other => panic!("line {}: policy {other}", n + 1),
            };
            describe_set(policy, &expand(claim))
        } else {
            describe(Scope::parse(&expand(input)))
        };
        if got != expand(expected) {
            failures.push(format!(
                "line {}: {input} => expected {expected}, got {got}",
                n + 1
            ));
        }
        cases += 1;
    }
    assert!(cases >= 400, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn claim_as_array_and_custom_name() {
    // SMART App Launch 2.2 §"Scopes": the claim may be a string or (some vendors) an array.
    use fhirwall::smart::{ContextConfig, VerifiedClaims};
    let claims = serde_json::json!({"scp": ["patient/*.rs", "openid"], "patient": "p1"});
    let claims = VerifiedClaims::new(claims.as_object().unwrap().clone(), None);
    let ctx = ContextConfig::new()
        .scope_claim("scp")
        .build(&claims, &http::HeaderMap::new(), &http::Extensions::new())
        .unwrap();
    assert_eq!(ctx.scopes().resource_scopes().len(), 1);
    assert_eq!(ctx.scopes().other_scopes().len(), 1);
}

#[test]
fn malformed_scope_refuses_the_token_by_default() {
    // fhirwall issue #4 item 2: a malformed scope is never salvaged.
    use fhirwall::smart::{ContextConfig, VerifiedClaims};
    let claims = serde_json::json!({"scope": "user/*.rs patient/Observation.rsXYZ"});
    let claims = VerifiedClaims::new(claims.as_object().unwrap().clone(), None);
    let none = (&http::HeaderMap::new(), &http::Extensions::new());
    assert!(ContextConfig::new().build(&claims, none.0, none.1).is_err());
    let kept = ContextConfig::new()
        .malformed_scopes(MalformedScopes::DropScope)
        .build(&claims, none.0, none.1)
        .unwrap();
    assert_eq!(kept.scopes().to_string(), "user/*.rs");
    assert_eq!(kept.scopes().dropped(), 1);
}

fn scope_strategy() -> impl Strategy<Value = String> {
    let context = prop_oneof![
        Just("patient"),
        Just("user"),
        Just("system"),
        Just("Patient"),
        Just("x"),
        Just("")
    ];
    let ty = prop_oneof![
        Just("*"),
        Just("Observation"),
        Just("Patient"),
        Just("Foo"),
        Just("")
    ];
    let perms = prop_oneof![
        Just("read".to_owned()),
        Just("write".to_owned()),
        Just("*".to_owned()),
        "[crudsx*]{0,6}"
    ];
    let query = prop_oneof![
        Just(String::new()),
        Just("?category=laboratory".to_owned()),
        "\\?[a-z_:.=&,|%0-9]{0,20}",
    ];
    (context, ty, perms, query).prop_map(|(c, t, p, q)| format!("{c}/{t}.{p}{q}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The parser never panics on any input (fhirwall issue #4: property tests).
    #[test]
    fn parser_never_panics(s in "\\PC{0,80}") {
        let _ = Scope::parse(&s);
        let _ = ScopeSet::parse(&s, MalformedScopes::RefuseToken);
        let _ = ScopeSet::parse(&s, MalformedScopes::DropScope);
    }

    /// A parsed resource scope prints in v2 syntax and reads back as the same grant.
    #[test]
    fn display_round_trips(s in scope_strategy()) {
        if let Ok(Scope::Resource(r)) = Scope::parse(&s) {
            let again = Scope::parse(&r.to_string()).unwrap();
            let again = again.as_resource().unwrap();
            prop_assert_eq!(again.context(), r.context());
            prop_assert_eq!(again.resource_type(), r.resource_type());
            prop_assert_eq!(again.permissions(), r.permissions());
            prop_assert_eq!(again.params(), r.params());
        }
    }

    /// Dropping malformed scopes keeps exactly the well-formed ones; refusing refuses exactly
    /// when one is malformed.
    #[test]
    fn drop_keeps_the_well_formed(scopes in proptest::collection::vec(scope_strategy(), 0..8)) {
        let claim = scopes.join(" ");
        let good = scopes.iter().filter(|s| !s.is_empty()).filter(|s| Scope::parse(s).is_ok()).count();
        let bad = scopes.iter().filter(|s| !s.is_empty()).filter(|s| Scope::parse(s).is_err()).count();
        let dropped = ScopeSet::parse(&claim, MalformedScopes::DropScope).unwrap();
        prop_assert_eq!(dropped.dropped(), bad);
        prop_assert!(dropped.len() <= good);
        prop_assert_eq!(ScopeSet::parse(&claim, MalformedScopes::RefuseToken).is_ok(), bad == 0);
    }
}
