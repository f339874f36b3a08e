//! The whole fhirwall stack in the recommended order, from one builder.
