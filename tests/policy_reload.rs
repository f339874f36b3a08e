#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! Reloading under concurrent traffic (issue #9): every request runs under exactly one
//! policy version, whole; an invalid new policy is refused and the old one keeps working.

use axum::{routing::get, Router};
use fhirwall::net::RemoteAddr;
use fhirwall::policy::{PolicyHandle, PolicyVersion};
use http::{Request, StatusCode};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

/// A policy that serves exactly one resource type's reads.
fn policy(resource_type: &str) -> String {
    format!(
        r#"
[service]
danger_no_authentication = true

[transport]
require_tls = false

[[routes.resources]]
type = "{resource_type}"
interactions = ["read"]

[budgets]
requests = "off"
resources = "off"
max_in_flight = 0
"#
    )
}

struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("fhirwall-policy-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn app(handle: &PolicyHandle) -> Router {
    // The handler reports the version the request carried in, to compare with the response's.
    let echo = |body: &'static str| {
        move |request: Request<axum::body::Body>| async move {
            let version = request
                .extensions()
                .get::<PolicyVersion>()
                .map_or(0, |v| v.0);
            ([("x-policy-version", version.to_string())], body)
        }
    };
    Router::new()
        .route(
            "/fhir/Patient/{id}",
            get(echo(r#"{"resourceType":"Patient","id":"1"}"#)),
        )
        .route(
            "/fhir/Observation/{id}",
            get(echo(
                r#"{"resourceType":"Observation","id":"1","status":"final","code":{"text":"x"}}"#,
            )),
        )
        .layer(handle.clone())
}

async fn get_path(app: &Router, path: &str) -> (StatusCode, u64, Option<u64>) {
    let mut request = Request::get(path).body(axum::body::Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(RemoteAddr("127.0.0.1:40000".parse().unwrap()));
    let response = app.clone().oneshot(request).await.unwrap();
    let version = response.extensions().get::<PolicyVersion>().unwrap().0;
    let echoed = response
        .headers()
        .get("x-policy-version")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (response.status(), version, echoed)
}

#[tokio::test]
async fn a_bad_reload_keeps_the_old_policy() {
    let files = Files::new("bad");
    let good = files.write("policy.toml", &policy("Patient"));
    let handle = PolicyHandle::load(&good).unwrap();
    let app = app(&handle);
    assert_eq!(get_path(&app, "/fhir/Patient/1").await.0, StatusCode::OK);

    let bad = files.write(
        "bad.toml",
        &format!(
            "{}\n[network]\nallow = [\"10.0.0.0/33\"]\n",
            policy("Observation")
        ),
    );
    let e = handle.reload_from(&bad).unwrap_err();
    assert_eq!(e.key(), "network.allow[0]");
    assert_eq!(handle.version(), 1);
    assert_eq!(
        get_path(&app, "/fhir/Patient/1").await,
        (StatusCode::OK, 1, Some(1))
    );
    assert_eq!(
        get_path(&app, "/fhir/Observation/1").await.0,
        StatusCode::NOT_FOUND
    );

    // The same file, fixed and reloaded by path: the new policy is in force.
    std::fs::write(&good, policy("Observation")).unwrap();
    assert_eq!(handle.reload().unwrap(), 2);
    assert_eq!(
        get_path(&app, "/fhir/Observation/1").await,
        (StatusCode::OK, 2, Some(2))
    );
    assert_eq!(
        get_path(&app, "/fhir/Patient/1").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_traffic_sees_one_whole_policy_per_request() {
    let files = Files::new("concurrent");
    let patient = files.write("patient.toml", &policy("Patient"));
    let observation = files.write("observation.toml", &policy("Observation"));
    let invalid = files.write(
        "invalid.toml",
        &policy("Patient").replace("requests = \"off\"", "requests = \"30/minit\""),
    );
    let handle = PolicyHandle::load(&patient).unwrap();
    let app = app(&handle);

    // Which resource type each version in force served: odd versions Patient, even Observation.
    let in_force: Arc<Mutex<BTreeSet<u64>>> = Arc::new(Mutex::new(BTreeSet::from([1])));
    // Each reload waits for 60 more requests to be served, so the reloads always fall in the
    // middle of the traffic (30 rounds wait for at most 1,800 of the 2,400 requests), however
    // fast or slow the machine is.
    let served = Arc::new(AtomicUsize::new(0));
    let reloader = {
        let handle = handle.clone();
        let in_force = in_force.clone();
        let served = served.clone();
        tokio::spawn(async move {
            for round in 0..30u64 {
                let due = usize::try_from(round + 1).unwrap() * 60;
                while served.load(Ordering::Acquire) < due {
                    tokio::task::yield_now().await;
                }
                if round % 3 == 2 {
                    let before = handle.version();
                    let e = handle.reload_from(&invalid).unwrap_err();
                    assert_eq!(e.key(), "budgets.requests");
                    assert_eq!(
                        handle.version(),
                        before,
                        "an invalid policy changed nothing"
                    );
                } else {
                    let next = if handle.version() % 2 == 1 {
                        &observation
                    } else {
                        &patient
                    };
                    let v = handle.reload_from(next).unwrap();
                    in_force.lock().unwrap().insert(v);
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let mut tasks = Vec::new();
    for task in 0..16 {
        let app = app.clone();
        let served = served.clone();
        let handle = handle.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in 0..150 {
                // Half way, wait for the first reload (due after 60 of the first 1,200
                // requests), so every run sees more than one version whatever the timing.
                if i == 75 {
                    while handle.version() < 2 {
                        tokio::task::yield_now().await;
                    }
                }
                let path = if (task + i) % 2 == 0 {
                    "/fhir/Patient/1"
                } else {
                    "/fhir/Observation/1"
                };
                let (status, version, echoed) = get_path(&app, path).await;
                served.fetch_add(1, Ordering::Release);
                seen.push((path, status, version, echoed));
                tokio::task::yield_now().await;
            }
            seen
        }));
    }
    reloader.await.unwrap();
    let in_force = in_force.lock().unwrap().clone();
    let mut versions = BTreeSet::new();
    let mut total = 0;
    for task in tasks {
        for (path, status, version, echoed) in task.await.unwrap() {
            total += 1;
            versions.insert(version);
            assert!(
                in_force.contains(&version),
                "version {version} was never in force"
            );
            let served = if version % 2 == 1 {
                "/fhir/Patient/1"
            } else {
                "/fhir/Observation/1"
            };
            if path == served {
                assert_eq!(status, StatusCode::OK, "{path} under version {version}");
                assert_eq!(
                    echoed,
                    Some(version),
                    "the handler ran under the same version"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{path} under version {version}"
                );
                assert_eq!(echoed, None, "a refused request never reached the handler");
            }
        }
    }
    assert_eq!(total, 16 * 150);
    assert_eq!(handle.version(), 21, "20 valid reloads after version 1");
    // The first 60 requests ran under version 1 and later ones under later versions.
    assert!(versions.contains(&1) && versions.len() > 1, "{versions:?}");
}
