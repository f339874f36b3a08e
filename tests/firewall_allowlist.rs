#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! IP allowlists (issue #8 §1): CIDR tables for IPv4, IPv6 and IPv4-mapped addresses, proxy
//! handling and spoofed forwarding headers, on a real server on 127.0.0.1.

mod firewall_support;

use axum::{routing::get, Router};
use fhirwall::fhir::{Interaction, ResourceType};
use fhirwall::firewall::{FirewallLayer, IpRule, RouteInventory};
use fhirwall::identity::TrustedClient;
use fhirwall::net::TrustedProxies;
use firewall_support::{cases, send, serve};
use std::net::{IpAddr, SocketAddr};

fn list(field: &str) -> Vec<String> {
    if field == "-" {
        Vec::new()
    } else {
        field.split(',').map(|s| s.trim().to_owned()).collect()
    }
}

#[test]
fn cidr_table() {
    let mut n = 0;
    for (line, f) in cases("cidr.txt") {
        match f[0].as_str() {
            "rule" => {
                let allow = list(&f[1]);
                let rule = if allow.is_empty() {
                    IpRule::any()
                } else {
                    IpRule::allow(allow).unwrap()
                }
                .deny(list(&f[2]))
                .unwrap();
                let ip: IpAddr = f[3].parse().unwrap();
                assert_eq!(
                    rule.permits(ip),
                    f[4] == "allow",
                    "cidr.txt line {line}: {f:?}"
                );
            }
            "proxy" => {
                let proxies = TrustedProxies::new(list(&f[1])).unwrap();
                let peer: SocketAddr = f[2].parse().unwrap();
                let mut headers = http::HeaderMap::new();
                if f[3] != "-" {
                    headers.insert("x-forwarded-for", f[3].parse().unwrap());
                }
                let expected: IpAddr = f[4].parse().unwrap();
                assert_eq!(
                    proxies.client_ip(peer.ip(), &headers),
                    expected,
                    "cidr.txt line {line}"
                );
            }
            other => panic!("cidr.txt line {line}: unknown kind {other}"),
        }
        n += 1;
    }
    assert!(n >= 30);
}

fn routes() -> RouteInventory {
    RouteInventory::new("/fhir")
        .declare(ResourceType::Patient, [Interaction::Read])
        .extra(http::Method::GET, "/health")
}

fn app(firewall: FirewallLayer) -> Router {
    Router::new()
        .route("/fhir/Patient/{id}", get(|| async { "{}" }))
        .route("/admin/stats", get(|| async { "{}" }))
        .route("/health", get(|| async { "ok" }))
        .layer(firewall)
}

#[tokio::test]
async fn loopback_allowed_other_networks_refused_with_operation_outcome() {
    let ok = serve(app(FirewallLayer::builder(routes())
        .allow(IpRule::allow(["127.0.0.0/8"]).unwrap())
        .build()))
    .await;
    assert_eq!(send(ok, "GET", "/fhir/Patient/1", &[]).await.status, 200);

    let refused = serve(app(FirewallLayer::builder(routes())
        .allow(IpRule::allow(["10.0.0.0/8", "2001:db8::/32"]).unwrap())
        .build()))
    .await;
    let r = send(refused, "GET", "/fhir/Patient/1", &[]).await;
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("\"resourceType\":\"OperationOutcome\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("forbidden"));
    // The refusal doesn't say which networks would be allowed.
    assert!(!r.body.contains("10.0.0.0"));
}

#[tokio::test]
async fn route_groups_have_their_own_rules() {
    let addr = serve(app(FirewallLayer::builder(
        routes().extra(http::Method::GET, "/admin/stats"),
    )
    .group("/admin", IpRule::allow(["10.9.0.0/16"]).unwrap())
    .build()))
    .await;
    assert_eq!(send(addr, "GET", "/fhir/Patient/1", &[]).await.status, 200);
    assert_eq!(send(addr, "GET", "/admin/stats", &[]).await.status, 403);
    // An address refusal comes before the route check: an outsider learns nothing of routes.
    assert_eq!(send(addr, "GET", "/admin/secret", &[]).await.status, 403);
}

#[tokio::test]
async fn spoofed_forwarded_for_is_ignored_from_untrusted_peers() {
    // The client pretends to be 10.1.2.3; 127.0.0.1 is not a trusted proxy.
    let addr = serve(app(FirewallLayer::builder(routes())
        .allow(IpRule::allow(["10.0.0.0/8"]).unwrap())
        .build()))
    .await;
    let r = send(
        addr,
        "GET",
        "/fhir/Patient/1",
        &[("X-Forwarded-For", "10.1.2.3")],
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_is_believed() {
    let addr = serve(app(FirewallLayer::builder(routes())
        .trusted_proxies(TrustedProxies::new(["127.0.0.0/8"]).unwrap())
        .allow(IpRule::allow(["10.0.0.0/8"]).unwrap())
        .build()))
    .await;
    let r = send(
        addr,
        "GET",
        "/fhir/Patient/1",
        &[("X-Forwarded-For", "10.1.2.3")],
    )
    .await;
    assert_eq!(r.status, 200);
    // Spoofed hop to the left of the proxy's own: the proxy saw 192.0.2.1.
    let r = send(
        addr,
        "GET",
        "/fhir/Patient/1",
        &[("X-Forwarded-For", "10.1.2.3, 192.0.2.1")],
    )
    .await;
    assert_eq!(r.status, 403);
    // Garbage falls back to the peer (127.0.0.1), which is not in 10/8.
    let r = send(
        addr,
        "GET",
        "/fhir/Patient/1",
        &[("X-Forwarded-For", "garbage")],
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn trusted_client_only_from_its_networks() {
    // The identity layer (stood in for here) names the client; the client rules run behind it.
    let firewall = FirewallLayer::builder(routes())
        .client_networks("client:lab", IpRule::allow(["10.0.0.0/8"]).unwrap())
        .client_networks("client:local", IpRule::allow(["127.0.0.0/8"]).unwrap())
        .build();
    let as_client = |name: &'static str| {
        tower::util::MapRequestLayer::new(move |mut req: axum::extract::Request| {
            req.extensions_mut().insert(TrustedClient::new(name));
            req
        })
    };
    let lab = Router::new()
        .route("/fhir/Patient/{id}", get(|| async { "{}" }))
        .layer(firewall.client_rules())
        .layer(as_client("lab"))
        .layer(firewall.clone());
    let local = Router::new()
        .route("/fhir/Patient/{id}", get(|| async { "{}" }))
        .layer(firewall.client_rules())
        .layer(as_client("local"))
        .layer(firewall);
    let lab = serve(lab).await;
    let local = serve(local).await;
    let r = send(lab, "GET", "/fhir/Patient/1", &[]).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("not allowed from this network"));
    assert_eq!(send(local, "GET", "/fhir/Patient/1", &[]).await.status, 200);
}

#[tokio::test]
async fn unknown_peer_is_refused_when_a_rule_applies() {
    use tower::ServiceExt;
    let svc = app(FirewallLayer::builder(routes())
        .allow(IpRule::allow(["127.0.0.0/8"]).unwrap())
        .build());
    // No RemoteAddr in the extensions: fail closed.
    let req = http::Request::get("/fhir/Patient/1")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(svc.clone().oneshot(req).await.unwrap().status(), 403);
    // An IPv4-mapped IPv6 peer on a dual-stack socket is judged as IPv4.
    let mut req = http::Request::get("/fhir/Patient/1")
        .body(axum::body::Body::empty())
        .unwrap();
    req.extensions_mut().insert(fhirwall::net::RemoteAddr(
        "[::ffff:127.0.0.1]:5000".parse().unwrap(),
    ));
    assert_eq!(svc.oneshot(req).await.unwrap().status(), 200);
}
