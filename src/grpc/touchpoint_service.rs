//! `verdad.v1.TouchpointService`.

use prost_types::FieldMask;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    authorize,
    convert::{
        channel_from_proto, channel_to_proto, occurrence_from_proto, occurrence_to_proto,
        stage_from_proto, stage_to_proto,
    },
    enum_field,
    field_mask::MaskRules,
    item_bytes, page_budget, parse_id, proto_id, required_enum, required_lookup, respond,
    timestamp,
};
use crate::{
    domain::{
        code::parse_code,
        paging::{self, PageToken, TokenKey},
        role::Access,
        text::{optional_text, required_line},
        touchpoint::{
            DESCRIPTION_MAX_CHARS, DISPLAY_NAME_MAX_CHARS, NewTouchpoint, Occurrence, Touchpoint,
            TouchpointChanges, TouchpointFilter, parse_cycle_position,
        },
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
        "description",
        "stage",
        "channel",
        "key",
        "occurrence",
        "cycle_position",
    ],
    fixed: &[
        "id",
        "code",
        "archived",
        "create_time",
        "update_time",
        "archive_time",
    ],
    aliases: &[],
};

pub struct TouchpointApi {
    pool: PgPool,
    tokens: TokenKey,
}

impl TouchpointApi {
    pub fn new(pool: PgPool, tokens: TokenKey) -> Self {
        Self { pool, tokens }
    }

    async fn create(
        &self,
        request: Request<pb::CreateTouchpointRequest>,
    ) -> Result<pb::CreateTouchpointResponse> {
        let principal = authorize(&request, Access::Manage)?;
        let new = new_touchpoint(request.into_inner().touchpoint)?;
        let mut tx = store::begin_for(&self.pool, principal.organisation_id).await?;
        let touchpoint =
            store::touchpoint::insert(&mut tx, principal.organisation_id, &new).await?;
        tx.commit().await?;
        Ok(pb::CreateTouchpointResponse {
            touchpoint: Some(to_proto(touchpoint)),
        })
    }

    async fn get(
        &self,
        request: Request<pb::GetTouchpointRequest>,
    ) -> Result<pb::GetTouchpointResponse> {
        let principal = authorize(&request, Access::Catalogue)?;
        let request = request.into_inner();
        let org = principal.organisation_id;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let lookup = required_lookup(&request.id, &request.code)?;
        let touchpoint = store::touchpoint::find(&mut tx, org, &lookup)
            .await?
            .ok_or_else(|| Error::not_found("touchpoint", lookup.to_string()))?;
        tx.commit().await?;
        Ok(pb::GetTouchpointResponse {
            touchpoint: Some(to_proto(touchpoint)),
        })
    }

    async fn list(
        &self,
        request: Request<pb::ListTouchpointsRequest>,
    ) -> Result<pb::ListTouchpointsResponse> {
        let principal = authorize(&request, Access::Catalogue)?;
        let budget = page_budget(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = violations.check(paging::page_size(request.page_size));
        let filter = violations.check(filter(&request));
        let (size, filter) = violations.finish(|| Some((size?, filter?)))?;
        let query = self.tokens.query(
            principal.organisation_id,
            &format!("touchpoints {filter:?}"),
        );
        let after = PageToken::decode(&request.page_token, &query)?.map(|t| t.after);

        let mut tx = store::begin_for(&self.pool, principal.organisation_id).await?;
        let rows =
            store::touchpoint::list(&mut tx, principal.organisation_id, &filter, after, size + 1)
                .await?;
        tx.commit().await?;
        let rows: Vec<pb::Touchpoint> = rows.into_iter().map(to_proto).collect();
        let (touchpoints, next_page_token) =
            paging::split_page(rows, size, budget, &query, |t| proto_id(&t.id), item_bytes);
        Ok(pb::ListTouchpointsResponse {
            touchpoints,
            next_page_token,
        })
    }

    async fn update(
        &self,
        request: Request<pb::UpdateTouchpointRequest>,
    ) -> Result<pb::UpdateTouchpointResponse> {
        let principal = authorize(&request, Access::Manage)?;
        let request = request.into_inner();
        let Some(fields) = request.touchpoint else {
            return Err(Error::invalid("touchpoint", "is required"));
        };
        let id = parse_id("touchpoint.id", &fields.id)?;
        let changes = changes(&fields, request.update_mask)?;
        let org = principal.organisation_id;

        let mut tx = store::begin_for(&self.pool, org).await?;
        let mut touchpoint = store::touchpoint::get(&mut tx, org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("touchpoint", id.to_string()))?;
        touchpoint.check_changeable()?;
        changes.apply_to(&mut touchpoint);
        let touchpoint = store::touchpoint::update(&mut tx, org, &touchpoint).await?;
        tx.commit().await?;
        Ok(pb::UpdateTouchpointResponse {
            touchpoint: Some(to_proto(touchpoint)),
        })
    }

    /// Archives (`archive`) or unarchives the touchpoint `id`.
    async fn set_archived(
        &self,
        principal_org: Uuid,
        id: &str,
        archive: bool,
    ) -> Result<Touchpoint> {
        let id = parse_id("id", id)?;
        let mut tx = store::begin_for(&self.pool, principal_org).await?;
        let touchpoint = store::touchpoint::get(&mut tx, principal_org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("touchpoint", id.to_string()))?;
        touchpoint.check_archive_transition(archive)?;
        let touchpoint =
            store::touchpoint::set_archived(&mut tx, principal_org, id, archive).await?;
        tx.commit().await?;
        Ok(touchpoint)
    }
}

#[tonic::async_trait]
impl pb::touchpoint_service_server::TouchpointService for TouchpointApi {
    async fn create_touchpoint(
        &self,
        request: Request<pb::CreateTouchpointRequest>,
    ) -> Result<Response<pb::CreateTouchpointResponse>, Status> {
        respond(self.create(request).await)
    }

    async fn get_touchpoint(
        &self,
        request: Request<pb::GetTouchpointRequest>,
    ) -> Result<Response<pb::GetTouchpointResponse>, Status> {
        respond(self.get(request).await)
    }

    async fn list_touchpoints(
        &self,
        request: Request<pb::ListTouchpointsRequest>,
    ) -> Result<Response<pb::ListTouchpointsResponse>, Status> {
        respond(self.list(request).await)
    }

    async fn update_touchpoint(
        &self,
        request: Request<pb::UpdateTouchpointRequest>,
    ) -> Result<Response<pb::UpdateTouchpointResponse>, Status> {
        respond(self.update(request).await)
    }

    async fn archive_touchpoint(
        &self,
        request: Request<pb::ArchiveTouchpointRequest>,
    ) -> Result<Response<pb::ArchiveTouchpointResponse>, Status> {
        let result = async {
            let principal = authorize(&request, Access::Manage)?;
            let touchpoint = self
                .set_archived(principal.organisation_id, &request.get_ref().id, true)
                .await?;
            Ok(pb::ArchiveTouchpointResponse {
                touchpoint: Some(to_proto(touchpoint)),
            })
        };
        respond(result.await)
    }

    async fn unarchive_touchpoint(
        &self,
        request: Request<pb::UnarchiveTouchpointRequest>,
    ) -> Result<Response<pb::UnarchiveTouchpointResponse>, Status> {
        let result = async {
            let principal = authorize(&request, Access::Manage)?;
            let touchpoint = self
                .set_archived(principal.organisation_id, &request.get_ref().id, false)
                .await?;
            Ok(pb::UnarchiveTouchpointResponse {
                touchpoint: Some(to_proto(touchpoint)),
            })
        };
        respond(result.await)
    }
}

pub(crate) fn to_proto(touchpoint: Touchpoint) -> pb::Touchpoint {
    pb::Touchpoint {
        archived: touchpoint.is_archived(),
        id: touchpoint.id.to_string(),
        code: touchpoint.code,
        display_name: touchpoint.display_name,
        description: touchpoint.description,
        stage: stage_to_proto(touchpoint.stage).into(),
        channel: channel_to_proto(touchpoint.channel).into(),
        key: touchpoint.key,
        occurrence: occurrence_to_proto(touchpoint.occurrence).into(),
        cycle_position: touchpoint.cycle_position,
        create_time: Some(timestamp(touchpoint.create_time)),
        update_time: Some(timestamp(touchpoint.update_time)),
        archive_time: touchpoint.archive_time.map(timestamp),
    }
}

/// Checks a touchpoint to create; every problem is reported at once.
fn new_touchpoint(
    touchpoint: Option<pb::Touchpoint>,
) -> Result<NewTouchpoint, Vec<FieldViolation>> {
    let Some(t) = touchpoint else {
        return Err(vec![FieldViolation::new("touchpoint", "is required")]);
    };
    let mut v = Violations::new();
    let code = v.check(parse_code("touchpoint.code", &t.code));
    let display_name = v.check(required_line(
        "touchpoint.display_name",
        &t.display_name,
        DISPLAY_NAME_MAX_CHARS,
    ));
    let description = v.check(optional_text(
        "touchpoint.description",
        &t.description,
        DESCRIPTION_MAX_CHARS,
    ));
    let stage = v.check(required_enum("touchpoint.stage", t.stage, stage_from_proto));
    let channel = v.check(required_enum(
        "touchpoint.channel",
        t.channel,
        channel_from_proto,
    ));
    let occurrence = v.check(enum_field(
        "touchpoint.occurrence",
        t.occurrence,
        occurrence_from_proto,
    ));
    let cycle_position = v.check(parse_cycle_position(
        "touchpoint.cycle_position",
        t.cycle_position,
    ));
    v.finish(|| {
        Some(NewTouchpoint {
            code: code?,
            display_name: display_name?,
            description: description?,
            stage: stage?,
            channel: channel?,
            key: t.key,
            occurrence: occurrence?.unwrap_or(Occurrence::Routine),
            cycle_position: cycle_position?,
        })
    })
}

/// Checks an update: the mask and the new values of the fields it names.
fn changes(
    t: &pb::Touchpoint,
    mask: Option<FieldMask>,
) -> Result<TouchpointChanges, Vec<FieldViolation>> {
    let given = [
        !t.display_name.is_empty(),
        !t.description.is_empty(),
        t.stage != 0,
        t.channel != 0,
        t.key,
        t.occurrence != 0,
        t.cycle_position != 0,
    ];
    let paths = MASK.paths(mask, &given)?;
    let mut v = Violations::new();
    let mut changes = TouchpointChanges::default();
    for path in paths {
        match path {
            "display_name" => {
                changes.display_name = v.check(required_line(
                    "touchpoint.display_name",
                    &t.display_name,
                    DISPLAY_NAME_MAX_CHARS,
                ))
            }
            "description" => {
                changes.description = v.check(optional_text(
                    "touchpoint.description",
                    &t.description,
                    DESCRIPTION_MAX_CHARS,
                ))
            }
            "stage" => {
                changes.stage =
                    v.check(required_enum("touchpoint.stage", t.stage, stage_from_proto))
            }
            "channel" => {
                changes.channel = v.check(required_enum(
                    "touchpoint.channel",
                    t.channel,
                    channel_from_proto,
                ))
            }
            "key" => changes.key = Some(t.key),
            "occurrence" => {
                changes.occurrence = v
                    .check(enum_field(
                        "touchpoint.occurrence",
                        t.occurrence,
                        occurrence_from_proto,
                    ))
                    .map(|o| o.unwrap_or(Occurrence::Routine))
            }
            "cycle_position" => {
                changes.cycle_position = v.check(parse_cycle_position(
                    "touchpoint.cycle_position",
                    t.cycle_position,
                ))
            }
            _ => {}
        }
    }
    v.finish(|| Some(changes))
}

/// Checks a list request's filters.
fn filter(request: &pb::ListTouchpointsRequest) -> Result<TouchpointFilter, FieldViolation> {
    Ok(TouchpointFilter {
        stage: enum_field("stage", request.stage, stage_from_proto)?,
        channel: enum_field("channel", request.channel, channel_from_proto)?,
        key: request.key,
        occurrence: enum_field("occurrence", request.occurrence, occurrence_from_proto)?,
        show_archived: request.show_archived,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::touchpoint::Stage;

    fn valid() -> pb::Touchpoint {
        pb::Touchpoint {
            code: "lobby".into(),
            display_name: "Lobby".into(),
            stage: pb::Stage::PreService.into(),
            channel: pb::Channel::InPerson.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_touchpoint_defaults_to_routine() {
        let new = new_touchpoint(Some(valid())).unwrap();
        assert_eq!(new.occurrence, Occurrence::Routine);
        assert_eq!(new.stage, Stage::PreService);
    }

    #[test]
    fn every_bad_field_of_a_new_touchpoint_is_reported() {
        let bad = pb::Touchpoint {
            code: "bad code".into(),
            stage: 42,
            cycle_position: -3,
            ..Default::default()
        };
        let violations = new_touchpoint(Some(bad)).unwrap_err();
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "touchpoint.code",
                "touchpoint.display_name",
                "touchpoint.stage",
                "touchpoint.channel",
                "touchpoint.cycle_position"
            ]
        );
    }

    #[test]
    fn an_empty_mask_changes_the_fields_given() {
        let fields = pb::Touchpoint {
            key: true,
            cycle_position: 3,
            ..Default::default()
        };
        let changes = changes(&fields, None).unwrap();
        assert_eq!(
            changes,
            TouchpointChanges {
                key: Some(true),
                cycle_position: Some(3),
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_mask_may_not_name_fixed_or_unknown_fields() {
        let mask = FieldMask {
            paths: vec!["code".into(), "colour".into(), "key".into()],
        };
        let violations = changes(&valid(), Some(mask)).unwrap_err();
        assert_eq!(violations.len(), 2);
        assert!(violations.iter().all(|v| v.field == "update_mask"));
    }
}
