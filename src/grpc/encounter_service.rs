//! `verdad.v1.EncounterService`.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use super::{
    authorize,
    convert::{
        channel_from_proto, channel_to_proto, outcome_to_proto, severity_to_proto,
        situation_from_proto, situation_to_proto,
    },
    enum_field, from_timestamp, item_bytes, named_touchpoint, page_budget, parse_id, respond,
    timestamp, touchpoint_filter,
};
use crate::{
    domain::{
        code::{Lookup, parse_code, parse_lookup},
        encounter::{
            COMMENT_MAX_CHARS, CUSTOMER_REF_MAX_CHARS, EXTERNAL_ID_MAX_CHARS, Encounter,
            EncounterFilter, JOURNEY_ID_MAX_CHARS, NewEncounter, ObservationInput,
            STAFF_REF_MAX_CHARS, attributes, effort, observations, occur_time, reference,
            required_reference, satisfaction, seconds,
        },
        evaluation::{Measurements, Outcome as EvaluationOutcome},
        paging::{PageToken, TokenKey, page_size, split_page},
        pseudonym::pseudonym,
        role::Access,
        standard::Severity,
        text::optional_text,
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    ingest::group_commit::GroupCommit,
    ingest::{Item, Origin, Outcome, Pipeline, ingest_batch},
    auth::key_cache::{KeyCache, KeyWatch},
    server::lanes::{Lanes, Work},
    telemetry::meters,
    proto::verdad::v1 as pb,
    ingest::rollup_applier::RollupApplier,
    store::{self, encounter::Position},
    ingest::stream_budget::HeldBatches,
};

/// The most encounters one batch of a stream may hold.
pub const MAX_BATCH: usize = 5000;
/// The most rejections an ingest response lists; the count covers them all.
const MAX_LISTED_REJECTIONS: usize = 1000;

pub struct EncounterApi {
    pool: PgPool,
    tokens: TokenKey,
    group_commit: GroupCommit,
    pipeline: Pipeline,
    /// Lanes to store a stream's batch in (see
    /// ServeArgs::stream_batches_at_once).
    stream_lanes: Lanes,
    /// The server's lanes for bulk work, of which a stream's batch takes
    /// one too (see ServeArgs::bulk_lanes).
    bulk: Lanes,
    /// To end a stream whose key is revoked.
    keys: KeyCache,
}

impl EncounterApi {
    pub fn new(
        pool: PgPool,
        tokens: TokenKey,
        stream_lanes: Lanes,
        bulk: Lanes,
        rollups: RollupApplier,
        keys: KeyCache,
    ) -> Self {
        let pipeline = Pipeline::new(pool.clone(), rollups);
        let group_commit = GroupCommit::new(pipeline.clone());
        Self {
            pool,
            pipeline,
            tokens,
            group_commit,
            stream_lanes,
            bulk,
            keys,
        }
    }

    async fn record(
        &self,
        request: Request<pb::RecordEncounterRequest>,
    ) -> Result<pb::RecordEncounterResponse> {
        let principal = authorize(&request, Access::Ingest)?;
        let org = principal.organisation_id;
        let new = request
            .into_inner()
            .encounter
            .ok_or_else(|| Error::invalid("encounter", "is required"))
            .and_then(|encounter| new_encounter("encounter", encounter, Utc::now()))
            // Refused before it reaches a batch: counted here.
            .inspect_err(|_| meters::encounters(0, 0, 1, 0))?;
        let recorded = self.group_commit.record(org, new).await?;
        Ok(pb::RecordEncounterResponse {
            encounter: Some(to_proto(recorded.encounter)),
            duplicate: recorded.duplicate,
        })
    }

    /// Stores a stream's batches one after the other, each in its own
    /// transaction, and gives each one's share of the stream budget back
    /// once it is stored.
    pub(crate) async fn ingest_batches(
        &self,
        caller: Request<()>,
        held: HeldBatches,
        mut batches: impl Batches,
    ) -> Result<pb::IngestEncountersResponse, Status> {
        let principal = authorize(&caller, Access::Ingest)?;
        let org = principal.organisation_id;
        let mut key = self.keys.watch(self.pool.clone(), principal);
        let mut response = pb::IngestEncountersResponse::default();
        let mut batch_index: i32 = 0;
        while let Some(batch) = batches.next_batch().await? {
            let stored = self
                .ingest_one(org, &mut key, batch_index, batch, &mut response)
                .await;
            held.release_next();
            stored.map_err(Status::from)?;
            response.batches += 1;
            batch_index = batch_index.saturating_add(1);
        }
        Ok(response)
    }

    /// Stores one batch of a stream and adds its outcome to `response`.
    async fn ingest_one(
        &self,
        org: Uuid,
        key: &mut KeyWatch,
        batch_index: i32,
        batch: pb::IngestEncountersRequest,
        response: &mut pb::IngestEncountersResponse,
    ) -> Result<()> {
        if batch.encounters.len() > MAX_BATCH {
            return Err(Error::invalid(
                "encounters",
                format!(
                    "must have at most {MAX_BATCH} entries per batch, got {} in batch {batch_index}; \
                     the batches before it are stored",
                    batch.encounters.len()
                ),
            ));
        }
        // Held until the batch is stored; meanwhile the stream is not read.
        let _lane = self.stream_lanes.enter(Work::StreamBatch).await?;
        let now = Utc::now();
        let keys: Vec<(String, String)> = batch
            .encounters
            .iter()
            .map(|e| (e.source.clone(), e.external_id.clone()))
            .collect();
        let items = batch
            .encounters
            .into_iter()
            .enumerate()
            .map(|(index, encounter)| {
                let field = format!("encounters[{index}]");
                let checked = new_encounter(&field, encounter, now);
                Item {
                    field,
                    encounter: checked,
                }
            })
            .collect();
        // The bulk lane for the database's part only: the checks above run
        // beside whatever holds it.
        let outcome = {
            let _bulk = self.bulk.enter(Work::StreamBatch).await?;
            // Last, so that no batch waiting for its lanes outlives a
            // revocation.
            key.check().await?;
            ingest_batch(&self.pipeline, org, items, Origin::Stream).await?
        };
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
        Ok(())
    }

    async fn get(
        &self,
        request: Request<pb::GetEncounterRequest>,
    ) -> Result<pb::GetEncounterResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let encounter = store::encounter::get(&mut tx, org, id)
            .await?
            .ok_or_else(|| Error::not_found("encounter", id.to_string()))?;
        tx.commit().await?;
        Ok(pb::GetEncounterResponse {
            encounter: Some(to_proto(encounter)),
        })
    }

    async fn list(
        &self,
        request: Request<pb::ListEncountersRequest>,
    ) -> Result<pb::ListEncountersResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let budget = page_budget(&request);
        let request = request.into_inner();
        let ListFilter {
            filter,
            touchpoint,
            customer_ref,
        } = list_filter(&request)?;
        let size = page_size(request.page_size)?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let filter = EncounterFilter {
            touchpoint_id: named_touchpoint(&mut tx, org, touchpoint.as_ref()).await?,
            ..filter
        };
        let filter = match customer_ref {
            None => filter,
            Some(reference) => {
                match store::organisation::existing_customer_key(&mut tx, org).await? {
                    Some(key) => EncounterFilter {
                        customer_hash: Some(pseudonym(&key, &reference)),
                        ..filter
                    },
                    // No customer reference was ever stored: nothing matches.
                    None => {
                        tx.commit().await?;
                        return Ok(pb::ListEncountersResponse::default());
                    }
                }
            }
        };
        let query = self
            .tokens
            .query(principal.organisation_id, &filter.fingerprint());
        let after = PageToken::decode(&request.page_token, &query)?.map(|t| from_token(t.after));
        let rows = store::encounter::list(&mut tx, org, &filter, after, size + 1).await?;
        tx.commit().await?;
        let rows: Vec<(Position, pb::Encounter)> =
            rows.into_iter().map(|(at, e)| (at, to_proto(e))).collect();
        let (page, next_page_token) = split_page(
            rows,
            size,
            budget,
            &query,
            |(position, _)| to_token(*position),
            |(_, e)| item_bytes(e),
        );
        Ok(pb::ListEncountersResponse {
            encounters: page.into_iter().map(|(_, e)| e).collect(),
            next_page_token,
        })
    }

    async fn erase(
        &self,
        request: Request<pb::EraseCustomerRequest>,
    ) -> Result<pb::EraseCustomerResponse> {
        let principal = authorize(&request, Access::Manage)?;
        let org = principal.organisation_id;
        let reference = required_reference(
            "customer_ref",
            &request.get_ref().customer_ref,
            CUSTOMER_REF_MAX_CHARS,
        )?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let erased = match store::organisation::existing_customer_key(&mut tx, org).await? {
            Some(key) => {
                store::encounter::erase_customer(&mut tx, org, &pseudonym(&key, &reference)).await?
            }
            None => store::encounter::Erased::default(),
        };
        tx.commit().await?;
        meters::rollups_applied(erased.rollup_changes);
        tracing::info!(
            organisation = %org,
            encounters = erased.encounters,
            journeys = erased.journeys,
            "erased a customer's journeys"
        );
        Ok(pb::EraseCustomerResponse {
            encounters: erased.encounters,
            journeys: erased.journeys,
            journey_feedback: erased.journey_feedback,
            recovery_cases: erased.recovery_cases,
        })
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

/// A page position as the 16 bytes a page token carries: the time in
/// microseconds and the arrival number, both big-endian.
fn to_token(position: Position) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&position.occur_time.timestamp_micros().to_be_bytes());
    bytes[8..].copy_from_slice(&position.seq.to_be_bytes());
    Uuid::from_bytes(bytes)
}

fn from_token(after: Uuid) -> Position {
    let bytes = after.as_bytes();
    let mut micros = [0u8; 8];
    let mut seq = [0u8; 8];
    micros.copy_from_slice(&bytes[..8]);
    seq.copy_from_slice(&bytes[8..]);
    Position {
        occur_time: DateTime::from_timestamp_micros(i64::from_be_bytes(micros))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        seq: i64::from_be_bytes(seq),
    }
}

/// A list request's filters as checked: the touchpoint is still to be
/// found and the customer reference to be hashed with the organisation's
/// key.
struct ListFilter {
    filter: EncounterFilter,
    touchpoint: Option<Lookup>,
    customer_ref: Option<String>,
}

/// Checks the filters of a list request.
fn list_filter(request: &pb::ListEncountersRequest) -> Result<ListFilter, Vec<FieldViolation>> {
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
        Some(ListFilter {
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
    let violated_critical_standards = e
        .results
        .iter()
        .filter(|r| r.severity == Severity::Critical && r.outcome == EvaluationOutcome::Violated)
        .map(|r| r.code.clone())
        .collect();
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
        respond(self.record(request).await)
    }

    /// Served by `super::ingest_route` on the server; this route, tonic's,
    /// takes the same rules for whatever else mounts the service.
    async fn ingest_encounters(
        &self,
        request: Request<Streaming<pb::IngestEncountersRequest>>,
    ) -> Result<Response<pb::IngestEncountersResponse>, Status> {
        let held = request
            .extensions()
            .get::<HeldBatches>()
            .cloned()
            .unwrap_or_default();
        let (metadata, extensions, stream) = request.into_parts();
        let caller = Request::from_parts(metadata, extensions, ());
        self.ingest_batches(caller, held, stream)
            .await
            .map(Response::new)
    }

    async fn get_encounter(
        &self,
        request: Request<pb::GetEncounterRequest>,
    ) -> Result<Response<pb::GetEncounterResponse>, Status> {
        respond(self.get(request).await)
    }

    async fn list_encounters(
        &self,
        request: Request<pb::ListEncountersRequest>,
    ) -> Result<Response<pb::ListEncountersResponse>, Status> {
        respond(self.list(request).await)
    }

    async fn erase_customer(
        &self,
        request: Request<pb::EraseCustomerRequest>,
    ) -> Result<Response<pb::EraseCustomerResponse>, Status> {
        respond(self.erase(request).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_positions_survive_the_token() {
        let position = Position {
            occur_time: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            seq: 42,
        };
        assert_eq!(from_token(to_token(position)), position);
    }
}
