//! The analyses over small fixtures whose every figure is worked out by
//! hand here, and the MOT cycle of a real hospital log against the figures
//! an established process-mining library computed from it.

use std::collections::HashMap;

use prost_types::Timestamp;
use tonic::Code;
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::{
    encounters::{all_cases, minutes_ago, record, record_feedback},
    helpers::{
        TestApp, assert_error, authed, create_standard, create_touchpoint, spawn_app, standard,
        touchpoint, violated_fields,
    },
    recovery::update_case,
};

/// 2026-06-01T09:00:00Z, and `seconds` after it.
pub(crate) fn at(seconds: i64) -> Timestamp {
    Timestamp {
        seconds: 1_780_304_400 + seconds,
        nanos: 0,
    }
}

/// The day of the fixtures: 2026-06-01, all day.
pub(crate) fn fixture_day() -> pb::AnalysisScope {
    pb::AnalysisScope {
        start_time: Some(at(-9 * 3600)),
        end_time: Some(at(15 * 3600)),
        ..Default::default()
    }
}

#[derive(Default)]
pub(crate) struct Measured {
    pub(crate) satisfaction: Option<i32>,
    pub(crate) wait: Option<i64>,
    pub(crate) first_response: Option<i64>,
}

pub(crate) fn event(
    code: &str,
    journey: &str,
    id: &str,
    time: Timestamp,
    m: Measured,
) -> pb::Encounter {
    pb::Encounter {
        touchpoint_code: code.into(),
        journey_id: journey.into(),
        occur_time: Some(time),
        satisfaction: m.satisfaction,
        wait_seconds: m.wait,
        first_response_seconds: m.first_response,
        source: "fixture".into(),
        external_id: id.into(),
        ..Default::default()
    }
}

pub(crate) fn keyed(code: &str, position: i32, key: bool) -> pb::Touchpoint {
    pb::Touchpoint {
        cycle_position: position,
        key,
        ..touchpoint(code)
    }
}

pub(crate) async fn scorecard(
    app: &TestApp,
    key: &str,
    scope: pb::AnalysisScope,
) -> pb::GetScorecardResponse {
    app.analyses()
        .await
        .get_scorecard(authed(key, pb::GetScorecardRequest { scope: Some(scope) }))
        .await
        .expect("get_scorecard failed")
        .into_inner()
}

async fn mot_cycle(
    app: &TestApp,
    key: &str,
    scope: pb::AnalysisScope,
    max_variants: i32,
) -> pb::GetMotCycleResponse {
    app.analyses()
        .await
        .get_mot_cycle(authed(
            key,
            pb::GetMotCycleRequest {
                scope: Some(scope),
                max_variants,
                ..Default::default()
            },
        ))
        .await
        .expect("get_mot_cycle failed")
        .into_inner()
}

#[track_caller]
pub(crate) fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or_else(|| panic!("expected {expected}, got nothing"));
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "expected {expected}, got {actual}"
    );
}

#[track_caller]
pub(crate) fn assert_rate(rate: &Option<pb::Rate>, numerator: i64, denominator: i64) {
    let rate = rate.as_ref().expect("no rate");
    assert_eq!(
        (rate.numerator, rate.denominator),
        (numerator, denominator),
        "rate"
    );
    if denominator == 0 {
        assert_eq!(rate.value, None);
        assert_eq!(rate.wilson_lower, None);
    } else {
        assert_close(rate.value, numerator as f64 / denominator as f64);
        let (low, high) = (rate.wilson_lower.unwrap(), rate.wilson_upper.unwrap());
        assert!(low <= rate.value.unwrap() && rate.value.unwrap() <= high);
    }
}

#[track_caller]
fn assert_distribution(
    d: &Option<pb::Distribution>,
    count: i64,
    median: Option<f64>,
    p90: Option<f64>,
) {
    let d = d.as_ref().expect("no distribution");
    assert_eq!(d.count, count);
    match (median, p90) {
        (Some(median), Some(p90)) => {
            assert_close(d.median, median);
            assert_close(d.p90, p90);
        }
        _ => assert_eq!((d.median, d.p90), (None, None)),
    }
}

/// Desk (cycle 10, with the critical 15-second greeting) and lobby (20).
pub(crate) async fn scorecard_fixture(app: &TestApp, key: &str) {
    create_touchpoint(app, key, keyed("desk", 10, true)).await;
    create_touchpoint(app, key, keyed("lobby", 20, false)).await;
    create_standard(app, key, standard("greet-15s", "desk")).await;
    record_fixture_events(app, key).await;
}

/// Seven encounters in four journeys on the fixture day, and one the day
/// before.
async fn record_fixture_events(app: &TestApp, key: &str) {
    let m = |satisfaction, wait, first_response| Measured {
        satisfaction,
        wait,
        first_response,
    };
    let events = [
        // met, satisfied
        event("desk", "j1", "1", at(0), m(Some(5), Some(100), Some(10))),
        // violated: fails
        event("desk", "j2", "2", at(60), m(Some(4), Some(200), Some(20))),
        // met, but satisfaction 2 fails it
        event("desk", "j3", "3", at(120), m(Some(2), Some(300), Some(5))),
        // nothing measured: not applicable
        event("desk", "j4", "4", at(180), m(None, None, None)),
        event("lobby", "j1", "5", at(240), m(Some(3), Some(600), None)),
        // fails
        event("lobby", "j2", "6", at(300), m(Some(1), None, None)),
        // the day before: out of scope
        event(
            "desk",
            "j0",
            "7",
            at(-10 * 3600),
            m(Some(1), Some(9000), Some(900)),
        ),
    ];
    for e in events {
        record(app, key, e).await;
    }
}

#[tokio::test]
async fn the_scorecard_gives_each_touchpoint_and_the_total_their_figures() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    scorecard_fixture(&app, key).await;
    let analyst = app.key(&org, Role::Analyst).await;

    let card = scorecard(&app, &analyst, fixture_day()).await;

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
    let waits = trend(
        &app,
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

    let only_lobby = scorecard(
        &app,
        key,
        pb::AnalysisScope {
            touchpoint_ids: vec![lobby.id.clone()],
            ..fixture_day()
        },
    )
    .await;
    assert_eq!(only_lobby.touchpoints.len(), 1);
    assert_eq!(only_lobby.total.unwrap().encounters, 2);

    let phone = scorecard(
        &app,
        key,
        pb::AnalysisScope {
            channel: pb::Channel::Phone.into(),
            ..fixture_day()
        },
    )
    .await;
    assert!(phone.no_data);

    let pre_service = scorecard(
        &app,
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
    create_touchpoint(&app, key, touchpoint("desk")).await;

    let card = scorecard(&app, key, fixture_day()).await;
    assert!(card.no_data);
    assert!(card.touchpoints.is_empty());
    let total = card.total.unwrap();
    assert_eq!(total.encounters, 0);
    assert_eq!(total.mean_satisfaction, None);
    assert_rate(&total.csat, 0, 0);
    assert_distribution(&total.wait_seconds, 0, None, None);

    let cycle = mot_cycle(&app, key, fixture_day(), 0).await;
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
    create_touchpoint(&app, key, touchpoint("desk")).await;
    record(
        &app,
        key,
        event("desk", "j1", "1", minutes_ago(24 * 60), Measured::default()),
    )
    .await;
    record(
        &app,
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

    let card = scorecard(&app, key, pb::AnalysisScope::default()).await;

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
    let cycle = mot_cycle(&app, &b.admin_key, fixture_day(), 0).await;
    assert_eq!(cycle.encounters, 0);
}

/// Four journeys through a designed cycle a (10, key) -> b (20, key) -> c (30).
async fn cycle_fixture(app: &TestApp, key: &str) {
    create_touchpoint(app, key, keyed("a", 10, true)).await;
    create_touchpoint(app, key, keyed("b", 20, true)).await;
    create_touchpoint(app, key, keyed("c", 30, false)).await;
    let none = Measured::default;
    let events = [
        // J1: a b c, as designed
        event("a", "J1", "1", at(0), none()),
        event("b", "J1", "2", at(60), none()),
        event("c", "J1", "3", at(180), none()),
        // J2: a c, skipping the key touchpoint b
        event("a", "J2", "4", at(0), none()),
        event("c", "J2", "5", at(120), none()),
        // J3: b a b, out of order, b revisited
        event("b", "J3", "6", at(0), none()),
        event("a", "J3", "7", at(30), none()),
        event("b", "J3", "8", at(90), none()),
        // J4: a and b at the same second, a received first; then c
        event("a", "J4", "9", at(0), none()),
        event("b", "J4", "10", at(0), none()),
        event("c", "J4", "11", at(60), none()),
    ];
    for e in events {
        record(app, key, e).await;
    }
}

#[tokio::test]
async fn the_mot_cycle_shows_pairs_ends_variants_and_conformance() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    cycle_fixture(&app, key).await;
    // A key touchpoint for the exceptional moment: no journey is expected
    // to meet it.
    let complaints = pb::Touchpoint {
        occurrence: pb::Occurrence::Exceptional.into(),
        ..keyed("complaints", 0, true)
    };
    create_touchpoint(&app, key, complaints).await;

    let cycle = mot_cycle(&app, key, fixture_day(), 0).await;

    assert!(!cycle.no_data);
    assert_eq!((cycle.journeys, cycle.encounters), (4, 11));
    let pairs: Vec<(&str, &str, i64, f64, f64)> = cycle
        .pairs
        .iter()
        .map(|p| {
            (
                p.from_touchpoint_code.as_str(),
                p.to_touchpoint_code.as_str(),
                p.count,
                p.mean_seconds,
                p.median_seconds,
            )
        })
        .collect();
    let mut sorted = pairs.clone();
    sorted.sort_by(|x, y| y.2.cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
    assert_eq!(
        sorted,
        [
            // J1 60 s, J3 60 s, J4 0 s (the tie keeps arrival order)
            ("a", "b", 3, 40.0, 60.0),
            // J1 120 s, J4 60 s
            ("b", "c", 2, 90.0, 90.0),
            ("a", "c", 1, 120.0, 120.0),
            ("b", "a", 1, 30.0, 30.0),
        ]
    );
    assert_eq!(pairs[0].2, 3, "most frequent first");
    assert_eq!(cycle.transitions, 7);

    let counts = |list: &[pb::TouchpointCount]| -> Vec<(String, i64)> {
        list.iter()
            .map(|c| (c.touchpoint_code.clone(), c.journeys))
            .collect()
    };
    assert_eq!(
        counts(&cycle.start_touchpoints),
        [("a".to_owned(), 3), ("b".to_owned(), 1)]
    );
    assert_eq!(
        counts(&cycle.end_touchpoints),
        [("c".to_owned(), 3), ("b".to_owned(), 1)]
    );

    assert_eq!(cycle.variant_count, 3);
    assert_eq!(cycle.variants[0].touchpoint_codes, ["a", "b", "c"]);
    assert_eq!(cycle.variants[0].journeys, 2);
    assert_rate(&cycle.variants[0].share, 2, 4);
    let others: Vec<Vec<String>> = cycle.variants[1..]
        .iter()
        .map(|v| v.touchpoint_codes.clone())
        .collect();
    assert_eq!(others.len(), 2);
    assert!(others.contains(&vec!["a".to_owned(), "c".to_owned()]));
    assert!(others.contains(&vec!["b".to_owned(), "a".to_owned(), "b".to_owned()]));

    let conformance = cycle.conformance.unwrap();
    assert_rate(&conformance.designed_order, 3, 4);
    assert_eq!(
        counts(&conformance.skipped_key_touchpoints),
        [("b".to_owned(), 1), ("a".to_owned(), 0)]
    );
    assert_rate(&conformance.journeys_with_loops, 1, 4);
    assert_eq!(
        counts(&conformance.revisited_touchpoints),
        [("b".to_owned(), 1)]
    );

    let one_variant = mot_cycle(&app, key, fixture_day(), 1).await;
    assert_eq!(one_variant.variants.len(), 1);
    assert_eq!(one_variant.variant_count, 3);
}

/// The code a sepsis activity gets as a touchpoint.
fn activity_code(activity: &str) -> String {
    activity.to_ascii_lowercase().replace(' ', "-")
}

#[tokio::test]
async fn the_mot_cycle_of_the_sepsis_log_matches_the_process_mining_reference() {
    let app = spawn_app().await;
    let org = app.create_org("Sepsis hospital").await;
    let key = &org.admin_key;
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sepsis");
    let csv = std::fs::read_to_string(format!("{data}/events.csv")).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{data}/reference.json")).unwrap())
            .unwrap();

    // Columns: event_seq, case_id, activity, timestamp, timestamp_utc,
    // resource, lifecycle. No field holds a comma or a quote. The case "NA"
    // is a case like any other.
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let mut activities: Vec<&str> = rows.iter().map(|r| r[2]).collect();
    activities.sort();
    activities.dedup();
    for activity in &activities {
        let mut t = touchpoint(&activity_code(activity));
        t.display_name = (*activity).to_owned();
        t.cycle_position = 0;
        create_touchpoint(&app, key, t).await;
    }
    let encounters: Vec<pb::Encounter> = rows
        .iter()
        .map(|r| {
            let time = chrono::DateTime::parse_from_rfc3339(r[4]).unwrap();
            pb::Encounter {
                touchpoint_code: activity_code(r[2]),
                journey_id: r[1].to_owned(),
                occur_time: Some(Timestamp {
                    seconds: time.timestamp(),
                    nanos: 0,
                }),
                staff_ref: r[5].to_owned(),
                source: "sepsis".into(),
                external_id: r[0].to_owned(),
                ..Default::default()
            }
        })
        .collect();
    // In file order, so that events sharing a timestamp keep the log's order.
    let batches: Vec<pb::IngestEncountersRequest> = encounters
        .chunks(1000)
        .map(|chunk| pb::IngestEncountersRequest {
            encounters: chunk.to_vec(),
        })
        .collect();
    let ingested = app
        .encounters()
        .await
        .ingest_encounters(authed(key, tokio_stream::iter(batches)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((ingested.accepted, ingested.rejected), (15_214, 0));

    let scope = pb::AnalysisScope {
        start_time: Some(Timestamp {
            seconds: 1_356_998_400, // 2013-01-01
            nanos: 0,
        }),
        end_time: Some(Timestamp {
            seconds: 1_451_606_400, // 2016-01-01
            nanos: 0,
        }),
        ..Default::default()
    };
    let cycle = mot_cycle(&app, key, scope, 10).await;

    let name: HashMap<String, &str> = activities.iter().map(|a| (activity_code(a), *a)).collect();
    let int = |v: &serde_json::Value| v.as_i64().unwrap();
    assert_eq!(cycle.journeys, int(&reference["n_cases"]));
    assert_eq!(cycle.encounters, int(&reference["n_events"]));
    assert_eq!(cycle.variant_count, int(&reference["n_variants"]));
    assert_eq!(
        cycle.transitions,
        int(&reference["dfg_total_arc_frequency"])
    );

    let ends = |list: &[pb::TouchpointCount]| -> HashMap<String, i64> {
        list.iter()
            .map(|c| (name[&c.touchpoint_code].to_owned(), c.journeys))
            .collect()
    };
    let expected = |key: &str| -> HashMap<String, i64> {
        reference[key]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), int(v)))
            .collect()
    };
    assert_eq!(ends(&cycle.start_touchpoints), expected("start_activities"));
    assert_eq!(ends(&cycle.end_touchpoints), expected("end_activities"));

    let reference_pairs = reference["performance_dfg_seconds"].as_array().unwrap();
    assert_eq!(cycle.pairs.len(), reference_pairs.len());
    assert_eq!(cycle.pairs.len(), int(&reference["n_dfg_edges"]) as usize);
    let pairs: HashMap<(&str, &str), &pb::TouchpointPair> = cycle
        .pairs
        .iter()
        .map(|p| {
            (
                (name[&p.from_touchpoint_code], name[&p.to_touchpoint_code]),
                p,
            )
        })
        .collect();
    for expected in reference_pairs {
        let from = expected["from"].as_str().unwrap();
        let to = expected["to"].as_str().unwrap();
        let pair = pairs
            .get(&(from, to))
            .unwrap_or_else(|| panic!("missing pair {from} -> {to}"));
        assert_eq!(pair.count, int(&expected["count"]), "{from} -> {to}");
        let close =
            |actual: f64, wanted: f64| (actual - wanted).abs() <= 1e-6 * wanted.abs().max(1.0);
        let mean = expected["mean"].as_f64().unwrap();
        let median = expected["median"].as_f64().unwrap();
        assert!(
            close(pair.mean_seconds, mean),
            "{from} -> {to}: mean {} vs {mean}",
            pair.mean_seconds
        );
        assert!(
            close(pair.median_seconds, median),
            "{from} -> {to}: median {} vs {median}",
            pair.median_seconds
        );
    }

    // The top variants: counts rank by rank; the path too where no other
    // variant shares the count (the reference ranks ties its own way).
    let top = reference["top10_variants"].as_array().unwrap();
    let counts: Vec<i64> = top.iter().map(|v| int(&v["count"])).collect();
    for (variant, expected) in cycle.variants.iter().zip(top) {
        assert_eq!(variant.journeys, int(&expected["count"]));
        if counts.iter().filter(|c| **c == variant.journeys).count() == 1 {
            let path: Vec<&str> = variant.touchpoint_codes.iter().map(|c| name[c]).collect();
            let wanted: Vec<&str> = expected["activities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(path, wanted);
        }
    }
    assert_eq!(cycle.variants.len(), 10);
}

fn answered(overall: Option<i32>, recommend: Option<i32>) -> pb::JourneyFeedback {
    pb::JourneyFeedback {
        overall_satisfaction: overall,
        likelihood_to_recommend: recommend,
        complete_time: Some(at(3600)),
        ..Default::default()
    }
}

#[tokio::test]
async fn journey_outcomes_set_perfect_journeys_against_flawed_ones() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    scorecard_fixture(&app, key).await;
    // j1 is perfect, j2 (two failures) and j3 (one, at the desk) flawed;
    // j4's one encounter has no rating and no standard applied to it: it
    // has nothing to judge, and is neither. j0 happened the day before.
    for (journey, overall, recommend) in [
        ("j1", Some(5), Some(10)),
        ("j4", Some(4), Some(8)),
        ("j2", Some(2), Some(3)),
        ("j3", None, Some(9)),
        ("j0", Some(1), Some(0)),
    ] {
        record_feedback(&app, key, journey, answered(overall, recommend))
            .await
            .unwrap();
    }

    let outcomes = app
        .analyses()
        .await
        .get_journey_outcomes(authed(
            key,
            pb::GetJourneyOutcomesRequest {
                scope: Some(fixture_day()),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    assert!(!outcomes.no_data);
    assert_eq!(outcomes.journeys, 4);
    assert_eq!(outcomes.judged_journeys, 3);
    assert_rate(&outcomes.perfect_share, 1, 3);
    // Scores: j1 (5 and 3: mean 4) 75; j2 and j3 0; j4 has no rating.
    assert_close(outcomes.mean_score, 25.0);

    let perfect = outcomes.perfect.unwrap();
    assert_eq!((perfect.journeys, perfect.scored_journeys), (1, 1));
    assert_close(perfect.mean_score, 75.0);
    assert_eq!(perfect.journeys_with_feedback, 1);
    assert_close(perfect.mean_overall_satisfaction, 5.0);
    assert_rate(&perfect.overall_csat, 1, 1);
    let nps = perfect.nps.unwrap();
    assert_eq!(
        (nps.respondents, nps.promoters, nps.passives, nps.detractors),
        (1, 1, 0, 0)
    );
    assert_close(nps.score, 100.0);

    let flawed = outcomes.flawed.unwrap();
    assert_eq!((flawed.journeys, flawed.scored_journeys), (2, 2));
    assert_close(flawed.mean_score, 0.0);
    assert_eq!(flawed.journeys_with_feedback, 2);
    assert_close(flawed.mean_overall_satisfaction, 2.0);
    assert_rate(&flawed.overall_csat, 0, 1);
    let nps = flawed.nps.unwrap();
    assert_eq!(
        (nps.respondents, nps.promoters, nps.passives, nps.detractors),
        (2, 1, 0, 1)
    );
    assert_close(nps.score, 0.0);

    assert_eq!(outcomes.single_failure_journeys, 1);
    assert_eq!(outcomes.single_failure_touchpoints.len(), 1);
    let only = &outcomes.single_failure_touchpoints[0];
    assert_eq!((only.touchpoint_code.as_str(), only.journeys), ("desk", 1));
    assert_rate(&only.share, 1, 1);
}

#[tokio::test]
async fn journeys_with_nothing_rated_or_evaluated_are_neither_perfect_nor_flawed() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    create_touchpoint(&app, key, keyed("desk", 10, true)).await;
    create_touchpoint(&app, key, keyed("lab", 20, true)).await;
    // An event log: where and when, nothing rated, no standards.
    for journey in 0..5 {
        for (step, code) in ["desk", "lab"].into_iter().enumerate() {
            let time = at(journey * 600 + step as i64 * 60);
            let id = format!("{journey}-{step}");
            record(
                &app,
                key,
                event(code, &format!("j{journey}"), &id, time, Measured::default()),
            )
            .await;
        }
    }
    let outcomes = async |app: &TestApp| {
        app.analyses()
            .await
            .get_journey_outcomes(authed(
                key,
                pb::GetJourneyOutcomesRequest {
                    scope: Some(fixture_day()),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    };

    let unrated = outcomes(&app).await;
    assert!(!unrated.no_data);
    assert_eq!((unrated.journeys, unrated.judged_journeys), (5, 0));
    assert_rate(&unrated.perfect_share, 0, 0);
    assert_eq!(unrated.perfect.unwrap().journeys, 0);
    assert_eq!(unrated.flawed.unwrap().journeys, 0);
    assert_eq!(unrated.mean_score, None);

    // One rating judges its journey; a standard met judges another.
    let rated = pb::Encounter {
        satisfaction: Some(5),
        ..event("desk", "j0", "rated", at(30), Measured::default())
    };
    record(&app, key, rated).await;
    let mut greet = standard("greet", "lab");
    greet.rule = Some(pb::standard::Rule::ObservedRule(pb::ObservedRule {}));
    create_standard(&app, key, greet).await;
    let observed = pb::Encounter {
        observations: vec![pb::Observation {
            standard_code: "greet".into(),
            met: true,
            ..Default::default()
        }],
        ..event("lab", "j1", "observed", at(700), Measured::default())
    };
    record(&app, key, observed).await;
    let judged = outcomes(&app).await;
    assert_eq!((judged.journeys, judged.judged_journeys), (5, 2));
    assert_rate(&judged.perfect_share, 2, 2);
    assert_eq!(judged.perfect.unwrap().journeys, 2);
}

#[tokio::test]
async fn percentiles_carry_no_float_noise() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    create_touchpoint(&app, key, touchpoint("desk")).await;
    // p90 of 0, 0, 3 seconds: 0 + 0.8 * 3, which binary floating point
    // makes 2.4000000000000004.
    for (n, wait) in [0, 0, 3].into_iter().enumerate() {
        let measured = Measured {
            wait: Some(wait),
            ..Measured::default()
        };
        record(
            &app,
            key,
            event("desk", "j", &n.to_string(), at(n as i64), measured),
        )
        .await;
    }
    let card = scorecard(&app, key, fixture_day()).await;
    let waits = card.total.unwrap().wait_seconds.unwrap();
    assert_eq!(waits.p90, Some(2.4));
    assert_eq!(format!("{:?}", waits.p90), "Some(2.4)");
}

#[tokio::test]
async fn the_guideline_breakdown_counts_each_situation_and_ordinary_contacts() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    create_touchpoint(&app, key, touchpoint("desk")).await;
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
        record(&app, key, e).await;
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
    create_touchpoint(&app, key, keyed("desk", 10, true)).await;
    create_touchpoint(&app, key, keyed("lobby", 20, false)).await;
    create_standard(&app, key, standard("greet-15s", "desk")).await;
    let mut wait = standard("wait-5min", "");
    wait.element = pb::Element::Software.into();
    wait.severity = pb::Severity::Minor.into();
    wait.rule = crate::helpers::metric_rule(
        pb::MetricField::WaitSeconds,
        pb::Comparison::LessOrEqual,
        300.0,
    );
    create_standard(&app, key, wait).await;
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
    let cases = all_cases(&app, key).await;
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
    update_case(&app, key, resolve(&by_satisfaction(4, "desk"), 3), &paths)
        .await
        .unwrap();
    update_case(&app, key, resolve(&by_satisfaction(2, "desk"), 4), &paths)
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
                    pb::GetRecoveryPerformanceRequest { scope: Some(scope) },
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

#[tokio::test]
async fn first_impressions_read_the_first_contact_of_each_journey() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    create_touchpoint(&app, key, keyed("guard", 10, true)).await;
    create_touchpoint(&app, key, keyed("desk", 20, true)).await;
    let response = |seconds| Measured {
        first_response: seconds,
        ..Measured::default()
    };
    for e in [
        event("guard", "J1", "1", at(0), response(Some(3))),
        event("desk", "J1", "2", at(10), response(Some(20))),
        event("guard", "J2", "3", at(0), response(Some(12))),
        event("desk", "J2", "4", at(60), response(None)),
        event("desk", "J3", "5", at(0), response(Some(40))),
        event("guard", "J4", "6", at(0), response(None)),
        event("desk", "J4", "7", at(5), response(Some(1))),
        event("desk", "J5", "8", at(0), response(Some(15))),
    ] {
        record(&app, key, e).await;
    }
    let first_impressions = || async {
        app.analyses()
            .await
            .get_first_impressions(authed(
                key,
                pb::GetFirstImpressionsRequest {
                    scope: Some(fixture_day()),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    };

    let seen = first_impressions().await;

    assert!(!seen.no_data);
    assert_eq!(seen.journeys, 5);
    assert_eq!(seen.window.unwrap().seconds, 15);
    // First contacts: J1 3 s, J2 12 s, J3 40 s, J4 not measured, J5 15 s.
    // Sorted 3, 12, 15, 40: median 13.5; p90 at rank 2.7 = 15 + 0.7 * 25.
    assert_distribution(&seen.first_response_seconds, 4, Some(13.5), Some(32.5));
    let buckets: Vec<(i64, Option<i64>, i64)> = seen
        .buckets
        .iter()
        .map(|b| (b.min_seconds, b.max_seconds, b.journeys))
        .collect();
    assert_eq!(
        buckets,
        [
            (0, Some(5), 1),
            (5, Some(10), 0),
            (10, Some(15), 1),
            (15, Some(30), 1),
            (30, Some(60), 1),
            (60, Some(300), 0),
            (300, None, 0),
        ]
    );
    assert_rate(&seen.buckets[0].share, 1, 4);
    // 3, 12 and 15 are within 15 s.
    assert_rate(&seen.greeted_within_window, 3, 4);
    // Within 15 s of the first contact: J1 guard and desk (10 s), J2 guard,
    // J3 desk, J4 guard and desk (5 s), J5 desk.
    let met: Vec<(&str, i64)> = seen
        .touchpoints_in_window
        .iter()
        .map(|c| (c.touchpoint_code.as_str(), c.journeys))
        .collect();
    assert_eq!(met, [("desk", 4), ("guard", 3)]);
    assert_rate(&seen.touchpoints_in_window[0].share, 4, 5);

    app.organisations()
        .await
        .update_organisation(authed(
            key,
            pb::UpdateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    first_impression_window: Some(prost_types::Duration {
                        seconds: 10,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["first_impression_window".into()],
                }),
            },
        ))
        .await
        .unwrap();
    let stricter = first_impressions().await;
    assert_eq!(stricter.window.unwrap().seconds, 10);
    assert_rate(&stricter.greeted_within_window, 1, 4);
    let met: Vec<(&str, i64)> = stricter
        .touchpoints_in_window
        .iter()
        .map(|c| (c.touchpoint_code.as_str(), c.journeys))
        .collect();
    assert_eq!(met, [("desk", 4), ("guard", 3)]);
}

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
                    pb::GetRecoveryPerformanceRequest { scope: s() },
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

pub(crate) async fn trend(
    app: &TestApp,
    key: &str,
    request: pb::GetTrendRequest,
) -> Result<pb::GetTrendResponse, tonic::Status> {
    app.analyses()
        .await
        .get_trend(authed(key, request))
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) fn points(series: &pb::TrendSeries) -> Vec<(i64, Option<f64>, i64)> {
    series
        .points
        .iter()
        .map(|p| {
            (
                p.bucket_start.as_ref().unwrap().seconds,
                p.value,
                p.denominator,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_trend_cuts_days_weeks_and_months_in_the_organisations_time_zone() {
    let app = spawn_app().await;
    // The organisation is in Asia/Seoul, nine hours ahead of UTC.
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    create_touchpoint(&app, key, keyed("desk", 10, true)).await;
    create_touchpoint(&app, key, keyed("lobby", 20, false)).await;
    let rated = |s| Measured {
        satisfaction: Some(s),
        ..Measured::default()
    };
    for e in [
        // 2026-06-01 18:00 in Seoul
        event("desk", "j1", "1", at(0), rated(5)),
        // 2026-06-02 01:00 and 02:00 in Seoul: the next day there, though
        // still June 1st in UTC
        event("desk", "j2", "2", at(7 * 3600), rated(3)),
        event("lobby", "j2", "3", at(8 * 3600), rated(4)),
    ] {
        record(&app, key, e).await;
    }
    // Midnight June 1st to midnight June 4th in Seoul.
    let june_1 = 1_780_239_600; // 2026-05-31T15:00:00Z
    let day = 86_400;
    let scope = pb::AnalysisScope {
        start_time: Some(Timestamp {
            seconds: june_1,
            nanos: 0,
        }),
        end_time: Some(Timestamp {
            seconds: june_1 + 3 * day,
            nanos: 0,
        }),
        ..Default::default()
    };

    let daily = trend(
        &app,
        key,
        pb::GetTrendRequest {
            scope: Some(scope.clone()),
            figure: pb::TrendFigure::MeanSatisfaction.into(),
            granularity: pb::Granularity::Day.into(),
            per_touchpoint: true,
        },
    )
    .await
    .unwrap();
    assert!(!daily.no_data);
    assert_eq!(daily.time_zone, "Asia/Seoul");
    let codes: Vec<&str> = daily
        .series
        .iter()
        .map(|s| s.touchpoint_code.as_str())
        .collect();
    assert_eq!(codes, ["", "desk", "lobby"]);
    assert_eq!(
        points(&daily.series[0]),
        [
            (june_1, Some(5.0), 1),
            (june_1 + day, Some(3.5), 2),
            (june_1 + 2 * day, None, 0),
        ]
    );
    assert_eq!(
        points(&daily.series[1]),
        [
            (june_1, Some(5.0), 1),
            (june_1 + day, Some(3.0), 1),
            (june_1 + 2 * day, None, 0),
        ]
    );
    assert_eq!(
        points(&daily.series[2]),
        [
            (june_1, None, 0),
            (june_1 + day, Some(4.0), 1),
            (june_1 + 2 * day, None, 0),
        ]
    );

    // June 1st 2026 is a Monday: one week, one month, both starting then.
    for granularity in [pb::Granularity::Week, pb::Granularity::Month] {
        let coarse = trend(
            &app,
            key,
            pb::GetTrendRequest {
                scope: Some(scope.clone()),
                figure: pb::TrendFigure::Encounters.into(),
                granularity: granularity.into(),
                per_touchpoint: false,
            },
        )
        .await
        .unwrap();
        assert_eq!(coarse.series.len(), 1);
        assert_eq!(points(&coarse.series[0]), [(june_1, Some(3.0), 3)]);
    }

    // Medians read the sorted measures: none was measured here.
    let waits = trend(
        &app,
        key,
        pb::GetTrendRequest {
            scope: Some(scope.clone()),
            figure: pb::TrendFigure::WaitMedian.into(),
            granularity: pb::Granularity::Day.into(),
            per_touchpoint: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        points(&waits.series[0]),
        [
            (june_1, None, 0),
            (june_1 + day, None, 0),
            (june_1 + 2 * day, None, 0),
        ]
    );

    let status = trend(&app, key, pb::GetTrendRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["figure"]);
    let status = trend(
        &app,
        key,
        pb::GetTrendRequest {
            scope: Some(pb::AnalysisScope {
                start_time: Some(at(-2000 * day)),
                end_time: Some(at(0)),
                ..Default::default()
            }),
            figure: pb::TrendFigure::Csat.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["granularity"]);
}

#[tokio::test]
async fn the_priority_matrix_places_touchpoints_by_importance_and_performance() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    for (code, position) in [("a", 10), ("b", 20), ("c", 30), ("d", 40), ("e", 50)] {
        create_touchpoint(&app, key, keyed(code, position, false)).await;
    }
    // Overall satisfaction of journeys J1, J2, J3: 5, 3, 1. Per touchpoint,
    // its satisfaction in J1, J2, J3:
    //   a 5 3 1: correlation 1, mean 3
    //   b 2 3 4: correlation -1, mean 3
    //   c 5 5 4: correlation sqrt(3)/2, mean 14/3
    //   e 4 5 5: correlation -sqrt(3)/2, mean 14/3
    //   d 1 2 -: only two journeys, no importance; mean 1.5
    let ratings = [
        ("a", [Some(5), Some(3), Some(1)]),
        ("b", [Some(2), Some(3), Some(4)]),
        ("c", [Some(5), Some(5), Some(4)]),
        ("d", [Some(1), Some(2), None]),
        ("e", [Some(4), Some(5), Some(5)]),
    ];
    let mut n = 0;
    for (code, by_journey) in ratings {
        for (journey, satisfaction) in ["J1", "J2", "J3"].into_iter().zip(by_journey) {
            let Some(satisfaction) = satisfaction else {
                continue;
            };
            n += 1;
            let measured = Measured {
                satisfaction: Some(satisfaction),
                ..Measured::default()
            };
            record(
                &app,
                key,
                event(code, journey, &n.to_string(), at(n), measured),
            )
            .await;
        }
    }
    for (journey, overall) in [("J1", 5), ("J2", 3), ("J3", 1)] {
        record_feedback(&app, key, journey, answered(Some(overall), None))
            .await
            .unwrap();
    }

    let matrix = app
        .analyses()
        .await
        .get_priority_matrix(authed(
            key,
            pb::GetPriorityMatrixRequest {
                scope: Some(fixture_day()),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    assert!(!matrix.no_data);
    let half_root_3 = 3f64.sqrt() / 2.0;
    // Placed: a, b, c, e. Mean importance (1 - 1 + r - r) / 4 = 0; mean
    // performance (3 + 3 + 14/3 + 14/3) / 4 = 23/6.
    assert!(matrix.importance_split.unwrap().abs() < 1e-9);
    assert_close(matrix.performance_split, 23.0 / 6.0);
    let rows: Vec<(&str, i64, i64, pb::Quadrant)> = matrix
        .touchpoints
        .iter()
        .map(|r| (r.touchpoint_code.as_str(), r.rated, r.pairs, r.quadrant()))
        .collect();
    assert_eq!(
        rows,
        [
            ("a", 3, 3, pb::Quadrant::ConcentrateHere),
            ("b", 3, 3, pb::Quadrant::LowPriority),
            ("c", 3, 3, pb::Quadrant::KeepUpTheGoodWork),
            ("d", 2, 2, pb::Quadrant::Unspecified),
            ("e", 3, 3, pb::Quadrant::PossibleOverkill),
        ]
    );
    let t = &matrix.touchpoints;
    assert_close(t[0].importance, 1.0);
    assert_close(t[0].performance, 3.0);
    assert_close(t[1].importance, -1.0);
    assert_close(t[2].importance, half_root_3);
    assert_close(t[2].performance, 14.0 / 3.0);
    assert_eq!(t[3].importance, None);
    assert_close(t[3].performance, 1.5);
    assert_close(t[4].importance, -half_root_3);
}

async fn export(app: &TestApp, key: &str, format: pb::EventLogFormat) -> String {
    export_scope(app, key, format, fixture_day()).await
}

async fn export_scope(
    app: &TestApp,
    key: &str,
    format: pb::EventLogFormat,
    scope: pb::AnalysisScope,
) -> String {
    let mut stream = app
        .analyses()
        .await
        .export_event_log(authed(
            key,
            pb::ExportEventLogRequest {
                scope: Some(scope),
                format: format.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(piece) = stream.message().await.unwrap() {
        bytes.extend(piece.chunk);
    }
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn the_event_log_exports_as_csv_and_xes() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    create_touchpoint(&app, key, touchpoint("desk")).await;
    create_touchpoint(&app, key, touchpoint("lobby")).await;
    let served_by = |code: &str, journey: &str, id: &str, time, staff: &str| pb::Encounter {
        staff_ref: staff.into(),
        ..event(code, journey, id, time, Measured::default())
    };
    for e in [
        served_by("desk", "A", "1", at(60), "kim"),
        served_by("lobby", "A", "2", at(0), ""),
        served_by("desk", "B,2", "3", at(0), "kim & lee"),
        served_by("lobby", "D \"the\" one", "5", at(30), "park"),
        // Two at the same second: the sequence keeps their arrival order.
        served_by("lobby", "T", "6", at(40), ""),
        served_by("desk", "T", "7", at(40), ""),
        // The day before: not exported.
        served_by("desk", "C", "4", at(-86_400), ""),
    ] {
        record(&app, key, e).await;
    }

    // In the organisation's zone (Asia/Seoul), with its offset, so that a
    // tool's days are the organisation's.
    let csv = export(&app, key, pb::EventLogFormat::Unspecified).await;
    assert_eq!(
        csv,
        "case_id,activity,timestamp,resource,activity_name,sequence\n\
         A,lobby,2026-06-01T18:00:00.000000+09:00,,Touchpoint lobby,1\n\
         A,desk,2026-06-01T18:01:00.000000+09:00,kim,Touchpoint desk,2\n\
         \"B,2\",desk,2026-06-01T18:00:00.000000+09:00,kim & lee,Touchpoint desk,1\n\
         \"D \"\"the\"\" one\",lobby,2026-06-01T18:00:30.000000+09:00,park,Touchpoint lobby,1\n\
         T,lobby,2026-06-01T18:00:40.000000+09:00,,Touchpoint lobby,1\n\
         T,desk,2026-06-01T18:00:40.000000+09:00,,Touchpoint desk,2\n"
    );

    let xes = export(&app, key, pb::EventLogFormat::Xes).await;
    assert!(xes.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<log "));
    assert!(xes.ends_with("</log>\n"));
    assert_eq!(xes.matches("<trace>").count(), 4);
    assert_eq!(xes.matches("</trace>").count(), 4);
    assert_eq!(xes.matches("<event>").count(), 6);
    assert!(
        xes.contains("<date key=\"time:timestamp\" value=\"2026-06-01T18:01:00.000000+09:00\"/>")
    );
    assert!(xes.contains("<string key=\"activity_name\" value=\"Touchpoint desk\"/>"));
    assert!(xes.contains("<int key=\"sequence\" value=\"2\"/>"));
    assert!(xes.contains("<string key=\"concept:name\" value=\"B,2\"/>"));
    assert!(xes.contains("<string key=\"org:resource\" value=\"kim &amp; lee\"/>"));
    let a = xes.find("value=\"lobby\"").unwrap();
    let b = xes.find("value=\"desk\"").unwrap();
    assert!(a < b, "journey A's events are in time order");

    let ingest = app.key(&org, Role::Ingest).await;
    let status = app
        .analyses()
        .await
        .export_event_log(authed(&ingest, pb::ExportEventLogRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    let other = app.create_org("Hospital B").await;
    let theirs = export(&app, &other.admin_key, pb::EventLogFormat::Csv).await;
    assert_eq!(
        theirs,
        "case_id,activity,timestamp,resource,activity_name,sequence\n"
    );
}

#[tokio::test]
async fn the_event_log_keeps_to_the_scopes_filters() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    let desk = create_touchpoint(&app, key, touchpoint("desk")).await;
    create_touchpoint(
        &app,
        key,
        pb::Touchpoint {
            stage: pb::Stage::PreService.into(),
            ..touchpoint("booking")
        },
    )
    .await;
    for e in [
        event("booking", "A", "1", at(0), Measured::default()),
        event("desk", "A", "2", at(60), Measured::default()),
        pb::Encounter {
            channel: pb::Channel::Phone.into(),
            ..event("desk", "B", "3", at(120), Measured::default())
        },
    ] {
        record(&app, key, e).await;
    }
    let header = "case_id,activity,timestamp,resource,activity_name,sequence\n";
    let scoped = |f: fn(&mut pb::AnalysisScope)| {
        let mut scope = fixture_day();
        f(&mut scope);
        scope
    };

    let pre_service = scoped(|s| s.stage = pb::Stage::PreService.into());
    assert_eq!(
        export_scope(&app, key, pb::EventLogFormat::Csv, pre_service).await,
        format!("{header}A,booking,2026-06-01T18:00:00.000000+09:00,,Touchpoint booking,1\n")
    );
    let mut at_desk = fixture_day();
    at_desk.touchpoint_ids = vec![desk.id.clone()];
    assert_eq!(
        export_scope(&app, key, pb::EventLogFormat::Csv, at_desk).await,
        format!(
            "{header}A,desk,2026-06-01T18:01:00.000000+09:00,,Touchpoint desk,1\n\
             B,desk,2026-06-01T18:02:00.000000+09:00,,Touchpoint desk,1\n"
        )
    );
    let by_phone = scoped(|s| s.channel = pb::Channel::Phone.into());
    let xes = export_scope(&app, key, pb::EventLogFormat::Xes, by_phone).await;
    assert_eq!(xes.matches("<event>").count(), 1);
    assert!(xes.contains("<string key=\"concept:name\" value=\"B\"/>"));
    assert!(
        xes.contains("<date key=\"time:timestamp\" value=\"2026-06-01T18:02:00.000000+09:00\"/>")
    );
}
