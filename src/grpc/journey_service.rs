//! `verdad.v1.JourneyService`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use super::{
    caller, encounter_service::to_proto as encounter_to_proto, fitting, from_timestamp,
    page_budget, timestamp,
};
use crate::{
    app::{App, journeys::Journey},
    domain::{
        encounter::{
            COMMENT_MAX_CHARS, JOURNEY_ID_MAX_CHARS, occur_time, required_reference, satisfaction,
        },
        journey::{JourneyFeedback, check_feedback_given, likelihood_to_recommend},
        text::optional_text,
        violation::Violations,
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
};

pub struct JourneyApi {
    app: Arc<App>,
}

impl JourneyApi {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

/// Checks a feedback request.
fn checked_feedback(
    request: &pb::RecordJourneyFeedbackRequest,
    now: DateTime<Utc>,
) -> Result<(String, JourneyFeedback)> {
    let mut v = Violations::new();
    let journey_id = v.check(required_reference(
        "journey_id",
        &request.journey_id,
        JOURNEY_ID_MAX_CHARS,
    ));
    let Some(f) = &request.feedback else {
        return Err(Error::invalid("feedback", "is required"));
    };
    let overall = v.check(satisfaction(
        "feedback.overall_satisfaction",
        f.overall_satisfaction,
    ));
    let recommend = v.check(likelihood_to_recommend(
        "feedback.likelihood_to_recommend",
        f.likelihood_to_recommend,
    ));
    v.check(check_feedback_given(
        "feedback",
        f.overall_satisfaction,
        f.likelihood_to_recommend,
    ));
    let complete_time = v.check(
        from_timestamp("feedback.complete_time", f.complete_time.as_ref())
            .and_then(|t| occur_time("feedback.complete_time", t, now)),
    );
    let comment = v.check(optional_text(
        "feedback.comment",
        &f.comment,
        COMMENT_MAX_CHARS,
    ));
    let checked = v.finish(|| {
        Some((
            journey_id?,
            JourneyFeedback {
                overall_satisfaction: overall?,
                likelihood_to_recommend: recommend?,
                complete_time: complete_time?,
                comment: comment?,
            },
        ))
    })?;
    Ok(checked)
}

fn feedback_to_proto(
    feedback: JourneyFeedback,
    receive_time: DateTime<Utc>,
) -> pb::JourneyFeedback {
    pb::JourneyFeedback {
        overall_satisfaction: feedback.overall_satisfaction,
        likelihood_to_recommend: feedback.likelihood_to_recommend,
        complete_time: Some(timestamp(feedback.complete_time)),
        comment: feedback.comment,
        receive_time: Some(timestamp(receive_time)),
    }
}

#[tonic::async_trait]
impl pb::journey_service_server::JourneyService for JourneyApi {
    async fn record_journey_feedback(
        &self,
        request: Request<pb::RecordJourneyFeedbackRequest>,
    ) -> Result<Response<pb::RecordJourneyFeedbackResponse>, Status> {
        let caller = caller(&request)?;
        let feedback = checked_feedback(request.get_ref(), Utc::now());
        let recorded = self.app.record_journey_feedback(&caller, feedback).await?;
        let stored = recorded.stored;
        Ok(Response::new(pb::RecordJourneyFeedbackResponse {
            feedback: Some(feedback_to_proto(stored.feedback, stored.receive_time)),
            duplicate: recorded.duplicate,
            journey_known: recorded.journey_known,
        }))
    }

    async fn get_journey(
        &self,
        request: Request<pb::GetJourneyRequest>,
    ) -> Result<Response<pb::GetJourneyResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let journey_id = &request.get_ref().journey_id;
        let journey_id = required_reference("journey_id", journey_id, JOURNEY_ID_MAX_CHARS);
        let journey = self
            .app
            .get_journey(&caller, journey_id.map_err(Error::from))
            .await?;
        Ok(Response::new(pb::GetJourneyResponse {
            journey: Some(journey_to_proto(journey, budget)),
        }))
    }
}

/// A journey with the first of its encounters that fit in `budget` bytes
/// beside the rest.
fn journey_to_proto(journey: Journey, budget: usize) -> pb::Journey {
    let summary = journey.summary;
    let encounters: Vec<pb::Encounter> = journey
        .encounters
        .into_iter()
        .map(encounter_to_proto)
        .collect();
    pb::Journey {
        journey_id: journey.journey_id,
        encounters: fitting(encounters, budget.saturating_sub(2048)),
        encounter_count: summary.encounter_count,
        failed_encounter_count: summary.failed_count,
        feedback: journey
            .feedback
            .map(|f| feedback_to_proto(f.feedback, f.receive_time)),
        score: summary.score(),
        start_time: summary.start_time.map(timestamp),
        end_time: summary.end_time.map(timestamp),
    }
}
