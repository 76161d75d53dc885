use verdad::{
    demo,
    proto::verdad::v1::{self as pb, analysis_service_client::AnalysisServiceClient},
};

use crate::helpers::{ServeProcess, authed, spawn_app};

#[tokio::test]
async fn the_demo_hospital_is_created_once_and_its_first_key_keeps_working() {
    let app = spawn_app().await;

    let first = demo::ensure_demo(&app.pool)
        .await
        .unwrap()
        .expect("no key the first time");
    let cycle = app
        .list_touchpoints(&first.secret, pb::ListTouchpointsRequest::default())
        .await;
    let codes: Vec<&str> = cycle.iter().map(|t| t.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "phone-booking",
            "website",
            "entrance-guard",
            "lobby",
            "reception-desk",
            "waiting-area",
            "consultation-room",
            "examination",
            "payment",
            "pharmacy",
            "happy-call"
        ]
    );
    let positions: Vec<i32> = cycle.iter().map(|t| t.cycle_position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "the designed cycle is out of order"
    );

    // A second run makes no key and leaves the first one working: a user
    // exported it.
    let second = demo::ensure_demo(&app.pool).await.unwrap();
    assert!(second.is_none(), "a second key was made");
    let again = app
        .list_touchpoints(&first.secret, pb::ListTouchpointsRequest::default())
        .await;
    assert_eq!(again.len(), 11, "the demo cycle was created twice");
}

#[tokio::test]
async fn serve_demo_makes_a_history_once_and_a_restart_keeps_the_printed_key() {
    let app = spawn_app().await;
    let first = ServeProcess::start(&app.database_url, &["--demo"]).await;
    let printed = first.stdout();
    let key = printed
        .lines()
        .find_map(|line| line.trim().strip_prefix("export VERDAD_KEY="))
        .unwrap_or_else(|| panic!("no key printed:\n{printed}"))
        .to_owned();
    let mut first = first;
    assert!(first.terminate().await.success());

    let mut second = ServeProcess::start(&app.database_url, &["--demo"]).await;
    let printed = second.stdout();
    assert!(!printed.contains("export VERDAD_KEY="), "{printed}");
    assert!(printed.contains("still works"), "{printed}");
    let mut analyses = AnalysisServiceClient::new(second.channel().await);
    let outcomes = analyses
        .get_journey_outcomes(authed(&key, pb::GetJourneyOutcomesRequest::default()))
        .await
        .expect("the key printed first no longer works")
        .into_inner();
    assert!(outcomes.journeys > 500, "{outcomes:?}");
    assert!(second.terminate().await.success());
}

#[tokio::test]
async fn the_demo_history_gives_every_analysis_figures_to_show() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let history = demo::history::seed(&app.pool).await.unwrap();
    assert_eq!(history.journeys, 2500);
    assert!(history.encounters > 15_000, "{history:?}");
    assert!(history.recovery_cases > 100, "{history:?}");
    assert!(
        history.resolved_cases > history.recovery_cases / 2,
        "{history:?}"
    );
    assert!(history.journeys_with_feedback > 800, "{history:?}");
    // Again: nothing more.
    let again = demo::history::seed(&app.pool).await.unwrap();
    assert_eq!(again.recovery_cases, 0);

    let mut analyses = app.analyses().await;
    let card = analyses
        .get_scorecard(authed(&key, pb::GetScorecardRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(!card.no_data);
    assert_eq!(card.touchpoints.len(), 11);
    let total = card.total.unwrap();
    assert!(total.encounters > 3000, "{total:?}");
    let failure_rate = total.failure_rate.unwrap().value.unwrap();
    assert!((0.01..0.3).contains(&failure_rate), "{failure_rate}");
    let cycle = analyses
        .get_mot_cycle(authed(&key, pb::GetMotCycleRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(cycle.journeys > 500 && cycle.pairs.len() > 10, "{cycle:?}");
    let outcomes = analyses
        .get_journey_outcomes(authed(&key, pb::GetJourneyOutcomesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let perfect = outcomes.perfect_share.unwrap().value.unwrap();
    assert!((0.2..0.95).contains(&perfect), "{perfect}");
    assert!(outcomes.perfect.unwrap().nps.unwrap().respondents > 0);
    assert!(outcomes.flawed.unwrap().nps.unwrap().respondents > 0);
    assert!(!outcomes.single_failure_touchpoints.is_empty());
    let impressions = analyses
        .get_first_impressions(authed(&key, pb::GetFirstImpressionsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(impressions.first_response_seconds.unwrap().count > 100);
    let matrix = analyses
        .get_priority_matrix(authed(&key, pb::GetPriorityMatrixRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matrix
            .touchpoints
            .iter()
            .filter(|t| t.importance.is_some())
            .count()
            > 3
    );
    let guidelines = analyses
        .get_guideline_breakdown(authed(&key, pb::GetGuidelineBreakdownRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        guidelines
            .situations
            .iter()
            .filter(|s| s.encounters > 0)
            .count()
            >= 4
    );
    let compliance = analyses
        .get_compliance_report(authed(&key, pb::GetComplianceReportRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(compliance.standards.iter().any(|s| s.violated > 0));
    let recovery = analyses
        .get_recovery_performance(authed(&key, pb::GetRecoveryPerformanceRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(recovery.opened > 50, "{recovery:?}");
    let within = recovery.resolved_within_deadline.unwrap();
    assert!(
        within.numerator > 0 && within.numerator < within.denominator,
        "{within:?}"
    );
    assert!(recovery.seconds_to_resolve.unwrap().count > 0);
    let trend = analyses
        .get_trend(authed(
            &key,
            pb::GetTrendRequest {
                figure: pb::TrendFigure::Csat.into(),
                granularity: pb::Granularity::Week.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let weeks_with_data = trend.series[0]
        .points
        .iter()
        .filter(|p| p.value.is_some())
        .count();
    assert!(weeks_with_data >= 4, "{trend:?}");
}
