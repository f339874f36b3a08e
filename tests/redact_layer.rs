#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! RedactLayer through an axum Router over the demo FHIR server: per-client visibility of
//! `Patient/pat-ssn`, fail-closed handling of formats it can't filter (FHIR R4 §3.1.0.1.8
//! `_format`, RFC 9110 §12.5.1 Accept), compressed and oversized bodies, Content-Length and
//! ETag (RFC 9110 §8.6, §8.8.3), HEAD (§9.3.2) and 304 (§15.4.5).

#[cfg(all(feature = "redact", feature = "mtls", feature = "smart"))]
#[path = "../examples/support/redact_demo.rs"]
mod redact_demo;

#[cfg(all(feature = "redact", feature = "mtls", feature = "smart"))]
mod layer {
    use super::redact_demo;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use fhirwall::redact::{
        Action, Caller, Policy, RedactDecision, RedactLayer, RedactRefusal, Redactor, Rule,
    };
    use fhirwall_demo::{sample, DemoConfig, MemoryStore};
    use http::{Request, Response, StatusCode};
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    const SSN: &str = "999-12-3456";

    fn demo(layer: RedactLayer) -> Router {
        let store = MemoryStore::new();
        sample::load(&store, sample::DEFAULT_SEED);
        fhirwall_demo::router(store, DemoConfig::default()).layer(layer)
    }

    async fn call(app: &Router, request: Request<Body>) -> (Response<()>, Vec<u8>) {
        let response = app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (Response::from_parts(parts, ()), bytes)
    }

    fn get_as(uri: &str, ext: impl FnOnce(&mut http::Extensions)) -> Request<Body> {
        let mut r = Request::get(uri).body(Body::empty()).unwrap();
        ext(r.extensions_mut());
        r
    }

    #[tokio::test]
    async fn two_callers_see_different_data_for_pat_ssn() {
        let app = demo(redact_demo::layer());
        // The care team (an mTLS trusted client no rule names) sees the SSN.
        let (care, care_body) = call(
            &app,
            get_as("/fhir/Patient/pat-ssn", |e| {
                e.insert(fhirwall::identity::TrustedClient::new("care-team"));
            }),
        )
        .await;
        assert_eq!(care.status(), 200);
        assert!(String::from_utf8_lossy(&care_body).contains(SSN));
        // The demo's label rule applies to every caller without user/*.rs, so the body was
        // read, and came through byte for byte.
        assert_eq!(
            care.extensions().get::<RedactDecision>(),
            Some(&RedactDecision::Unchanged)
        );

        // The patient app (SMART token client_id) doesn't: no SSN, no telecom, a label.
        let (app_resp, app_body) = call(
            &app,
            get_as("/fhir/Patient/pat-ssn", |e| {
                e.insert(
                    fhirwall::smart::AccessContext::new(Default::default())
                        .with_client_id("patient-app"),
                );
            }),
        )
        .await;
        assert_eq!(app_resp.status(), 200);
        let text = String::from_utf8(app_body.clone()).unwrap();
        assert!(!text.contains(SSN), "{text}");
        assert!(!text.contains("us-ssn"));
        let v: Value = serde_json::from_slice(&app_body).unwrap();
        assert!(v.get("telecom").is_none());
        assert!(v["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["system"] != "http://hl7.org/fhir/sid/us-ssn"));
        assert!(v["meta"]["security"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "REDACTED"));
        assert_eq!(
            app_resp.headers()["content-length"],
            app_body.len().to_string().as_str()
        );
        if let Some(etag) = app_resp.headers().get("etag") {
            assert!(etag.as_bytes().starts_with(b"W/"));
        }
        assert!(matches!(
            app_resp.extensions().get::<RedactDecision>(),
            Some(RedactDecision::Redacted {
                altered: 1,
                hidden: 0
            })
        ));

        // Research sees no identifiers or names, and only the birth year.
        let (_, research) = call(
            &app,
            get_as("/fhir/Patient/pat-ssn", |e| {
                e.insert(Caller::anonymous().with_client("research"));
            }),
        )
        .await;
        let v: Value = serde_json::from_slice(&research).unwrap();
        assert!(
            v.get("identifier").is_none() && v.get("name").is_none() && v.get("address").is_none()
        );
        assert_eq!(v["birthDate"], "1990");
        assert!(!String::from_utf8_lossy(&research).contains("Lindqvist"));
    }

    #[tokio::test]
    async fn searchsets_are_filtered_too() {
        let app = demo(redact_demo::layer());
        let (resp, body) = call(
            &app,
            get_as("/fhir/Patient?_id=pat-ssn", |e| {
                e.insert(Caller::anonymous().with_client("patient-app"));
            }),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("pat-ssn") && !text.contains(SSN), "{text}");
        // Research over a whole search with _include'd resources: no identifiers anywhere.
        let (resp, body) = call(
            &app,
            get_as(
                "/fhir/Encounter?_include=Encounter:subject&_count=50",
                |e| {
                    e.insert(Caller::anonymous().with_client("research"));
                },
            ),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let text = String::from_utf8(body).unwrap();
        assert!(!text.contains("\"identifier\""), "{text}");
        serde_json::from_str::<Value>(&text).unwrap();
    }

    #[tokio::test]
    async fn non_json_formats_are_refused_when_a_policy_applies() {
        let app = demo(redact_demo::layer());
        let patient_app = |e: &mut http::Extensions| {
            e.insert(Caller::anonymous().with_client("patient-app"));
        };
        let (resp, body) = call(
            &app,
            get_as("/fhir/Patient/pat-ssn?_format=xml", patient_app),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
        assert!(!String::from_utf8_lossy(&body).contains(SSN));
        let mut r = get_as("/fhir/Patient/pat-ssn", patient_app);
        r.headers_mut()
            .insert("accept", "application/fhir+xml".parse().unwrap());
        let (resp, _) = call(&app, r).await;
        assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
        // With no rule for the caller, the layer is out of the way.
        let (resp, _) = call(&app, get_as("/fhir/Patient/pat-ssn?_format=json", |_| {})).await;
        assert_eq!(resp.status(), 200);
    }

    #[tokio::test]
    async fn head_keeps_status_and_drops_length() {
        let app = demo(redact_demo::layer());
        let r = Request::head("/fhir/Patient/pat-ssn")
            .extension(Caller::anonymous().with_client("patient-app"))
            .body(Body::empty())
            .unwrap();
        let (resp, body) = call(&app, r).await;
        assert_eq!(resp.status(), 200);
        assert!(body.is_empty());
        // The origin's length described the unredacted body; axum's router may add its own
        // (of the empty HEAD body) after the layer.
        assert!(resp
            .headers()
            .get("content-length")
            .is_none_or(|v| v == "0"));
        assert_eq!(
            resp.extensions().get::<RedactDecision>(),
            Some(&RedactDecision::NoBody)
        );
    }

    fn fixed(
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        body: &'static [u8],
    ) -> Router {
        let policy = Policy {
            rules: vec![Rule::new(["Patient.telecom"], Action::Remove).unwrap()],
            ..Policy::default()
        };
        let redactor = Redactor::new(policy).unwrap().max_body(64 * 1024);
        Router::new()
            .route(
                "/fhir/Patient/1",
                get(move || async move {
                    let mut b = Response::builder().status(status);
                    for (k, v) in headers {
                        b = b.header(*k, *v);
                    }
                    b.body(Body::from(body)).unwrap()
                }),
            )
            .layer(RedactLayer::new(redactor))
    }

    async fn refused(app: Router) -> (StatusCode, Option<RedactDecision>, Vec<u8>) {
        let (resp, body) = call(&app, get_as("/fhir/Patient/1", |_| {})).await;
        (
            resp.status(),
            resp.extensions().get::<RedactDecision>().cloned(),
            body,
        )
    }

    #[tokio::test]
    async fn fails_closed() {
        let secret = br#"{"resourceType":"Patient","telecom":[{"value":"555"}]}"#;
        let cases: Vec<(Router, StatusCode, RedactRefusal)> = vec![
            (
                fixed(
                    200,
                    &[
                        ("content-type", "application/fhir+json"),
                        ("content-encoding", "gzip"),
                    ],
                    secret,
                ),
                StatusCode::INTERNAL_SERVER_ERROR,
                RedactRefusal::Compressed,
            ),
            (
                fixed(
                    200,
                    &[("content-type", "application/fhir+xml")],
                    b"<Patient><telecom><value value=\"555\"/></telecom></Patient>",
                ),
                StatusCode::NOT_ACCEPTABLE,
                RedactRefusal::NotAcceptable,
            ),
            (
                fixed(
                    200,
                    &[("content-type", "application/fhir+json")],
                    br#"{"resourceType":"Patient","telecom":[{"value":"555"}]"#,
                ),
                StatusCode::INTERNAL_SERVER_ERROR,
                RedactRefusal::Unparseable(fhirwall::redact::RedactError::Syntax),
            ),
            (
                fixed(
                    200,
                    &[("content-type", "application/fhir+json")],
                    br#"{"resourceType":"Patient","telecom":[{"value":"555"}],"telecom":[]}"#,
                ),
                StatusCode::INTERNAL_SERVER_ERROR,
                RedactRefusal::Unparseable(fhirwall::redact::RedactError::DuplicateKey),
            ),
        ];
        for (app, status, reason) in cases {
            let (got, decision, body) = refused(app).await;
            assert_eq!(got, status);
            assert_eq!(decision, Some(RedactDecision::Refused(reason)));
            let text = String::from_utf8(body).unwrap();
            assert!(
                !text.contains("555") && text.contains("OperationOutcome"),
                "{text}"
            );
        }
        // Over the limit, with and without a declared length.
        let big: &'static [u8] = Box::leak(
            format!(
                r#"{{"resourceType":"Patient","id":"{}"}}"#,
                "a".repeat(70_000)
            )
            .into_bytes()
            .into_boxed_slice(),
        );
        let (got, decision, _) = refused(fixed(
            200,
            &[("content-type", "application/fhir+json")],
            big,
        ))
        .await;
        assert_eq!(
            (got, decision),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(RedactDecision::Refused(RedactRefusal::TooLarge))
            )
        );
    }

    #[tokio::test]
    async fn not_modified_and_errors() {
        let (resp, body) = call(
            &fixed(304, &[("etag", "\"v1\"")], b""),
            get_as("/fhir/Patient/1", |_| {}),
        )
        .await;
        assert_eq!(resp.status(), 304);
        assert!(body.is_empty());
        assert_eq!(resp.headers()["etag"], "W/\"v1\"");
        // An OperationOutcome from the server is JSON like any other and passes unchanged.
        let oo = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}"#;
        let (resp, body) = call(
            &fixed(
                404,
                &[("content-type", "application/fhir+json"), ("etag", "\"x\"")],
                oo,
            ),
            get_as("/fhir/Patient/1", |_| {}),
        )
        .await;
        assert_eq!(resp.status(), 404);
        assert_eq!(body, oo);
        assert_eq!(resp.headers()["etag"], "\"x\"");
    }

    #[tokio::test]
    async fn hidden_resource_is_not_found() {
        let policy: Policy = serde_json::from_value(serde_json::json!({
            "labels": [{"codes": ["R"]}]
        }))
        .unwrap();
        let body = br#"{"resourceType":"Patient","meta":{"security":[{"code":"R"}]},"name":[{"family":"X"}]}"#;
        let app = Router::new()
            .route(
                "/fhir/Patient/1",
                get(move || async move {
                    Response::builder()
                        .header("content-type", "application/fhir+json")
                        .body(Body::from(&body[..]))
                        .unwrap()
                }),
            )
            .layer(RedactLayer::new(Redactor::new(policy).unwrap()));
        let (resp, out) = call(&app, get_as("/fhir/Patient/1", |_| {})).await;
        assert_eq!(resp.status(), 404);
        assert!(!String::from_utf8_lossy(&out).contains("\"X\""));
        assert_eq!(
            resp.extensions().get::<RedactDecision>(),
            Some(&RedactDecision::Hidden)
        );
    }
}

/// The two sides of the layer's first decision, on bodies that come in frames: a caller the
/// policy does nothing for gets the body streamed, frame by frame, untouched and unread; a
/// caller with rules gets the whole body read (in any framing) and every fail-closed check.
#[cfg(feature = "redact")]
mod framing {
    use bytes::Bytes;
    use fhirwall::redact::{
        Action, Caller, CallerMatch, Policy, RedactDecision, RedactLayer, RedactRefusal, Redactor,
        Rule,
    };
    use http::{Request, Response, StatusCode};
    use http_body::{Body, Frame, SizeHint};
    use http_body_util::BodyExt;
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tower::{service_fn, Layer, ServiceExt};

    const PATIENT: &[u8] = br#"{"resourceType":"Patient","id":"p1","telecom":[{"system":"phone","value":"555-0100"}],"name":[{"family":"Lindqvist","given":["Grace"]}],"birthDate":"1974-12-25"}"#;

    /// A body that yields its frames, then stays pending (`open`) or ends.
    struct Frames {
        frames: VecDeque<Bytes>,
        open: bool,
        hint: Option<u64>,
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.frames.pop_front() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None if self.open => Poll::Pending,
                None => Poll::Ready(None),
            }
        }

        fn size_hint(&self) -> SizeHint {
            match self.hint {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            }
        }
    }

    fn split(body: &[u8], cuts: &[usize]) -> VecDeque<Bytes> {
        let mut frames = VecDeque::new();
        let mut at = 0;
        for &cut in cuts.iter().chain([body.len()].iter()) {
            let cut = cut.min(body.len());
            frames.push_back(Bytes::copy_from_slice(&body[at..cut]));
            at = cut;
        }
        frames
    }

    fn layer(max_body: usize) -> RedactLayer {
        let policy = Policy {
            rules: vec![Rule::new(["Patient.telecom"], Action::Remove)
                .unwrap()
                .when(CallerMatch::clients(["patient-app"]))],
            ..Policy::default()
        };
        RedactLayer::new(Redactor::new(policy).unwrap().max_body(max_body))
    }

    fn request(client: &str) -> Request<()> {
        Request::get("/fhir/Patient/p1")
            .extension(Caller::anonymous().with_client(client))
            .body(())
            .unwrap()
    }

    async fn respond(
        layer: &RedactLayer,
        client: &str,
        headers: &'static [(&'static str, &'static str)],
        frames: VecDeque<Bytes>,
        open: bool,
        hint: Option<u64>,
    ) -> Response<fhirwall::body::FhirBody<Frames>> {
        let frames = std::sync::Mutex::new(Some(frames));
        let service = service_fn(move |_: Request<()>| {
            let frames = frames.lock().unwrap().take().unwrap_or_default();
            async move {
                let mut b = Response::builder();
                for (k, v) in headers {
                    b = b.header(*k, *v);
                }
                Ok::<_, Infallible>(b.body(Frames { frames, open, hint }).unwrap())
            }
        });
        layer.layer(service).oneshot(request(client)).await.unwrap()
    }

    type Polled<B> = Poll<Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>>;

    fn poll_once<B: Body + Unpin>(body: &mut B) -> Polled<B> {
        let waker = std::task::Waker::noop();
        Pin::new(body).poll_frame(&mut Context::from_waker(waker))
    }

    const JSON: &[(&str, &str)] = &[("content-type", "application/fhir+json")];

    #[tokio::test]
    async fn a_caller_with_nothing_to_redact_gets_the_body_streamed_untouched() {
        let layer = layer(1 << 20);
        let frames = split(PATIENT, &[10, 60]);
        // The body never ends: a layer that buffered it would never answer a frame.
        let response = respond(&layer, "care-team", JSON, frames.clone(), true, None).await;
        assert_eq!(
            response.extensions().get::<RedactDecision>(),
            Some(&RedactDecision::NotApplicable)
        );
        let mut body = response.into_body();
        let mut seen = Vec::new();
        for expected in &frames {
            let Poll::Ready(Some(Ok(frame))) = poll_once(&mut body) else {
                panic!("the frame was not passed on as it came");
            };
            assert_eq!(frame.into_data().unwrap(), expected);
            seen.extend_from_slice(expected);
        }
        assert!(poll_once(&mut body).is_pending());
        assert_eq!(seen, PATIENT);

        // Nothing is checked either: no rule applies, so nothing could be filtered.
        for headers in [
            &[
                ("content-type", "application/fhir+json"),
                ("content-encoding", "gzip"),
            ][..],
            &[("content-type", "application/fhir+xml")][..],
        ] {
            let response = respond(
                &layer,
                "care-team",
                headers,
                split(b"<x/>", &[]),
                false,
                None,
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK);
            let out = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(out, &b"<x/>"[..]);
        }
    }

    #[tokio::test]
    async fn a_caller_with_rules_gets_any_framing_redacted() {
        let layer = layer(1 << 20);
        let whole = respond(
            &layer,
            "patient-app",
            JSON,
            split(PATIENT, &[]),
            false,
            None,
        )
        .await;
        assert!(matches!(
            whole.extensions().get::<RedactDecision>(),
            Some(RedactDecision::Redacted { altered: 1, .. })
        ));
        let expected = whole.into_body().collect().await.unwrap().to_bytes();
        assert!(!String::from_utf8_lossy(&expected).contains("555-0100"));
        // Cut everywhere, inside strings and keys too, with and without a declared size.
        for cut in 1..PATIENT.len() {
            for hint in [None, Some(PATIENT.len() as u64)] {
                let frames = split(PATIENT, &[cut / 2, cut]);
                let response = respond(&layer, "patient-app", JSON, frames, false, hint).await;
                assert_eq!(
                    response.headers()["content-length"],
                    expected.len().to_string()
                );
                let out = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(out, expected, "cut at {cut}");
            }
        }
    }

    /// A layer, the response's headers and body, its size hint, and what must come out.
    type Case = (
        RedactLayer,
        &'static [(&'static str, &'static str)],
        &'static [u8],
        Option<u64>,
        StatusCode,
        RedactRefusal,
    );

    #[tokio::test]
    async fn a_caller_with_rules_gets_every_fail_closed_check() {
        let small = layer(PATIENT.len() - 1);
        let cases: Vec<Case> = vec![
            // Over the limit in several frames, declaring no size.
            (
                small.clone(),
                JSON,
                PATIENT,
                None,
                StatusCode::INTERNAL_SERVER_ERROR,
                RedactRefusal::TooLarge,
            ),
            // A size hint over the limit: refused before a byte is read.
            (
                small,
                JSON,
                PATIENT,
                Some(PATIENT.len() as u64),
                StatusCode::INTERNAL_SERVER_ERROR,
                RedactRefusal::TooLarge,
            ),
            (
                layer(1 << 20),
                &[
                    ("content-type", "application/fhir+json"),
                    ("content-encoding", "br"),
                ],
                PATIENT,
                None,
                StatusCode::INTERNAL_SERVER_ERROR,
                RedactRefusal::Compressed,
            ),
            (
                layer(1 << 20),
                &[("content-type", "application/fhir+xml")],
                b"<Patient><telecom/></Patient>",
                None,
                StatusCode::NOT_ACCEPTABLE,
                RedactRefusal::NotAcceptable,
            ),
            (
                layer(1 << 20),
                JSON,
                &PATIENT[..PATIENT.len() - 1],
                None,
                StatusCode::INTERNAL_SERVER_ERROR,
                RedactRefusal::Unparseable(fhirwall::redact::RedactError::Syntax),
            ),
        ];
        for (layer, headers, body, hint, status, reason) in cases {
            let frames = split(body, &[7, 40]);
            let response = respond(&layer, "patient-app", headers, frames, false, hint).await;
            assert_eq!(response.status(), status, "{reason:?}");
            assert_eq!(
                response.extensions().get::<RedactDecision>(),
                Some(&RedactDecision::Refused(reason))
            );
            let out = response.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8_lossy(&out);
            assert!(
                text.contains("OperationOutcome") && !text.contains("555"),
                "{text}"
            );
        }
    }
}
