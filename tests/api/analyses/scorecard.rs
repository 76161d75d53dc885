//! The scorecard over the hand-worked fixture: each touchpoint's and the
//! total's figures, scopes, no data, the default range, bad scopes and
//! other organisations.

use tonic::Code;
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::helpers::{
    Measured, assert_close, assert_distribution, assert_error, assert_rate, at, authed, event,
    fixture_day, minutes_ago, points, scorecard_fixture, spawn_app, touchpoint, violated_fields,
};

#[tokio::test]
async fn the_scorecard_gives_each_touchpoint_and_the_total_their_figures() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    scorecard_fixture(&app, key).await;
    let analyst = app.key(&org, Role::Analyst).await;

    let card = app.scorecard(&analyst, fixture_day()).await;

    assert!(!card.no_data);
    assert_eq!(card.start_time, Some(at(-9 * 3600)));
    let codes: Vec<&str> = card
        .touchpoints
        .iter()
        .map(|r| r.touchpoint_code.as_str())
        .collect();
    assert_eq!(codes, ["desk", "lobby"]);

    let desk = &card.touchpoints[0];
    assert_eq!(desk.display_name, "Touchpoint desk");
    assert_eq!(desk.encounters, 4);
    assert_close(desk.mean_satisfaction, 11.0 / 3.0);
    assert_rate(&desk.csat, 2, 3);
    assert_rate(&desk.top_box, 1, 3);
    assert_rate(&desk.failure_rate, 2, 4);
    // waits 100, 200, 300: median 200; p90 at rank 1.8 = 200 + 0.8 * 100
    assert_distribution(&desk.wait_seconds, 3, Some(200.0), Some(280.0));
    // first responses 5, 10, 20: median 10; p90 = 10 + 0.8 * 10
    assert_distribution(&desk.first_response_seconds, 3, Some(10.0), Some(18.0));
    assert_rate(&desk.compliance, 2, 3);

    let lobby = &card.touchpoints[1];
    assert_eq!(lobby.encounters, 2);
    assert_close(lobby.mean_satisfaction, 2.0);
    assert_rate(&lobby.csat, 0, 2);
    assert_rate(&lobby.failure_rate, 1, 2);
    assert_distribution(&lobby.wait_seconds, 1, Some(600.0), Some(600.0));
    assert_distribution(&lobby.first_response_seconds, 0, None, None);
    // No standard applies at the lobby: no compliance to speak of.
    assert_rate(&lobby.compliance, 0, 0);

    let total = card.total.as_ref().unwrap();
    assert_eq!(total.touchpoint_code, "");
    assert_eq!(total.encounters, 6);
    assert_close(total.mean_satisfaction, 15.0 / 5.0);
    assert_rate(&total.csat, 2, 5);
    assert_rate(&total.top_box, 1, 5);
    assert_rate(&total.failure_rate, 3, 6);
    // waits 100, 200, 300, 600: median 250; p90 at rank 2.7 = 300 + 0.7 * 300
    assert_distribution(&total.wait_seconds, 4, Some(250.0), Some(510.0));
    assert_distribution(&total.first_response_seconds, 3, Some(10.0), Some(18.0));
    assert_rate(&total.compliance, 2, 3);
    // 1 of 5 top-box: the Wilson interval runs from 0.0362 to 0.6245.
    let top = total.top_box.as_ref().unwrap();
    assert!((top.wilson_lower.unwrap() - 0.0362).abs() < 1e-4);
    assert!((top.wilson_upper.unwrap() - 0.6245).abs() < 1e-4);

    // The same day as a trend of the median wait: Seoul's June 1st holds
    // every fixture encounter (18:00 there), its June 2nd none.
    let waits = app
        .trend(
            &analyst,
            pb::GetTrendRequest {
                scope: Some(fixture_day()),
                figure: pb::TrendFigure::WaitMedian.into(),
                granularity: pb::Granularity::Day.into(),
                per_touchpoint: true,
            },
        )
        .await
        .unwrap();
    let june_1 = at(-18 * 3600).seconds;
    assert_eq!(
        points(&waits.series[0]),
        [(june_1, Some(250.0), 4), (june_1 + 86_400, None, 0)]
    );
    assert_eq!(waits.series[1].touchpoint_code, "desk");
    assert_eq!(
        points(&waits.series[1]),
        [(june_1, Some(200.0), 3), (june_1 + 86_400, None, 0)]
    );
}

#[tokio::test]
async fn the_scorecard_scope_filters_touchpoints_stages_and_channels() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    scorecard_fixture(&app, key).await;
    let touchpoints = app
        .touchpoints()
        .await
        .list_touchpoints(authed(key, pb::ListTouchpointsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .touchpoints;
    let lobby = touchpoints.iter().find(|t| t.code == "lobby").unwrap();

    let only_lobby = app
        .scorecard(
            key,
            pb::AnalysisScope {
                touchpoint_ids: vec![lobby.id.clone()],
                ..fixture_day()
            },
        )
        .await;
    assert_eq!(only_lobby.touchpoints.len(), 1);
    assert_eq!(only_lobby.total.unwrap().encounters, 2);

    let phone = app
        .scorecard(
            key,
            pb::AnalysisScope {
                channel: pb::Channel::Phone.into(),
                ..fixture_day()
            },
        )
        .await;
    assert!(phone.no_data);

    let pre_service = app
        .scorecard(
            key,
            pb::AnalysisScope {
                stage: pb::Stage::PreService.into(),
                ..fixture_day()
            },
        )
        .await;
    assert!(
        pre_service.no_data,
        "every fixture touchpoint is in the service stage"
    );
}

#[tokio::test]
async fn an_analysis_over_no_data_says_so_instead_of_giving_zeros() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.create_touchpoint(key, touchpoint("desk")).await;

    let card = app.scorecard(key, fixture_day()).await;
    assert!(card.no_data);
    assert!(card.touchpoints.is_empty());
    let total = card.total.unwrap();
    assert_eq!(total.encounters, 0);
    assert_eq!(total.mean_satisfaction, None);
    assert_rate(&total.csat, 0, 0);
    assert_distribution(&total.wait_seconds, 0, None, None);

    let cycle = app.mot_cycle(key, fixture_day(), 0).await;
    assert!(cycle.no_data);
    assert_eq!(
        (cycle.journeys, cycle.encounters, cycle.variant_count),
        (0, 0, 0)
    );
    assert_rate(&cycle.conformance.unwrap().designed_order, 0, 0);
}

#[tokio::test]
async fn without_a_range_an_analysis_looks_at_the_last_30_days() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.create_touchpoint(key, touchpoint("desk")).await;
    app.record(
        key,
        event("desk", "j1", "1", minutes_ago(24 * 60), Measured::default()),
    )
    .await;
    app.record(
        key,
        event(
            "desk",
            "j2",
            "2",
            minutes_ago(40 * 24 * 60),
            Measured::default(),
        ),
    )
    .await;

    let card = app.scorecard(key, pb::AnalysisScope::default()).await;

    assert_eq!(card.total.unwrap().encounters, 1);
    let start = card.start_time.unwrap().seconds;
    let end = card.end_time.unwrap().seconds;
    // From midnight (Asia/Seoul) 30 days before today, to now.
    let days = (end - start) as f64 / 86_400.0;
    assert!((30.0..31.0).contains(&days), "{days} days");
    assert_eq!(
        (start + 9 * 3600) % 86_400,
        0,
        "starts at midnight in Seoul"
    );
}

#[tokio::test]
async fn analyses_reject_bad_scopes_and_need_a_reading_key() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    let mut client = app.analyses().await;

    let backwards = pb::AnalysisScope {
        start_time: Some(at(3600)),
        end_time: Some(at(0)),
        touchpoint_ids: vec!["not-an-id".into()],
        stage: 99,
        ..Default::default()
    };
    let status = client
        .get_scorecard(authed(
            key,
            pb::GetScorecardRequest {
                scope: Some(backwards.clone()),
            },
        ))
        .await
        .unwrap_err();
    let fields = violated_fields(&status);
    assert!(
        fields.contains(&"scope.touchpoint_ids[0]".to_owned()),
        "{fields:?}"
    );
    assert!(fields.contains(&"scope.stage".to_owned()), "{fields:?}");
    let status = client
        .get_scorecard(authed(
            key,
            pb::GetScorecardRequest {
                scope: Some(pb::AnalysisScope {
                    start_time: Some(at(3600)),
                    end_time: Some(at(0)),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["scope.end_time"]);
    let status = client
        .get_mot_cycle(authed(
            key,
            pb::GetMotCycleRequest {
                scope: None,
                max_variants: -1,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["max_variants"]);

    let ingest = app.key(&org, Role::Ingest).await;
    let status = client
        .get_scorecard(authed(&ingest, pb::GetScorecardRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    let status = client
        .get_mot_cycle(authed(&ingest, pb::GetMotCycleRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
}

#[tokio::test]
async fn analyses_see_only_the_callers_organisation() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    scorecard_fixture(&app, &a.admin_key).await;
    let touchpoints = app
        .touchpoints()
        .await
        .list_touchpoints(authed(&a.admin_key, pb::ListTouchpointsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .touchpoints;
    let a_desk = touchpoints.iter().find(|t| t.code == "desk").unwrap();

    // Naming A's touchpoint, by id or by code, B finds no such touchpoint.
    let by_id = pb::AnalysisScope {
        touchpoint_ids: vec![a_desk.id.clone()],
        ..fixture_day()
    };
    let by_code = pb::AnalysisScope {
        touchpoint_codes: vec!["lobby".into()],
        ..fixture_day()
    };
    for scope in [by_id, by_code] {
        let status = app
            .analyses()
            .await
            .get_scorecard(authed(
                &b.admin_key,
                pb::GetScorecardRequest {
                    scope: Some(scope.clone()),
                },
            ))
            .await
            .unwrap_err();
        assert_error(&status, Code::NotFound, "NOT_FOUND");
        let status = app
            .analyses()
            .await
            .get_mot_cycle(authed(
                &b.admin_key,
                pb::GetMotCycleRequest {
                    scope: Some(scope),
                    max_variants: 0,
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_error(&status, Code::NotFound, "NOT_FOUND");
    }
    let cycle = app.mot_cycle(&b.admin_key, fixture_day(), 0).await;
    assert_eq!(cycle.encounters, 0);
}

#[tokio::test]
async fn percentiles_carry_no_float_noise() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.create_touchpoint(key, touchpoint("desk")).await;
    // p90 of 0, 0, 3 seconds: 0 + 0.8 * 3, which binary floating point
    // makes 2.4000000000000004.
    for (n, wait) in [0, 0, 3].into_iter().enumerate() {
        let measured = Measured {
            wait: Some(wait),
            ..Measured::default()
        };
        app.record(
            key,
            event("desk", "j", &n.to_string(), at(n as i64), measured),
        )
        .await;
    }
    let card = app.scorecard(key, fixture_day()).await;
    let waits = card.total.unwrap().wait_seconds.unwrap();
    assert_eq!(waits.p90, Some(2.4));
    assert_eq!(format!("{:?}", waits.p90), "Some(2.4)");
}
