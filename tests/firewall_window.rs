#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Access windows (issue #8 §5): days and hours in a time zone, across DST changes, and a
//! validity period; outside them, 403.

mod firewall_support;

use axum::{routing::get, Router};
use fhirwall::fhir::{Interaction, ResourceType};
use fhirwall::firewall::{AccessWindow, FirewallLayer, FixedClock, RouteInventory};
use fhirwall::identity::TrustedClient;
use firewall_support::{send, serve};
use std::sync::Arc;

/// Unix seconds of `YYYY-MM-DDTHH:MM:SSZ`, for readable cases (days from civil).
fn utc(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss) = (n(11..13), n(14..16), n(17..19));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

#[test]
fn utc_helper() {
    assert_eq!(utc("1970-01-01T00:00:00Z"), 0);
    assert_eq!(utc("2025-01-01T00:00:00Z"), 1_735_689_600);
}

#[test]
fn business_hours_follow_daylight_saving_in_new_york() {
    let w = AccessWindow::new("America/New_York", "Mon-Fri", "08:00-18:00").unwrap();
    // 2026-03-08 02:00 EST -> EDT. Friday before: 08:30 EST = 13:30Z.
    assert!(w.permits_unix(utc("2026-03-06T13:30:00Z")));
    assert!(!w.permits_unix(utc("2026-03-06T12:30:00Z"))); // 07:30 EST
                                                           // Monday after: 08:30 EDT = 12:30Z; 13:30Z is 09:30.
    assert!(w.permits_unix(utc("2026-03-09T12:30:00Z")));
    assert!(!w.permits_unix(utc("2026-03-09T11:30:00Z"))); // 07:30 EDT
    assert!(!w.permits_unix(utc("2026-03-09T22:00:00Z"))); // 18:00 EDT, end exclusive
                                                           // Weekend.
    assert!(!w.permits_unix(utc("2026-03-07T15:00:00Z")));
    // 2026-11-01 EDT -> EST; Monday 2026-11-02 08:00 EST = 13:00Z.
    assert!(!w.permits_unix(utc("2026-11-02T12:30:00Z")));
    assert!(w.permits_unix(utc("2026-11-02T13:00:00Z")));
}

#[test]
fn same_instant_differs_by_zone() {
    let berlin = AccessWindow::new("Europe/Berlin", "Mon-Fri", "09:00-17:00").unwrap();
    let tokyo = AccessWindow::new("Asia/Tokyo", "Mon-Fri", "09:00-17:00").unwrap();
    let t = utc("2026-06-10T10:00:00Z"); // Wed: 12:00 CEST, 19:00 JST
    assert!(berlin.permits_unix(t));
    assert!(!tokyo.permits_unix(t));
    let t = utc("2026-06-10T01:00:00Z"); // Wed: 03:00 CEST, 10:00 JST
    assert!(!berlin.permits_unix(t));
    assert!(tokyo.permits_unix(t));
    // Friday 23:30 UTC is already Saturday in Tokyo.
    assert!(!tokyo.permits_unix(utc("2026-06-12T23:30:00Z")));
}

#[test]
fn overnight_windows_and_the_spring_gap() {
    // A nightly batch window 22:00-06:00 starting Sunday to Thursday, Europe/London.
    let w = AccessWindow::new("Europe/London", "Sun-Thu", "22:00-06:00").unwrap();
    assert!(w.permits_unix(utc("2026-06-14T21:30:00Z"))); // Sun 22:30 BST
    assert!(w.permits_unix(utc("2026-06-15T04:00:00Z"))); // Mon 05:00 BST
    assert!(!w.permits_unix(utc("2026-06-15T05:30:00Z"))); // Mon 06:30 BST
    assert!(!w.permits_unix(utc("2026-06-19T21:30:00Z"))); // Fri 22:30: Fri not listed
    assert!(!w.permits_unix(utc("2026-06-20T00:30:00Z"))); // Sat 01:30 (Fri night)
                                                           // 2026-03-29 01:00 GMT -> 02:00 BST. A 01:00-02:00 window that day never happens.
    let gap = AccessWindow::new("Europe/London", "Sun", "01:00-02:00").unwrap();
    assert!(!gap.permits_unix(utc("2026-03-29T00:59:59Z"))); // 00:59:59 GMT
    assert!(!gap.permits_unix(utc("2026-03-29T01:00:00Z"))); // 02:00 BST
                                                             // 2026-10-25 02:00 BST -> 01:00 GMT: 01:00-02:00 happens twice, both inside.
    let twice = AccessWindow::new("Europe/London", "Sun", "01:00-02:00").unwrap();
    assert!(twice.permits_unix(utc("2026-10-25T00:30:00Z"))); // 01:30 BST
    assert!(twice.permits_unix(utc("2026-10-25T01:30:00Z"))); // 01:30 GMT
}

#[test]
fn validity_period() {
    let w = AccessWindow::new("UTC", "Mon-Sun", "00:00-24:00")
        .unwrap()
        .valid_from(utc("2026-01-01T00:00:00Z"))
        .valid_until(utc("2026-02-01T00:00:00Z"));
    assert!(!w.permits_unix(utc("2025-12-31T23:59:59Z")));
    assert!(w.permits_unix(utc("2026-01-15T12:00:00Z")));
    assert!(!w.permits_unix(utc("2026-02-01T00:00:00Z")));
}

#[test]
fn bad_specifications_are_errors() {
    assert!(AccessWindow::new("Mars/Olympus", "Mon", "08:00-09:00").is_err());
    assert!(AccessWindow::new("UTC", "Someday", "08:00-09:00").is_err());
    assert!(AccessWindow::new("UTC", "Mon", "8-9").is_err());
    assert!(AccessWindow::new("UTC", "Mon", "09:00-09:00").is_err());
}

#[tokio::test]
async fn outside_the_window_the_client_is_refused() {
    let clock = Arc::new(FixedClock::at(utc("2026-03-09T12:30:00Z"))); // Mon 08:30 EDT
    let routes = RouteInventory::new("/fhir").declare(ResourceType::Patient, [Interaction::Read]);
    let firewall = FirewallLayer::builder(routes)
        .window(
            "client:lab",
            AccessWindow::new("America/New_York", "Mon-Fri", "08:00-18:00").unwrap(),
        )
        .clock(clock.clone())
        .build();
    let app = Router::new()
        .route("/fhir/Patient/{id}", get(|| async { "{}" }))
        .layer(firewall.client_rules())
        .layer(tower::util::MapRequestLayer::new(
            |mut req: axum::extract::Request| {
                if req.headers().contains_key("x-test-lab") {
                    req.extensions_mut().insert(TrustedClient::new("lab"));
                }
                req
            },
        ))
        .layer(firewall);
    let addr = serve(app).await;
    assert_eq!(
        send(addr, "GET", "/fhir/Patient/1", &[("x-test-lab", "1")])
            .await
            .status,
        200
    );
    clock.set(utc("2026-03-07T15:00:00Z")); // Saturday
    let r = send(addr, "GET", "/fhir/Patient/1", &[("x-test-lab", "1")]).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("not allowed at this time"));
    // Clients without a window are not affected.
    assert_eq!(send(addr, "GET", "/fhir/Patient/1", &[]).await.status, 200);
}
