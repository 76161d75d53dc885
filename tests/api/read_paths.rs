//! Every analysis, with every option that changes its SQL, gives the same
//! answer whether it reads the rollups or the encounters: two servers on
//! one database, one reading the rollups for every scope with a whole day
//! in it, the other never.
//!
//! Every measured second and every gap between a journey's steps is under
//! 128 s, where the rollups' histograms are exact, so the answers must be
//! equal but for the flags that say a figure came from a histogram.

use std::collections::HashMap;

use prost_types::Timestamp;
use tonic::transport::Channel;
use verdad::proto::verdad::v1::{self as pb, analysis_service_client::AnalysisServiceClient};

use crate::helpers::{authed, metric_rule, spawn_app_with, to_the_ninth, touchpoint};

/// 2026-06-01T00:00:00+02:00 (midnight in Amsterdam), and `seconds` after.
fn local(seconds: i64) -> Timestamp {
    Timestamp {
        seconds: 1_780_264_800 + seconds,
        nanos: 0,
    }
}

const DAY: i64 = 86_400;

/// A small deterministic generator (a linear congruential one).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % sides
    }

    fn maybe(&mut self, sides: u64) -> Option<u64> {
        let value = self.roll(sides + 1);
        (value < sides).then_some(value)
    }
}

/// The touchpoints: code, stage, channel, cycle position, key.
const TOUCHPOINTS: [(&str, pb::Stage, pb::Channel, i32, bool); 6] = [
    (
        "call-centre",
        pb::Stage::PreService,
        pb::Channel::Phone,
        5,
        false,
    ),
    (
        "entrance",
        pb::Stage::PreService,
        pb::Channel::InPerson,
        10,
        true,
    ),
    (
        "reception",
        pb::Stage::Service,
        pb::Channel::InPerson,
        20,
        true,
    ),
    ("lab", pb::Stage::Service, pb::Channel::InPerson, 30, true),
    (
        "consult",
        pb::Stage::Service,
        pb::Channel::Remote,
        40,
        false,
    ),
    (
        "pharmacy",
        pb::Stage::PostService,
        pb::Channel::InPerson,
        50,
        false,
    ),
];

/// Five days of journeys in Amsterdam from May 30th: some cross midnight,
/// some repeat a step, some meet the same touchpoint twice at one time;
/// waits and first responses under 128 s, standards met and violated,
/// every situation, feedback on some journeys.
async fn fixture(app: &crate::helpers::TestApp, key: &str) -> HashMap<&'static str, String> {
    let mut ids = HashMap::new();
    for (code, stage, channel, position, key_touchpoint) in TOUCHPOINTS {
        let created = app
            .create_touchpoint(
                key,
                pb::Touchpoint {
                    stage: stage.into(),
                    channel: channel.into(),
                    cycle_position: position,
                    key: key_touchpoint,
                    ..touchpoint(code)
                },
            )
            .await;
        ids.insert(code, created.id);
    }
    let mut wait = crate::helpers::standard("reception-wait", "reception");
    wait.rule = metric_rule(
        pb::MetricField::WaitSeconds,
        pb::Comparison::LessOrEqual,
        60.0,
    );
    app.create_standard(key, wait).await;
    app.create_standard(key, crate::helpers::standard("greet", "entrance"))
        .await;

    let mut dice = Dice(25);
    let mut batch = Vec::new();
    let mut feedback = Vec::new();
    for journey in 0..90 {
        let journey_id = format!("visit-{journey}");
        // From 2026-05-30 on, at any hour, some close to midnight.
        let mut time = -2 * DAY + (journey as i64 * 5 * DAY) / 90 + dice.roll(3600) as i64;
        let steps = 2 + dice.roll(5);
        let mut position = dice.roll(3) as usize;
        // Every seventh journey has nothing to judge it by.
        let unjudged = journey % 7 == 0;
        for step in 0..steps {
            let (code, _, channel, _, _) = TOUCHPOINTS[position];
            let situation = [
                pb::Situation::Unspecified,
                pb::Situation::Recovery,
                pb::Situation::Adaptability,
                pb::Situation::Spontaneity,
                pb::Situation::Coping,
            ][dice.roll(5) as usize];
            batch.push(pb::Encounter {
                touchpoint_code: code.into(),
                journey_id: journey_id.clone(),
                occur_time: Some(local(time)),
                channel: if dice.roll(4) == 0 {
                    pb::Channel::Remote
                } else {
                    channel
                }
                .into(),
                satisfaction: dice.maybe(5).map(|s| s as i32 + 1).filter(|_| !unjudged),
                wait_seconds: dice.maybe(128).map(|s| s as i64).filter(|_| !unjudged),
                first_response_seconds: dice.maybe(40).map(|s| s as i64).filter(|_| !unjudged),
                situation: situation.into(),
                source: "fixture".into(),
                external_id: format!("{journey}-{step}"),
                ..Default::default()
            });
            // Mostly forward along the cycle, sometimes back or staying.
            position = match dice.roll(6) {
                0 => position.saturating_sub(1),
                1 => position,
                _ => (position + 1).min(TOUCHPOINTS.len() - 1),
            };
            // Sometimes at the same second: a tie.
            time += [0, 1, 5, 30, 90, 127][dice.roll(6) as usize];
        }
        if dice.roll(5) < 2 {
            feedback.push((
                journey_id,
                pb::JourneyFeedback {
                    overall_satisfaction: Some(1 + dice.roll(5) as i32),
                    likelihood_to_recommend: Some(dice.roll(11) as i32),
                    complete_time: Some(local(time + 600)),
                    ..Default::default()
                },
            ));
        }
    }
    let stored = app
        .ingest(key, batch.chunks(100).map(<[_]>::to_vec).collect())
        .await
        .unwrap();
    assert_eq!(stored.rejected, 0, "{:?}", stored.rejections);
    for (journey, feedback) in feedback {
        app.record_feedback(key, &journey, feedback).await.unwrap();
    }
    ids
}

/// `answer`'s text without what only says a figure came from a histogram,
/// with fractions cut to nine places (sums come in another order).
fn comparable(answer: &impl std::fmt::Debug) -> String {
    to_the_ninth(answer)
        .replace("median_approximate: true", "median_approximate: false")
        .replace("approximate: true", "approximate: false")
}

/// Asks both servers with `call` and expects the same answer.
macro_rules! same_on_both {
    ($rollups:expr, $exact:expr, $key:expr, $name:expr, $method:ident, $request:expr) => {{
        let request = $request;
        let from_rollups = $rollups
            .$method(authed($key, request.clone()))
            .await
            .unwrap_or_else(|e| panic!("{} from the rollups: {e:?}", $name))
            .into_inner();
        let from_encounters = $exact
            .$method(authed($key, request))
            .await
            .unwrap_or_else(|e| panic!("{} from the encounters: {e:?}", $name))
            .into_inner();
        assert_eq!(
            comparable(&from_rollups),
            comparable(&from_encounters),
            "{}",
            $name
        );
        from_encounters
    }};
}

#[tokio::test]
async fn every_analysis_and_option_gives_the_same_answer_from_rollups_and_encounters() {
    let app = spawn_app_with(|settings| {
        settings.exact_percentile_limit = 0;
        settings.rollup_delay = std::time::Duration::from_secs(3600);
    })
    .await;
    let org = app.create_org("St. Mary").await;
    let key = org.admin_key.as_str();
    app.set_time_zone(key, "Europe/Amsterdam").await;
    let ids = fixture(&app, key).await;
    let mut rollups = app.analyses().await;
    let mut exact: AnalysisServiceClient<Channel> = app.exact_server().await;

    let spans = [
        // Three whole days, with 14 hours before and 9 after.
        ("edges", local(-2 * DAY + 10 * 3600), local(DAY + 9 * 3600)),
        // Whole days only.
        ("whole days", local(-2 * DAY), local(3 * DAY)),
    ];
    let filters = [
        ("no filter", pb::AnalysisScope::default()),
        (
            "two touchpoints",
            pb::AnalysisScope {
                touchpoint_ids: vec![ids["reception"].clone(), ids["lab"].clone()],
                ..Default::default()
            },
        ),
        (
            "stage",
            pb::AnalysisScope {
                stage: pb::Stage::Service.into(),
                ..Default::default()
            },
        ),
        (
            "channel",
            pb::AnalysisScope {
                channel: pb::Channel::InPerson.into(),
                ..Default::default()
            },
        ),
    ];
    // The first server does read the rollups.
    let whole_days = Some(pb::AnalysisScope {
        start_time: Some(spans[1].1),
        end_time: Some(spans[1].2),
        ..Default::default()
    });
    let card = rollups
        .get_scorecard(authed(
            key,
            pb::GetScorecardRequest {
                scope: whole_days.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(card.total.unwrap().wait_seconds.unwrap().approximate);
    // Unfiltered, and filtered to a stage (the steps at its touchpoints).
    let cycles = [
        whole_days.clone(),
        whole_days.clone().map(|scope| pb::AnalysisScope {
            stage: pb::Stage::Service.into(),
            ..scope
        }),
    ]
    .map(|scope| pb::GetMotCycleRequest {
        scope,
        max_variants: 0,
        ..Default::default()
    });
    let total = |c: &pb::GetMotCycleResponse| -> f64 {
        c.pairs
            .iter()
            .map(|p| p.mean_seconds * p.count as f64)
            .sum()
    };
    let mut before = Vec::new();
    for request in &cycles {
        let cycle = rollups
            .get_mot_cycle(authed(key, request.clone()))
            .await
            .unwrap()
            .into_inner();
        assert!(total(&cycle) > 0.0);
        before.push(total(&cycle));
    }
    // The cycle reads the journeys' rollups (exact, so the answers alone
    // cannot tell): doubling their times as stored doubles its waits.
    let mut owner = app.owner_connection().await;
    sqlx::query(
        "update journey_path
         set offsets = array(select 2 * o from unnest(offsets) as o)",
    )
    .execute(&mut owner)
    .await
    .unwrap();
    for (request, before) in cycles.iter().zip(before) {
        let doubled = rollups
            .get_mot_cycle(authed(key, request.clone()))
            .await
            .unwrap()
            .into_inner();
        assert!(
            (total(&doubled) - 2.0 * before).abs() < 1e-6 * before,
            "{request:?}"
        );
    }
    sqlx::query(
        "update journey_path
         set offsets = array(select o / 2 from unnest(offsets) as o)",
    )
    .execute(&mut owner)
    .await
    .unwrap();

    for (span, start_time, end_time) in &spans {
        for (filter, base) in &filters {
            let scope = Some(pb::AnalysisScope {
                start_time: Some(*start_time),
                end_time: Some(*end_time),
                ..base.clone()
            });
            let name = |analysis: &str| format!("{analysis}, {span}, {filter}");

            let card = same_on_both!(
                rollups,
                exact,
                key,
                name("scorecard"),
                get_scorecard,
                pb::GetScorecardRequest {
                    scope: scope.clone()
                }
            );
            assert!(card.total.unwrap().encounters > 0, "{}", name("scorecard"));
            for max_variants in [0, 3] {
                same_on_both!(
                    rollups,
                    exact,
                    key,
                    name(&format!("MOT cycle, {max_variants} variants")),
                    get_mot_cycle,
                    pb::GetMotCycleRequest {
                        scope: scope.clone(),
                        max_variants,
                        ..Default::default()
                    }
                );
            }
            let outcomes = same_on_both!(
                rollups,
                exact,
                key,
                name("journey outcomes"),
                get_journey_outcomes,
                pb::GetJourneyOutcomesRequest {
                    scope: scope.clone()
                }
            );
            assert!(
                outcomes.judged_journeys < outcomes.journeys,
                "{}",
                name("journey outcomes")
            );
            same_on_both!(
                rollups,
                exact,
                key,
                name("first impressions"),
                get_first_impressions,
                pb::GetFirstImpressionsRequest {
                    scope: scope.clone()
                }
            );
            same_on_both!(
                rollups,
                exact,
                key,
                name("priority matrix"),
                get_priority_matrix,
                pb::GetPriorityMatrixRequest {
                    scope: scope.clone()
                }
            );
            same_on_both!(
                rollups,
                exact,
                key,
                name("guidelines"),
                get_guideline_breakdown,
                pb::GetGuidelineBreakdownRequest {
                    scope: scope.clone()
                }
            );
            same_on_both!(
                rollups,
                exact,
                key,
                name("compliance"),
                get_compliance_report,
                pb::GetComplianceReportRequest {
                    scope: scope.clone()
                }
            );
            same_on_both!(
                rollups,
                exact,
                key,
                name("recovery performance"),
                get_recovery_performance,
                pb::GetRecoveryPerformanceRequest {
                    scope: scope.clone(),
                    ..Default::default()
                }
            );
            for figure in [
                pb::TrendFigure::Encounters,
                pb::TrendFigure::MeanSatisfaction,
                pb::TrendFigure::Csat,
                pb::TrendFigure::TopBox,
                pb::TrendFigure::FailureRate,
                pb::TrendFigure::WaitMedian,
                pb::TrendFigure::FirstResponseMedian,
                pb::TrendFigure::Compliance,
            ] {
                for granularity in [
                    pb::Granularity::Day,
                    pb::Granularity::Week,
                    pb::Granularity::Month,
                ] {
                    for per_touchpoint in [false, true] {
                        same_on_both!(
                            rollups,
                            exact,
                            key,
                            name(&format!(
                                "trend {figure:?} by {granularity:?}, per touchpoint {per_touchpoint}"
                            )),
                            get_trend,
                            pb::GetTrendRequest {
                                scope: scope.clone(),
                                figure: figure.into(),
                                granularity: granularity.into(),
                                per_touchpoint,
                            }
                        );
                    }
                }
            }
        }
    }
}
