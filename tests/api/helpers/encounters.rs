//! Encounters and journeys through the API: recording one or a stream,
//! reading, listing and erasing them, feedback on a journey; and reading
//! an encounter's evaluation.

use tonic::{Code, Status};
use verdad::proto::verdad::v1 as pb;

use super::{TestApp, authed};

impl TestApp {
    /// Records `encounter` and returns the answer, whatever it is.
    pub(crate) async fn try_record(
        &self,
        key: &str,
        encounter: pb::Encounter,
    ) -> Result<pb::RecordEncounterResponse, Status> {
        self.encounters()
            .await
            .record_encounter(authed(
                key,
                pb::RecordEncounterRequest {
                    encounter: Some(encounter),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Records `encounter`, which must succeed.
    pub(crate) async fn record(
        &self,
        key: &str,
        encounter: pb::Encounter,
    ) -> pb::RecordEncounterResponse {
        self.try_record(key, encounter)
            .await
            .expect("record_encounter failed")
    }

    /// Records `encounter` and returns it as stored.
    /// The answer must be the encounter as stored: when `key` may read
    /// encounters, the stored one is read back and compared.
    pub(crate) async fn recorded(&self, key: &str, encounter: pb::Encounter) -> pb::Encounter {
        let answer = self
            .record(key, encounter)
            .await
            .encounter
            .expect("no encounter in the response");
        match self.get_encounter(key, &answer.id).await {
            Ok(stored) => assert_eq!(answer, stored, "the answer is not the encounter as stored"),
            Err(status) => assert_eq!(status.code(), Code::PermissionDenied, "{status:?}"),
        }
        answer
    }

    /// Records `encounter`, which must fail, and returns the status.
    pub(crate) async fn record_error(&self, key: &str, encounter: pb::Encounter) -> Status {
        self.try_record(key, encounter)
            .await
            .expect_err("record_encounter succeeded")
    }

    /// Sends `batches` as one IngestEncounters stream.
    pub(crate) async fn ingest(
        &self,
        key: &str,
        batches: Vec<Vec<pb::Encounter>>,
    ) -> Result<pb::IngestEncountersResponse, Status> {
        let requests: Vec<pb::IngestEncountersRequest> = batches
            .into_iter()
            .map(|encounters| pb::IngestEncountersRequest { encounters })
            .collect();
        self.encounters()
            .await
            .ingest_encounters(authed(key, tokio_stream::iter(requests)))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every encounter `request` lists, page by page.
    pub(crate) async fn list_encounters(
        &self,
        key: &str,
        mut request: pb::ListEncountersRequest,
    ) -> Vec<pb::Encounter> {
        let mut client = self.encounters().await;
        let mut all = Vec::new();
        for _ in 0..1000 {
            let page = client
                .list_encounters(authed(key, request.clone()))
                .await
                .expect("list_encounters failed")
                .into_inner();
            all.extend(page.encounters);
            if page.next_page_token.is_empty() {
                return all;
            }
            request.page_token = page.next_page_token;
        }
        panic!("pagination does not end");
    }

    /// How many encounters the key's organisation holds.
    pub(crate) async fn count_encounters(&self, key: &str) -> usize {
        self.list_encounters(key, pb::ListEncountersRequest::default())
            .await
            .len()
    }

    /// Gets one encounter.
    pub(crate) async fn get_encounter(&self, key: &str, id: &str) -> Result<pb::Encounter, Status> {
        self.encounters()
            .await
            .get_encounter(authed(key, pb::GetEncounterRequest { id: id.to_owned() }))
            .await
            .map(|r| {
                r.into_inner()
                    .encounter
                    .expect("no encounter in the response")
            })
    }

    /// Erases a customer.
    pub(crate) async fn erase(
        &self,
        key: &str,
        customer_ref: &str,
    ) -> Result<pb::EraseCustomerResponse, Status> {
        self.encounters()
            .await
            .erase_customer(authed(
                key,
                pb::EraseCustomerRequest {
                    customer_ref: customer_ref.to_owned(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Records journey feedback.
    pub(crate) async fn record_feedback(
        &self,
        key: &str,
        journey_id: &str,
        feedback: pb::JourneyFeedback,
    ) -> Result<pb::RecordJourneyFeedbackResponse, Status> {
        self.journeys()
            .await
            .record_journey_feedback(authed(
                key,
                pb::RecordJourneyFeedbackRequest {
                    journey_id: journey_id.to_owned(),
                    feedback: Some(feedback),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Gets a journey.
    pub(crate) async fn get_journey(
        &self,
        key: &str,
        journey_id: &str,
    ) -> Result<pb::Journey, Status> {
        self.journeys()
            .await
            .get_journey(authed(
                key,
                pb::GetJourneyRequest {
                    journey_id: journey_id.to_owned(),
                },
            ))
            .await
            .map(|r| r.into_inner().journey.expect("no journey in the response"))
    }
}

/// The external ids of `encounters`, in order.
pub(crate) fn external_ids(encounters: &[pb::Encounter]) -> Vec<String> {
    encounters.iter().map(|e| e.external_id.clone()).collect()
}

/// The result of the standard `code` in the encounter's evaluation.
#[track_caller]
pub(crate) fn result<'a>(encounter: &'a pb::Encounter, code: &str) -> &'a pb::StandardResult {
    let evaluation = encounter.evaluation.as_ref().expect("no evaluation");
    evaluation
        .results
        .iter()
        .find(|r| r.standard_code == code)
        .unwrap_or_else(|| panic!("no result for {code} in {evaluation:?}"))
}

/// The encounter's evaluation.
#[track_caller]
pub(crate) fn evaluation_of(encounter: &pb::Encounter) -> &pb::Evaluation {
    encounter.evaluation.as_ref().expect("no evaluation")
}
