//! What one message would do for a feed, with nothing stored: an admin's
//! dry run of a mapping against a real message, HL7 v2 or FHIR R4.

use uuid::Uuid;

use super::{
    App, Caller, Operation, Parsed,
    access::permit,
    feeds::{found, organisation_zone},
};
use crate::{
    domain::{encounter::NewEncounter, feed::Mapping},
    error::Result,
    store,
};

/// What a message would do.
#[derive(Debug, Clone, PartialEq)]
pub enum PreviewOutcome {
    /// Store these encounters.
    Store(Vec<NewEncounter>),
    /// Withdraw the encounters of these external ids (none when nothing
    /// stands to be withdrawn now).
    Withdraw(Vec<String>),
    /// Nothing: no rule takes it.
    Ignore,
    /// Refused: the element (an HL7 segment or a FHIRPath) and field at
    /// fault, and why.
    Refuse {
        element: String,
        field: usize,
        reason: String,
    },
}

/// The answer a message would get, and what it would do.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPreview {
    /// `AA`, `AE` or `AR` for HL7 v2; the HTTP status for FHIR R4.
    pub acknowledgement: String,
    /// The message's control id (MSH-10), or the resource's id.
    pub control_id: String,
    pub outcome: PreviewOutcome,
}

impl App {
    pub async fn preview_feed_message(
        &self,
        caller: &Caller,
        request: Parsed<(Uuid, String)>,
    ) -> Result<FeedPreview> {
        let org = permit(caller, Operation::PreviewFeedMessage)?;
        let (feed_id, message) = request?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let feed = found(store::feed::get(&mut tx, org, feed_id).await?, feed_id)?;
        let zone = organisation_zone(&mut tx, org).await?;
        tx.commit().await?;
        match &feed.mapping {
            Mapping::Hl7v2(mapping) => self.preview_hl7(org, &feed, mapping, zone, &message).await,
            Mapping::FhirR4(mapping) => {
                self.preview_fhir(org, &feed, mapping, zone, &message).await
            }
        }
    }
}
