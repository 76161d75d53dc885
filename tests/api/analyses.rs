//! The analyses over small fixtures whose every figure is worked out by
//! hand here, and the MOT cycle of a real hospital log against the figures
//! an established process-mining library computed from it.

use std::collections::HashMap;

use prost_types::Timestamp;
use tonic::Code;
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::{
    encounters::{minutes_ago, record},
    helpers::{
        TestApp, assert_error, authed, create_standard, create_touchpoint, spawn_app, standard,
        touchpoint, violated_fields,
    },
};

/// 2026-06-01T09:00:00Z, and `seconds` after it.
fn at(seconds: i64) -> Timestamp {
    Timestamp {
        seconds: 1_780_304_400 + seconds,
        nanos: 0,
    }
}

/// The day of the fixtures: 2026-06-01, all day.
fn fixture_day() -> pb::AnalysisScope {
    pb::AnalysisScope {
        start_time: Some(at(-9 * 3600)),
        end_time: Some(at(15 * 3600)),
        ..Default::default()
    }
}

#[derive(Default)]
struct Measured {
    satisfaction: Option<i32>,
    wait: Option<i64>,
    first_response: Option<i64>,
}

fn event(code: &str, journey: &str, id: &str, time: Timestamp, m: Measured) -> pb::Encounter {
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

fn keyed(code: &str, position: i32, key: bool) -> pb::Touchpoint {
    pb::Touchpoint {
        cycle_position: position,
        key,
        ..touchpoint(code)
    }
}

async fn scorecard(app: &TestApp, key: &str, scope: pb::AnalysisScope) -> pb::GetScorecardResponse {
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
            },
        ))
        .await
        .expect("get_mot_cycle failed")
        .into_inner()
}

#[track_caller]
fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or_else(|| panic!("expected {expected}, got nothing"));
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "expected {expected}, got {actual}"
    );
}

#[track_caller]
fn assert_rate(rate: &Option<pb::Rate>, numerator: i64, denominator: i64) {
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
async fn scorecard_fixture(app: &TestApp, key: &str) {
    create_touchpoint(app, key, keyed("desk", 10, true)).await;
    create_touchpoint(app, key, keyed("lobby", 20, false)).await;
    create_standard(app, key, standard("greet-15s", "desk")).await;
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

    // Even naming A's touchpoint, B sees nothing of A's.
    let scope = pb::AnalysisScope {
        touchpoint_ids: vec![a_desk.id.clone()],
        ..fixture_day()
    };
    let card = scorecard(&app, &b.admin_key, scope.clone()).await;
    assert!(card.no_data);
    assert!(card.touchpoints.is_empty());
    let cycle = mot_cycle(&app, &b.admin_key, scope, 0).await;
    assert!(cycle.no_data);
    assert!(cycle.pairs.is_empty());
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
