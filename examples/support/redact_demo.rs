//! The demo gateway's redaction policy (fhirwall issue #5): curl shows what each client sees.
//!
//! - `patient-app` (the SMART demo token's `client_id`, or an mTLS client of that name): no US
//!   Social Security number (`Patient.identifier` with system `http://hl7.org/fhir/sid/us-ssn`)
//!   and no contact details (`Patient.telecom`, `Patient.contact`); the narrative, which repeats
//!   them, goes too.
//! - `research`: no identifiers anywhere, no names, addresses, telecom, contacts, photos or
//!   narratives, no patient names in references, and birth dates cut to the year.
//! - Everyone else: resources labelled restricted/very restricted (`R`, `V`) are hidden unless
//!   the token grants `user/*.rs`.
//!
//! Wiring, in `examples/gateway.rs`:
//!
//! ```ignore
//! #[path = "support/redact_demo.rs"]
//! mod redact_demo;
//!
//! // Innermost fhirwall layer, inside identity/SMART (it reads TrustedClient and
//! // AccessContext from the request extensions) and inside any compression layer:
//! let app = fhir_router.layer(redact_demo::layer());
//! ```
//!
//! Then, against the demo data (`Patient/pat-ssn` carries the sample SSN):
//!
//! ```text
//! curl -H "Authorization: Bearer $PATIENT_APP_TOKEN" http://127.0.0.1:8080/fhir/Patient/pat-ssn
//! curl -H "Authorization: Bearer $RESEARCH_TOKEN"    http://127.0.0.1:8080/fhir/Patient/pat-ssn
//! ```
#![allow(dead_code, clippy::panic)]

use fhirwall::redact::{Action, CallerMatch, LabelRule, Policy, RedactLayer, Redactor, Rule};

/// The patient-facing app's client name.
pub const PATIENT_APP: &str = "patient-app";
/// The research client's name.
pub const RESEARCH: &str = "research";

fn rule(paths: &[&str], action: Action, client: &str) -> Rule {
    match Rule::new(paths, action) {
        Ok(rule) => rule.when(CallerMatch::clients([client])),
        // The paths are literals checked by the tests; an empty rule would hide nothing, so
        // the demo refuses to start rather than run without it.
        Err(e) => panic!("demo redaction policy: {e}"),
    }
}

/// The demo policy as plain data.
pub fn policy() -> Policy {
    Policy {
        rules: vec![
            rule(
                &[
                    "Patient.identifier.where(system='http://hl7.org/fhir/sid/us-ssn')",
                    "Patient.telecom",
                    "Patient.contact",
                    "Patient.text",
                ],
                Action::Remove,
                PATIENT_APP,
            ),
            rule(
                &[
                    "*.descendants().identifier",
                    "*.text",
                    "Patient.name",
                    "Patient.address",
                    "Patient.telecom",
                    "Patient.contact",
                    "Patient.photo",
                    "*.descendants().subject.display",
                    "*.descendants().patient.display",
                ],
                Action::Remove,
                RESEARCH,
            ),
            rule(&["Patient.birthDate"], Action::YearOnly, RESEARCH),
        ],
        labels: vec![LabelRule {
            system: Some("http://terminology.hl7.org/CodeSystem/v3-Confidentiality".into()),
            codes: vec!["R".into(), "V".into()],
            except: CallerMatch::scopes(["user/*.rs"]),
        }],
        suppressed_note: true,
    }
}

/// The compiled demo policy.
pub fn redactor() -> Redactor {
    match Redactor::new(policy()) {
        Ok(r) => r,
        Err(e) => panic!("demo redaction policy: {e}"),
    }
}

/// The layer to put on the demo router.
pub fn layer() -> RedactLayer {
    RedactLayer::new(redactor())
}
