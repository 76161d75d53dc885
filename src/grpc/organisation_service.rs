//! `verdad.v1.OrganisationService`.

use prost_types::FieldMask;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    authorize,
    convert::{kind_from_proto, kind_to_proto},
    field_mask::MaskRules,
    parse_id, required_enum, respond, timestamp,
};
use crate::{
    domain::{
        organisation::{
            DISPLAY_NAME_MAX_CHARS, Organisation, OrganisationChanges, parse_failure_threshold,
            parse_first_impression,
        },
        recovery::parse_deadline,
        role::Access,
        text::required_line,
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
    store,
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
    ],
    fixed: &["id", "create_time", "update_time"],
    aliases: &[],
};

/// The longest time zone name PostgreSQL knows is about 32 characters.
const TIME_ZONE_MAX_CHARS: usize = 64;

pub struct OrganisationApi {
    pool: PgPool,
}

impl OrganisationApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn get(
        &self,
        request: Request<pb::GetOrganisationRequest>,
    ) -> Result<pb::GetOrganisationResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        own_id(&request.get_ref().id, "id", org)?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let organisation = store::organisation::get(&mut tx, org, false)
            .await?
            .ok_or_else(|| Error::not_found("organisation", org.to_string()))?;
        tx.commit().await?;
        Ok(pb::GetOrganisationResponse {
            organisation: Some(to_proto(organisation)),
        })
    }

    async fn update(
        &self,
        request: Request<pb::UpdateOrganisationRequest>,
    ) -> Result<pb::UpdateOrganisationResponse> {
        let principal = authorize(&request, Access::Manage)?;
        let request = request.into_inner();
        let Some(fields) = request.organisation else {
            return Err(Error::invalid("organisation", "is required"));
        };
        let org = principal.organisation_id;
        own_id(&fields.id, "organisation.id", org)?;
        let changes = changes(&fields, request.update_mask)?;

        let mut tx = store::begin_for(&self.pool, org).await?;
        if let Some(zone) = &changes.time_zone {
            crate::app::operator::check_time_zone(&mut tx, "organisation.time_zone", zone).await?;
        }
        let mut organisation = store::organisation::get(&mut tx, org, true)
            .await?
            .ok_or_else(|| Error::not_found("organisation", org.to_string()))?;
        let old_zone = organisation.time_zone.clone();
        changes.apply_to(&mut organisation);
        let organisation = store::organisation::update(&mut tx, &organisation).await?;
        if organisation.time_zone != old_zone {
            store::organisation::rebuild_rollups(&mut tx, org).await?;
        }
        tx.commit().await?;
        Ok(pb::UpdateOrganisationResponse {
            organisation: Some(to_proto(organisation)),
        })
    }
}

#[tonic::async_trait]
impl pb::organisation_service_server::OrganisationService for OrganisationApi {
    async fn get_organisation(
        &self,
        request: Request<pb::GetOrganisationRequest>,
    ) -> Result<Response<pb::GetOrganisationResponse>, Status> {
        respond(self.get(request).await)
    }

    async fn update_organisation(
        &self,
        request: Request<pb::UpdateOrganisationRequest>,
    ) -> Result<Response<pb::UpdateOrganisationResponse>, Status> {
        respond(self.update(request).await)
    }
}

/// Checks that an id a request gives, if any, is the caller's own
/// organisation; any other is as unknown as one that does not exist.
fn own_id(id: &str, field: &str, org: Uuid) -> Result<()> {
    if id.is_empty() {
        return Ok(());
    }
    let id = parse_id(field, id)?;
    if id != org {
        return Err(Error::not_found("organisation", id.to_string()));
    }
    Ok(())
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
            _ => {}
        }
    }
    v.finish(|| Some(changes))
}
