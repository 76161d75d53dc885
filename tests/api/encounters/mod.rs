//! EncounterService: recording, reading, listing and erasing encounters,
//! with their validation, idempotency and evaluation against the standards
//! in force.

mod erasure;
mod evaluation;
mod idempotency;
mod listing;
mod observations;
mod recording;
mod validation;
