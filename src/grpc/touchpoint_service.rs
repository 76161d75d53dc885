//! `verdad.v1.TouchpointService`.

use std::sync::Arc;

use prost_types::FieldMask;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    caller,
    convert::{
        channel_from_proto, channel_to_proto, occurrence_from_proto, occurrence_to_proto,
        stage_from_proto, stage_to_proto,
    },
    enum_field,
    field_mask::MaskRules,
    item_bytes, page_budget, parse_id, required_enum, required_lookup, timestamp,
};
use crate::{
    app::{App, ListRequest},
    domain::{
        code::parse_code,
        paging,
        text::{optional_text, required_line},
        touchpoint::{
            DESCRIPTION_MAX_CHARS, DISPLAY_NAME_MAX_CHARS, NewTouchpoint, Occurrence, Touchpoint,
            TouchpointChanges, TouchpointFilter, parse_cycle_position,
        },
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
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
    app: Arc<App>,
}

impl TouchpointApi {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl pb::touchpoint_service_server::TouchpointService for TouchpointApi {
    async fn create_touchpoint(
        &self,
        request: Request<pb::CreateTouchpointRequest>,
    ) -> Result<Response<pb::CreateTouchpointResponse>, Status> {
        let caller = caller(&request)?;
        let new = new_touchpoint(request.into_inner().touchpoint).map_err(Error::from);
        let touchpoint = self.app.create_touchpoint(&caller, new).await?;
        Ok(Response::new(pb::CreateTouchpointResponse {
            touchpoint: Some(to_proto(touchpoint)),
        }))
    }

    async fn get_touchpoint(
        &self,
        request: Request<pb::GetTouchpointRequest>,
    ) -> Result<Response<pb::GetTouchpointResponse>, Status> {
        let caller = caller(&request)?;
        let lookup = required_lookup(&request.get_ref().id, &request.get_ref().code);
        let touchpoint = self
            .app
            .get_touchpoint(&caller, lookup.map_err(Error::from))
            .await?;
        Ok(Response::new(pb::GetTouchpointResponse {
            touchpoint: Some(to_proto(touchpoint)),
        }))
    }

    async fn list_touchpoints(
        &self,
        request: Request<pb::ListTouchpointsRequest>,
    ) -> Result<Response<pb::ListTouchpointsResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let listing = self
            .app
            .list_touchpoints(&caller, list_request(request.into_inner()))
            .await?;
        let (touchpoints, next_page_token) = listing.page(budget, to_proto, item_bytes);
        Ok(Response::new(pb::ListTouchpointsResponse {
            touchpoints,
            next_page_token,
        }))
    }

    async fn update_touchpoint(
        &self,
        request: Request<pb::UpdateTouchpointRequest>,
    ) -> Result<Response<pb::UpdateTouchpointResponse>, Status> {
        let caller = caller(&request)?;
        let update = update(request.into_inner());
        let touchpoint = self.app.update_touchpoint(&caller, update).await?;
        Ok(Response::new(pb::UpdateTouchpointResponse {
            touchpoint: Some(to_proto(touchpoint)),
        }))
    }

    async fn archive_touchpoint(
        &self,
        request: Request<pb::ArchiveTouchpointRequest>,
    ) -> Result<Response<pb::ArchiveTouchpointResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        let touchpoint = self.app.archive_touchpoint(&caller, id).await?;
        Ok(Response::new(pb::ArchiveTouchpointResponse {
            touchpoint: Some(to_proto(touchpoint)),
        }))
    }

    async fn unarchive_touchpoint(
        &self,
        request: Request<pb::UnarchiveTouchpointRequest>,
    ) -> Result<Response<pb::UnarchiveTouchpointResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        let touchpoint = self.app.unarchive_touchpoint(&caller, id).await?;
        Ok(Response::new(pb::UnarchiveTouchpointResponse {
            touchpoint: Some(to_proto(touchpoint)),
        }))
    }
}

/// Reads a list request: its page size and filters, every problem at once.
fn list_request(request: pb::ListTouchpointsRequest) -> Result<ListRequest<TouchpointFilter>> {
    let mut violations = Violations::new();
    let size = violations.check(paging::page_size(request.page_size));
    let filter = violations.check(filter(&request));
    let (size, filter) = violations.finish(|| Some((size?, filter?)))?;
    Ok(ListRequest {
        size,
        filter,
        page_token: request.page_token,
    })
}

/// Reads an update: the touchpoint's id and the changes its mask names.
fn update(request: pb::UpdateTouchpointRequest) -> Result<(Uuid, TouchpointChanges)> {
    let Some(fields) = request.touchpoint else {
        return Err(Error::invalid("touchpoint", "is required"));
    };
    let id = parse_id("touchpoint.id", &fields.id)?;
    Ok((id, changes(&fields, request.update_mask)?))
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
