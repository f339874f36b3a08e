#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! `TrustedClientLayer` behind a server of your own: certificates handed over as
//! `PeerCertificates` or a `ConnectionIdentity`, and the decision every response carries for
//! the audit layer.
#![cfg(feature = "mtls")]

#[path = "support/pki.rs"]
mod pki;

use bytes::Bytes;
use fhirwall::identity::{
    CertificateSource, ClientIdentity, ClientMatch, ConnectionIdentity, IdentityDecision,
    IdentityRefusal, MatchedBy, PeerCertificates, TrustPolicy, TrustedClient, TrustedClientLayer,
    WithConnectionIdentity,
};
use fhirwall::net::CertificateThumbprint;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use pki::{ClientOptions, Pki, Validity};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tower::{service_fn, Layer, ServiceExt};

fn policy() -> TrustPolicy {
    TrustPolicy::builder()
        .allow(
            "lab",
            ClientMatch::san_uri("spiffe://test.example/lab").unwrap(),
        )
        .build()
        .unwrap()
}

async fn inner(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let client = request
        .extensions()
        .get::<TrustedClient>()
        .unwrap()
        .name()
        .to_owned();
    assert!(request
        .extensions()
        .get::<CertificateThumbprint>()
        .is_some());
    Ok(Response::new(Full::new(Bytes::from(client))))
}

async fn call(
    extensions: impl FnOnce(&mut http::Extensions),
) -> Response<fhirwall::body::FhirBody<Full<Bytes>>> {
    let service = TrustedClientLayer::new(policy()).layer(service_fn(inner));
    let mut request = Request::new(Full::new(Bytes::new()));
    extensions(request.extensions_mut());
    service.oneshot(request).await.unwrap()
}

async fn body_json(response: Response<fhirwall::body::FhirBody<Full<Bytes>>>) -> serde_json::Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn peer_certificates_alone_are_parsed_and_allowed() {
    let ca = Pki::new("client CA");
    let lab = ca.client(ClientOptions::new("lab"));
    let response = call(|ext| {
        ext.insert(PeerCertificates::new(lab.chain.clone()).unwrap());
    })
    .await;
    assert_eq!(response.status(), 200);
    let decision = response
        .extensions()
        .get::<IdentityDecision>()
        .unwrap()
        .clone();
    match decision {
        IdentityDecision::Allowed {
            client,
            matched_by,
            source,
            thumbprint,
        } => {
            assert_eq!(client.name(), "lab");
            assert_eq!(matched_by, MatchedBy::SanUri);
            assert_eq!(source, CertificateSource::Tls);
            assert_eq!(thumbprint.0.len(), 32);
        }
        other => panic!("{other:?}"),
    }
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"lab");
}

#[tokio::test]
async fn refusals_carry_their_decision_and_an_operation_outcome() {
    let ca = Pki::new("client CA");
    let expired = ca.client(ClientOptions::new("lab").validity(Validity::Expired));
    let stranger = ca.client(ClientOptions::new("stranger"));
    let cases: Vec<(Option<Vec<u8>>, IdentityRefusal, u16)> = vec![
        (None, IdentityRefusal::MissingCertificate, 401),
        (
            Some(b"\x30\x03\x02\x01\x01".to_vec()),
            IdentityRefusal::UnreadableCertificate,
            401,
        ),
        (Some(expired.cert.to_vec()), IdentityRefusal::Expired, 401),
        (
            Some(stranger.cert.to_vec()),
            IdentityRefusal::NotAllowed,
            403,
        ),
    ];
    for (leaf, reason, status) in cases {
        let response = call(|ext| {
            if let Some(leaf) = leaf {
                ext.insert(PeerCertificates::new(vec![leaf.into()]).unwrap());
            }
        })
        .await;
        assert_eq!(response.status(), status, "{reason:?}");
        let decision = response.extensions().get::<IdentityDecision>().unwrap();
        assert_eq!(decision.refusal(), Some(reason));
        let v = body_json(response).await;
        assert_eq!(v["resourceType"], "OperationOutcome");
        assert_eq!(v["issue"][0]["code"], reason.issue_type().as_str());
        assert_eq!(v["issue"][0]["details"]["text"], reason.message());
    }
}

#[tokio::test]
async fn connection_identity_is_parsed_once_and_shared_by_requests() {
    let ca = Pki::new("client CA");
    let lab = ca.client(ClientOptions::new("lab"));
    let connection = Arc::new(ConnectionIdentity::new(
        Some("127.0.0.1:4000".parse().unwrap()),
        Some(&lab.chain),
    ));
    let parsed = connection.identity().unwrap().clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let service = WithConnectionIdentity::new(
        TrustedClientLayer::new(policy()).layer(service_fn(
            move |request: Request<Full<Bytes>>| {
                let identity = request
                    .extensions()
                    .get::<Arc<ClientIdentity>>()
                    .unwrap()
                    .clone();
                record.lock().unwrap().push(identity);
                async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))) }
            },
        )),
        connection,
    );
    for _ in 0..3 {
        let response = service
            .clone()
            .oneshot(Request::new(Full::new(Bytes::new())))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    // Every request holds the connection's one parsed identity, not a copy.
    assert!(seen.iter().all(|identity| Arc::ptr_eq(identity, &parsed)));
}
