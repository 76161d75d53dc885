//! `verdad.v1.StandardService`.

use prost_types::FieldMask;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    authorize,
    convert::{
        comparison_from_proto, comparison_to_proto, element_from_proto, element_to_proto,
        metric_field_from_proto, metric_field_to_proto, severity_from_proto, severity_to_proto,
        stage_from_proto, stage_to_proto,
    },
    enum_field,
    field_mask::MaskRules,
    item_bytes, named_touchpoint, page_budget, parse_id, proto_id, required_enum, required_lookup,
    respond, timestamp, touchpoint_filter, touchpoint_service,
};
use crate::{
    domain::{
        code::{Lookup, parse_code, parse_lookup},
        manual::{self, ServiceManual},
        paging::{self, PageToken, TokenKey},
        role::Access,
        standard::{
            GUIDANCE_MAX_CHARS, NewStandard, Rule, Standard, StandardChanges, StandardFilter,
            TITLE_MAX_CHARS, TouchpointRef,
        },
        text::{optional_text, required_line},
        touchpoint::Touchpoint,
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
    store,
};

/// The fields an update mask may name, and those it may not. Either name of
/// the touchpoint, or `touchpoint`, changes the touchpoint; either rule of
/// the oneof, or the oneof's name `rule`, replaces the rule.
const MASK: MaskRules = MaskRules {
    mutable: &[
        "title",
        "touchpoint_id",
        "touchpoint_code",
        "element",
        "severity",
        "guidance",
        "metric_rule",
        "observed_rule",
    ],
    fixed: &[
        "id",
        "code",
        "rule_text",
        "active",
        "create_time",
        "update_time",
        "archive_time",
    ],
    aliases: &[("touchpoint", "touchpoint_id"), ("rule", "metric_rule")],
};

pub struct StandardApi {
    pool: PgPool,
    tokens: TokenKey,
}

impl StandardApi {
    pub fn new(pool: PgPool, tokens: TokenKey) -> Self {
        Self { pool, tokens }
    }

    async fn create(
        &self,
        request: Request<pb::CreateStandardRequest>,
    ) -> Result<pb::CreateStandardResponse> {
        let principal = authorize(&request, Access::Manage)?;
        let new = new_standard(request.into_inner().standard)?;
        let org = principal.organisation_id;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let touchpoint = match &new.touchpoint {
            Some(lookup) => Some(attachable_touchpoint(&mut tx, org, lookup).await?.id),
            None => None,
        };
        let standard = store::standard::insert(&mut tx, org, &new, touchpoint).await?;
        tx.commit().await?;
        Ok(pb::CreateStandardResponse {
            standard: Some(to_proto(standard)),
        })
    }

    async fn get(
        &self,
        request: Request<pb::GetStandardRequest>,
    ) -> Result<pb::GetStandardResponse> {
        let principal = authorize(&request, Access::Read)?;
        let request = request.into_inner();
        let org = principal.organisation_id;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let lookup = required_lookup(&request.id, &request.code)?;
        let standard = store::standard::find(&mut tx, org, &lookup)
            .await?
            .ok_or_else(|| Error::not_found("standard", lookup.to_string()))?;
        tx.commit().await?;
        Ok(pb::GetStandardResponse {
            standard: Some(to_proto(standard)),
        })
    }

    async fn list(
        &self,
        request: Request<pb::ListStandardsRequest>,
    ) -> Result<pb::ListStandardsResponse> {
        let principal = authorize(&request, Access::Read)?;
        let budget = page_budget(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = violations.check(paging::page_size(request.page_size));
        let filter = violations.check(filter(&request));
        let (size, (filter, touchpoint)) = violations.finish(|| Some((size?, filter?)))?;
        let org = principal.organisation_id;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let filter = StandardFilter {
            touchpoint_id: named_touchpoint(&mut tx, org, touchpoint.as_ref()).await?,
            ..filter
        };
        let query = self
            .tokens
            .query(principal.organisation_id, &format!("standards {filter:?}"));
        let after = PageToken::decode(&request.page_token, &query)?.map(|t| t.after);
        let rows = store::standard::list(&mut tx, org, &filter, after, size + 1).await?;
        tx.commit().await?;
        let rows: Vec<pb::Standard> = rows.into_iter().map(to_proto).collect();
        let (standards, next_page_token) =
            paging::split_page(rows, size, budget, &query, |s| proto_id(&s.id), item_bytes);
        Ok(pb::ListStandardsResponse {
            standards,
            next_page_token,
        })
    }

    async fn update(
        &self,
        request: Request<pb::UpdateStandardRequest>,
    ) -> Result<pb::UpdateStandardResponse> {
        let principal = authorize(&request, Access::Manage)?;
        let request = request.into_inner();
        let Some(fields) = request.standard else {
            return Err(Error::invalid("standard", "is required"));
        };
        let id = parse_id("standard.id", &fields.id)?;
        let changes = changes(&fields, request.update_mask)?;
        let org = principal.organisation_id;

        let mut tx = store::begin_for(&self.pool, org).await?;
        let mut standard = store::standard::get(&mut tx, org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("standard", id.to_string()))?;
        standard.check_changeable()?;
        let touchpoint = match &changes.touchpoint {
            Some(Some(lookup)) => {
                let found = attachable_touchpoint(&mut tx, org, lookup).await?;
                Some(Some(TouchpointRef {
                    id: found.id,
                    code: found.code,
                }))
            }
            Some(None) => Some(None),
            None => None,
        };
        changes.apply_to(&mut standard, touchpoint);
        let standard = store::standard::update(&mut tx, org, &standard).await?;
        tx.commit().await?;
        Ok(pb::UpdateStandardResponse {
            standard: Some(to_proto(standard)),
        })
    }

    /// Archives (`archive`) or unarchives the standard `id`.
    async fn set_archived(&self, org: Uuid, id: &str, archive: bool) -> Result<Standard> {
        let id = parse_id("id", id)?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let standard = store::standard::get(&mut tx, org, id, true)
            .await?
            .ok_or_else(|| Error::not_found("standard", id.to_string()))?;
        standard.check_archive_transition(archive)?;
        if !archive && let Some(touchpoint) = &standard.touchpoint {
            attachable_touchpoint(&mut tx, org, &Lookup::Id(touchpoint.id)).await?;
        }
        let standard = store::standard::set_archived(&mut tx, org, id, archive).await?;
        tx.commit().await?;
        Ok(standard)
    }

    async fn service_manual(
        &self,
        request: Request<pb::GetServiceManualRequest>,
    ) -> Result<pb::GetServiceManualResponse> {
        let principal = authorize(&request, Access::Read)?;
        let org = principal.organisation_id;
        let budget = page_budget(&request);
        let request = request.into_inner();
        let mut v = Violations::new();
        let stage = v.check(enum_field("stage", request.stage, stage_from_proto));
        let size = v.check(manual_page_size(request.page_size));
        let (stage, size) = v.finish(|| Some((stage?, size?)))?;
        let query = self.tokens.query(org, &format!("service manual {stage:?}"));
        let from = PageToken::decode(&request.page_token, &query)?
            .map_or(0, |token| token.after.as_u128() as usize);

        let mut tx = store::begin_for(&self.pool, org).await?;
        let organisation = store::organisation::get(&mut tx, org, false)
            .await?
            .ok_or_else(|| Error::not_found("organisation", org.to_string()))?;
        let touchpoints = store::touchpoint::list_active(&mut tx, org).await?;
        let standards = store::standard::list_active(&mut tx, org).await?;
        tx.commit().await?;
        let mut manual = manual::assemble(
            organisation.display_name,
            touchpoints,
            standards,
            chrono::Utc::now(),
        );
        if let Some(stage) = stage {
            manual.keep_stage(stage);
        }
        let parts = manual.page(from, budget, size);
        let next = from + parts.len();
        let next_page_token = if next < manual.parts().len() {
            PageToken {
                after: Uuid::from_u128(next as u128),
            }
            .encode(&query)
        } else {
            String::new()
        };
        let markdown = manual::render_parts(&manual, &parts);
        Ok(pb::GetServiceManualResponse {
            service_manual: Some(manual_to_proto(manual.only(&parts), markdown)),
            next_page_token,
        })
    }
}

#[tonic::async_trait]
impl pb::standard_service_server::StandardService for StandardApi {
    async fn create_standard(
        &self,
        request: Request<pb::CreateStandardRequest>,
    ) -> Result<Response<pb::CreateStandardResponse>, Status> {
        respond(self.create(request).await)
    }

    async fn get_standard(
        &self,
        request: Request<pb::GetStandardRequest>,
    ) -> Result<Response<pb::GetStandardResponse>, Status> {
        respond(self.get(request).await)
    }

    async fn list_standards(
        &self,
        request: Request<pb::ListStandardsRequest>,
    ) -> Result<Response<pb::ListStandardsResponse>, Status> {
        respond(self.list(request).await)
    }

    async fn update_standard(
        &self,
        request: Request<pb::UpdateStandardRequest>,
    ) -> Result<Response<pb::UpdateStandardResponse>, Status> {
        respond(self.update(request).await)
    }

    async fn archive_standard(
        &self,
        request: Request<pb::ArchiveStandardRequest>,
    ) -> Result<Response<pb::ArchiveStandardResponse>, Status> {
        let result = async {
            let principal = authorize(&request, Access::Manage)?;
            let standard = self
                .set_archived(principal.organisation_id, &request.get_ref().id, true)
                .await?;
            Ok(pb::ArchiveStandardResponse {
                standard: Some(to_proto(standard)),
            })
        };
        respond(result.await)
    }

    async fn unarchive_standard(
        &self,
        request: Request<pb::UnarchiveStandardRequest>,
    ) -> Result<Response<pb::UnarchiveStandardResponse>, Status> {
        let result = async {
            let principal = authorize(&request, Access::Manage)?;
            let standard = self
                .set_archived(principal.organisation_id, &request.get_ref().id, false)
                .await?;
            Ok(pb::UnarchiveStandardResponse {
                standard: Some(to_proto(standard)),
            })
        };
        respond(result.await)
    }

    async fn get_service_manual(
        &self,
        request: Request<pb::GetServiceManualRequest>,
    ) -> Result<Response<pb::GetServiceManualResponse>, Status> {
        respond(self.service_manual(request).await)
    }
}

/// The touchpoint a standard is to be attached to: it must exist in the
/// organisation and not be archived.
async fn attachable_touchpoint(
    tx: &mut PgConnection,
    org: Uuid,
    lookup: &Lookup,
) -> Result<Touchpoint> {
    let touchpoint = store::touchpoint::find(tx, org, lookup)
        .await?
        .ok_or_else(|| Error::not_found("touchpoint", lookup.to_string()))?;
    touchpoint.check_active("attaching standards to it")?;
    Ok(touchpoint)
}

pub(crate) fn to_proto(standard: Standard) -> pb::Standard {
    let rule_text = standard.rule.to_string();
    let rule = match standard.rule {
        Rule::Metric {
            field,
            comparison,
            threshold,
        } => pb::standard::Rule::MetricRule(pb::MetricRule {
            field: metric_field_to_proto(field).into(),
            comparison: comparison_to_proto(comparison).into(),
            threshold,
        }),
        Rule::Observed => pb::standard::Rule::ObservedRule(pb::ObservedRule {}),
    };
    let (touchpoint_id, touchpoint_code) = standard
        .touchpoint
        .map(|t| (t.id.to_string(), t.code))
        .unwrap_or_default();
    pb::Standard {
        active: standard.archive_time.is_none(),
        id: standard.id.to_string(),
        code: standard.code,
        title: standard.title,
        touchpoint_id,
        touchpoint_code,
        element: element_to_proto(standard.element).into(),
        severity: severity_to_proto(standard.severity).into(),
        guidance: standard.guidance,
        rule: Some(rule),
        rule_text,
        create_time: Some(timestamp(standard.create_time)),
        update_time: Some(timestamp(standard.update_time)),
        archive_time: standard.archive_time.map(timestamp),
    }
}

/// A manual page's size in touchpoints: 0 for as many as fit.
fn manual_page_size(requested: i32) -> Result<usize, FieldViolation> {
    match requested {
        n if n < 0 => Err(FieldViolation::new(
            "page_size",
            format!("must not be negative, got {n}"),
        )),
        0 => Ok(usize::MAX),
        n => Ok(n as usize),
    }
}

fn manual_to_proto(manual: ServiceManual, markdown: String) -> pb::ServiceManual {
    pb::ServiceManual {
        organisation_display_name: manual.organisation_name,
        organisation_standards: manual
            .organisation_standards
            .into_iter()
            .map(to_proto)
            .collect(),
        stages: manual
            .stages
            .into_iter()
            .map(|stage| pb::ServiceManualStage {
                stage: stage_to_proto(stage.stage).into(),
                touchpoints: stage
                    .touchpoints
                    .into_iter()
                    .map(|entry| pb::ServiceManualTouchpoint {
                        touchpoint: Some(touchpoint_service::to_proto(entry.touchpoint)),
                        standards: entry.standards.into_iter().map(to_proto).collect(),
                    })
                    .collect(),
            })
            .collect(),
        markdown,
        generate_time: Some(timestamp(manual.generate_time)),
    }
}

/// Reads the touchpoint a request names: by id, by code, or neither (every
/// touchpoint of the organisation).
fn touchpoint_lookup(s: &pb::Standard) -> Result<Option<Lookup>, FieldViolation> {
    parse_lookup(
        "standard.touchpoint_id",
        &s.touchpoint_id,
        "standard.touchpoint_code",
        &s.touchpoint_code,
    )
}

/// Reads the rule oneof, reporting every problem of a metric rule.
fn rule(s: &pb::Standard) -> Result<Rule, Vec<FieldViolation>> {
    match &s.rule {
        None => Err(vec![FieldViolation::new(
            "standard.rule",
            "is required: set metric_rule or observed_rule",
        )]),
        Some(pb::standard::Rule::ObservedRule(_)) => Ok(Rule::Observed),
        Some(pb::standard::Rule::MetricRule(metric)) => {
            let mut v = Violations::new();
            let field = v.check(required_enum(
                "standard.metric_rule.field",
                metric.field,
                metric_field_from_proto,
            ));
            let comparison = v.check(required_enum(
                "standard.metric_rule.comparison",
                metric.comparison,
                comparison_from_proto,
            ));
            let rule = match (field, comparison) {
                (Some(field), Some(comparison)) => v.check(Rule::metric(
                    field,
                    comparison,
                    metric.threshold,
                    "standard.metric_rule.threshold",
                )),
                _ => None,
            };
            v.finish(|| rule)
        }
    }
}

/// Checks a standard to create; every problem is reported at once.
fn new_standard(standard: Option<pb::Standard>) -> Result<NewStandard, Vec<FieldViolation>> {
    let Some(s) = standard else {
        return Err(vec![FieldViolation::new("standard", "is required")]);
    };
    let mut v = Violations::new();
    let code = v.check(parse_code("standard.code", &s.code));
    let title = v.check(required_line("standard.title", &s.title, TITLE_MAX_CHARS));
    let touchpoint = v.check(touchpoint_lookup(&s));
    let element = v.check(required_enum(
        "standard.element",
        s.element,
        element_from_proto,
    ));
    let severity = v.check(required_enum(
        "standard.severity",
        s.severity,
        severity_from_proto,
    ));
    let guidance = v.check(optional_text(
        "standard.guidance",
        &s.guidance,
        GUIDANCE_MAX_CHARS,
    ));
    let rule = match rule(&s) {
        Ok(rule) => Some(rule),
        Err(violations) => {
            violations
                .into_iter()
                .for_each(|violation| v.push(violation));
            None
        }
    };
    v.finish(|| {
        Some(NewStandard {
            code: code?,
            title: title?,
            touchpoint: touchpoint?,
            element: element?,
            severity: severity?,
            guidance: guidance?,
            rule: rule?,
        })
    })
}

/// Checks an update: the mask and the new values of the fields it names.
fn changes(
    s: &pb::Standard,
    mask: Option<FieldMask>,
) -> Result<StandardChanges, Vec<FieldViolation>> {
    let given = [
        !s.title.is_empty(),
        !s.touchpoint_id.is_empty(),
        !s.touchpoint_code.is_empty(),
        s.element != 0,
        s.severity != 0,
        !s.guidance.is_empty(),
        matches!(s.rule, Some(pb::standard::Rule::MetricRule(_))),
        matches!(s.rule, Some(pb::standard::Rule::ObservedRule(_))),
    ];
    let paths = MASK.paths(mask, &given)?;
    let mut v = Violations::new();
    let mut changes = StandardChanges::default();
    let (mut touchpoint_read, mut rule_read) = (false, false);
    for path in paths {
        match path {
            "title" => {
                changes.title = v.check(required_line("standard.title", &s.title, TITLE_MAX_CHARS))
            }
            // Both names of the touchpoint read the same pair of fields.
            "touchpoint_id" | "touchpoint_code" if !touchpoint_read => {
                touchpoint_read = true;
                changes.touchpoint = v.check(touchpoint_lookup(s));
            }
            "element" => {
                changes.element = v.check(required_enum(
                    "standard.element",
                    s.element,
                    element_from_proto,
                ))
            }
            "severity" => {
                changes.severity = v.check(required_enum(
                    "standard.severity",
                    s.severity,
                    severity_from_proto,
                ))
            }
            "guidance" => {
                changes.guidance = v.check(optional_text(
                    "standard.guidance",
                    &s.guidance,
                    GUIDANCE_MAX_CHARS,
                ))
            }
            "metric_rule" | "observed_rule" if !rule_read => {
                rule_read = true;
                match rule(s) {
                    Ok(rule) => changes.rule = Some(rule),
                    Err(violations) => violations.into_iter().for_each(|e| v.push(e)),
                }
            }
            _ => {}
        }
    }
    v.finish(|| Some(changes))
}

/// Checks a list request's filters.
/// Checks a list request's filters; the touchpoint is returned apart, to be
/// found.
fn filter(
    request: &pb::ListStandardsRequest,
) -> Result<(StandardFilter, Option<Lookup>), FieldViolation> {
    let touchpoint = touchpoint_filter(
        "touchpoint",
        &request.touchpoint_id,
        &request.touchpoint_code,
    )?;
    if touchpoint.is_some() && request.organisation_wide {
        return Err(FieldViolation::new(
            "organisation_wide",
            "cannot be combined with touchpoint_id or touchpoint_code",
        ));
    }
    let filter = StandardFilter {
        touchpoint_id: None,
        organisation_wide: request.organisation_wide,
        element: enum_field("element", request.element, element_from_proto)?,
        active: request.active,
    };
    Ok((filter, touchpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> pb::Standard {
        pb::Standard {
            code: "greet-15s".into(),
            title: "Greet within 15 seconds".into(),
            touchpoint_code: "reception-desk".into(),
            element: pb::Element::Humanware.into(),
            severity: pb::Severity::Critical.into(),
            rule: Some(pb::standard::Rule::MetricRule(pb::MetricRule {
                field: pb::MetricField::FirstResponseSeconds.into(),
                comparison: pb::Comparison::LessOrEqual.into(),
                threshold: 15.0,
            })),
            ..Default::default()
        }
    }

    fn fields(violations: &[FieldViolation]) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn a_valid_standard_is_read_with_its_rule_and_touchpoint() {
        let new = new_standard(Some(valid())).unwrap();
        assert_eq!(new.touchpoint, Some(Lookup::Code("reception-desk".into())));
        assert_eq!(new.rule.to_string(), "first_response_seconds <= 15");
    }

    #[test]
    fn every_bad_field_of_a_new_standard_is_reported() {
        let bad = pb::Standard {
            code: "bad code".into(),
            touchpoint_id: "x".into(),
            touchpoint_code: "desk".into(),
            element: 9,
            rule: Some(pb::standard::Rule::MetricRule(pb::MetricRule {
                field: 99,
                comparison: 0,
                threshold: 1.0,
            })),
            ..Default::default()
        };
        let violations = new_standard(Some(bad)).unwrap_err();
        assert_eq!(
            fields(&violations),
            [
                "standard.code",
                "standard.title",
                "standard.touchpoint_id",
                "standard.element",
                "standard.severity",
                "standard.metric_rule.field",
                "standard.metric_rule.comparison"
            ]
        );
    }

    #[test]
    fn a_rule_is_required_and_its_threshold_is_checked() {
        let mut s = valid();
        s.rule = None;
        assert_eq!(
            fields(&new_standard(Some(s)).unwrap_err()),
            ["standard.rule"]
        );
        let mut s = valid();
        s.rule = Some(pb::standard::Rule::MetricRule(pb::MetricRule {
            field: pb::MetricField::Satisfaction.into(),
            comparison: pb::Comparison::GreaterOrEqual.into(),
            threshold: 6.0,
        }));
        assert_eq!(
            fields(&new_standard(Some(s)).unwrap_err()),
            ["standard.metric_rule.threshold"]
        );
    }

    #[test]
    fn an_update_of_the_touchpoint_to_nothing_makes_the_standard_organisation_wide() {
        let s = pb::Standard {
            id: Uuid::now_v7().to_string(),
            ..Default::default()
        };
        let mask = FieldMask {
            paths: vec!["touchpoint_id".into()],
        };
        let changes = changes(&s, Some(mask)).unwrap();
        assert_eq!(changes.touchpoint, Some(None));
        assert_eq!(changes.title, None);
    }

    #[test]
    fn a_mask_naming_the_rule_replaces_it_from_the_oneof() {
        let mut s = valid();
        s.rule = Some(pb::standard::Rule::ObservedRule(pb::ObservedRule {}));
        let mask = FieldMask {
            paths: vec!["metric_rule".into(), "observed_rule".into()],
        };
        let changes = changes(&s, Some(mask)).unwrap();
        assert_eq!(changes.rule, Some(Rule::Observed));
        let mask = FieldMask {
            paths: vec!["code".into()],
        };
        assert!(super::changes(&s, Some(mask)).is_err());
    }
}
