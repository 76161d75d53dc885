//! `verdad.v1.JourneyService`.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use super::{
    authorize, encounter_service::to_proto as encounter_to_proto, fitting, from_timestamp,
    page_budget, respond, timestamp,
};
use crate::{
    domain::{
        encounter::{
            COMMENT_MAX_CHARS, JOURNEY_ID_MAX_CHARS, occur_time, required_reference, satisfaction,
        },
        journey::{
            JourneyFeedback, MAX_SHOWN_ENCOUNTERS, check_feedback_given, likelihood_to_recommend,
        },
        role::Access,
        text::optional_text,
        violation::Violations,
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
    store,
};

pub struct JourneyApi {
    pool: PgPool,
}

impl JourneyApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn record_feedback(
        &self,
        request: Request<pb::RecordJourneyFeedbackRequest>,
    ) -> Result<pb::RecordJourneyFeedbackResponse> {
        let principal = authorize(&request, Access::Ingest)?;
        let org = principal.organisation_id;
        let request = request.into_inner();
        let (journey_id, feedback) = checked_feedback(&request, Utc::now())?;
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
        tx.commit().await?;
        Ok(pb::RecordJourneyFeedbackResponse {
            feedback: Some(feedback_to_proto(stored.feedback, stored.receive_time)),
            duplicate: !inserted,
            journey_known,
        })
    }

    async fn get(&self, request: Request<pb::GetJourneyRequest>) -> Result<pb::GetJourneyResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let budget = page_budget(&request);
        let journey_id = required_reference(
            "journey_id",
            &request.get_ref().journey_id,
            JOURNEY_ID_MAX_CHARS,
        )?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let summary = store::encounter::journey_summary(&mut tx, org, &journey_id).await?;
        let encounters =
            store::encounter::journey(&mut tx, org, &journey_id, MAX_SHOWN_ENCOUNTERS).await?;
        let feedback = store::journey::feedback(&mut tx, org, &journey_id).await?;
        tx.commit().await?;
        if summary.encounter_count == 0 && feedback.is_none() {
            return Err(Error::not_found("journey", journey_id));
        }
        let encounters: Vec<pb::Encounter> =
            encounters.into_iter().map(encounter_to_proto).collect();
        Ok(pb::GetJourneyResponse {
            journey: Some(pb::Journey {
                journey_id,
                // The first ones, as many as fit beside the rest.
                encounters: fitting(encounters, budget.saturating_sub(2048)),
                encounter_count: summary.encounter_count,
                failed_encounter_count: summary.failed_count,
                feedback: feedback.map(|f| feedback_to_proto(f.feedback, f.receive_time)),
                score: summary.score(),
                start_time: summary.start_time.map(timestamp),
                end_time: summary.end_time.map(timestamp),
            }),
        })
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
        respond(self.record_feedback(request).await)
    }

    async fn get_journey(
        &self,
        request: Request<pb::GetJourneyRequest>,
    ) -> Result<Response<pb::GetJourneyResponse>, Status> {
        respond(self.get(request).await)
    }
}
