use super::*;

fn problems(json: &str) -> Vec<(ProblemClass, String)> {
    match check_resource(json.as_bytes(), &ValidateConfig::new()) {
        Ok(_) => Vec::new(),
        Err(r) => r
            .problems()
            .iter()
            .map(|p| (p.class, p.expression.clone()))
            .collect(),
    }
}

#[test]
fn fhir_r4_json_representation() {
    assert!(problems(r#"{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1970-01-01","_birthDate":{"extension":[{"url":"http://x","valueString":"y"}]},"name":[{"given":["A",null],"_given":[null,{"id":"g"}]}]}"#).is_empty());
    assert_eq!(
        problems(
            r#"{"gender":"female","resourceType":"Patient","deceasedBoolean":true,"deceasedDateTime":"2020"}"#
        ),
        [(ProblemClass::Rule, "Patient.deceased".to_owned())]
    );
    assert_eq!(
        problems(r#"{"resourceType":"Patient","gender":"f"}"#),
        [(ProblemClass::Rule, "Patient.gender".to_owned())]
    );
    assert_eq!(
        problems(r#"{"resourceType":"Patient","name":{"family":"x"}}"#),
        [(ProblemClass::Structure, "Patient.name".to_owned())]
    );
    assert_eq!(
        problems(
            r#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","foo":1}}]}"#
        ),
        [(
            ProblemClass::Structure,
            "Bundle.entry[0].resource.foo".to_owned()
        )]
    );
    assert_eq!(
        problems(r#"{"resourceType":"Patient","resourceType":"Patient"}"#),
        [(ProblemClass::Structure, "Patient".to_owned())]
    );
}
