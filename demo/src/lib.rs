//! The demo FHIR server behind fhirwall's gateway example.
