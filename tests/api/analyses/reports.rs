//! The guideline breakdown, the compliance report and recovery
//! performance.

use prost_types::Timestamp;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    Measured, assert_close, assert_rate, at, authed, event, fixture_day, keyed,
    record_fixture_events, scorecard_fixture, spawn_app, standard, touchpoint,
};

#[tokio::test]
async fn the_guideline_breakdown_counts_each_situation_and_ordinary_contacts() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.create_touchpoint(key, touchpoint("desk")).await;
    let situated = |id: &str, situation: pb::Situation, satisfaction: i32| pb::Encounter {
        situation: situation.into(),
        ..event(
            "desk",
            "j1",
            id,
            at(0),
            Measured {
                satisfaction: Some(satisfaction),
                ..Measured::default()
            },
        )
    };
    for e in [
        situated("1", pb::Situation::Recovery, 5),
        situated("2", pb::Situation::Recovery, 1),
        situated("3", pb::Situation::Coping, 3),
        situated("4", pb::Situation::Unspecified, 4),
    ] {
        app.record(key, e).await;
    }

    let breakdown = app
        .analyses()
        .await
        .get_guideline_breakdown(authed(
            key,
            pb::GetGuidelineBreakdownRequest {
                scope: Some(fixture_day()),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    assert!(!breakdown.no_data);
    let rows = &breakdown.situations;
    let order: Vec<pb::Situation> = rows.iter().map(|r| r.situation()).collect();
    assert_eq!(
        order,
        [
            pb::Situation::Recovery,
            pb::Situation::Adaptability,
            pb::Situation::Spontaneity,
            pb::Situation::Coping,
            pb::Situation::Unspecified,
        ]
    );
    assert_eq!(rows[0].encounters, 2);
    assert_rate(&rows[0].failure_rate, 1, 2);
    assert_close(rows[0].mean_satisfaction, 3.0);
    assert_rate(&rows[0].csat, 1, 2);
    assert_eq!(rows[1].encounters, 0);
    assert_eq!(rows[1].mean_satisfaction, None);
    assert_rate(&rows[1].failure_rate, 0, 0);
    assert_eq!(rows[2].encounters, 0);
    assert_eq!(rows[3].encounters, 1);
    assert_rate(&rows[3].failure_rate, 0, 1);
    assert_rate(&rows[3].csat, 0, 1);
    assert_eq!(rows[4].encounters, 1);
    assert_close(rows[4].mean_satisfaction, 4.0);
    assert_rate(&rows[4].csat, 1, 1);
}

#[tokio::test]
async fn the_compliance_report_counts_met_and_violated_per_standard_and_element() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.create_touchpoint(key, keyed("desk", 10, true)).await;
    app.create_touchpoint(key, keyed("lobby", 20, false)).await;
    app.create_standard(key, standard("greet-15s", "desk"))
        .await;
    let mut wait = standard("wait-5min", "");
    wait.element = pb::Element::Software.into();
    wait.severity = pb::Severity::Minor.into();
    wait.rule = crate::helpers::metric_rule(
        pb::MetricField::WaitSeconds,
        pb::Comparison::LessOrEqual,
        300.0,
    );
    app.create_standard(key, wait).await;
    record_fixture_events(&app, key).await;

    let report = app
        .analyses()
        .await
        .get_compliance_report(authed(
            key,
            pb::GetComplianceReportRequest {
                scope: Some(fixture_day()),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    assert!(!report.no_data);
    let rows: Vec<(&str, i64, i64, i64)> = report
        .standards
        .iter()
        .map(|r| (r.standard_code.as_str(), r.evaluated, r.met, r.violated))
        .collect();
    // greet-15s at the desk: first responses 10 and 5 met, 20 violated, one
    // not measured. wait-5min everywhere: 100, 200, 300 met, 600 violated,
    // two not measured. Least compliant first.
    assert_eq!(rows, [("greet-15s", 3, 2, 1), ("wait-5min", 4, 3, 1)]);
    assert_rate(&report.standards[0].compliance, 2, 3);
    assert_eq!(report.standards[0].severity(), pb::Severity::Critical);
    let elements: Vec<(pb::Element, i64, i64)> = report
        .elements
        .iter()
        .map(|r| (r.element(), r.met, r.violated))
        .collect();
    assert_eq!(
        elements,
        [
            (pb::Element::Software, 3, 1),
            (pb::Element::Humanware, 2, 1)
        ]
    );
    assert_rate(&report.elements[0].compliance, 3, 4);
}

#[tokio::test]
async fn recovery_performance_follows_the_cases_opened_in_the_range() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    scorecard_fixture(&app, key).await;
    // Failed: #2 (satisfaction 4), #3 (2), #6 (1) and the day before's #7
    // (1); all their cases open now.
    let cases = app.all_cases(key).await;
    assert_eq!(cases.len(), 4);
    let by_satisfaction = |s: i32, code: &str| {
        cases
            .iter()
            .find(|c| c.original_satisfaction == Some(s) && c.touchpoint_code == code)
            .unwrap()
            .clone()
    };
    let resolve = |case: &pb::RecoveryCase, follow_up: i32| pb::RecoveryCase {
        id: case.id.clone(),
        status: pb::RecoveryStatus::Resolved.into(),
        resolution_note: "Called back and apologised".into(),
        follow_up_satisfaction: Some(follow_up),
        ..Default::default()
    };
    let paths = ["status", "resolution_note", "follow_up_satisfaction"];
    app.update_case(key, resolve(&by_satisfaction(4, "desk"), 3), &paths)
        .await
        .unwrap();
    app.update_case(key, resolve(&by_satisfaction(2, "desk"), 4), &paths)
        .await
        .unwrap();

    let now = chrono::Utc::now().timestamp();
    let today = pb::AnalysisScope {
        start_time: Some(Timestamp {
            seconds: now - 3600,
            nanos: 0,
        }),
        end_time: Some(Timestamp {
            seconds: now + 3600,
            nanos: 0,
        }),
        ..Default::default()
    };
    let performance = |scope: pb::AnalysisScope| {
        let app = &app;
        async move {
            app.analyses()
                .await
                .get_recovery_performance(authed(
                    key,
                    pb::GetRecoveryPerformanceRequest {
                        scope: Some(scope),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let all = performance(today.clone()).await;

    assert!(!all.no_data);
    assert_eq!(all.opened, 4);
    assert_rate(&all.resolved, 2, 4);
    assert_rate(&all.resolved_within_deadline, 2, 4);
    let resolving = all.seconds_to_resolve.unwrap();
    assert_eq!(resolving.count, 2);
    assert!((0.0..60.0).contains(&resolving.median.unwrap()));
    assert_eq!(all.follow_ups, 2);
    // Originals 4 and 2, follow-ups 3 and 4: only the second improved.
    assert_close(all.mean_original_satisfaction, 3.0);
    assert_close(all.mean_follow_up_satisfaction, 3.5);
    assert_rate(&all.improved, 1, 2);

    // The fixture day opened no case: cases count from when they open.
    assert!(performance(fixture_day()).await.no_data);
}
