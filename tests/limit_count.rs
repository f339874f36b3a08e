#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The `_count` cap (issue #7) on a GET and on a `POST [base]/[type]/_search` alike: FHIR R4
//! http.html#search §3.1.1.3 "search via POST" lets the parameters sit in the URL, in the
//! `application/x-www-form-urlencoded` body, or in both, with the meaning they have in a GET
//! URL. So the lowering mode lowers a form's `_count` too (every other byte kept, Content-Length
//! set), and the refusals (refusing mode, a repeated `_count`, across URL and form included, a
//! value that is not a non-negative integer) are the GET path's. Table-driven:
//! tests/data/limit_count.txt, one case a line.

#[path = "support/limit.rs"]
mod limit_support;

use bytes::Bytes;
use fhirwall::body::FhirBody;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::{Classifier, FhirRequest};
use fhirwall::limit::{BudgetLayer, Caps, CountCapMode, MemoryStore, Rate};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use limit_support::{header_keys, issue_code, read};
use std::convert::Infallible;
use tower::{service_fn, ServiceBuilder, ServiceExt};

/// Answers with what it received: URL query, body, Content-Length and classified `_count`.
async fn echo(
    request: Request<FhirBody<Full<Bytes>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let count = request
        .extensions()
        .get::<FhirRequest>()
        .and_then(|f| f.query().count())
        .map(|c| c.map_or_else(|e| e.to_owned(), |n| n.to_string()))
        .unwrap_or_else(|| "-".into());
    let query = request.uri().query().unwrap_or("").to_owned();
    let length = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .map_or("-".to_owned(), |v| v.to_str().unwrap().to_owned());
    let get = request.method() == http::Method::GET;
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let body = if get && body.is_empty() {
        "-".to_owned()
    } else {
        String::from_utf8(body.to_vec())
            .unwrap()
            .replace("\r\n", "\\r\\n")
    };
    Ok(Response::builder()
        .header("x-seen-query", query)
        .header("x-seen-body", body)
        .header("x-seen-length", length)
        .header("x-seen-count", count)
        .header("content-type", "application/fhir+json")
        .body(Full::new(Bytes::from_static(
            br#"{"resourceType":"Bundle","type":"searchset"}"#,
        )))
        .unwrap())
}

#[tokio::test]
async fn count_cap_table_get_and_post_search() {
    let mut cases = (0, 0);
    for line in include_str!("data/limit_count.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split(" | ").map(str::trim).collect();
        let [mode, method, uri, form, status, query, body, length, count] = cols[..] else {
            panic!("{line}: expected 9 columns");
        };
        let mode = match mode {
            "lower" => CountCapMode::Lower,
            "refuse" => CountCapMode::Refuse,
            other => panic!("{line}: unknown mode {other}"),
        };
        let budget = BudgetLayer::new(MemoryStore::default())
            .keys(header_keys())
            .requests(Some(Rate::per_hour(1_000_000)))
            .resources(Some(Rate::per_hour(1_000_000)))
            .caps(
                Caps::default()
                    .max_count(Some(100), mode)
                    .max_page_depth(Some(20)),
            )
            .max_in_flight(None);
        let service = ServiceBuilder::new()
            .layer(ClassifyLayer::new(Classifier::new("/fhir")))
            .layer(budget)
            .service(service_fn(echo));
        let request = match method {
            "GET" => {
                cases.0 += 1;
                Request::get(uri)
                    .header("x-test-client", "t")
                    .body(Full::new(Bytes::new()))
                    .unwrap()
            }
            "POST" => {
                cases.1 += 1;
                let form = form.replace("\\r\\n", "\r\n");
                Request::post(uri)
                    .header("x-test-client", "t")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("content-length", form.len())
                    .body(Full::new(Bytes::from(form)))
                    .unwrap()
            }
            other => panic!("{line}: unknown method {other}"),
        };
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status().as_str(), status, "{line}");
        let seen = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        if query == "-" {
            assert_eq!(seen("x-seen-query"), None, "{line}");
            let (_, json) = read(response).await;
            let code = issue_code(&json);
            assert!(
                ["invalid", "too-costly"].contains(&code),
                "{line}: issue code {code}"
            );
            continue;
        }
        let query = if query == "none" { "" } else { query };
        assert_eq!(seen("x-seen-query").as_deref(), Some(query), "{line}");
        assert_eq!(seen("x-seen-body").as_deref(), Some(body), "{line}");
        assert_eq!(seen("x-seen-count").as_deref(), Some(count), "{line}");
        if method == "POST" && length == "-" {
            // Nothing rewritten in the form: the client's own Content-Length goes on.
            let sent = form.replace("\\r\\n", "\r\n").len().to_string();
            assert_eq!(seen("x-seen-length"), Some(sent), "{line}");
        } else {
            assert_eq!(seen("x-seen-length").as_deref(), Some(length), "{line}");
        }
    }
    assert!(cases.0 >= 8 && cases.1 >= 15, "{cases:?}");
}

/// A chunked form (no Content-Length from the client) is sent on whole, with its new length and
/// without the chunked framing header (FHIR R4 http.html#search, search via POST).
#[tokio::test]
async fn a_lowered_chunked_form_goes_on_with_a_content_length() {
    let budget = BudgetLayer::new(MemoryStore::default())
        .keys(header_keys())
        .caps(Caps::default().max_count(Some(100), CountCapMode::Lower))
        .max_in_flight(None);
    let service = ServiceBuilder::new()
        .layer(ClassifyLayer::new(Classifier::new("/fhir")))
        .layer(budget)
        .service(service_fn(
            |request: Request<FhirBody<Full<Bytes>>>| async move {
                let framing = request
                    .headers()
                    .get(http::header::TRANSFER_ENCODING)
                    .is_some();
                let length = request.headers()[http::header::CONTENT_LENGTH].clone();
                let body = request.into_body().collect().await.unwrap().to_bytes();
                assert!(!framing);
                assert_eq!(length.to_str().unwrap(), body.len().to_string());
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("content-type", "application/fhir+json")
                        .body(Full::new(Bytes::from_static(
                            br#"{"resourceType":"Bundle","type":"searchset"}"#,
                        )))
                        .unwrap(),
                )
            },
        ));
    let request = Request::post("/fhir/Patient/_search")
        .header("x-test-client", "t")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("transfer-encoding", "chunked")
        .body(Full::new(Bytes::from_static(b"name=a&_count=5000")))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
}
