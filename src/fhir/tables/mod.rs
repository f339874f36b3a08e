//! FHIR R4 tables generated from the official core package (`hl7.fhir.r4.core` 4.0.1).

mod resource_types;

pub use resource_types::ResourceType;
