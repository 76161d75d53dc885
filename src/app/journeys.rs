//! Journeys: the encounters of one visit or case, and the feedback given
//! on the whole.

use super::{App, Caller, Operation, Parsed, access::permit};
use crate::{
    domain::{
        encounter::Encounter,
        journey::{JourneyFeedback, JourneySummary, MAX_SHOWN_ENCOUNTERS},
    },
    error::{Error, Result},
    store::{self, journey::StoredFeedback, journey_close::CloseReason},
};

/// Feedback as recorded.
pub struct RecordedFeedback {
    pub stored: StoredFeedback,
    /// The same feedback was recorded before.
    pub duplicate: bool,
    /// Encounters of the journey have been recorded.
    pub journey_known: bool,
}

/// A journey: its first encounters, their summary and its feedback.
pub struct Journey {
    pub journey_id: String,
    pub summary: JourneySummary,
    /// The first encounters, at most `MAX_SHOWN_ENCOUNTERS`.
    pub encounters: Vec<Encounter>,
    pub feedback: Option<StoredFeedback>,
}

impl App {
    /// Records the feedback on journey `journey_id`: once; the same again
    /// is a duplicate, different feedback ALREADY_EXISTS.
    pub async fn record_journey_feedback(
        &self,
        caller: &Caller,
        feedback: Parsed<(String, JourneyFeedback)>,
    ) -> Result<RecordedFeedback> {
        let org = permit(caller, Operation::RecordJourneyFeedback)?;
        let (journey_id, feedback) = feedback?;
        let hash = feedback.content_hash();
        let mut tx = store::begin_for(&self.pool, org).await?;
        let inserted =
            store::journey::insert_feedback(&mut tx, org, &journey_id, &feedback, &hash).await?;
        let stored = store::journey::feedback(&mut tx, org, &journey_id)
            .await?
            .ok_or_else(|| Error::not_found("journey feedback", journey_id.clone()))?;
        if !inserted && stored.content_hash[..] != hash[..] {
            return Err(Error::AlreadyExists {
                resource: "journey feedback",
                field: "journey_id",
                value: journey_id,
            });
        }
        let journey_known = store::journey::has_encounters(&mut tx, org, &journey_id).await?;
        // Feedback closes its journey: the end of the visit.
        if inserted
            && journey_known
            && let Some(organisation) = store::organisation::get(&mut tx, org, false).await?
        {
            super::follow_up::close_journey(
                &mut tx,
                &organisation,
                &journey_id,
                CloseReason::Feedback,
            )
            .await?;
        }
        tx.commit().await?;
        crate::webhooks::wake();
        Ok(RecordedFeedback {
            stored,
            duplicate: !inserted,
            journey_known,
        })
    }

    pub async fn get_journey(
        &self,
        caller: &Caller,
        journey_id: Parsed<String>,
    ) -> Result<Journey> {
        let org = permit(caller, Operation::GetJourney)?;
        let journey_id = journey_id?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let summary = store::encounter::journey_summary(&mut tx, org, &journey_id).await?;
        let encounters =
            store::encounter::journey(&mut tx, org, &journey_id, MAX_SHOWN_ENCOUNTERS).await?;
        let feedback = store::journey::feedback(&mut tx, org, &journey_id).await?;
        tx.commit().await?;
        if summary.encounter_count == 0 && feedback.is_none() {
            return Err(Error::not_found("journey", journey_id));
        }
        Ok(Journey {
            journey_id,
            summary,
            encounters,
            feedback,
        })
    }
}
