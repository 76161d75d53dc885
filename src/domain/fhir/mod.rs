//! FHIR
