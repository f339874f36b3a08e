//! FHIR-aware response redaction (feature `redact`).
