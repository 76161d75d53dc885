//! `verdad.v1.RecoveryService`.

use std::{pin::Pin, sync::Arc};

use chrono::Utc;
use prost_types::FieldMask;
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    caller,
    convert::{case_kind_from_proto, case_kind_to_proto, status_from_proto, status_to_proto},
    enum_field,
    field_mask::MaskRules,
    item_bytes, page_budget, parse_id, required_enum, timestamp, touchpoint_filter,
};
use crate::{
    app::{App, ListRequest, recovery::CasesFilter},
    domain::{
        encounter::{reference, satisfaction},
        paging::page_size,
        recovery::{ASSIGNEE_MAX_CHARS, CaseChanges, RESOLUTION_NOTE_MAX_CHARS, RecoveryCase},
        text::optional_text,
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
};

const MASK: MaskRules = MaskRules {
    mutable: &[
        "assignee",
        "status",
        "resolution_note",
        "follow_up_satisfaction",
    ],
    fixed: &[
        "id",
        "encounter_id",
        "touchpoint_id",
        "touchpoint_code",
        "journey_id",
        "open_time",
        "due_time",
        "resolve_time",
        "original_satisfaction",
        "overdue",
        "failure_reasons",
        "update_time",
        "kind",
        "acknowledge_time",
        "escalation_level",
        "escalated_to",
        "escalate_time",
    ],
    aliases: &[],
};

pub struct RecoveryApi {
    app: Arc<App>,
}

impl RecoveryApi {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

type CaseStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchRecoveryCasesResponse, Status>> + Send>>;

/// Checks an update: the mask and the new values of the fields it names.
fn changes(
    case: &pb::RecoveryCase,
    mask: Option<FieldMask>,
) -> Result<CaseChanges, Vec<FieldViolation>> {
    let given = [
        !case.assignee.is_empty(),
        case.status != 0,
        !case.resolution_note.is_empty(),
        case.follow_up_satisfaction.is_some(),
    ];
    let paths = MASK.paths(mask, &given)?;
    let mut v = Violations::new();
    let mut changes = CaseChanges::default();
    for path in paths {
        match path {
            "assignee" => {
                changes.assignee = v
                    .check(reference(
                        "recovery_case.assignee",
                        &case.assignee,
                        ASSIGNEE_MAX_CHARS,
                        false,
                    ))
                    .map(Option::unwrap_or_default)
            }
            "status" => {
                changes.status = v.check(required_enum(
                    "recovery_case.status",
                    case.status,
                    status_from_proto,
                ))
            }
            "resolution_note" => {
                changes.resolution_note = v.check(optional_text(
                    "recovery_case.resolution_note",
                    &case.resolution_note,
                    RESOLUTION_NOTE_MAX_CHARS,
                ))
            }
            "follow_up_satisfaction" => {
                changes.follow_up_satisfaction = v.check(satisfaction(
                    "recovery_case.follow_up_satisfaction",
                    case.follow_up_satisfaction,
                ))
            }
            _ => {}
        }
    }
    v.finish(|| Some(changes))
}

fn to_proto(case: RecoveryCase) -> pb::RecoveryCase {
    let overdue = case.is_overdue(Utc::now());
    pb::RecoveryCase {
        id: case.id.to_string(),
        encounter_id: case
            .encounter_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        touchpoint_id: case.touchpoint.id.to_string(),
        touchpoint_code: case.touchpoint.code,
        journey_id: case.journey_id,
        status: status_to_proto(case.status).into(),
        assignee: case.assignee,
        open_time: Some(timestamp(case.open_time)),
        due_time: Some(timestamp(case.due_time)),
        resolve_time: case.resolve_time.map(timestamp),
        resolution_note: case.resolution_note,
        original_satisfaction: case.original_satisfaction,
        follow_up_satisfaction: case.follow_up_satisfaction,
        overdue,
        failure_reasons: case.failure_reasons,
        update_time: Some(timestamp(case.update_time)),
        kind: case_kind_to_proto(case.kind).into(),
        acknowledge_time: case.acknowledge_time.map(timestamp),
        escalation_level: case.escalation.level,
        escalated_to: case.escalation.escalated_to,
        escalate_time: case.escalation.escalate_time.map(timestamp),
    }
}

#[tonic::async_trait]
impl pb::recovery_service_server::RecoveryService for RecoveryApi {
    async fn list_recovery_cases(
        &self,
        request: Request<pb::ListRecoveryCasesRequest>,
    ) -> Result<Response<pb::ListRecoveryCasesResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let request = list_request(request.into_inner());
        let listing = self.app.list_recovery_cases(&caller, request).await?;
        let (recovery_cases, next_page_token) = listing.page(budget, to_proto, item_bytes);
        Ok(Response::new(pb::ListRecoveryCasesResponse {
            recovery_cases,
            next_page_token,
        }))
    }

    async fn get_recovery_case(
        &self,
        request: Request<pb::GetRecoveryCaseRequest>,
    ) -> Result<Response<pb::GetRecoveryCaseResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        let case = self.app.get_recovery_case(&caller, id).await?;
        Ok(Response::new(pb::GetRecoveryCaseResponse {
            recovery_case: Some(to_proto(case)),
        }))
    }

    async fn update_recovery_case(
        &self,
        request: Request<pb::UpdateRecoveryCaseRequest>,
    ) -> Result<Response<pb::UpdateRecoveryCaseResponse>, Status> {
        let caller = caller(&request)?;
        let update = update(request.into_inner());
        let case = self.app.update_recovery_case(&caller, update).await?;
        Ok(Response::new(pb::UpdateRecoveryCaseResponse {
            recovery_case: Some(to_proto(case)),
        }))
    }

    async fn acknowledge_recovery_case(
        &self,
        request: Request<pb::AcknowledgeRecoveryCaseRequest>,
    ) -> Result<Response<pb::AcknowledgeRecoveryCaseResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        let case = self.app.acknowledge_recovery_case(&caller, id).await?;
        Ok(Response::new(pb::AcknowledgeRecoveryCaseResponse {
            recovery_case: Some(to_proto(case)),
        }))
    }

    type WatchRecoveryCasesStream = CaseStream;

    async fn watch_recovery_cases(
        &self,
        request: Request<pb::WatchRecoveryCasesRequest>,
    ) -> Result<Response<Self::WatchRecoveryCasesStream>, Status> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        let touchpoint = touchpoint_filter("touchpoint", &r.touchpoint_id, &r.touchpoint_code);
        let cases = (self.app)
            .watch_recovery_cases(&caller, touchpoint.map_err(Error::from))
            .await?;
        let stream = ReceiverStream::new(cases).map(|case| match case {
            Ok(case) => Ok(pb::WatchRecoveryCasesResponse {
                recovery_case: Some(to_proto(case)),
            }),
            Err(error) => Err(Status::from(error)),
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Reads a list request: its page size and filters, every problem at once.
fn list_request(request: pb::ListRecoveryCasesRequest) -> Result<ListRequest<CasesFilter>> {
    let mut v = Violations::new();
    let size = v.check(page_size(request.page_size));
    let status = v.check(enum_field("status", request.status, status_from_proto));
    let touchpoint = v.check(touchpoint_filter(
        "touchpoint",
        &request.touchpoint_id,
        &request.touchpoint_code,
    ));
    let kind = v.check(enum_field("kind", request.kind, case_kind_from_proto));
    let (size, status, touchpoint, kind) =
        v.finish(|| Some((size?, status?, touchpoint?, kind?)))?;
    Ok(ListRequest {
        size,
        filter: CasesFilter {
            kind,
            status,
            overdue_only: request.overdue_only,
            touchpoint,
        },
        page_token: request.page_token,
    })
}

/// Reads an update: the case's id and the changes its mask names.
fn update(request: pb::UpdateRecoveryCaseRequest) -> Result<(Uuid, CaseChanges)> {
    let case = request
        .recovery_case
        .ok_or_else(|| Error::invalid("recovery_case", "is required"))?;
    let id = parse_id("recovery_case.id", &case.id)?;
    Ok((id, changes(&case, request.update_mask)?))
}
