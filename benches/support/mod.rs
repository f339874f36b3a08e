//! Shared bench support: every fhirwall benchmark reports a ratio against a baseline measured in
//! the same run, because absolute times on shared machines mean little.
#![allow(
    dead_code,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

/// Reads criterion's mean estimate (ns) for `group/function`.
pub(crate) fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = dir
        .join("criterion")
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// Prints `subject / baseline` with the goal, after criterion has written its estimates.
pub(crate) fn report_ratio(group: &str, subject: &str, baseline: &str, goal: f64) {
    match (mean_ns(group, subject), mean_ns(group, baseline)) {
        (Some(s), Some(b)) if b > 0.0 => {
            let ratio = s / b;
            let verdict = if ratio <= goal { "meets" } else { "MISSES" };
            println!(
                "ratio {group}: {subject} / {baseline} = {ratio:.2} ({s:.0} ns / {b:.0} ns); goal <= {goal:.2}: {verdict}"
            );
        }
        _ => println!("ratio {group}: no estimates found (run without --test to measure)"),
    }
}
