//! Developer tasks for fhirwall.
fn main() {}
