//! Classifying a typical search request, as a ratio against parsing the same URI with
//! `http::Uri` in the same run. Goal (issue #2): under 3x.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use criterion::{criterion_group, Criterion};
use fhirwall::fhir::Classifier;
use http::{HeaderMap, Method, Uri};
use std::hint::black_box;

const TARGET: &str = "/fhir/Observation?subject=Patient/123&code=http://loinc.org|8480-6&date=ge2024-01-01&_count=50&_include=Observation:performer";

fn bench(c: &mut Criterion) {
    let classifier = Classifier::new("/fhir");
    let headers = HeaderMap::new();
    let mut group = c.benchmark_group("classify");
    group.bench_function("http_uri_parse", |b| {
        b.iter(|| black_box(TARGET).parse::<Uri>().unwrap())
    });
    group.bench_function("uri_parse_and_classify", |b| {
        b.iter(|| {
            let uri: Uri = black_box(TARGET).parse().unwrap();
            classifier
                .classify(&Method::GET, &uri, &headers, b"")
                .unwrap()
        })
    });
    let uri: Uri = TARGET.parse().unwrap();
    group.bench_function("classify_only", |b| {
        b.iter(|| {
            classifier
                .classify(&Method::GET, black_box(&uri), &headers, b"")
                .unwrap()
        })
    });
    let raw = uri.query().unwrap();
    group.bench_function("query_parse_only", |b| {
        b.iter(|| fhirwall::fhir::Query::parse(black_box(raw), 100).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    support::report_ratio("classify", "classify_only", "http_uri_parse", 3.0);
    support::report_ratio("classify", "uri_parse_and_classify", "http_uri_parse", 4.0);
}
