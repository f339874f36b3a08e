#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! Known facts of FHIR R4 (4.0.1) checked against the generated tables.

use fhirwall::fhir::tables::{
    self, children, common_search_param, element, patient_compartment, patient_compartment_types,
    primitive, search_param, search_param_count, search_params_for, type_elements, value_set, Max,
    SearchParamType,
};
use fhirwall::fhir::ResourceType;

/// FHIR R4 §3 Resource list: 146 concrete resource types.
#[test]
fn r4_has_146_resource_types() {
    assert_eq!(ResourceType::ALL.len(), 146);
    for (i, rt) in ResourceType::ALL.iter().enumerate() {
        assert_eq!(ResourceType::from_name(rt.as_str()), Some(*rt));
        if i > 0 {
            assert!(ResourceType::ALL[i - 1].as_str() < rt.as_str(), "sorted");
        }
    }
}

/// FHIR R4 §3.1.0.2 (resource names are case-sensitive).
#[test]
fn resource_type_names_are_case_sensitive() {
    assert_eq!(
        ResourceType::from_name("Patient"),
        Some(ResourceType::Patient)
    );
    assert_eq!(ResourceType::from_name("patient"), None);
    assert_eq!(ResourceType::from_name("PATIENT"), None);
    assert_eq!(ResourceType::from_name("Resource"), None);
    assert_eq!(ResourceType::from_name("DomainResource"), None);
}

/// FHIR R4 §2.23 Compartment patient: Observation is in it through `subject` and `performer`.
#[test]
fn compartment_patient_observation() {
    let params = patient_compartment(ResourceType::Observation).unwrap();
    let codes: Vec<&str> = params.iter().map(|p| p.code).collect();
    assert_eq!(codes, ["subject", "performer"]);
    assert_eq!(params[0].paths, ["subject"]);
    assert_eq!(params[1].paths, ["performer"]);
}

/// FHIR R4 §2.23 Compartment patient: 66 resource types, Patient itself included (`{def}`).
#[test]
fn compartment_patient_types() {
    let types = patient_compartment_types();
    assert_eq!(types.len(), 66);
    assert!(types.windows(2).all(|w| w[0] < w[1]), "sorted");
    for rt in types {
        assert!(
            patient_compartment(*rt).is_some_and(|p| !p.is_empty()),
            "{rt:?}"
        );
    }
    assert!(patient_compartment(ResourceType::Practitioner).is_none());
    assert!(patient_compartment(ResourceType::Organization).is_none());
    let patient = patient_compartment(ResourceType::Patient).unwrap();
    assert_eq!(patient[0].code, "{def}");
    assert_eq!(patient[0].paths, ["id"]);
    assert!(patient
        .iter()
        .any(|p| p.code == "link" && p.paths == ["link.other"]));
    let encounter = patient_compartment(ResourceType::Encounter).unwrap();
    assert_eq!(encounter[0].code, "patient");
    assert_eq!(encounter[0].paths, ["subject"]);
}

/// FHIR R4 §3.1.1.4 search parameter types: Observation `code` is a token.
#[test]
fn search_param_observation_code_is_token() {
    let code = search_param(ResourceType::Observation, "code").unwrap();
    assert_eq!(code.kind, SearchParamType::Token);
    assert_eq!(code.paths, ["code"]);
    assert_eq!(
        code.url,
        "http://hl7.org/fhir/SearchParameter/clinical-code"
    );
    assert!(code.expression.contains("Observation.code"));

    let subject = search_param(ResourceType::Observation, "subject").unwrap();
    assert_eq!(subject.kind, SearchParamType::Reference);
    assert_eq!(subject.paths, ["subject"]);
    assert!(subject.targets.contains(&ResourceType::Patient));
    assert!(subject.targets.contains(&ResourceType::Group));

    let value = search_param(ResourceType::Observation, "value-quantity").unwrap();
    assert_eq!(value.kind, SearchParamType::Quantity);
    assert_eq!(value.paths, ["value"]);

    let phone = search_param(ResourceType::Patient, "phone").unwrap();
    assert_eq!(phone.paths, ["telecom"]);

    assert!(search_param(ResourceType::Observation, "no-such-param").is_none());
}

/// FHIR R4 §3.1.1.1 parameters for all resources.
#[test]
fn common_search_params() {
    let id = common_search_param("_id").unwrap();
    assert_eq!(id.kind, SearchParamType::Token);
    assert_eq!(id.paths, ["id"]);
    assert_eq!(search_param(ResourceType::Patient, "_id"), Some(id));
    assert_eq!(
        common_search_param("_lastUpdated").unwrap().paths,
        ["meta.lastUpdated"]
    );
    for code in [
        "_id",
        "_lastUpdated",
        "_tag",
        "_profile",
        "_security",
        "_source",
        "_text",
        "_content",
    ] {
        assert!(common_search_param(code).is_some(), "{code}");
    }
    for code in ["_list", "_has", "_type", "_query", "_filter"] {
        assert!(common_search_param(code).is_some(), "{code}");
    }
    assert!(common_search_param("subject").is_none());
    assert!(search_params_for(ResourceType::Patient)
        .iter()
        .all(|p| !p.code.starts_with("_id")));
}

/// FHIR R4 §3.1.1 the search parameter registry: about 1,375 SearchParameter resources.
#[test]
fn search_param_counts() {
    let count = search_param_count();
    assert!((1300..1450).contains(&count));
    assert_eq!(count, 1387);
    let rows: usize = ResourceType::ALL
        .iter()
        .map(|rt| search_params_for(*rt).len())
        .sum();
    assert_eq!(rows, 1708);
    for rt in ResourceType::ALL {
        let params = search_params_for(rt);
        assert!(
            params.windows(2).all(|w| w[0].code < w[1].code),
            "{rt:?} sorted"
        );
    }
    assert!(search_params_for(ResourceType::Parameters).is_empty());
}

/// FHIR R4 §2.1.0 administrative-gender is a required binding of Patient.gender.
#[test]
fn patient_gender_required_binding() {
    let gender = element("Patient.gender").unwrap();
    let vs = gender.required_binding.unwrap();
    assert_eq!(vs.url, "http://hl7.org/fhir/ValueSet/administrative-gender");
    assert_eq!(vs.codes, ["female", "male", "other", "unknown"]);
    assert!(vs.complete);
    assert_eq!(
        value_set("http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1"),
        Some(vs)
    );
}

/// FHIR R4 Observation.status (observation-status, required).
#[test]
fn observation_status_required_binding() {
    let vs = element("Observation.status")
        .unwrap()
        .required_binding
        .unwrap();
    assert!(vs.complete);
    assert!(vs.contains("final"));
    assert!(vs.contains("preliminary"));
    assert!(!vs.contains("done"));
}

/// FHIR R4 §2.24.0.1 value sets that cannot be enumerated from the package are not complete.
#[test]
fn unenumerable_value_sets_are_incomplete() {
    let mime = value_set("http://hl7.org/fhir/ValueSet/mimetypes").unwrap();
    assert!(!mime.complete);
    assert!(
        !value_set("http://hl7.org/fhir/ValueSet/ucum-units")
            .unwrap()
            .complete
    );
    assert!(value_set("http://hl7.org/fhir/ValueSet/resource-types")
        .unwrap()
        .contains("Patient"));
}

/// FHIR R4 §2.24.0.1 choice elements: Observation.value[x].
#[test]
fn observation_value_choice() {
    let value = element("Observation.value[x]").unwrap();
    assert!(value.types.len() > 5);
    assert!(value.types.contains(&"Quantity"));
    assert!(value.types.contains(&"CodeableConcept"));
    assert_eq!(value.max, Max::Count(1));
    assert!(value.is_choice());
    assert!(element("Observation.valueQuantity").is_none());
}

/// FHIR R4 Patient.contact.name is 0..1, Patient.name 0..*.
#[test]
fn cardinalities() {
    let name = element("Patient.contact.name").unwrap();
    assert_eq!(name.min, 0);
    assert_eq!(name.max, Max::Count(1));
    assert_eq!(name.types, ["HumanName"]);
    assert_eq!(element("Patient.name").unwrap().max, Max::Unbounded);
    assert_eq!(element("Observation.status").unwrap().min, 1);
    assert!(element("Patient.active").unwrap().is_modifier);
    assert!(element("Patient.active").unwrap().is_summary);
}

/// FHIR R4 §2.24.0.2 primitive types carry a regex.
#[test]
fn primitive_regexes() {
    assert_eq!(
        primitive("id").unwrap().regex,
        Some("[A-Za-z0-9\\-\\.]{1,64}")
    );
    assert!(primitive("dateTime").unwrap().regex.is_some());
    assert!(primitive("xhtml").unwrap().regex.is_none());
    assert!(primitive("HumanName").is_none());
}

/// FHIR R4 Questionnaire.item.item refers back to Questionnaire.item (contentReference).
#[test]
fn content_reference() {
    let item = element("Questionnaire.item.item").unwrap();
    assert_eq!(item.content_reference, Some("#Questionnaire.item"));
    assert!(item.types.is_empty());
}

/// FHIR R4 element tree: direct children and whole types.
#[test]
fn children_and_types() {
    let contact: Vec<&str> = children("Patient.contact").map(|e| e.name()).collect();
    assert!(contact.contains(&"name"));
    assert!(contact.contains(&"telecom"));
    assert!(!contact.iter().any(|n| n.contains('.')));
    assert!(children("Patient").any(|e| e.path == "Patient.gender"));
    assert!(!children("Patient").any(|e| e.path == "Patient.contact.name"));
    assert_eq!(children("Nope").count(), 0);

    let medication = type_elements("Medication").unwrap();
    assert_eq!(medication[0].path, "Medication");
    assert!(medication
        .iter()
        .all(|e| e.path == "Medication" || e.path.starts_with("Medication.")));
    let human_name = type_elements("HumanName").unwrap();
    assert!(human_name.iter().any(|e| e.path == "HumanName.family"));
    assert!(type_elements("string").is_some());
    assert!(type_elements("Patient.contact").is_none());
    assert!(type_elements("Nope").is_none());
    assert!(tables::element("Nope.x").is_none());
}
