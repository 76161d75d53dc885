//! `verdad.v1.FeedService`.

use std::sync::Arc;

use prost_types::FieldMask;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{caller, field_mask::MaskRules, item_bytes, page_budget, parse_id, timestamp};
use crate::{
    app::{App, ListRequest, feed_preview::PreviewOutcome, feeds::RejectionsRequest},
    domain::{
        code::Lookup,
        encounter::NewEncounter,
        feed::{
            CONDITION_MAX_CHARS, DISPLAY_NAME_MAX_CHARS, FeedChanges, FhirR4Mapping, FhirR4Rule,
            FieldPath, Hl7v2Mapping, Hl7v2Rule, JourneySource, MAX_CERTIFICATES, Mapping, NewFeed,
            Rejection, SENDER_MAX_CHARS, certificate_fingerprint, character_set,
            check_journey_system, check_rule_count, feed_code, hl7_event, hl7_value,
        },
        paging,
        text::required_line,
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
};

/// The largest message a preview takes.
const PREVIEW_MAX_BYTES: usize = 1024 * 1024;

const HL7V2_FIELDS: &[&str] = &[
    "hl7v2.sending_application",
    "hl7v2.sending_facility",
    "hl7v2.rules",
    "hl7v2.journey_field",
    "hl7v2.customer_field",
    "hl7v2.customer_assigning_authority",
    "hl7v2.staff_field",
    "hl7v2.client_certificate_sha256",
    "hl7v2.default_character_set",
];
const FHIR_R4_FIELDS: &[&str] = &[
    "fhir_r4.rules",
    "fhir_r4.journey_source",
    "fhir_r4.journey_identifier_system",
    "fhir_r4.customer_identifier_system",
];

/// The fields an update mask may name. A whole mapping (`hl7v2`,
/// `fhir_r4`) stands for all its fields.
const MASK: MaskRules = MaskRules {
    mutable: &[
        "display_name",
        "hl7v2.sending_application",
        "hl7v2.sending_facility",
        "hl7v2.rules",
        "hl7v2.journey_field",
        "hl7v2.customer_field",
        "hl7v2.customer_assigning_authority",
        "hl7v2.staff_field",
        "hl7v2.client_certificate_sha256",
        "hl7v2.default_character_set",
        "fhir_r4.rules",
        "fhir_r4.journey_source",
        "fhir_r4.journey_identifier_system",
        "fhir_r4.customer_identifier_system",
    ],
    fixed: &[
        "id",
        "code",
        "archived",
        "counts",
        "create_time",
        "update_time",
        "archive_time",
    ],
    aliases: &[],
};

pub struct FeedApi {
    app: Arc<App>,
}

impl FeedApi {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl pb::feed_service_server::FeedService for FeedApi {
    async fn create_feed(
        &self,
        request: Request<pb::CreateFeedRequest>,
    ) -> Result<Response<pb::CreateFeedResponse>, Status> {
        let caller = caller(&request)?;
        let new = new_feed(request.into_inner().feed).map_err(Error::from);
        let feed = self.app.create_feed(&caller, new).await?;
        Ok(Response::new(pb::CreateFeedResponse {
            feed: Some(to_proto(feed)),
        }))
    }

    async fn get_feed(
        &self,
        request: Request<pb::GetFeedRequest>,
    ) -> Result<Response<pb::GetFeedResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        let feed = self.app.get_feed(&caller, id).await?;
        Ok(Response::new(pb::GetFeedResponse {
            feed: Some(to_proto(feed)),
        }))
    }

    async fn list_feeds(
        &self,
        request: Request<pb::ListFeedsRequest>,
    ) -> Result<Response<pb::ListFeedsResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let r = request.into_inner();
        let list = paging::page_size(r.page_size)
            .map(|size| ListRequest {
                size,
                filter: r.show_archived,
                page_token: r.page_token,
            })
            .map_err(Error::from);
        let listing = self.app.list_feeds(&caller, list).await?;
        let (feeds, next_page_token) = listing.page(budget, to_proto, item_bytes);
        Ok(Response::new(pb::ListFeedsResponse {
            feeds,
            next_page_token,
        }))
    }

    async fn update_feed(
        &self,
        request: Request<pb::UpdateFeedRequest>,
    ) -> Result<Response<pb::UpdateFeedResponse>, Status> {
        let caller = caller(&request)?;
        let update = update(request.into_inner());
        let feed = self.app.update_feed(&caller, update).await?;
        Ok(Response::new(pb::UpdateFeedResponse {
            feed: Some(to_proto(feed)),
        }))
    }

    async fn archive_feed(
        &self,
        request: Request<pb::ArchiveFeedRequest>,
    ) -> Result<Response<pb::ArchiveFeedResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        let feed = self.app.archive_feed(&caller, id).await?;
        Ok(Response::new(pb::ArchiveFeedResponse {
            feed: Some(to_proto(feed)),
        }))
    }

    async fn list_feed_rejections(
        &self,
        request: Request<pb::ListFeedRejectionsRequest>,
    ) -> Result<Response<pb::ListFeedRejectionsResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let r = request.into_inner();
        let mut v = Violations::new();
        let feed_id = v.check(parse_id("feed_id", &r.feed_id));
        let size = v.check(paging::page_size(r.page_size));
        let parsed = v
            .finish(|| {
                Some(RejectionsRequest {
                    feed_id: feed_id?,
                    list: ListRequest {
                        size: size?,
                        filter: (),
                        page_token: r.page_token,
                    },
                })
            })
            .map_err(Error::from);
        let listing = self.app.list_feed_rejections(&caller, parsed).await?;
        let (rejections, next_page_token) = listing.page(budget, rejection_to_proto, item_bytes);
        Ok(Response::new(pb::ListFeedRejectionsResponse {
            rejections,
            next_page_token,
        }))
    }

    async fn preview_feed_message(
        &self,
        request: Request<pb::PreviewFeedMessageRequest>,
    ) -> Result<Response<pb::PreviewFeedMessageResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let feed_id = v.check(parse_id("feed_id", &r.feed_id));
        let message = v.check(preview_message(&r.message));
        let parsed = v.finish(|| Some((feed_id?, message?))).map_err(Error::from);
        let preview = self.app.preview_feed_message(&caller, parsed).await?;
        let mut answer = pb::PreviewFeedMessageResponse {
            acknowledgement: preview.acknowledgement.clone(),
            ..Default::default()
        };
        match preview.outcome {
            PreviewOutcome::Store(moments) => {
                answer.outcome = "store".into();
                answer.encounters = moments.into_iter().map(moment_to_proto).collect();
            }
            PreviewOutcome::Withdraw(external_ids) => {
                answer.outcome = "withdraw".into();
                answer.withdrawn_external_ids = external_ids;
            }
            PreviewOutcome::Ignore => answer.outcome = "ignore".into(),
            PreviewOutcome::Refuse {
                element,
                field,
                reason,
            } => {
                answer.outcome = "reject".into();
                answer.rejection = Some(pb::FeedRejection {
                    control_id: preview.control_id,
                    receive_time: None,
                    acknowledgement: preview.acknowledgement,
                    segment: element,
                    field: i32::try_from(field).unwrap_or(0),
                    reason,
                });
            }
        }
        Ok(Response::new(answer))
    }
}

fn preview_message(message: &str) -> Result<String, FieldViolation> {
    if message.is_empty() {
        return Err(FieldViolation::new("message", "must not be empty"));
    }
    if message.len() > PREVIEW_MAX_BYTES {
        return Err(FieldViolation::new(
            "message",
            format!(
                "must be at most {PREVIEW_MAX_BYTES} bytes, got {}",
                message.len()
            ),
        ));
    }
    Ok(message.to_owned())
}

fn to_proto(feed: crate::domain::feed::Feed) -> pb::Feed {
    let mapping = match feed.mapping {
        Mapping::Hl7v2(m) => pb::feed::Mapping::Hl7v2(pb::Hl7v2Mapping {
            sending_application: m.sending_application,
            sending_facility: m.sending_facility,
            rules: m
                .rules
                .into_iter()
                .map(|r| pb::Hl7v2Rule {
                    event: r.event(),
                    point_of_care: r.point_of_care,
                    room: r.room,
                    bed: r.bed,
                    facility: r.facility,
                    touchpoint_code: r.touchpoint_code,
                })
                .collect(),
            journey_field: m.journey_field.to_string(),
            customer_field: m.customer_field.to_string(),
            customer_assigning_authority: m.customer_assigning_authority,
            staff_field: m.staff_field.map(|f| f.to_string()).unwrap_or_default(),
            client_certificate_sha256: m.client_certificates,
            default_character_set: m.default_character_set,
        }),
        Mapping::FhirR4(m) => pb::feed::Mapping::FhirR4(pb::FhirR4Mapping {
            rules: m
                .rules
                .into_iter()
                .map(|r| pb::FhirR4Rule {
                    location: r.location,
                    class_code: r.class_code,
                    service_type_code: r.service_type_code,
                    status: r.status,
                    touchpoint_code: r.touchpoint_code,
                })
                .collect(),
            journey_source: journey_source_to_proto(m.journey_source).into(),
            journey_identifier_system: m.journey_identifier_system,
            customer_identifier_system: m.customer_identifier_system,
        }),
    };
    pb::Feed {
        archived: feed.archive_time.is_some(),
        id: feed.id.to_string(),
        code: feed.code,
        display_name: feed.display_name,
        mapping: Some(mapping),
        counts: Some(pb::FeedCounts {
            accepted: feed.counts.accepted,
            duplicates: feed.counts.duplicates,
            ignored: feed.counts.ignored,
            rejected: feed.counts.rejected,
            last_message_time: feed.counts.last_message_time.map(timestamp),
        }),
        create_time: Some(timestamp(feed.create_time)),
        update_time: Some(timestamp(feed.update_time)),
        archive_time: feed.archive_time.map(timestamp),
    }
}

fn rejection_to_proto(r: Rejection) -> pb::FeedRejection {
    pb::FeedRejection {
        control_id: r.control_id,
        receive_time: Some(timestamp(r.receive_time)),
        acknowledgement: r.acknowledgement.code().into(),
        segment: r.segment,
        field: r.field,
        reason: r.reason,
    }
}

/// An encounter a message would make, as it would be recorded.
fn moment_to_proto(e: NewEncounter) -> pb::Encounter {
    pb::Encounter {
        touchpoint_code: match e.touchpoint {
            Lookup::Code(code) => code,
            Lookup::Id(id) => id.to_string(),
        },
        journey_id: e.journey_id,
        has_customer_ref: e.customer_ref.is_some(),
        occur_time: Some(timestamp(e.occur_time)),
        staff_ref: e.staff_ref.unwrap_or_default(),
        attributes: e.attributes.into_iter().collect(),
        source: e.source,
        external_id: e.external_id,
        ..pb::Encounter::default()
    }
}

fn journey_source_to_proto(source: JourneySource) -> pb::FhirJourneySource {
    match source {
        JourneySource::Identifier => pb::FhirJourneySource::Identifier,
        JourneySource::PartOf => pb::FhirJourneySource::PartOf,
        JourneySource::EpisodeOfCare => pb::FhirJourneySource::EpisodeOfCare,
    }
}

fn journey_source_from_proto(field: &str, value: i32) -> Result<JourneySource, FieldViolation> {
    match pb::FhirJourneySource::try_from(value) {
        Ok(pb::FhirJourneySource::Identifier) => Ok(JourneySource::Identifier),
        Ok(pb::FhirJourneySource::PartOf) => Ok(JourneySource::PartOf),
        Ok(pb::FhirJourneySource::EpisodeOfCare) => Ok(JourneySource::EpisodeOfCare),
        Ok(pb::FhirJourneySource::Unspecified) => Err(FieldViolation::new(field, "is required")),
        Err(_) => Err(FieldViolation::new(
            field,
            format!("has unknown value {value}"),
        )),
    }
}

/// Checks a feed to create; every problem is reported at once.
fn new_feed(feed: Option<pb::Feed>) -> Result<NewFeed, Vec<FieldViolation>> {
    let Some(f) = feed else {
        return Err(vec![FieldViolation::new("feed", "is required")]);
    };
    let mut v = Violations::new();
    let code = v.check(feed_code("feed.code", &f.code));
    let display_name = v.check(required_line(
        "feed.display_name",
        &f.display_name,
        DISPLAY_NAME_MAX_CHARS,
    ));
    let mapping = match f.mapping {
        None => {
            v.push(FieldViolation::new(
                "feed.hl7v2",
                "or feed.fhir_r4 is required: the feed's kind and mapping",
            ));
            None
        }
        Some(pb::feed::Mapping::Hl7v2(m)) => {
            hl7v2_mapping(&mut v, m).map(|m| Mapping::Hl7v2(Box::new(m)))
        }
        Some(pb::feed::Mapping::FhirR4(m)) => fhir_r4_mapping(&mut v, m).map(Mapping::FhirR4),
    };
    v.finish(|| {
        Some(NewFeed {
            code: code?,
            display_name: display_name?,
            mapping: mapping?,
        })
    })
}

fn hl7v2_mapping(v: &mut Violations, m: pb::Hl7v2Mapping) -> Option<Hl7v2Mapping> {
    let application = v.check(sending_application(&m.sending_application));
    let facility = v.check(sending_facility(&m.sending_facility));
    let rules = hl7v2_rules(v, &m.rules);
    let journey = v.check(field_path(
        "feed.hl7v2.journey_field",
        &m.journey_field,
        Hl7v2Mapping::default_journey_field,
    ));
    let customer = v.check(field_path(
        "feed.hl7v2.customer_field",
        &m.customer_field,
        Hl7v2Mapping::default_customer_field,
    ));
    let authority = v.check(authority(&m.customer_assigning_authority));
    let staff = v.check(staff_field(&m.staff_field));
    let certificates = v.check(certificates(&m.client_certificate_sha256));
    let default_charset = v.check(default_character_set(&m.default_character_set));
    Some(Hl7v2Mapping {
        sending_application: application?,
        sending_facility: facility?,
        rules: rules?,
        journey_field: journey?,
        customer_field: customer?,
        customer_assigning_authority: authority?,
        staff_field: staff?,
        client_certificates: certificates?,
        default_character_set: default_charset?,
    })
}

fn default_character_set(value: &str) -> Result<String, FieldViolation> {
    character_set("feed.hl7v2.default_character_set", value)
}

fn sending_application(value: &str) -> Result<String, FieldViolation> {
    hl7_value(
        "feed.hl7v2.sending_application",
        value,
        SENDER_MAX_CHARS,
        true,
    )
}

fn sending_facility(value: &str) -> Result<String, FieldViolation> {
    hl7_value(
        "feed.hl7v2.sending_facility",
        value,
        SENDER_MAX_CHARS,
        false,
    )
}

fn authority(value: &str) -> Result<String, FieldViolation> {
    hl7_value(
        "feed.hl7v2.customer_assigning_authority",
        value,
        CONDITION_MAX_CHARS,
        false,
    )
}

fn field_path(
    field: &str,
    value: &str,
    default: fn() -> FieldPath,
) -> Result<FieldPath, FieldViolation> {
    if value.is_empty() {
        return Ok(default());
    }
    FieldPath::parse(value).map_err(|e| FieldViolation::new(field, e))
}

fn staff_field(value: &str) -> Result<Option<FieldPath>, FieldViolation> {
    if value.is_empty() {
        return Ok(None);
    }
    FieldPath::parse(value)
        .map(Some)
        .map_err(|e| FieldViolation::new("feed.hl7v2.staff_field", e))
}

fn certificates(values: &[String]) -> Result<Vec<String>, FieldViolation> {
    let field = "feed.hl7v2.client_certificate_sha256";
    if values.len() > MAX_CERTIFICATES {
        return Err(FieldViolation::new(
            field,
            format!(
                "must hold at most {MAX_CERTIFICATES} fingerprints, got {}",
                values.len()
            ),
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, value)| certificate_fingerprint(&format!("{field}[{i}]"), value))
        .collect()
}

fn hl7v2_rules(v: &mut Violations, rules: &[pb::Hl7v2Rule]) -> Option<Vec<Hl7v2Rule>> {
    let count = v.check(check_rule_count("feed.hl7v2.rules", rules.len()));
    let mut checked = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let f = |name: &str| format!("feed.hl7v2.rules[{i}].{name}");
        let condition =
            |name: &str, value: &str| hl7_value(&f(name), value, CONDITION_MAX_CHARS, false);
        let event = v.check(hl7_event(&f("event"), &r.event));
        let point_of_care = v.check(condition("point_of_care", &r.point_of_care));
        let room = v.check(condition("room", &r.room));
        let bed = v.check(condition("bed", &r.bed));
        let facility = v.check(condition("facility", &r.facility));
        let touchpoint = v.check(feed_code(&f("touchpoint_code"), &r.touchpoint_code));
        if let (Some((message_type, trigger_event)), Some(a), Some(b), Some(c), Some(d), Some(t)) =
            (event, point_of_care, room, bed, facility, touchpoint)
        {
            checked.push(Hl7v2Rule {
                message_type,
                trigger_event,
                point_of_care: a,
                room: b,
                bed: c,
                facility: d,
                touchpoint_code: t,
            });
        }
    }
    count.map(|()| checked)
}

fn fhir_r4_mapping(v: &mut Violations, m: pb::FhirR4Mapping) -> Option<FhirR4Mapping> {
    let rules = fhir_r4_rules(v, &m.rules);
    let source = v.check(journey_source_from_proto(
        "feed.fhir_r4.journey_source",
        m.journey_source,
    ));
    let journey_system = v.check(system(
        "feed.fhir_r4.journey_identifier_system",
        &m.journey_identifier_system,
    ));
    let customer_system = v.check(system(
        "feed.fhir_r4.customer_identifier_system",
        &m.customer_identifier_system,
    ));
    let mapping = FhirR4Mapping {
        rules: rules?,
        journey_source: source?,
        journey_identifier_system: journey_system?,
        customer_identifier_system: customer_system?,
    };
    v.check(check_journey_system(&mapping))?;
    Some(mapping)
}

/// An identifier system: a URI, one line.
fn system(field: &str, value: &str) -> Result<String, FieldViolation> {
    crate::domain::encounter::reference(field, value.trim(), 1024, false)
        .map(Option::unwrap_or_default)
}

fn fhir_r4_rules(v: &mut Violations, rules: &[pb::FhirR4Rule]) -> Option<Vec<FhirR4Rule>> {
    let count = v.check(check_rule_count("feed.fhir_r4.rules", rules.len()));
    let mut checked = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let f = |name: &str| format!("feed.fhir_r4.rules[{i}].{name}");
        let condition = |name: &str, value: &str| {
            crate::domain::encounter::reference(&f(name), value.trim(), 1024, false)
                .map(Option::unwrap_or_default)
        };
        let location = v.check(condition("location", &r.location));
        let class_code = v.check(condition("class_code", &r.class_code));
        let service_type = v.check(condition("service_type_code", &r.service_type_code));
        let status = v.check(condition("status", &r.status));
        let touchpoint = v.check(feed_code(&f("touchpoint_code"), &r.touchpoint_code));
        if let (Some(location), Some(class_code), Some(service_type_code), Some(status), Some(t)) =
            (location, class_code, service_type, status, touchpoint)
        {
            checked.push(FhirR4Rule {
                location,
                class_code,
                service_type_code,
                status,
                touchpoint_code: t,
            });
        }
    }
    count.map(|()| checked)
}

/// Reads an update: the feed's id and the changes its mask names.
fn update(request: pb::UpdateFeedRequest) -> Result<(Uuid, FeedChanges)> {
    let Some(f) = request.feed else {
        return Err(Error::invalid("feed", "is required"));
    };
    let id = parse_id("feed.id", &f.id)?;
    Ok((id, changes(f, request.update_mask)?))
}

/// Expands a whole mapping named in a mask to its fields.
fn expanded(mask: Option<FieldMask>) -> Option<FieldMask> {
    mask.map(|mask| FieldMask {
        paths: mask
            .paths
            .into_iter()
            .flat_map(|path| match path.as_str() {
                "hl7v2" => HL7V2_FIELDS.iter().map(|p| (*p).to_owned()).collect(),
                "fhir_r4" => FHIR_R4_FIELDS.iter().map(|p| (*p).to_owned()).collect(),
                _ => vec![path],
            })
            .collect(),
    })
}

fn changes(f: pb::Feed, mask: Option<FieldMask>) -> Result<FeedChanges, Vec<FieldViolation>> {
    let hl7 = match &f.mapping {
        Some(pb::feed::Mapping::Hl7v2(m)) => Some(m.clone()),
        _ => None,
    };
    let fhir = match &f.mapping {
        Some(pb::feed::Mapping::FhirR4(m)) => Some(m.clone()),
        _ => None,
    };
    let h = hl7.clone().unwrap_or_default();
    let r = fhir.clone().unwrap_or_default();
    let given = [
        !f.display_name.is_empty(),
        !h.sending_application.is_empty(),
        !h.sending_facility.is_empty(),
        !h.rules.is_empty(),
        !h.journey_field.is_empty(),
        !h.customer_field.is_empty(),
        !h.customer_assigning_authority.is_empty(),
        !h.staff_field.is_empty(),
        !h.client_certificate_sha256.is_empty(),
        !h.default_character_set.is_empty(),
        !r.rules.is_empty(),
        r.journey_source != 0,
        !r.journey_identifier_system.is_empty(),
        !r.customer_identifier_system.is_empty(),
    ];
    let paths = MASK.paths(expanded(mask), &given)?;
    let mut v = Violations::new();
    let mut changes = FeedChanges::default();
    for path in paths {
        match path {
            "display_name" => {
                changes.display_name = v.check(required_line(
                    "feed.display_name",
                    &f.display_name,
                    DISPLAY_NAME_MAX_CHARS,
                ));
            }
            "hl7v2.sending_application" => {
                changes.hl7v2.sending_application =
                    v.check(sending_application(&h.sending_application));
            }
            "hl7v2.sending_facility" => {
                changes.hl7v2.sending_facility = v.check(sending_facility(&h.sending_facility));
            }
            "hl7v2.rules" => changes.hl7v2.rules = hl7v2_rules(&mut v, &h.rules),
            "hl7v2.journey_field" => {
                changes.hl7v2.journey_field = v.check(field_path(
                    "feed.hl7v2.journey_field",
                    &h.journey_field,
                    Hl7v2Mapping::default_journey_field,
                ));
            }
            "hl7v2.customer_field" => {
                changes.hl7v2.customer_field = v.check(field_path(
                    "feed.hl7v2.customer_field",
                    &h.customer_field,
                    Hl7v2Mapping::default_customer_field,
                ));
            }
            "hl7v2.customer_assigning_authority" => {
                changes.hl7v2.customer_assigning_authority =
                    v.check(authority(&h.customer_assigning_authority));
            }
            "hl7v2.staff_field" => changes.hl7v2.staff_field = v.check(staff_field(&h.staff_field)),
            "hl7v2.client_certificate_sha256" => {
                changes.hl7v2.client_certificates =
                    v.check(certificates(&h.client_certificate_sha256));
            }
            "hl7v2.default_character_set" => {
                changes.hl7v2.default_character_set =
                    v.check(default_character_set(&h.default_character_set));
            }
            "fhir_r4.rules" => changes.fhir_r4.rules = fhir_r4_rules(&mut v, &r.rules),
            "fhir_r4.journey_source" => {
                changes.fhir_r4.journey_source = v.check(journey_source_from_proto(
                    "feed.fhir_r4.journey_source",
                    r.journey_source,
                ));
            }
            "fhir_r4.journey_identifier_system" => {
                changes.fhir_r4.journey_identifier_system = v.check(system(
                    "feed.fhir_r4.journey_identifier_system",
                    &r.journey_identifier_system,
                ));
            }
            "fhir_r4.customer_identifier_system" => {
                changes.fhir_r4.customer_identifier_system = v.check(system(
                    "feed.fhir_r4.customer_identifier_system",
                    &r.customer_identifier_system,
                ));
            }
            _ => {}
        }
    }
    v.finish(|| Some(changes))
}
