//! FHIR R4 (4.0.1) Encounters, sent on their own or in batch and
//! transaction Bundles, and what a feed's mapping makes of them.
//!
//! Only the elements Verdad reads are modelled, with our own serde types:
//! every other element R4 defines on an Encounter is accepted and ignored,
//! an element R4 does not define is refused, and so is a modifier
//! extension, which could reverse the meaning of what Verdad reads. Faults
//! are [`Issue`]s for an OperationOutcome, each naming its element by
//! FHIRPath and none repeating a value the client sent, since values may
//! be a patient's.
//!
//! The steps, for the caller: [`read_encounter`] (or [`read_bundle`], then
//! [`read_entry`] for each entry); then [`withdrawn`], which says the
//! moments stored under the Encounter's [`resource_key`] are to be taken
//! back, or else [`moments`], whose empty answer means the Encounter is
//! ignored; last the answer, built with [`operation_outcome`] or
//! [`batch_response`].

mod datetime;
mod map;
mod outcome;
mod read;
mod types;

pub use datetime::{FhirDateTime, parse_date_time};
pub use map::{
    CUSTOMER_REF_MAX_CHARS, JOURNEY_ID_MAX_CHARS, MOMENT_ATTRIBUTE, Moment, RESOURCE_ATTRIBUTE,
    STAFF_REF_MAX_CHARS, STATUS_ATTRIBUTE, moments, resource_key, withdrawn,
};
pub use outcome::{
    EntryResponse, Issue, IssueType, Severity, batch_response, operation_outcome,
    outcome_information, response_bundle, status_line, transaction_response,
};
pub use read::{read_bundle, read_encounter, read_entry, read_entry_resource};
pub use types::{
    Bundle, BundleType, CodeableConcept, Coding, Encounter, EncounterLocation, EncounterStatus,
    Identifier, LocationStatus, Participant, Period, Reference, StatusHistory,
};

#[cfg(test)]
mod tests;
