//! `verdad.v1.EncounterService`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status, Streaming};

use super::{
    caller,
    convert::{
        channel_from_proto, channel_to_proto, outcome_to_proto, severity_to_proto,
        situation_from_proto, situation_to_proto,
    },
    enum_field, from_timestamp, item_bytes, page_budget, parse_id, timestamp, touchpoint_filter,
};
use crate::{
    app::{App, ListRequest, encounters::EncountersFilter},
    domain::{
        code::{parse_code, parse_lookup},
        encounter::{
            COMMENT_MAX_CHARS, CUSTOMER_REF_MAX_CHARS, EXTERNAL_ID_MAX_CHARS, Encounter,
            EncounterFilter, JOURNEY_ID_MAX_CHARS, NewEncounter, ObservationInput,
            STAFF_REF_MAX_CHARS, attributes, effort, observations, occur_time, reference,
            required_reference, satisfaction, seconds,
        },
        evaluation::Measurements,
        paging::page_size,
        text::optional_text,
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    ingest::{BatchOutcome, Outcome, stream_budget::HeldBatches},
    proto::verdad::v1 as pb,
};

/// The most rejections an ingest response lists; the count covers them all.
const MAX_LISTED_REJECTIONS: usize = 1000;

pub struct EncounterApi {
    app: Arc<App>,
}

impl EncounterApi {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    /// Stores a stream's batches one after the other, each in its own
    /// transaction, and gives each one's share of the stream budget back
    /// once it is stored.
    pub(crate) async fn ingest_batches(
        &self,
        caller_of: Request<()>,
        held: HeldBatches,
        mut batches: impl Batches,
    ) -> Result<pb::IngestEncountersResponse, Status> {
        let mut stream = self.app.begin_ingest(&caller(&caller_of)?)?;
        let mut response = pb::IngestEncountersResponse::default();
        while let Some(batch) = batches.next_batch().await? {
            let batch_index = stream.batch_index();
            let keys: Vec<(String, String)> = (batch.encounters.iter())
                .map(|e| (e.source.clone(), e.external_id.clone()))
                .collect();
            let stored = self
                .app
                .ingest_batch(&mut stream, batch.encounters, new_encounter)
                .await;
            held.release_next();
            add_outcome(&mut response, batch_index, stored?, keys);
        }
        Ok(response)
    }
}

/// Adds what became of one batch of a stream to `response`.
fn add_outcome(
    response: &mut pb::IngestEncountersResponse,
    batch_index: i32,
    outcome: BatchOutcome,
    keys: Vec<(String, String)>,
) {
    response.batches += 1;
    response.recovery_cases_opened += i64::try_from(outcome.cases_opened).unwrap_or(0);
    for (item_index, (outcome, (source, external_id))) in
        outcome.outcomes.into_iter().zip(keys).enumerate()
    {
        match outcome {
            Outcome::Stored { .. } => response.accepted += 1,
            Outcome::Duplicate { .. } => response.duplicates += 1,
            Outcome::Rejected(error) => {
                response.rejected += 1;
                if response.rejections.len() < MAX_LISTED_REJECTIONS {
                    response.rejections.push(rejection(
                        batch_index,
                        item_index,
                        source,
                        external_id,
                        &error,
                    ));
                }
            }
        }
    }
}

/// Where a stream's batches come from.
pub(crate) trait Batches: Send {
    /// The next batch; `None` once the caller has sent them all.
    fn next_batch(
        &mut self,
    ) -> impl Future<Output = Result<Option<pb::IngestEncountersRequest>, Status>> + Send;
}

impl Batches for Streaming<pb::IngestEncountersRequest> {
    async fn next_batch(&mut self) -> Result<Option<pb::IngestEncountersRequest>, Status> {
        self.message().await
    }
}

/// Checks the filters of a list request.
fn list_filter(
    request: &pb::ListEncountersRequest,
) -> Result<EncountersFilter, Vec<FieldViolation>> {
    let mut v = Violations::new();
    let start_time = v.check(from_timestamp("start_time", request.start_time.as_ref()));
    let end_time = v.check(from_timestamp("end_time", request.end_time.as_ref()));
    if let (Some(Some(start)), Some(Some(end))) = (start_time, end_time)
        && end <= start
    {
        v.push(FieldViolation::new("end_time", "must be after start_time"));
    }
    let touchpoint = v.check(touchpoint_filter(
        "touchpoint",
        &request.touchpoint_id,
        &request.touchpoint_code,
    ));
    let journey_id = v.check(reference(
        "journey_id",
        &request.journey_id,
        JOURNEY_ID_MAX_CHARS,
        false,
    ));
    let situation = v.check(enum_field(
        "situation",
        request.situation,
        situation_from_proto,
    ));
    let channel = v.check(enum_field("channel", request.channel, channel_from_proto));
    let customer_ref = v.check(reference(
        "customer_ref",
        &request.customer_ref,
        CUSTOMER_REF_MAX_CHARS,
        false,
    ));
    v.finish(|| {
        Some(EncountersFilter {
            filter: EncounterFilter {
                start_time: start_time?,
                end_time: end_time?,
                touchpoint_id: None,
                journey_id: journey_id?,
                situation: situation?,
                channel: channel?,
                failed_only: request.failed_only,
                customer_hash: None,
            },
            touchpoint: touchpoint?,
            customer_ref: customer_ref?,
        })
    })
}

/// Checks every field of an encounter as sent; `field` is its path in the
/// request. Every violation is reported at once.
pub(crate) fn new_encounter(
    field: &str,
    e: pb::Encounter,
    now: DateTime<Utc>,
) -> Result<NewEncounter> {
    let f = |name: &str| format!("{field}.{name}");
    let mut v = Violations::new();
    let touchpoint = v.check(
        parse_lookup(
            &f("touchpoint_id"),
            &e.touchpoint_id,
            &f("touchpoint_code"),
            &e.touchpoint_code,
        )
        .and_then(|lookup| {
            lookup.ok_or_else(|| {
                FieldViolation::new(
                    f("touchpoint_id"),
                    format!("or {} is required", f("touchpoint_code")),
                )
            })
        }),
    );
    let journey_id = v.check(required_reference(
        &f("journey_id"),
        &e.journey_id,
        JOURNEY_ID_MAX_CHARS,
    ));
    let customer_ref = v.check(reference(
        &f("customer_ref"),
        &e.customer_ref,
        CUSTOMER_REF_MAX_CHARS,
        false,
    ));
    let occurred = v.check(
        from_timestamp(&f("occur_time"), e.occur_time.as_ref())
            .and_then(|time| occur_time(&f("occur_time"), time, now)),
    );
    let channel = v.check(enum_field(&f("channel"), e.channel, channel_from_proto));
    let wait_seconds = v.check(seconds(&f("wait_seconds"), e.wait_seconds));
    let first_response_seconds = v.check(seconds(
        &f("first_response_seconds"),
        e.first_response_seconds,
    ));
    let duration_seconds = v.check(seconds(&f("duration_seconds"), e.duration_seconds));
    let satisfaction = v.check(satisfaction(&f("satisfaction"), e.satisfaction));
    let effort = v.check(effort(&f("effort"), e.effort));
    let situation = v.check(enum_field(
        &f("situation"),
        e.situation,
        situation_from_proto,
    ));
    let staff_ref = v.check(reference(
        &f("staff_ref"),
        &e.staff_ref,
        STAFF_REF_MAX_CHARS,
        false,
    ));
    let comment = v.check(optional_text(&f("comment"), &e.comment, COMMENT_MAX_CHARS));
    let inputs: Vec<ObservationInput<'_>> = e
        .observations
        .iter()
        .map(|o| ObservationInput {
            standard_code: &o.standard_code,
            met: o.met,
            note: &o.note,
        })
        .collect();
    let observed = match observations(&f("observations"), &inputs) {
        Ok(observed) => Some(observed),
        Err(violations) => {
            for violation in violations {
                v.push(violation);
            }
            None
        }
    };
    let attributes = v.check(attributes(&f("attributes"), e.attributes.iter()));
    let source = v.check(parse_code(&f("source"), &e.source));
    let external_id = v.check(required_reference(
        &f("external_id"),
        &e.external_id,
        EXTERNAL_ID_MAX_CHARS,
    ));
    let new = v.finish(|| {
        Some(NewEncounter {
            touchpoint: touchpoint?,
            journey_id: journey_id?,
            customer_ref: customer_ref?,
            occur_time: occurred?,
            channel: channel?,
            measurements: Measurements {
                wait_seconds: wait_seconds?,
                first_response_seconds: first_response_seconds?,
                duration_seconds: duration_seconds?,
                satisfaction: satisfaction?,
                effort: effort?,
            },
            situation: situation?,
            staff_ref: staff_ref?,
            comment: comment?,
            observations: observed?,
            attributes: attributes?,
            source: source?,
            external_id: external_id?,
        })
    })?;
    Ok(new)
}

fn rejection(
    batch_index: i32,
    item_index: usize,
    source: String,
    external_id: String,
    error: &Error,
) -> pb::Rejection {
    let field_violations = match error {
        Error::InvalidArgument(violations) => violations
            .iter()
            .map(|v| pb::FieldViolation {
                field: v.field.clone(),
                description: v.description.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    if matches!(error, Error::Database(_) | Error::Internal(_)) {
        tracing::error!(error = %error, "an encounter of a batch failed");
    }
    pb::Rejection {
        batch_index,
        item_index: i32::try_from(item_index).unwrap_or(i32::MAX),
        source,
        external_id,
        code: error.code_name().to_owned(),
        message: error.public_message(),
        field_violations,
    }
}

pub(crate) fn to_proto(e: Encounter) -> pb::Encounter {
    let violated_critical_standards = e.violated_critical_standards();
    let results = e
        .results
        .into_iter()
        .map(|r| pb::StandardResult {
            standard_id: r.standard_id.to_string(),
            standard_code: r.code,
            severity: severity_to_proto(r.severity).into(),
            rule_text: r.rule.to_string(),
            outcome: outcome_to_proto(r.outcome).into(),
        })
        .collect();
    let m = e.measurements;
    pb::Encounter {
        id: e.id.to_string(),
        touchpoint_id: e.touchpoint.id.to_string(),
        touchpoint_code: e.touchpoint.code,
        journey_id: e.journey_id,
        customer_ref: String::new(),
        has_customer_ref: e.has_customer_ref,
        occur_time: Some(timestamp(e.occur_time)),
        channel: channel_to_proto(e.channel).into(),
        wait_seconds: m.wait_seconds,
        first_response_seconds: m.first_response_seconds,
        duration_seconds: m.duration_seconds,
        satisfaction: m.satisfaction,
        effort: m.effort,
        situation: e
            .situation
            .map_or(pb::Situation::Unspecified, situation_to_proto)
            .into(),
        staff_ref: e.staff_ref.unwrap_or_default(),
        comment: e.comment,
        observations: e
            .observations
            .into_iter()
            .map(|o| pb::Observation {
                standard_code: o.standard_code,
                met: o.met,
                note: o.note,
            })
            .collect(),
        attributes: e.attributes.into_iter().collect(),
        source: e.source,
        external_id: e.external_id,
        evaluation: Some(pb::Evaluation {
            failed: e.failed,
            low_satisfaction: e.low_satisfaction,
            violated_critical_standards,
            results,
        }),
        receive_time: Some(timestamp(e.receive_time)),
    }
}

#[tonic::async_trait]
impl pb::encounter_service_server::EncounterService for EncounterApi {
    async fn record_encounter(
        &self,
        request: Request<pb::RecordEncounterRequest>,
    ) -> Result<Response<pb::RecordEncounterResponse>, Status> {
        let caller = caller(&request)?;
        let new = (request.into_inner().encounter)
            .ok_or_else(|| Error::invalid("encounter", "is required"))
            .and_then(|encounter| new_encounter("encounter", encounter, Utc::now()));
        let recorded = self.app.record_encounter(&caller, new).await?;
        Ok(Response::new(pb::RecordEncounterResponse {
            encounter: Some(to_proto(recorded.encounter)),
            duplicate: recorded.duplicate,
        }))
    }

    /// Served by `super::ingest_route` on the server; this route, tonic's,
    /// takes the same rules for whatever else mounts the service.
    async fn ingest_encounters(
        &self,
        request: Request<Streaming<pb::IngestEncountersRequest>>,
    ) -> Result<Response<pb::IngestEncountersResponse>, Status> {
        let held = request.extensions().get::<HeldBatches>().cloned();
        let (metadata, extensions, stream) = request.into_parts();
        let caller = Request::from_parts(metadata, extensions, ());
        let response = self.ingest_batches(caller, held.unwrap_or_default(), stream);
        Ok(Response::new(response.await?))
    }

    async fn get_encounter(
        &self,
        request: Request<pb::GetEncounterRequest>,
    ) -> Result<Response<pb::GetEncounterResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        let encounter = self.app.get_encounter(&caller, id).await?;
        Ok(Response::new(pb::GetEncounterResponse {
            encounter: Some(to_proto(encounter)),
        }))
    }

    async fn list_encounters(
        &self,
        request: Request<pb::ListEncountersRequest>,
    ) -> Result<Response<pb::ListEncountersResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let listing = self
            .app
            .list_encounters(&caller, list_request(request.into_inner()))
            .await?;
        let (encounters, next_page_token) = listing.page(budget, to_proto, item_bytes);
        Ok(Response::new(pb::ListEncountersResponse {
            encounters,
            next_page_token,
        }))
    }

    async fn erase_customer(
        &self,
        request: Request<pb::EraseCustomerRequest>,
    ) -> Result<Response<pb::EraseCustomerResponse>, Status> {
        let caller = caller(&request)?;
        let reference = &request.get_ref().customer_ref;
        let reference = required_reference("customer_ref", reference, CUSTOMER_REF_MAX_CHARS);
        let erased = self
            .app
            .erase_customer(&caller, reference.map_err(Error::from))
            .await?;
        Ok(Response::new(pb::EraseCustomerResponse {
            encounters: erased.encounters,
            journeys: erased.journeys,
            journey_feedback: erased.journey_feedback,
            recovery_cases: erased.recovery_cases,
        }))
    }
}

/// Reads a list request: its filters first, then its page size.
fn list_request(request: pb::ListEncountersRequest) -> Result<ListRequest<EncountersFilter>> {
    let filter = list_filter(&request)?;
    Ok(ListRequest {
        size: page_size(request.page_size)?,
        filter,
        page_token: request.page_token,
    })
}
