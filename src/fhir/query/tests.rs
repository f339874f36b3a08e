use super::*;

#[test]
fn comma_is_or_repeat_is_and() {
    // FHIR R4 §3.1.1.5.7: "," within a value is OR; a repeated parameter is AND.
    let q = Query::parse("date=ge2020&date=lt2021&status=final,amended", 10).unwrap();
    assert_eq!(q.get("date").count(), 2);
    assert_eq!(q.get("status").next().unwrap().values().len(), 2);
    assert_eq!(q.get("date").nth(1).unwrap().raw_value(), "lt2021");
}

#[test]
fn escapes() {
    // FHIR R4 §3.1.1.5.7 "Escaping Search Parameters".
    let q = Query::parse("code=a%5C,b,c%5C|d%7Ce", 10).unwrap();
    let p = q.get("code").next().unwrap();
    assert_eq!(p.values().len(), 2);
    assert_eq!(p.value(0).unwrap().text(), "a,b");
    assert_eq!(p.value(1).unwrap().split('|'), ["c|d", "e"]);
}

#[test]
fn repeated_count_is_refused() {
    assert_eq!(
        Query::parse("_count=1&_count=1000", 10),
        Err(QueryError::Repeated("_count".into()))
    );
}

#[test]
fn has_keeps_its_chain() {
    let q = Query::parse("_has:Observation:patient:code=1234-5", 10).unwrap();
    let p = q.param(0).unwrap();
    assert_eq!(
        (p.kind(), p.modifier()),
        (ParamKind::Has, Some("Observation:patient:code"))
    );
}

#[test]
fn malformed_percent_is_refused() {
    assert_eq!(Query::parse("name=%zz", 10), Err(QueryError::BadEncoding));
    assert_eq!(
        Query::parse("name=%C3%28", 10),
        Err(QueryError::BadEncoding)
    );
}
