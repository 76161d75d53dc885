//! Who may call the analyses: analysts and admins, of their own
//! organisation only.

use prost_types::Timestamp;
use tonic::Code;
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::helpers::{
    TestApp, assert_error, at, authed, scorecard_fixture, spawn_app, violated_fields,
};

/// Calls every analysis over `scope`: per method, whether it said there is
/// no data, or its error.
async fn every_analysis(
    app: &TestApp,
    key: &str,
    scope: pb::AnalysisScope,
) -> Vec<(&'static str, Result<bool, tonic::Status>)> {
    let mut client = app.analyses().await;
    let s = || Some(scope.clone());
    vec![
        (
            "GetScorecard",
            client
                .get_scorecard(authed(key, pb::GetScorecardRequest { scope: s() }))
                .await
                .map(|r| r.into_inner().no_data),
        ),
        (
            "GetMotCycle",
            client
                .get_mot_cycle(authed(
                    key,
                    pb::GetMotCycleRequest {
                        scope: s(),
                        max_variants: 0,
                        ..Default::default()
                    },
                ))
                .await
                .map(|r| r.into_inner().no_data),
        ),
        (
            "GetJourneyOutcomes",
            client
                .get_journey_outcomes(authed(key, pb::GetJourneyOutcomesRequest { scope: s() }))
                .await
                .map(|r| r.into_inner().no_data),
        ),
        (
            "GetFirstImpressions",
            client
                .get_first_impressions(authed(key, pb::GetFirstImpressionsRequest { scope: s() }))
                .await
                .map(|r| r.into_inner().no_data),
        ),
        (
            "GetTrend",
            client
                .get_trend(authed(
                    key,
                    pb::GetTrendRequest {
                        scope: s(),
                        figure: pb::TrendFigure::Encounters.into(),
                        granularity: pb::Granularity::Month.into(),
                        per_touchpoint: true,
                    },
                ))
                .await
                .map(|r| r.into_inner().no_data),
        ),
        (
            "GetPriorityMatrix",
            client
                .get_priority_matrix(authed(key, pb::GetPriorityMatrixRequest { scope: s() }))
                .await
                .map(|r| r.into_inner().no_data),
        ),
        (
            "GetGuidelineBreakdown",
            client
                .get_guideline_breakdown(authed(
                    key,
                    pb::GetGuidelineBreakdownRequest { scope: s() },
                ))
                .await
                .map(|r| r.into_inner().no_data),
        ),
        (
            "GetComplianceReport",
            client
                .get_compliance_report(authed(key, pb::GetComplianceReportRequest { scope: s() }))
                .await
                .map(|r| r.into_inner().no_data),
        ),
        (
            "GetRecoveryPerformance",
            client
                .get_recovery_performance(authed(
                    key,
                    pb::GetRecoveryPerformanceRequest {
                        scope: s(),
                        ..Default::default()
                    },
                ))
                .await
                .map(|r| r.into_inner().no_data),
        ),
    ]
}

#[tokio::test]
async fn every_analysis_is_for_analysts_and_admins_of_the_organisation_only() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    scorecard_fixture(&app, &a.admin_key).await;
    let now = chrono::Utc::now().timestamp();
    // Covers the fixture day and today, when the fixture's cases opened.
    let everything = pb::AnalysisScope {
        start_time: Some(at(-86_400)),
        end_time: Some(Timestamp {
            seconds: now + 3600,
            nanos: 0,
        }),
        ..Default::default()
    };

    let a_analyst = app.key(&a, Role::Analyst).await;
    for (method, answer) in every_analysis(&app, &a_analyst, everything.clone()).await {
        assert!(!answer.unwrap(), "{method} of A's analyst sees A's data");
    }
    for (method, answer) in every_analysis(&app, &b.admin_key, everything.clone()).await {
        assert!(
            answer.unwrap(),
            "{method} of B's admin sees none of A's data"
        );
    }
    let ingest = app.key(&a, Role::Ingest).await;
    for (method, answer) in every_analysis(&app, &ingest, everything.clone()).await {
        let status = answer.expect_err(method);
        assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    }
    let backwards = pb::AnalysisScope {
        start_time: everything.end_time,
        end_time: everything.start_time,
        ..Default::default()
    };
    for (method, answer) in every_analysis(&app, &a.admin_key, backwards).await {
        let status = answer.expect_err(method);
        assert_eq!(violated_fields(&status), ["scope.end_time"], "{method}");
    }
}
