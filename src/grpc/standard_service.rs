//! `verdad.v1.StandardService`.

use std::sync::Arc;

use prost_types::FieldMask;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    caller,
    convert::{
        comparison_from_proto, comparison_to_proto, element_from_proto, element_to_proto,
        metric_field_from_proto, metric_field_to_proto, severity_from_proto, severity_to_proto,
        stage_from_proto, stage_to_proto,
    },
    enum_field,
    field_mask::MaskRules,
    item_bytes, page_budget, parse_id, required_enum, required_lookup, timestamp,
    touchpoint_filter, touchpoint_service,
};
use crate::{
    app::{
        App, ListRequest,
        standards::{ManualRequest, StandardsFilter},
    },
    domain::{
        code::{Lookup, parse_code, parse_lookup},
        manual::ServiceManual,
        paging,
        standard::{
            GUIDANCE_MAX_CHARS, NewStandard, Rule, Standard, StandardChanges, StandardFilter,
            TITLE_MAX_CHARS,
        },
        text::{optional_text, required_line},
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
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
    app: Arc<App>,
}

impl StandardApi {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl pb::standard_service_server::StandardService for StandardApi {
    async fn create_standard(
        &self,
        request: Request<pb::CreateStandardRequest>,
    ) -> Result<Response<pb::CreateStandardResponse>, Status> {
        let caller = caller(&request)?;
        let new = new_standard(request.into_inner().standard).map_err(Error::from);
        let standard = self.app.create_standard(&caller, new).await?;
        Ok(Response::new(pb::CreateStandardResponse {
            standard: Some(to_proto(standard)),
        }))
    }

    async fn get_standard(
        &self,
        request: Request<pb::GetStandardRequest>,
    ) -> Result<Response<pb::GetStandardResponse>, Status> {
        let caller = caller(&request)?;
        let lookup = required_lookup(&request.get_ref().id, &request.get_ref().code);
        let standard = self
            .app
            .get_standard(&caller, lookup.map_err(Error::from))
            .await?;
        Ok(Response::new(pb::GetStandardResponse {
            standard: Some(to_proto(standard)),
        }))
    }

    async fn list_standards(
        &self,
        request: Request<pb::ListStandardsRequest>,
    ) -> Result<Response<pb::ListStandardsResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let listing = self
            .app
            .list_standards(&caller, list_request(request.into_inner()))
            .await?;
        let (standards, next_page_token) = listing.page(budget, to_proto, item_bytes);
        Ok(Response::new(pb::ListStandardsResponse {
            standards,
            next_page_token,
        }))
    }

    async fn update_standard(
        &self,
        request: Request<pb::UpdateStandardRequest>,
    ) -> Result<Response<pb::UpdateStandardResponse>, Status> {
        let caller = caller(&request)?;
        let standard = self
            .app
            .update_standard(&caller, update(request.into_inner()))
            .await?;
        Ok(Response::new(pb::UpdateStandardResponse {
            standard: Some(to_proto(standard)),
        }))
    }

    async fn archive_standard(
        &self,
        request: Request<pb::ArchiveStandardRequest>,
    ) -> Result<Response<pb::ArchiveStandardResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        let standard = self.app.archive_standard(&caller, id).await?;
        Ok(Response::new(pb::ArchiveStandardResponse {
            standard: Some(to_proto(standard)),
        }))
    }

    async fn unarchive_standard(
        &self,
        request: Request<pb::UnarchiveStandardRequest>,
    ) -> Result<Response<pb::UnarchiveStandardResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        let standard = self.app.unarchive_standard(&caller, id).await?;
        Ok(Response::new(pb::UnarchiveStandardResponse {
            standard: Some(to_proto(standard)),
        }))
    }

    async fn get_service_manual(
        &self,
        request: Request<pb::GetServiceManualRequest>,
    ) -> Result<Response<pb::GetServiceManualResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let manual_request = manual_request(request.into_inner());
        let page = self
            .app
            .get_service_manual(&caller, manual_request, budget)
            .await?;
        Ok(Response::new(pb::GetServiceManualResponse {
            service_manual: Some(manual_to_proto(page.manual, page.markdown)),
            next_page_token: page.next_page_token,
        }))
    }
}

/// Reads a list request: its page size and filters, every problem at once.
fn list_request(request: pb::ListStandardsRequest) -> Result<ListRequest<StandardsFilter>> {
    let mut violations = Violations::new();
    let size = violations.check(paging::page_size(request.page_size));
    let filter = violations.check(filter(&request));
    let (size, (filter, touchpoint)) = violations.finish(|| Some((size?, filter?)))?;
    Ok(ListRequest {
        size,
        filter: StandardsFilter { filter, touchpoint },
        page_token: request.page_token,
    })
}

/// Reads an update: the standard's id and the changes its mask names.
fn update(request: pb::UpdateStandardRequest) -> Result<(Uuid, StandardChanges)> {
    let Some(fields) = request.standard else {
        return Err(Error::invalid("standard", "is required"));
    };
    let id = parse_id("standard.id", &fields.id)?;
    Ok((id, changes(&fields, request.update_mask)?))
}

/// Reads a service manual request.
fn manual_request(request: pb::GetServiceManualRequest) -> Result<ManualRequest> {
    let mut v = Violations::new();
    let stage = v.check(enum_field("stage", request.stage, stage_from_proto));
    let size = v.check(manual_page_size(request.page_size));
    let (stage, size) = v.finish(|| Some((stage?, size?)))?;
    Ok(ManualRequest {
        stage,
        size,
        page_token: request.page_token,
    })
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
