//! The answers of `verdad.v1.AnalysisService`: the core's figures shaped
//! into protobuf, cut to fit one message where they could outgrow it.

use super::{
    convert::{
        element_to_proto, granularity_to_proto, quadrant_to_proto, severity_to_proto,
        situation_to_proto, trend_figure_to_proto,
    },
    fitting, item_bytes, timestamp,
};
use crate::{
    app::analyses::{
        ComplianceReport, FirstImpressions, GuidelineBreakdown, JourneyOutcomes, MotCycle,
        PriorityMatrix, Scorecard, TouchpointCount, Trend,
    },
    domain::{
        analysis::{Distribution, Nps, Rate, Scope, ScorecardFigures},
        cycle_fold::Spread,
        touchpoint::Touchpoint,
    },
    proto::verdad::v1 as pb,
    store::analysis::{JourneyGroupFigures, RecoveryFigures},
};

/// The start and end of the range an answer covers.
pub(super) fn range_of(
    scope: &Scope,
) -> (
    Option<prost_types::Timestamp>,
    Option<prost_types::Timestamp>,
) {
    (
        Some(timestamp(scope.start_time)),
        Some(timestamp(scope.end_time)),
    )
}

pub(super) fn scorecard_to_proto(scorecard: Scorecard) -> pb::GetScorecardResponse {
    let (start_time, end_time) = range_of(&scorecard.scope);
    pb::GetScorecardResponse {
        start_time,
        end_time,
        no_data: scorecard.total.encounters == 0,
        touchpoints: (scorecard.touchpoints.iter())
            .map(|(t, figures)| scorecard_row(Some(t), figures))
            .collect(),
        total: Some(scorecard_row(None, &scorecard.total)),
    }
}

fn counts_to_proto(counts: Vec<TouchpointCount>) -> Vec<pb::TouchpointCount> {
    counts
        .into_iter()
        .map(|c| pb::TouchpointCount {
            touchpoint_id: c.touchpoint_id.to_string(),
            touchpoint_code: c.touchpoint_code,
            journeys: c.journeys,
            share: Some(rate(c.share)),
        })
        .collect()
}

/// The MOT cycle, with the most frequent pairs and variants that fit in
/// `budget` bytes: variants take up to half of what is left, pairs the rest.
pub(super) fn cycle_to_proto(cycle: MotCycle, budget: usize) -> pb::GetMotCycleResponse {
    let (start_time, end_time) = range_of(&cycle.scope);
    let pair = |p: &crate::store::analysis::Pair| pb::TouchpointPair {
        from_touchpoint_id: p.from.to_string(),
        from_touchpoint_code: cycle.code(&p.from),
        to_touchpoint_id: p.to.to_string(),
        to_touchpoint_code: cycle.code(&p.to),
        count: p.count,
        mean_seconds: p.mean_seconds,
        median_seconds: p.median_seconds,
        median_approximate: p.median_approximate,
    };
    let pairs: Vec<pb::TouchpointPair> = cycle.pairs.iter().map(pair).collect();
    let bottlenecks = (cycle.bottlenecks.iter())
        .map(|(p, total)| pb::Bottleneck {
            pair: Some(pair(p)),
            total_seconds: *total,
        })
        .collect();
    let variants: Vec<pb::PathVariant> = (cycle.variants.into_iter())
        .map(|(touchpoint_codes, journeys, share)| pb::PathVariant {
            touchpoint_codes,
            journeys,
            share: Some(rate(share)),
        })
        .collect();
    let mut answer = pb::GetMotCycleResponse {
        start_time,
        end_time,
        no_data: cycle.encounters == 0,
        journeys: cycle.journeys,
        encounters: cycle.encounters,
        pairs: Vec::new(),
        transitions: cycle.transitions,
        start_touchpoints: counts_to_proto(cycle.starts),
        end_touchpoints: counts_to_proto(cycle.ends),
        variant_count: cycle.variant_count,
        variants: Vec::new(),
        conformance: Some(pb::Conformance {
            designed_order: Some(rate(cycle.designed_order)),
            skipped_key_touchpoints: counts_to_proto(cycle.skipped_key_touchpoints),
            journeys_with_loops: Some(rate(cycle.journeys_with_loops)),
            revisited_touchpoints: counts_to_proto(cycle.revisited_touchpoints),
        }),
        pairs_omitted: 0,
        bottlenecks,
        throughput: cycle
            .journey_duration
            .zip(cycle.encounters_per_journey)
            .map(|(duration, lengths)| pb::JourneyThroughput {
                duration_seconds: Some(spread(duration)),
                encounters_per_journey: Some(spread(lengths)),
            }),
    };
    let mut room = budget.saturating_sub(prost::Message::encoded_len(&answer));
    answer.variants = fitting(variants, room / 2);
    room = room.saturating_sub(answer.variants.iter().map(item_bytes).sum());
    answer.pairs = fitting(pairs, room);
    answer.pairs_omitted = (cycle.all_pairs - answer.pairs.len()) as i64;
    answer
}

fn spread(spread: Spread) -> pb::Spread {
    pb::Spread {
        p50: spread.p50,
        p90: spread.p90,
        mean: spread.mean,
        max: spread.max,
    }
}

pub(super) fn outcomes_to_proto(outcomes: JourneyOutcomes) -> pb::GetJourneyOutcomesResponse {
    let (start_time, end_time) = range_of(&outcomes.scope);
    pb::GetJourneyOutcomesResponse {
        start_time,
        end_time,
        no_data: outcomes.journeys == 0,
        journeys: outcomes.journeys,
        judged_journeys: outcomes.judged,
        perfect_share: Some(rate(Rate::new(outcomes.perfect.journeys, outcomes.judged))),
        perfect: Some(journey_group(&outcomes.perfect)),
        flawed: Some(journey_group(&outcomes.flawed)),
        mean_score: outcomes.mean_score,
        single_failure_journeys: outcomes.single_failure_journeys,
        single_failure_touchpoints: counts_to_proto(outcomes.single_failure_touchpoints),
    }
}

pub(super) fn impressions_to_proto(f: FirstImpressions) -> pb::GetFirstImpressionsResponse {
    let (start_time, end_time) = range_of(&f.scope);
    pb::GetFirstImpressionsResponse {
        start_time,
        end_time,
        no_data: f.journeys == 0,
        journeys: f.journeys,
        window: Some(prost_types::Duration {
            seconds: f.window_seconds,
            nanos: 0,
        }),
        first_response_seconds: Some(distribution(f.first_response)),
        buckets: (f.buckets.into_iter())
            .map(
                |(min_seconds, max_seconds, journeys, share)| pb::FirstResponseBucket {
                    min_seconds,
                    max_seconds,
                    journeys,
                    share: Some(rate(share)),
                },
            )
            .collect(),
        greeted_within_window: Some(rate(f.greeted_within_window)),
        touchpoints_in_window: counts_to_proto(f.touchpoints_in_window),
    }
}

pub(super) fn matrix_to_proto(matrix: PriorityMatrix) -> pb::GetPriorityMatrixResponse {
    let (start_time, end_time) = range_of(&matrix.scope);
    pb::GetPriorityMatrixResponse {
        start_time,
        end_time,
        no_data: matrix.rows.is_empty(),
        importance_split: matrix.splits.map(|s| s.0),
        performance_split: matrix.splits.map(|s| s.1),
        touchpoints: (matrix.rows.into_iter())
            .map(|row| pb::PriorityRow {
                touchpoint_id: row.touchpoint.id.to_string(),
                touchpoint_code: row.touchpoint.code,
                display_name: row.touchpoint.display_name,
                performance: row.figures.mean_satisfaction,
                rated: row.figures.rated,
                importance: row.importance,
                pairs: row.pairs,
                quadrant: row
                    .quadrant
                    .map_or(pb::Quadrant::Unspecified, quadrant_to_proto)
                    .into(),
            })
            .collect(),
    }
}

pub(super) fn breakdown_to_proto(
    breakdown: GuidelineBreakdown,
) -> pb::GetGuidelineBreakdownResponse {
    let (start_time, end_time) = range_of(&breakdown.scope);
    let situations: Vec<pb::GuidelineRow> = (breakdown.situations.into_iter())
        .map(|(situation, f)| pb::GuidelineRow {
            situation: situation
                .map_or(pb::Situation::Unspecified, situation_to_proto)
                .into(),
            encounters: f.encounters,
            failure_rate: Some(rate(Rate::new(f.failed, f.encounters))),
            mean_satisfaction: f.mean_satisfaction,
            csat: Some(rate(Rate::new(f.satisfied, f.rated))),
        })
        .collect();
    pb::GetGuidelineBreakdownResponse {
        start_time,
        end_time,
        no_data: situations.iter().all(|s| s.encounters == 0),
        situations,
    }
}

pub(super) fn trend_to_proto(trend: Trend) -> pb::GetTrendResponse {
    let (start_time, end_time) = range_of(&trend.scope);
    let starts = &trend.bucket_starts;
    let series = (trend.series.into_iter())
        .map(|(touchpoint, points)| pb::TrendSeries {
            touchpoint_id: (touchpoint.as_ref())
                .map(|t| t.id.to_string())
                .unwrap_or_default(),
            touchpoint_code: touchpoint.map(|t| t.code).unwrap_or_default(),
            points: (starts.iter().zip(points))
                .map(|(start, (value, denominator))| pb::TrendPoint {
                    bucket_start: Some(timestamp(*start)),
                    value,
                    denominator,
                })
                .collect(),
        })
        .collect();
    pb::GetTrendResponse {
        start_time,
        end_time,
        no_data: trend.no_data,
        figure: trend_figure_to_proto(trend.figure).into(),
        granularity: granularity_to_proto(trend.granularity).into(),
        time_zone: trend.time_zone,
        series,
    }
}

pub(super) fn compliance_to_proto(report: ComplianceReport) -> pb::GetComplianceReportResponse {
    let (start_time, end_time) = range_of(&report.scope);
    let standards: Vec<pb::ComplianceRow> = (report.standards.into_iter())
        .map(|row| pb::ComplianceRow {
            standard_id: row.standard_id.to_string(),
            standard_code: row.code,
            element: element_to_proto(row.element).into(),
            evaluated: row.met + row.violated,
            met: row.met,
            violated: row.violated,
            compliance: Some(rate(Rate::new(row.met, row.met + row.violated))),
            severity: severity_to_proto(row.severity).into(),
        })
        .collect();
    pb::GetComplianceReportResponse {
        start_time,
        end_time,
        no_data: standards.is_empty(),
        standards,
        elements: (report.elements.into_iter())
            .map(|e| pb::ComplianceRow {
                element: element_to_proto(e.element).into(),
                evaluated: e.met + e.violated,
                met: e.met,
                violated: e.violated,
                compliance: Some(rate(Rate::new(e.met, e.met + e.violated))),
                ..Default::default()
            })
            .collect(),
    }
}

pub(super) fn recovery_to_proto(
    scope: &Scope,
    f: RecoveryFigures,
) -> pb::GetRecoveryPerformanceResponse {
    let (start_time, end_time) = range_of(scope);
    pb::GetRecoveryPerformanceResponse {
        start_time,
        end_time,
        no_data: f.opened == 0,
        opened: f.opened,
        resolved: Some(rate(Rate::new(f.resolved, f.opened))),
        resolved_within_deadline: Some(rate(Rate::new(f.resolved_in_time, f.opened))),
        seconds_to_resolve: Some(distribution(f.seconds_to_resolve)),
        follow_ups: f.follow_ups,
        mean_original_satisfaction: f.mean_original,
        mean_follow_up_satisfaction: f.mean_follow_up,
        improved: Some(rate(Rate::new(f.improved, f.follow_ups))),
        acknowledged_within: Some(rate(Rate::new(f.acknowledged_in_time, f.opened))),
        seconds_to_acknowledge: Some(distribution(f.seconds_to_acknowledge)),
        escalated: Some(rate(Rate::new(f.escalated, f.opened))),
        escalations: f.escalations,
    }
}

fn journey_group(f: &JourneyGroupFigures) -> pb::JourneyGroup {
    let nps = Nps {
        respondents: f.respondents,
        promoters: f.promoters,
        detractors: f.detractors,
    };
    pb::JourneyGroup {
        journeys: f.journeys,
        mean_score: f.mean_score,
        scored_journeys: f.scored,
        journeys_with_feedback: f.with_feedback,
        mean_overall_satisfaction: f.mean_overall,
        overall_csat: Some(rate(Rate::new(f.satisfied, f.rated))),
        nps: Some(pb::Nps {
            respondents: nps.respondents,
            promoters: nps.promoters,
            passives: nps.passives(),
            detractors: nps.detractors,
            score: nps.score(),
        }),
    }
}

fn rate(rate: Rate) -> pb::Rate {
    let interval = rate.wilson();
    pb::Rate {
        numerator: rate.numerator,
        denominator: rate.denominator,
        value: rate.value(),
        wilson_lower: interval.map(|(low, _)| low),
        wilson_upper: interval.map(|(_, high)| high),
    }
}

fn distribution(d: Distribution) -> pb::Distribution {
    pb::Distribution {
        count: d.count,
        median: d.median,
        p90: d.p90,
        approximate: d.approximate,
    }
}

fn scorecard_row(touchpoint: Option<&Touchpoint>, f: &ScorecardFigures) -> pb::ScorecardRow {
    pb::ScorecardRow {
        touchpoint_id: touchpoint.map(|t| t.id.to_string()).unwrap_or_default(),
        touchpoint_code: touchpoint.map(|t| t.code.clone()).unwrap_or_default(),
        display_name: touchpoint
            .map(|t| t.display_name.clone())
            .unwrap_or_default(),
        encounters: f.encounters,
        mean_satisfaction: f.mean_satisfaction,
        csat: Some(rate(f.csat())),
        top_box: Some(rate(f.top_box())),
        failure_rate: Some(rate(f.failure_rate())),
        wait_seconds: Some(distribution(f.wait_seconds)),
        first_response_seconds: Some(distribution(f.first_response_seconds)),
        compliance: Some(rate(f.compliance())),
    }
}
