//! Table-driven request classification (FHIR R4 §3.1.0 "RESTful API"): tests/data/classify.txt.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use fhirwall::fhir::{Classifier, FhirRequest, OperationLevel};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// Expands `{TEXT*N}` into TEXT repeated N times.
fn expand(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 1..start + end];
        match inner
            .rsplit_once('*')
            .and_then(|(t, n)| Some((t, n.parse::<usize>().ok()?)))
        {
            Some((text, n)) => {
                out.push_str(&rest[..start]);
                out.push_str(&text.repeat(n));
            }
            None => out.push_str(&rest[..start + end + 1]),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

fn describe(r: &FhirRequest) -> Vec<String> {
    let mut d = vec![r.interaction().as_str().to_owned()];
    if let Some(t) = r.resource_type() {
        d.push(format!("type={}", t.as_str()));
    }
    if let Some(id) = r.id() {
        d.push(format!("id={id}"));
    }
    if let Some(v) = r.version_id() {
        d.push(format!("vid={v}"));
    }
    if let Some(op) = r.operation() {
        let level = match op.level {
            OperationLevel::System => "system",
            OperationLevel::Type => "type",
            OperationLevel::Instance => "instance",
        };
        d.push(format!("op={}@{level}", op.name));
    }
    if let Some(c) = r.compartment() {
        let target = c.target.map_or("*", |t| t.as_str());
        d.push(format!(
            "compartment={}/{}/{target}",
            c.resource_type.as_str(),
            c.id
        ));
    }
    if r.is_conditional() {
        d.push("conditional".into());
    }
    if r.is_search_via_post() {
        d.push("post".into());
    }
    d.push(format!("params={}", r.query().len()));
    d.push(format!(
        "entries={}",
        r.entries()
            .iter()
            .map(|e| e.request.interaction().as_str())
            .collect::<Vec<_>>()
            .join(",")
    ));
    d
}

#[test]
fn classification_cases() {
    let classifier = Classifier::new("/fhir");
    let data = include_str!("data/classify.txt");
    let mut count = 0;
    let mut failures = Vec::new();
    for (n, line) in data.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        count += 1;
        let (request, expected) = line.rsplit_once(" => ").expect("case needs ' => '");
        let (request, body) = match request.split_once(" body=") {
            Some((r, b)) => (r, b),
            None => (request, ""),
        };
        let mut tokens = request.split_whitespace();
        let method = Method::from_bytes(tokens.next().unwrap().as_bytes()).unwrap();
        let uri: Uri = expand(tokens.next().unwrap())
            .parse()
            .expect("test URI parses");
        let mut headers = HeaderMap::new();
        for t in tokens {
            let (name, value) = t.strip_prefix("header:").unwrap().split_once('=').unwrap();
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .unwrap();
            headers.append(
                HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap(),
                HeaderValue::from_str(&value).unwrap(),
            );
        }
        let got = classifier.classify(&method, &uri, &headers, body.as_bytes());
        let expected = expand(expected);
        let ok = match &got {
            Ok(r) => {
                let mut want: Vec<String> =
                    expected.split_whitespace().map(str::to_owned).collect();
                if !want.iter().any(|w| w.starts_with("params=")) {
                    want.push("params=0".into());
                }
                if !want.iter().any(|w| w.starts_with("entries=")) {
                    want.push("entries=".into());
                }
                let mut have = describe(r);
                have.sort();
                want.sort();
                have == want
            }
            Err(e) => format!("{} {}", e.status().as_u16(), e.kind().as_str()) == expected,
        };
        if !ok {
            let have = match &got {
                Ok(r) => describe(r).join(" "),
                Err(e) => format!(
                    "{} {} ({})",
                    e.status().as_u16(),
                    e.kind().as_str(),
                    e.text()
                ),
            };
            failures.push(format!("line {}: {line}\n    got: {have}", n + 1));
        }
    }
    assert!(count >= 150, "only {count} cases");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{count} classification cases passed");
}
