//! Upstream response bodies through the layers that read them: the SMART response check
//! under a patient-scoped token (`smart::SmartLayer`: the compartment check on a sparse parse
//! of each resource, searchsets entry by entry) and the budget layer's resource count
//! (`limit::BudgetLayer`: the hand-written single pass, the full parse as its fallback), and
//! the budget layer with redaction inside (`redact::RedactLayer`), which counts the resources
//! on its walk and hands the count on.
//!
//! Input: a selector byte (bit 0: budget layer, else SMART; bit 1: a search, else a read;
//! bit 2 with bit 0: redaction inside the budget layer), then the body the FHIR server answers
//! with.
//!
//! Invariants: no panic; both layers answer without waiting; SMART answers 200 (checked),
//! 404 (hidden) or 502 (uncheckable) and never passes on a body it could not parse; the budget
//! layer answers 200 or 502 (uncountable) and, on a 200, counts a resource for a single
//! resource and at most one per entry for a Bundle; with redaction inside, the count handed
//! on is the budget layer's own count of the body sent (the same body through the budget
//! layer alone).
#![no_main]

use bytes::Bytes;
use fhirwall::classify::ClassifyLayer;
use fhirwall::fhir::Classifier;
use fhirwall::limit::{BudgetDecision, BudgetLayer, MemoryStore, Rate};
use fhirwall::net::RemoteAddr;
use fhirwall::redact::{Policy, RedactLayer, Redactor};
use fhirwall::smart::token::JwtVerifier;
use fhirwall::smart::SmartLayer;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use tower::{service_fn, Layer, Service, ServiceExt};

const ISSUER: &str = "https://auth.example.org";
const AUDIENCE: &str = "https://fhir.example.org/r4";
const SECRET: &[u8] = b"fhirwall-fuzz-shared-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

struct Fixed {
    smart: SmartLayer,
    budget: BudgetLayer,
    redact: RedactLayer,
    token: String,
}

fn fixed() -> &'static Fixed {
    static F: OnceLock<Fixed> = OnceLock::new();
    F.get_or_init(|| {
        let verifier = JwtVerifier::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .danger_hmac_secret(SECRET)
            .build()
            .expect("the HMAC verifier builds");
        let claims = serde_json::json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "fuzz", "client_id": "fuzz-app",
            "exp": 4_102_444_800u64, "scope": "launch/patient patient/*.rs", "patient": "pat-1",
        });
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET).expect("an HMAC key");
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &key,
        )
        .expect("the token signs");
        let big = Rate::per_minute(1_000_000_000);
        // Labels hide entries (with the searchset's note), a hidden type too, and one element
        // rule: the count is handed on only where the walk is sure of it.
        let policy: Policy = serde_json::from_value(serde_json::json!({
            "rules": [
                {"resources": ["Condition"], "action": {"kind": "remove_resource"}},
                {"paths": ["Patient.telecom"], "action": {"kind": "remove"}}
            ],
            "labels": [{"codes": ["R", "V"]}],
            "suppressed_note": true
        }))
        .expect("the fuzz policy deserializes");
        let redactor = Redactor::new(policy).expect("the fuzz policy compiles");
        Fixed {
            smart: SmartLayer::new(verifier),
            budget: BudgetLayer::new(MemoryStore::default())
                .requests(Some(big))
                .resources(Some(big))
                .max_in_flight(None),
            redact: RedactLayer::new(redactor),
            token,
        }
    })
}

/// Polls `future` to its end; the layers never wait here (static key, memory store, a body
/// that is all there).
fn finish<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..64 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("a layer waited on a response that was all there");
}

/// The FHIR server: answers every request with `body`, whatever the request body's type.
fn server<B>(
    body: Bytes,
) -> impl Service<
    Request<B>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = Ready<Result<Response<Full<Bytes>>, Infallible>>,
> + Clone {
    service_fn(move |_: Request<B>| {
        ready(Ok(Response::builder()
            .header("content-type", "application/fhir+json")
            .body(Full::new(body.clone()))
            .expect("a response")))
    })
}

/// What the budget layer counted in a response it let through.
fn resources_counted<B>(response: &Response<B>) -> Option<u64> {
    response
        .extensions()
        .get::<BudgetDecision>()
        .and_then(|d| d.resources_counted)
}

/// The same request again (method, URI, headers, peer address), for a second service.
fn request_like(request: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut again = Request::get(request.uri().clone())
        .body(Full::new(Bytes::new()))
        .expect("a request");
    *again.headers_mut() = request.headers().clone();
    if let Some(peer) = request.extensions().get::<RemoteAddr>() {
        again.extensions_mut().insert(peer.clone());
    }
    again
}

/// Every counted entry is an object of its own, so a count can't pass the number of `{`.
fn objects(body: &[u8]) -> usize {
    body.iter().filter(|&&b| b == b'{').count()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let f = fixed();
    let uri = if selector & 2 == 0 {
        "/fhir/Observation/obs-1"
    } else {
        "/fhir/Observation?code=x"
    };
    let upstream = Bytes::copy_from_slice(body);
    let mut request = Request::get(uri)
        .header("authorization", format!("Bearer {}", f.token))
        .body(Full::new(Bytes::new()))
        .expect("a request");
    // The budget layer's key: the peer address.
    request
        .extensions_mut()
        .insert(RemoteAddr(SocketAddr::from(([127, 0, 0, 1], 50000))));
    let classify = ClassifyLayer::new(Classifier::new("/fhir"));
    if selector & 1 == 0 {
        let service = classify.layer(f.smart.layer(server(upstream)));
        let response = finish(service.oneshot(request)).expect("infallible");
        let status = response.status().as_u16();
        let out = finish(response.into_body().collect())
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        assert!(matches!(status, 200 | 404 | 502), "SMART answered {status}");
        if status == 200 && out != body {
            // Changed by the check: only a searchset loses entries (and its total).
            assert!(selector & 2 != 0, "a single resource was rewritten");
        }
        if status == 502 {
            let outcome: serde_json::Value =
                serde_json::from_slice(&out).expect("the refusal is JSON");
            assert_eq!(
                outcome["resourceType"], "OperationOutcome",
                "502 without an outcome"
            );
        }
    } else if selector & 4 != 0 {
        let service = classify.layer(f.budget.layer(f.redact.layer(server(upstream))));
        let again = request_like(&request);
        let response = finish(service.oneshot(request)).expect("infallible");
        let status = response.status().as_u16();
        let counted = resources_counted(&response);
        let out = finish(response.into_body().collect())
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        if status == 200 {
            // The body sent, counted by the budget layer alone.
            let alone = classify.layer(f.budget.layer(server(out)));
            let response = finish(alone.oneshot(again)).expect("infallible");
            let own = resources_counted(&response);
            assert_eq!(counted, own, "the count handed on is not the budget's own");
        }
    } else {
        let service = classify.layer(f.budget.layer(server(upstream)));
        let response = finish(service.oneshot(request)).expect("infallible");
        let status = response.status().as_u16();
        let counted = resources_counted(&response);
        assert!(
            matches!(status, 200 | 502),
            "the budget layer answered {status}"
        );
        if let (200, Some(n)) = (status, counted) {
            let bound = objects(body).max(1);
            assert!(
                n as usize <= bound,
                "counted {n} with at most {bound} resources"
            );
        }
    }
});
