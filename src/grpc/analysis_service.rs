//! `verdad.v1.AnalysisService`.

use std::{pin::Pin, sync::Arc};

use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use super::{
    analysis_answers::{
        breakdown_to_proto, compliance_to_proto, cycle_to_proto, impressions_to_proto,
        matrix_to_proto, outcomes_to_proto, range_of, recovery_to_proto, scorecard_to_proto,
        trend_to_proto,
    },
    caller,
    convert::{
        channel_from_proto, granularity_from_proto, log_format_from_proto, stage_from_proto,
        trend_figure_from_proto,
    },
    enum_field, from_timestamp, page_budget, parse_id, required_enum,
};
use crate::{
    app::{
        App,
        analyses::{CycleRequest, DiagramRequest, LogRequest, ScopeRequest, TrendRequest},
    },
    domain::{
        analysis::{
            Granularity, LogFormat, MAX_SCOPE_TOUCHPOINTS, max_pairs, max_variants, min_pair_count,
        },
        code::{Lookup, parse_code},
        cycle_map, diagram,
        recovery::parse_acknowledge_within,
        violation::{FieldViolation, Violations},
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
};

pub struct AnalysisApi {
    app: Arc<App>,
}

impl AnalysisApi {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

type LogStream = Pin<Box<dyn Stream<Item = Result<pb::ExportEventLogResponse, Status>> + Send>>;

/// Reads the scope of a request, every problem at once.
fn scope_of(scope: Option<&pb::AnalysisScope>) -> Result<ScopeRequest> {
    Ok(checked_scope(scope)?)
}

#[tonic::async_trait]
impl pb::analysis_service_server::AnalysisService for AnalysisApi {
    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Result<Response<pb::GetScorecardResponse>, Status> {
        let caller = caller(&request)?;
        let scorecard = self
            .app
            .get_scorecard(&caller, scope_of(request.get_ref().scope.as_ref()));
        Ok(Response::new(scorecard_to_proto(scorecard.await?)))
    }

    async fn get_mot_cycle(
        &self,
        request: Request<pb::GetMotCycleRequest>,
    ) -> Result<Response<pb::GetMotCycleResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let cycle = self
            .app
            .get_mot_cycle(&caller, cycle_request(request.get_ref()))
            .await?;
        Ok(Response::new(cycle_to_proto(cycle, budget)))
    }

    async fn get_mot_cycle_diagram(
        &self,
        request: Request<pb::GetMotCycleDiagramRequest>,
    ) -> Result<Response<pb::GetMotCycleDiagramResponse>, Status> {
        let caller = caller(&request)?;
        let drawn = self
            .app
            .get_mot_cycle_diagram(&caller, diagram_request(request.get_ref()))
            .await?;
        let (start_time, end_time) = range_of(&drawn.scope);
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(Response::new(pb::GetMotCycleDiagramResponse {
            start_time,
            end_time,
            no_data: drawn.no_data,
            media_type: drawn.format.media_type().to_owned(),
            content: drawn.content,
            touchpoints_drawn: count(drawn.touchpoints_drawn),
            pairs_drawn: count(drawn.pairs_drawn),
            pairs_omitted: i64::try_from(drawn.pairs_omitted).unwrap_or(i64::MAX),
        }))
    }

    async fn get_journey_outcomes(
        &self,
        request: Request<pb::GetJourneyOutcomesRequest>,
    ) -> Result<Response<pb::GetJourneyOutcomesResponse>, Status> {
        let caller = caller(&request)?;
        let scope = scope_of(request.get_ref().scope.as_ref());
        let outcomes = self.app.get_journey_outcomes(&caller, scope).await?;
        Ok(Response::new(outcomes_to_proto(outcomes)))
    }

    async fn get_first_impressions(
        &self,
        request: Request<pb::GetFirstImpressionsRequest>,
    ) -> Result<Response<pb::GetFirstImpressionsResponse>, Status> {
        let caller = caller(&request)?;
        let scope = scope_of(request.get_ref().scope.as_ref());
        let impressions = self.app.get_first_impressions(&caller, scope).await?;
        Ok(Response::new(impressions_to_proto(impressions)))
    }

    async fn get_priority_matrix(
        &self,
        request: Request<pb::GetPriorityMatrixRequest>,
    ) -> Result<Response<pb::GetPriorityMatrixResponse>, Status> {
        let caller = caller(&request)?;
        let scope = scope_of(request.get_ref().scope.as_ref());
        let matrix = self.app.get_priority_matrix(&caller, scope).await?;
        Ok(Response::new(matrix_to_proto(matrix)))
    }

    type ExportEventLogStream = LogStream;

    async fn export_event_log(
        &self,
        request: Request<pb::ExportEventLogRequest>,
    ) -> Result<Response<Self::ExportEventLogStream>, Status> {
        let caller = caller(&request)?;
        let chunks = (self.app)
            .export_event_log(&caller, log_request(request.get_ref()))
            .await?;
        let stream = ReceiverStream::new(chunks).map(|chunk| match chunk {
            Ok(chunk) => Ok(pb::ExportEventLogResponse { chunk }),
            Err(error) => Err(Status::from(error)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_guideline_breakdown(
        &self,
        request: Request<pb::GetGuidelineBreakdownRequest>,
    ) -> Result<Response<pb::GetGuidelineBreakdownResponse>, Status> {
        let caller = caller(&request)?;
        let scope = scope_of(request.get_ref().scope.as_ref());
        let breakdown = self.app.get_guideline_breakdown(&caller, scope).await?;
        Ok(Response::new(breakdown_to_proto(breakdown)))
    }

    async fn get_trend(
        &self,
        request: Request<pb::GetTrendRequest>,
    ) -> Result<Response<pb::GetTrendResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let trend_request = trend_request(request.get_ref());
        let trend = self.app.get_trend(&caller, trend_request, budget).await?;
        Ok(Response::new(trend_to_proto(trend)))
    }

    async fn get_compliance_report(
        &self,
        request: Request<pb::GetComplianceReportRequest>,
    ) -> Result<Response<pb::GetComplianceReportResponse>, Status> {
        let caller = caller(&request)?;
        let scope = scope_of(request.get_ref().scope.as_ref());
        let report = self.app.get_compliance_report(&caller, scope).await?;
        Ok(Response::new(compliance_to_proto(report)))
    }

    async fn get_recovery_performance(
        &self,
        request: Request<pb::GetRecoveryPerformanceRequest>,
    ) -> Result<Response<pb::GetRecoveryPerformanceResponse>, Status> {
        let caller = caller(&request)?;
        let scope = scope_of(request.get_ref().scope.as_ref());
        let acknowledge_within = parse_acknowledge_within(
            "acknowledge_within",
            (request.get_ref().acknowledge_within.as_ref()).map(|d| (d.seconds, d.nanos)),
        )
        .map_err(Error::from);
        let (scope, figures) = (self.app)
            .get_recovery_performance(&caller, scope, acknowledge_within)
            .await?;
        Ok(Response::new(recovery_to_proto(&scope, figures)))
    }
}

/// Reads a MOT cycle request: its scope and limits, every problem at once.
fn cycle_request(request: &pb::GetMotCycleRequest) -> Result<CycleRequest> {
    let mut v = Violations::new();
    let scope = match checked_scope(request.scope.as_ref()) {
        Ok(checked) => Some(checked),
        Err(violations) => {
            violations.into_iter().for_each(|e| v.push(e));
            None
        }
    };
    let limit = v.check(max_variants(request.max_variants));
    let most_pairs = v.check(max_pairs(request.max_pairs));
    let least_count = v.check(min_pair_count(request.min_pair_count));
    let request = v.finish(|| {
        Some(CycleRequest {
            scope: scope?,
            max_variants: limit?,
            max_pairs: most_pairs?,
            min_pair_count: least_count?,
        })
    })?;
    Ok(request)
}

/// Reads a diagram request: its scope, format, weight and pruning, every
/// problem at once.
fn diagram_request(request: &pb::GetMotCycleDiagramRequest) -> Result<DiagramRequest> {
    let mut v = Violations::new();
    let scope = match checked_scope(request.scope.as_ref()) {
        Ok(checked) => Some(checked),
        Err(violations) => {
            violations.into_iter().for_each(|e| v.push(e));
            None
        }
    };
    let format = v.check(required_enum("format", request.format, |f| match f {
        pb::DiagramFormat::Unspecified => None,
        pb::DiagramFormat::Dot => Some(cycle_map::Format::Dot),
        pb::DiagramFormat::Svg => Some(cycle_map::Format::Svg),
        pb::DiagramFormat::Mermaid => Some(cycle_map::Format::Mermaid),
    }));
    let weight = v.check(
        enum_field("weight", request.weight, |w| match w {
            pb::DiagramWeight::Unspecified | pb::DiagramWeight::Count => {
                Some(diagram::Weight::Count)
            }
            pb::DiagramWeight::MedianTime => Some(diagram::Weight::MedianTime),
        })
        .map(|w| w.unwrap_or(diagram::Weight::Count)),
    );
    let min_share = v.check(cycle_map::parse_min_share(
        "min_pair_share",
        request.min_pair_share,
    ));
    let max_touchpoints = v.check(cycle_map::parse_max_touchpoints(
        "max_touchpoints",
        request.max_touchpoints,
    ));
    let request = v.finish(|| {
        Some(DiagramRequest {
            scope: scope?,
            format: format?,
            weight: weight?,
            min_share: min_share?,
            max_touchpoints: max_touchpoints?,
        })
    })?;
    Ok(request)
}

/// Reads a trend request: its figure and granularity, then its scope.
fn trend_request(request: &pb::GetTrendRequest) -> Result<TrendRequest> {
    let mut v = Violations::new();
    let figure = v.check(required_enum(
        "figure",
        request.figure,
        trend_figure_from_proto,
    ));
    let granularity = v.check(
        enum_field("granularity", request.granularity, granularity_from_proto)
            .map(|g| g.unwrap_or(Granularity::Day)),
    );
    let (figure, granularity) = v.finish(|| Some((figure?, granularity?)))?;
    Ok(TrendRequest {
        scope: checked_scope(request.scope.as_ref())?,
        figure,
        granularity,
        per_touchpoint: request.per_touchpoint,
    })
}

/// Reads an export request: its format, then its scope.
fn log_request(request: &pb::ExportEventLogRequest) -> Result<LogRequest> {
    let format =
        enum_field("format", request.format, log_format_from_proto)?.unwrap_or(LogFormat::Csv);
    Ok(LogRequest {
        scope: checked_scope(request.scope.as_ref())?,
        format,
    })
}

fn checked_scope(scope: Option<&pb::AnalysisScope>) -> Result<ScopeRequest, Vec<FieldViolation>> {
    let default = pb::AnalysisScope::default();
    let scope = scope.unwrap_or(&default);
    let mut v = Violations::new();
    let start = v.check(from_timestamp(
        "scope.start_time",
        scope.start_time.as_ref(),
    ));
    let end = v.check(from_timestamp("scope.end_time", scope.end_time.as_ref()));
    let named = scope.touchpoint_ids.len() + scope.touchpoint_codes.len();
    let touchpoints = if named > MAX_SCOPE_TOUCHPOINTS {
        let field = if scope.touchpoint_codes.is_empty() {
            "scope.touchpoint_ids"
        } else {
            "scope.touchpoint_codes"
        };
        v.push(FieldViolation::new(
            field,
            format!(
                "touchpoint_ids and touchpoint_codes must name at most \
                 {MAX_SCOPE_TOUCHPOINTS} touchpoints together, got {named}"
            ),
        ));
        None
    } else {
        let ids = scope.touchpoint_ids.iter().enumerate().map(|(i, id)| {
            v.check(parse_id(&format!("scope.touchpoint_ids[{i}]"), id).map(Lookup::Id))
        });
        let ids: Vec<Option<Lookup>> = ids.collect();
        let codes = scope.touchpoint_codes.iter().enumerate().map(|(i, code)| {
            v.check(parse_code(&format!("scope.touchpoint_codes[{i}]"), code).map(Lookup::Code))
        });
        let codes: Vec<Option<Lookup>> = codes.collect();
        ids.into_iter()
            .chain(codes)
            .collect::<Option<Vec<Lookup>>>()
    };
    let stage = v.check(enum_field("scope.stage", scope.stage, stage_from_proto));
    let channel = v.check(enum_field(
        "scope.channel",
        scope.channel,
        channel_from_proto,
    ));
    v.finish(|| {
        Some(ScopeRequest {
            start: start?,
            end: end?,
            touchpoints: touchpoints?,
            stage: stage?,
            channel: channel?,
        })
    })
}
