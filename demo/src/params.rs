//! The search parameters the demo server understands, per resource type.

/// A search parameter's type (the subset of FHIR's the demo implements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Token,
    String,
    Date,
    Reference,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::String => "string",
            Kind::Date => "date",
            Kind::Reference => "reference",
        }
    }
}

/// One search parameter: where in the resource it looks and, for references, what it may
/// point at.
#[derive(Debug)]
pub(crate) struct ParamDef {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// Dotted element paths; arrays along the way are flattened.
    pub(crate) paths: &'static [&'static str],
    /// Target resource types of a reference parameter.
    pub(crate) targets: &'static [&'static str],
    pub(crate) doc: &'static str,
}

const fn p(
    name: &'static str,
    kind: Kind,
    paths: &'static [&'static str],
    targets: &'static [&'static str],
    doc: &'static str,
) -> ParamDef {
    ParamDef {
        name,
        kind,
        paths,
        targets,
        doc,
    }
}

use Kind::{Date, Reference, String as Str, Token};

const PEOPLE: &[&str] = &[
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Patient",
    "RelatedPerson",
];
const SUBJECTS: &[&str] = &["Patient", "Group", "Device", "Location"];

static COMMON: &[ParamDef] = &[
    p("_id", Token, &["id"], &[], "The logical id of the resource"),
    p(
        "_lastUpdated",
        Date,
        &["meta.lastUpdated"],
        &[],
        "When the resource version last changed",
    ),
];

static PATIENT: &[ParamDef] = &[
    p(
        "identifier",
        Token,
        &["identifier"],
        &[],
        "A patient identifier (system|value)",
    ),
    p(
        "name",
        Str,
        &["name"],
        &[],
        "Any part of the name (starts with, case-insensitive)",
    ),
    p(
        "family",
        Str,
        &["name.family"],
        &[],
        "The family name (starts with, case-insensitive)",
    ),
    p(
        "given",
        Str,
        &["name.given"],
        &[],
        "A given name (starts with, case-insensitive)",
    ),
    p("gender", Token, &["gender"], &[], "Administrative gender"),
    p("birthdate", Date, &["birthDate"], &[], "The date of birth"),
    p("address", Str, &["address"], &[], "Any part of the address"),
    p(
        "address-city",
        Str,
        &["address.city"],
        &[],
        "The city of the address",
    ),
    p(
        "telecom",
        Token,
        &["telecom"],
        &[],
        "A phone number or email address",
    ),
    p(
        "organization",
        Reference,
        &["managingOrganization"],
        &["Organization"],
        "The managing organization",
    ),
    p(
        "general-practitioner",
        Reference,
        &["generalPractitioner"],
        &["Practitioner", "Organization", "PractitionerRole"],
        "The patient's nominated care provider",
    ),
];

static OBSERVATION: &[ParamDef] = &[
    p(
        "patient",
        Reference,
        &["subject"],
        &["Patient"],
        "The patient the observation is about",
    ),
    p(
        "subject",
        Reference,
        &["subject"],
        SUBJECTS,
        "The subject of the observation",
    ),
    p(
        "encounter",
        Reference,
        &["encounter"],
        &["Encounter"],
        "The encounter of the observation",
    ),
    p(
        "performer",
        Reference,
        &["performer"],
        PEOPLE,
        "Who performed the observation",
    ),
    p(
        "code",
        Token,
        &["code"],
        &[],
        "The observation code (system|code)",
    ),
    p(
        "category",
        Token,
        &["category"],
        &[],
        "The observation category (system|code)",
    ),
    p("status", Token, &["status"], &[], "The observation status"),
    p(
        "date",
        Date,
        &["effectiveDateTime", "effectivePeriod", "effectiveInstant"],
        &[],
        "When the observation was made",
    ),
];

static ENCOUNTER: &[ParamDef] = &[
    p(
        "patient",
        Reference,
        &["subject"],
        &["Patient"],
        "The patient of the encounter",
    ),
    p(
        "subject",
        Reference,
        &["subject"],
        &["Patient", "Group"],
        "The subject of the encounter",
    ),
    p(
        "participant",
        Reference,
        &["participant.individual"],
        PEOPLE,
        "A participant",
    ),
    p(
        "service-provider",
        Reference,
        &["serviceProvider"],
        &["Organization"],
        "The organization",
    ),
    p("status", Token, &["status"], &[], "The encounter status"),
    p("class", Token, &["class"], &[], "The encounter class"),
    p("type", Token, &["type"], &[], "The encounter type"),
    p(
        "date",
        Date,
        &["period"],
        &[],
        "When the encounter took place",
    ),
];

static CONDITION: &[ParamDef] = &[
    p(
        "patient",
        Reference,
        &["subject"],
        &["Patient"],
        "The patient with the condition",
    ),
    p(
        "subject",
        Reference,
        &["subject"],
        &["Patient", "Group"],
        "The subject of the condition",
    ),
    p(
        "encounter",
        Reference,
        &["encounter"],
        &["Encounter"],
        "The encounter of the condition",
    ),
    p(
        "asserter",
        Reference,
        &["asserter"],
        PEOPLE,
        "Who asserted the condition",
    ),
    p(
        "code",
        Token,
        &["code"],
        &[],
        "The condition code (system|code)",
    ),
    p(
        "category",
        Token,
        &["category"],
        &[],
        "The condition category",
    ),
    p(
        "clinical-status",
        Token,
        &["clinicalStatus"],
        &[],
        "The clinical status",
    ),
    p(
        "onset-date",
        Date,
        &["onsetDateTime", "onsetPeriod"],
        &[],
        "When the condition started",
    ),
    p(
        "date",
        Date,
        &["onsetDateTime", "onsetPeriod"],
        &[],
        "Demo alias of onset-date",
    ),
];

static MEDICATION_REQUEST: &[ParamDef] = &[
    p(
        "patient",
        Reference,
        &["subject"],
        &["Patient"],
        "The patient the medication is for",
    ),
    p(
        "subject",
        Reference,
        &["subject"],
        &["Patient", "Group"],
        "The subject of the request",
    ),
    p(
        "encounter",
        Reference,
        &["encounter"],
        &["Encounter"],
        "The encounter of the request",
    ),
    p(
        "requester",
        Reference,
        &["requester"],
        PEOPLE,
        "Who asked for the medication",
    ),
    p(
        "code",
        Token,
        &["medicationCodeableConcept"],
        &[],
        "The medication code (system|code)",
    ),
    p("status", Token, &["status"], &[], "The request status"),
    p("intent", Token, &["intent"], &[], "The request intent"),
    p(
        "authoredon",
        Date,
        &["authoredOn"],
        &[],
        "When the request was written",
    ),
    p(
        "date",
        Date,
        &["authoredOn"],
        &[],
        "Demo alias of authoredon",
    ),
];

static PRACTITIONER: &[ParamDef] = &[
    p(
        "identifier",
        Token,
        &["identifier"],
        &[],
        "A practitioner identifier (system|value)",
    ),
    p(
        "name",
        Str,
        &["name"],
        &[],
        "Any part of the name (starts with, case-insensitive)",
    ),
    p("family", Str, &["name.family"], &[], "The family name"),
    p("given", Str, &["name.given"], &[], "A given name"),
];

static ORGANIZATION: &[ParamDef] = &[
    p(
        "identifier",
        Token,
        &["identifier"],
        &[],
        "An organization identifier (system|value)",
    ),
    p(
        "name",
        Str,
        &["name", "alias"],
        &[],
        "The name or an alias (starts with)",
    ),
    p("type", Token, &["type"], &[], "The organization type"),
];

/// The resource types with parameters beyond `_id` and `_lastUpdated`.
pub(crate) const RICH_TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Encounter",
    "Condition",
    "MedicationRequest",
    "Practitioner",
    "Organization",
];

fn specific(ty: &str) -> &'static [ParamDef] {
    match ty {
        "Patient" => PATIENT,
        "Observation" => OBSERVATION,
        "Encounter" => ENCOUNTER,
        "Condition" => CONDITION,
        "MedicationRequest" => MEDICATION_REQUEST,
        "Practitioner" => PRACTITIONER,
        "Organization" => ORGANIZATION,
        _ => &[],
    }
}

/// Every parameter of a type, the common ones first.
pub(crate) fn all(ty: &str) -> impl Iterator<Item = &'static ParamDef> {
    COMMON.iter().chain(specific(ty))
}

/// One parameter of a type by name.
pub(crate) fn find(ty: &str, name: &str) -> Option<&'static ParamDef> {
    all(ty).find(|d| d.name == name)
}

/// The types with a `patient` parameter, i.e. the patient compartment this demo knows.
pub(crate) fn compartment_types() -> impl Iterator<Item = &'static str> {
    RICH_TYPES
        .iter()
        .copied()
        .filter(|ty| find(ty, "patient").is_some())
}
