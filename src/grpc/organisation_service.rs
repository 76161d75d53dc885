//! `verdad.v1.OrganisationService`.

use std::sync::Arc;

use prost_types::FieldMask;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    caller,
    convert::{
        deviation_check_from_proto, deviation_check_to_proto, kind_from_proto, kind_to_proto,
    },
    field_mask::MaskRules,
    parse_id, required_enum, timestamp,
};
use crate::{
    app::App,
    domain::{
        escalation::{check_length, parse_step},
        organisation::{
            DISPLAY_NAME_MAX_CHARS, Organisation, OrganisationChanges, parse_failure_threshold,
            parse_first_impression, parse_journey_idle,
        },
        recovery::parse_deadline,
        text::required_line,
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
};

/// The fields an update mask may name, and those it may not.
const MASK: MaskRules = MaskRules {
    mutable: &[
        "display_name",
        "kind",
        "time_zone",
        "failure_threshold",
        "recovery_deadline",
        "first_impression_window",
        "escalation_ladder",
        "deviation_checks",
        "journey_idle_time",
    ],
    fixed: &[
        "id",
        "create_time",
        "update_time",
        "deviation_checks_start_time",
    ],
    aliases: &[],
};

/// The longest time zone name PostgreSQL knows is about 32 characters.
const TIME_ZONE_MAX_CHARS: usize = 64;

pub struct OrganisationApi {
    app: Arc<App>,
}

impl OrganisationApi {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl pb::organisation_service_server::OrganisationService for OrganisationApi {
    async fn get_organisation(
        &self,
        request: Request<pb::GetOrganisationRequest>,
    ) -> Result<Response<pb::GetOrganisationResponse>, Status> {
        let caller = caller(&request)?;
        let id = optional_id(&request.get_ref().id, "id");
        let organisation = self.app.get_organisation(&caller, id).await?;
        Ok(Response::new(pb::GetOrganisationResponse {
            organisation: Some(to_proto(organisation)),
        }))
    }

    async fn update_organisation(
        &self,
        request: Request<pb::UpdateOrganisationRequest>,
    ) -> Result<Response<pb::UpdateOrganisationResponse>, Status> {
        let caller = caller(&request)?;
        let update = update(request.into_inner());
        let organisation = self.app.update_organisation(&caller, update).await?;
        Ok(Response::new(pb::UpdateOrganisationResponse {
            organisation: Some(to_proto(organisation)),
        }))
    }
}

/// Reads an id a request may give: `None` when empty.
fn optional_id(id: &str, field: &str) -> Result<Option<Uuid>> {
    if id.is_empty() {
        return Ok(None);
    }
    Ok(Some(parse_id(field, id)?))
}

/// Reads an update: the id it names, if any, and then its changes, which
/// are checked only once the id is known to be the caller's own.
fn update(
    request: pb::UpdateOrganisationRequest,
) -> Result<(Option<Uuid>, Result<OrganisationChanges>)> {
    let Some(fields) = request.organisation else {
        return Err(Error::invalid("organisation", "is required"));
    };
    let id = optional_id(&fields.id, "organisation.id")?;
    let changes = changes(&fields, request.update_mask).map_err(Error::from);
    Ok((id, changes))
}

fn to_proto(organisation: Organisation) -> pb::Organisation {
    pb::Organisation {
        id: organisation.id.to_string(),
        display_name: organisation.display_name,
        kind: kind_to_proto(organisation.kind).into(),
        time_zone: organisation.time_zone,
        failure_threshold: organisation.failure_threshold,
        recovery_deadline: Some(prost_types::Duration {
            seconds: organisation.recovery_deadline_seconds,
            nanos: 0,
        }),
        first_impression_window: Some(prost_types::Duration {
            seconds: organisation.first_impression_seconds,
            nanos: 0,
        }),
        create_time: Some(timestamp(organisation.create_time)),
        update_time: Some(timestamp(organisation.update_time)),
        escalation_ladder: (organisation.follow_up.escalation_ladder.into_iter())
            .map(|step| pb::EscalationStep {
                delay: Some(prost_types::Duration {
                    seconds: step.delay_seconds,
                    nanos: 0,
                }),
                escalate_to: step.escalate_to,
            })
            .collect(),
        deviation_checks: (organisation.follow_up.deviation_checks.into_iter())
            .map(|check| deviation_check_to_proto(check).into())
            .collect(),
        journey_idle_time: Some(prost_types::Duration {
            seconds: organisation.follow_up.journey_idle_seconds,
            nanos: 0,
        }),
        deviation_checks_start_time: organisation
            .follow_up
            .deviation_checks_start_time
            .map(timestamp),
    }
}

/// Checks an update: the mask and the new values of the fields it names.
/// Whether the time zone exists is for the database to say.
fn changes(
    o: &pb::Organisation,
    mask: Option<FieldMask>,
) -> Result<OrganisationChanges, Vec<FieldViolation>> {
    let given = [
        !o.display_name.is_empty(),
        o.kind != 0,
        !o.time_zone.is_empty(),
        o.failure_threshold != 0,
        o.recovery_deadline.is_some(),
        o.first_impression_window.is_some(),
        !o.escalation_ladder.is_empty(),
        !o.deviation_checks.is_empty(),
        o.journey_idle_time.is_some(),
    ];
    let paths = MASK.paths(mask, &given)?;
    let mut v = Violations::new();
    let mut changes = OrganisationChanges::default();
    for path in paths {
        match path {
            "display_name" => {
                changes.display_name = v.check(required_line(
                    "organisation.display_name",
                    &o.display_name,
                    DISPLAY_NAME_MAX_CHARS,
                ))
            }
            "kind" => {
                changes.kind = v.check(required_enum("organisation.kind", o.kind, kind_from_proto))
            }
            "time_zone" => {
                changes.time_zone = v.check(required_line(
                    "organisation.time_zone",
                    &o.time_zone,
                    TIME_ZONE_MAX_CHARS,
                ))
            }
            "failure_threshold" => {
                changes.failure_threshold = v.check(parse_failure_threshold(
                    "organisation.failure_threshold",
                    o.failure_threshold,
                ))
            }
            "recovery_deadline" => {
                let field = "organisation.recovery_deadline";
                changes.recovery_deadline_seconds = match &o.recovery_deadline {
                    Some(d) => v.check(parse_deadline(field, d.seconds, d.nanos)),
                    None => v.check(Err(FieldViolation::new(field, "is required"))),
                }
            }
            "first_impression_window" => {
                let field = "organisation.first_impression_window";
                changes.first_impression_seconds = match &o.first_impression_window {
                    Some(d) => v.check(parse_first_impression(field, d.seconds, d.nanos)),
                    None => v.check(Err(FieldViolation::new(field, "is required"))),
                }
            }
            "escalation_ladder" => {
                let field = "organisation.escalation_ladder";
                v.check(check_length(field, o.escalation_ladder.len()));
                let steps = (o.escalation_ladder.iter().enumerate()).map(|(i, step)| {
                    v.check(parse_step(
                        &format!("{field}[{i}]"),
                        step.delay.as_ref().map(|d| (d.seconds, d.nanos)),
                        &step.escalate_to,
                    ))
                });
                changes.escalation_ladder = every(steps.collect());
            }
            "deviation_checks" => {
                let checks = (o.deviation_checks.iter().enumerate()).map(|(i, check)| {
                    v.check(required_enum(
                        &format!("organisation.deviation_checks[{i}]"),
                        *check,
                        deviation_check_from_proto,
                    ))
                });
                changes.deviation_checks = every(checks.collect());
            }
            "journey_idle_time" => {
                let field = "organisation.journey_idle_time";
                changes.journey_idle_seconds = match &o.journey_idle_time {
                    Some(d) => v.check(parse_journey_idle(field, d.seconds, d.nanos)),
                    None => v.check(Err(FieldViolation::new(field, "is required"))),
                }
            }
            _ => {}
        }
    }
    v.finish(|| Some(changes))
}

/// All of `items`, when every one was valid; checked one by one first, so
/// that every violation is reported.
fn every<T>(items: Vec<Option<T>>) -> Option<Vec<T>> {
    items.into_iter().collect()
}
