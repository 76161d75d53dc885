//! The daily rollups: scopes with more encounters than the server's
//! exact-percentile limit read them, and must give the figures the
//! encounters themselves give. These servers have the limit at 0, so every
//! scope with a whole day in it reads the rollups.

use std::{collections::HashMap, time::Duration};

use uuid::Uuid;
use verdad::{
    domain::histogram::bucket_floor,
    proto::verdad::v1::{self as pb, analysis_service_client::AnalysisServiceClient},
};

use crate::helpers::{
    Measured, Org, TestApp, assert_close, assert_rate, at, authed, encounter, event, fixture_day,
    keyed, points, scorecard_fixture, spawn_app, spawn_app_with, to_the_ninth,
};

/// Reads the rollups for every scope with a whole day, and leaves every
/// change pending until an analysis folds it in: the background applier
/// waits an hour.
async fn rolling_app() -> TestApp {
    spawn_app_with(|settings| {
        settings.exact_percentile_limit = 0;
        settings.rollup_delay = Duration::from_secs(3600);
    })
    .await
}

/// Changes waiting for the rollups, by organisation (read as the owner,
/// past row-level security).
async fn pending(app: &TestApp) -> HashMap<Uuid, i64> {
    sqlx::query_as("select organisation_id, count(*) from rollup_pending group by 1")
        .fetch_all(&mut app.owner_connection().await)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// A distribution read from the histograms: flagged, with the count exact.
#[track_caller]
fn assert_approximate(d: &Option<pb::Distribution>, count: i64, median: f64, p90: f64) {
    let d = d.as_ref().expect("no distribution");
    assert!(d.approximate, "not flagged as approximate");
    assert_eq!(d.count, count);
    assert_close(d.median, median);
    assert_close(d.p90, p90);
}

#[tokio::test]
async fn the_rollups_give_the_scorecard_and_trend_the_figures_of_the_encounters() {
    let app = rolling_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.set_time_zone(key, "UTC").await;
    scorecard_fixture(&app, key).await;

    // In UTC the fixture day is one whole day: every figure comes from the
    // rollups, and the counts and rates are those of the exact scorecard
    // (see analyses::the_scorecard_gives_each_touchpoint_and_the_total_their_figures).
    let card = app.scorecard(key, fixture_day()).await;
    let desk = &card.touchpoints[0];
    assert_eq!(desk.encounters, 4);
    assert_close(desk.mean_satisfaction, 11.0 / 3.0);
    assert_rate(&desk.csat, 2, 3);
    assert_rate(&desk.top_box, 1, 3);
    assert_rate(&desk.failure_rate, 2, 4);
    assert_rate(&desk.compliance, 2, 3);
    // Waits 100, 200, 300 fall in buckets standing for 100, 200.5 (200 and
    // 201) and 301.5 (300 to 303): median 200.5, p90 200.5 + 0.8 * 101.
    assert_approximate(&desk.wait_seconds, 3, 200.5, 281.3);
    // First responses under 128 s are exact.
    assert_approximate(&desk.first_response_seconds, 3, 10.0, 18.0);
    let lobby = &card.touchpoints[1];
    assert_eq!(lobby.encounters, 2);
    assert_close(lobby.mean_satisfaction, 2.0);
    // 600 lies in [600, 608).
    assert_approximate(&lobby.wait_seconds, 1, 603.5, 603.5);
    let total = card.total.as_ref().unwrap();
    assert_eq!(total.encounters, 6);
    assert_close(total.mean_satisfaction, 3.0);
    assert_rate(&total.csat, 2, 5);
    assert_rate(&total.failure_rate, 3, 6);
    // 100, 200.5, 301.5, 603.5: median (200.5 + 301.5) / 2; p90 at rank
    // 2.7 = 301.5 + 0.7 * 302.
    assert_approximate(&total.wait_seconds, 4, 251.0, 512.9);

    // From 22:00 the day before: the fixture day from the rollups, the two
    // hours before it from the encounters, which hold j0's visit to the
    // desk at 23:00 (satisfaction 1, wait 9000 s: bucket [8960, 9088)).
    let wider = app
        .scorecard(
            key,
            pb::AnalysisScope {
                start_time: Some(at(-11 * 3600)),
                ..fixture_day()
            },
        )
        .await;
    assert_eq!(wider.total.as_ref().unwrap().encounters, 7);
    let desk = &wider.touchpoints[0];
    assert_eq!(desk.encounters, 5);
    assert_close(desk.mean_satisfaction, 12.0 / 4.0);
    assert_approximate(&desk.wait_seconds, 4, 251.0, 301.5 + 0.7 * 8722.0);

    // Day by day over May 31st and June 1st, both whole days.
    let by_day = |figure: pb::TrendFigure| pb::GetTrendRequest {
        scope: Some(pb::AnalysisScope {
            start_time: Some(at(-33 * 3600)),
            ..fixture_day()
        }),
        figure: figure.into(),
        granularity: pb::Granularity::Day.into(),
        per_touchpoint: true,
    };
    let may_31 = at(-33 * 3600).seconds;
    let june_1 = may_31 + 86_400;
    let counts = app
        .trend(key, by_day(pb::TrendFigure::Encounters))
        .await
        .unwrap();
    assert_eq!(
        points(&counts.series[0]),
        [(may_31, Some(1.0), 1), (june_1, Some(6.0), 6)]
    );
    assert_eq!(counts.series[1].touchpoint_code, "desk");
    assert_eq!(
        points(&counts.series[1]),
        [(may_31, Some(1.0), 1), (june_1, Some(4.0), 4)]
    );
    let waits = app
        .trend(key, by_day(pb::TrendFigure::WaitMedian))
        .await
        .unwrap();
    assert_eq!(
        points(&waits.series[0]),
        [(may_31, Some(9023.5), 1), (june_1, Some(251.0), 4)]
    );

    // Compliance from the rollups is the exact server's, with and without
    // an edge.
    let mut exact = app.exact_server().await;
    for scope in [
        fixture_day(),
        by_day(pb::TrendFigure::Encounters).scope.unwrap(),
    ] {
        let request = pb::GetComplianceReportRequest { scope: Some(scope) };
        let from_rollups = app
            .analyses()
            .await
            .get_compliance_report(authed(key, request.clone()))
            .await
            .unwrap()
            .into_inner();
        let from_encounters = exact
            .get_compliance_report(authed(key, request))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(from_rollups.standards.len(), 1);
        assert_eq!(from_rollups, from_encounters);
    }
}

#[tokio::test]
async fn the_rollups_follow_erasures_changes_of_time_zone_and_tenants() {
    let app = rolling_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.set_time_zone(key, "UTC").await;
    scorecard_fixture(&app, key).await;
    let mut visit = event(
        "desk",
        "j9",
        "9",
        at(30),
        Measured {
            satisfaction: Some(5),
            wait: Some(50),
            first_response: Some(3),
        },
    );
    visit.customer_ref = "patient-9".into();
    app.record(key, visit).await;
    let card = app.scorecard(key, fixture_day()).await;
    assert_eq!(card.total.unwrap().encounters, 7);
    assert_eq!(journeys_of(&app, key, fixture_day()).await, 5);

    app.erase(key, "patient-9").await.unwrap();
    assert_eq!(journeys_of(&app, key, fixture_day()).await, 4);
    let card = app.scorecard(key, fixture_day()).await;
    let desk = &card.touchpoints[0];
    assert_eq!(desk.encounters, 4);
    assert_close(desk.mean_satisfaction, 11.0 / 3.0);
    assert_approximate(&desk.first_response_seconds, 3, 10.0, 18.0);

    // Seoul's June 1st runs from 15:00 UTC on May 31st: it holds j0's visit
    // (23:00 UTC) and the fixture day's six. Rollups still cut at UTC
    // midnight would give the day six.
    app.set_time_zone(key, "Asia/Seoul").await;
    let seoul_june_1 = pb::AnalysisScope {
        start_time: Some(at(-18 * 3600)),
        end_time: Some(at(6 * 3600)),
        ..Default::default()
    };
    let card = app.scorecard(key, seoul_june_1.clone()).await;
    assert_eq!(card.total.as_ref().unwrap().encounters, 7);
    assert_eq!(journeys_of(&app, key, seoul_june_1.clone()).await, 5);
    assert!(card.total.unwrap().wait_seconds.unwrap().approximate);

    // Another organisation's key sees none of it.
    let other = app.create_org("Elsewhere").await;
    let card = app.scorecard(&other.admin_key, seoul_june_1).await;
    assert!(card.no_data);
    assert_eq!(card.total.unwrap().encounters, 0);
}

#[tokio::test]
async fn an_encounter_erased_right_after_it_was_recorded_leaves_the_rollups_as_they_were() {
    let app = rolling_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.set_time_zone(key, "UTC").await;
    scorecard_fixture(&app, key).await;
    // Recorded and erased before any analysis has read the day.
    let mut visit = event("desk", "j8", "8", at(40), Measured::default());
    visit.customer_ref = "patient-8".into();
    app.record(key, visit).await;
    app.erase(key, "patient-8").await.unwrap();

    let card = app.scorecard(key, fixture_day()).await;
    assert_eq!(card.total.unwrap().encounters, 6);
    assert_eq!(card.touchpoints[0].encounters, 4);
    assert_eq!(journeys_of(&app, key, fixture_day()).await, 4);
}

#[tokio::test]
async fn an_analysis_folds_in_its_own_organisations_pending_changes_only() {
    let app = rolling_app().await;
    let first = app.create_org("St. Mary").await;
    let second = app.create_org("St. Jude").await;
    for org in [&first, &second] {
        app.set_time_zone(&org.admin_key, "UTC").await;
        scorecard_fixture(&app, &org.admin_key).await;
    }
    // The fixture: j0's visit the evening before, six on the day.
    let waiting = pending(&app).await;
    assert_eq!(waiting.get(&first.id), Some(&7));
    assert_eq!(waiting.get(&second.id), Some(&7));

    let card = app.scorecard(&first.admin_key, fixture_day()).await;
    assert_eq!(card.total.unwrap().encounters, 6);
    assert_eq!(journeys_of(&app, &first.admin_key, fixture_day()).await, 4);
    let waiting = pending(&app).await;
    assert_eq!(waiting.get(&first.id), None);
    assert_eq!(waiting.get(&second.id), Some(&7));

    let card = app.scorecard(&second.admin_key, fixture_day()).await;
    assert_eq!(card.total.unwrap().encounters, 6);
    assert!(pending(&app).await.is_empty());
}

#[tokio::test]
async fn a_change_of_time_zone_counts_the_pending_changes_once() {
    let app = rolling_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.set_time_zone(key, "UTC").await;
    scorecard_fixture(&app, key).await;
    // Rebuilt with all seven pending: they are in the rebuild and no
    // longer pending.
    app.set_time_zone(key, "Asia/Seoul").await;
    assert!(pending(&app).await.is_empty());
    let seoul_june_1 = pb::AnalysisScope {
        start_time: Some(at(-18 * 3600)),
        end_time: Some(at(6 * 3600)),
        ..Default::default()
    };
    let card = app.scorecard(key, seoul_june_1.clone()).await;
    assert_eq!(card.total.unwrap().encounters, 7);
    assert_eq!(journeys_of(&app, key, seoul_june_1).await, 5);
}

#[tokio::test]
async fn an_erasure_folds_in_its_journeys_and_leaves_nothing_summarised_of_them() {
    let app = rolling_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.create_touchpoint(key, keyed("desk", 10, true)).await;
    app.create_touchpoint(key, keyed("lobby", 20, false)).await;
    let visit = |code: &str, journey: &str, id: &str, seconds: i64, customer: &str| {
        let measured = Measured {
            satisfaction: Some(4),
            wait: Some(50),
            first_response: Some(3),
        };
        let mut encounter = event(code, journey, id, at(seconds), measured);
        encounter.customer_ref = customer.into();
        encounter
    };
    app.record(key, visit("desk", "j9", "9a", 30, "patient-9"))
        .await;
    app.record(key, visit("lobby", "j9", "9b", 90, "patient-9"))
        .await;
    // Folded in: j9 has a summary and a pair.
    assert_eq!(journeys_of(&app, key, fixture_day()).await, 1);
    // Another patient's journey, still pending at the erasure.
    app.record(key, visit("desk", "j8", "8a", 40, "patient-8"))
        .await;
    app.record(key, visit("lobby", "j8", "8b", 95, "patient-8"))
        .await;

    app.erase(key, "patient-9").await.unwrap();
    // The erasure folded in its own journey's changes, not the others'.
    assert_eq!(pending(&app).await.get(&org.id), Some(&2));
    let mut owner = app.owner_connection().await;
    let left: (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from journey_path),
                (select coalesce(sum(encounters), 0)::int8 from encounter_day_seconds),
                (select coalesce(sum(encounters), 0)::int8 from encounter_day)",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(left, (0, 0, 0), "journeys, seconds, encounters");

    // j8 alone once folded in.
    assert_eq!(journeys_of(&app, key, fixture_day()).await, 1);
    assert_eq!(
        app.scorecard(key, fixture_day())
            .await
            .total
            .unwrap()
            .encounters,
        2
    );
}

#[tokio::test]
async fn changes_folded_in_one_at_a_time_give_the_figures_of_one_fold() {
    let app = rolling_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.set_time_zone(key, "UTC").await;
    scorecard_fixture(&app, key).await;
    let mut visit = event("desk", "j9", "9", at(30), Measured::default());
    visit.customer_ref = "patient-9".into();
    app.record(key, visit).await;
    // One change per transaction, for half of them.
    let mut owner = app.owner_connection().await;
    for _ in 0..4 {
        assert_eq!(TestApp::fold(&mut owner, org.id, 1).await, 1);
    }
    assert_eq!(pending(&app).await.get(&org.id), Some(&4));
    // Erased while its +1 may still be pending: folded with its -1.
    app.erase(key, "patient-9").await.unwrap();
    while TestApp::fold(&mut owner, org.id, 1).await > 0 {}
    assert!(pending(&app).await.is_empty());
    // As the fixture gives in one fold (the first test of this file).
    let card = app.scorecard(key, fixture_day()).await;
    let total = card.total.unwrap();
    assert_eq!(total.encounters, 6);
    assert_eq!(card.touchpoints[0].encounters, 4);
    assert_eq!(journeys_of(&app, key, fixture_day()).await, 4);
}

/// The journey rollups as they stand: every journey's row.
async fn journey_rollups(owner: &mut sqlx::PgConnection) -> Vec<String> {
    sqlx::query_scalar("select j::text from journey_path j order by journey_id")
        .fetch_all(&mut *owner)
        .await
        .unwrap()
}

/// The touchpoints of the journey tests, in their order.
const JOURNEY_CODES: [&str; 3] = ["desk", "lab", "pharmacy"];

/// A rolling app and an organisation in UTC with the JOURNEY_CODES
/// touchpoints.
async fn journey_organisation() -> (TestApp, Org) {
    let app = rolling_app().await;
    let org = app.create_org("St. Mary").await;
    app.set_time_zone(&org.admin_key, "UTC").await;
    for (position, code) in (10..).step_by(10).zip(JOURNEY_CODES) {
        app.create_touchpoint(&org.admin_key, keyed(code, position, true))
            .await;
    }
    (app, org)
}

/// Rebuilds the organisation's journey rollups from its encounters and
/// checks that they equal `folded` (from `journey_rollups`). A fold on
/// `owner` must have set the organisation on it, for row-level security.
async fn assert_a_rebuild_gives(
    owner: &mut sqlx::PgConnection,
    organisation: Uuid,
    folded: &[String],
) {
    sqlx::query("select verdad_rebuild_journey_rollups($1)")
        .bind(organisation)
        .execute(&mut *owner)
        .await
        .unwrap();
    let rebuilt = journey_rollups(owner).await;
    assert_eq!(folded, rebuilt, "journeys");
}

#[tokio::test]
async fn journeys_refreshed_piece_by_piece_equal_a_rebuild_from_the_encounters() {
    let (app, org) = journey_organisation().await;
    let key = &org.admin_key;
    // Near midnight, so that earlier arrivals move a journey's first day.
    let midnight = 15 * 3600;
    let visit = |journey: usize, round: usize, code: &str, seconds: i64| {
        let measured = Measured {
            satisfaction: Some(1 + ((journey + round) % 5) as i32),
            ..Default::default()
        };
        let mut encounter = event(
            code,
            &format!("j{journey}"),
            &format!("{journey}-{round}"),
            at(midnight + seconds),
            measured,
        );
        encounter.customer_ref = format!("patient-{}", journey % 4);
        encounter
    };
    // Each round adds an encounter to every journey: after, before, between
    // and tied with the ones before, then two after in one fold.
    let offsets = [300, 100, 500, 100, -400, 20, 900, 950];
    let mut owner = app.owner_connection().await;
    for (round, offset) in offsets.into_iter().enumerate() {
        let mut batch: Vec<pb::Encounter> = (0..12)
            .map(|j| {
                let seconds = offset + (j as i64) * 7;
                visit(j, round, JOURNEY_CODES[(j + round) % 3], seconds)
            })
            .collect();
        // One pair keeps its count and bucket and changes its seconds: desk
        // to lab in 1,003 s, then a desk 3 s in makes it 1,000 s.
        match round {
            0 => batch.extend([visit(20, 0, "desk", 0), visit(20, 1, "lab", 1003)]),
            1 => batch.push(visit(20, 2, "desk", 3)),
            _ => {}
        }
        app.ingest(key, vec![batch]).await.unwrap();
        match round {
            // Two rounds folded together.
            2 | 6 => {}
            // Three journeys erased (the erasure folds them in first); the
            // later rounds start them again.
            3 => {
                app.erase(key, "patient-1").await.unwrap();
            }
            _ => while TestApp::fold(&mut owner, org.id, 1000).await > 0 {},
        }
    }
    assert!(pending(&app).await.is_empty());
    let refreshed = journey_rollups(&mut owner).await;
    // Thirteen journeys: the erased three came back with the two later
    // rounds.
    assert_eq!(refreshed.len(), 13, "journeys: {refreshed:#?}");

    assert_a_rebuild_gives(&mut owner, org.id, &refreshed).await;
}

/// A fold of more than 200 journeys (a stream's batch, a backlog) takes the
/// other wrapper, planned for its arguments (and without JIT): it must
/// summarise as a rebuild does, for new journeys and for steps arriving
/// after, before and between the ones summarised.
#[tokio::test]
async fn a_fold_of_more_than_two_hundred_journeys_equals_a_rebuild() {
    let (app, org) = journey_organisation().await;
    let key = &org.admin_key;
    let journeys = 240;
    let visit = |journey: usize, round: usize, seconds: i64| {
        let measured = Measured {
            satisfaction: Some(1 + ((journey + round) % 5) as i32),
            ..Default::default()
        };
        event(
            JOURNEY_CODES[(journey + round) % 3],
            &format!("j{journey}"),
            &format!("{journey}-{round}"),
            at(8 * 3600 + seconds + journey as i64),
            measured,
        )
    };
    let mut owner = app.owner_connection().await;
    // Two steps of every journey, then a step after, before and between.
    let rounds: [&[i64]; 4] = [&[0, 600], &[1200], &[-600], &[300]];
    for (round, offsets) in rounds.into_iter().enumerate() {
        let batch: Vec<pb::Encounter> = (0..journeys)
            .flat_map(|j| {
                offsets
                    .iter()
                    .enumerate()
                    .map(move |(step, &seconds)| visit(j, round * 2 + step, seconds))
            })
            .collect();
        app.ingest(key, vec![batch]).await.unwrap();
        assert_eq!(
            TestApp::fold(&mut owner, org.id, 1000).await as usize,
            journeys * offsets.len()
        );
    }
    assert!(pending(&app).await.is_empty());
    let folded = journey_rollups(&mut owner).await;
    assert_eq!(folded.len(), journeys);
    assert_a_rebuild_gives(&mut owner, org.id, &folded).await;
}

#[tokio::test]
async fn the_server_folds_in_an_ingest_shortly_after_without_a_read() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.create_touchpoint(key, keyed("desk", 10, true)).await;
    for n in 0..3 {
        let visit = event(
            "desk",
            &format!("j{n}"),
            &n.to_string(),
            at(n),
            Measured::default(),
        );
        app.record(key, visit).await;
    }
    let waited = std::time::Instant::now();
    while !pending(&app).await.is_empty() {
        assert!(waited.elapsed() < Duration::from_secs(10), "still pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (encounters, journeys): (i64, i64) = sqlx::query_as(
        "select (select sum(encounters)::int8 from encounter_day),
                (select count(*) from journey_path)",
    )
    .fetch_one(&mut app.owner_connection().await)
    .await
    .unwrap();
    assert_eq!((encounters, journeys), (3, 3));
}

/// Journeys in scope, as GetJourneyOutcomes counts them.
async fn journeys_of(app: &TestApp, key: &str, scope: pb::AnalysisScope) -> i64 {
    app.analyses()
        .await
        .get_journey_outcomes(authed(
            key,
            pb::GetJourneyOutcomesRequest { scope: Some(scope) },
        ))
        .await
        .expect("get_journey_outcomes failed")
        .into_inner()
        .journeys
}

#[tokio::test]
async fn the_database_buckets_seconds_as_the_server_does() {
    let app = spawn_app().await;
    let mut connection = app.owner_connection().await;
    let mut values: Vec<i32> = (0..3000).chain([604_799, 604_800, i32::MAX]).collect();
    for power in 7..31 {
        let edge = 1i32 << power;
        values.extend([edge - 1, edge, edge + 1]);
    }
    let floors: Vec<i32> = sqlx::query_scalar(
        "select verdad_seconds_bucket(v)
         from unnest($1::int4[]) with ordinality as u(v, i)
         order by i",
    )
    .bind(&values)
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let expected: Vec<i32> = values.iter().map(|&v| bucket_floor(v)).collect();
    assert_eq!(floors, expected);
}

/// Journeys around 2026-06-01 (UTC): in order, out of order with a loop
/// and a failure, with a tie, across midnight, from the day before, on the
/// day after, and with two touchpoints in its first 15 s; three with
/// feedback.
async fn journey_fixture(app: &TestApp, key: &str, organisation: Uuid) {
    app.create_touchpoint(key, keyed("desk", 10, true)).await;
    app.create_touchpoint(key, keyed("lab", 20, true)).await;
    app.create_touchpoint(key, keyed("pharmacy", 30, false))
        .await;
    app.create_touchpoint(key, keyed("lobby", 0, false)).await;
    let m = |satisfaction, first_response| Measured {
        satisfaction,
        wait: None,
        first_response,
    };
    let hour = 3600;
    let visits = [
        ("a", "desk", 0, m(Some(5), Some(10))),
        ("a", "lab", 60, m(Some(4), None)),
        ("a", "pharmacy", 150, m(Some(5), None)),
        ("b", "lab", 100, m(Some(3), Some(40))),
        ("b", "desk", 130, m(Some(1), None)),
        ("b", "lab", 400, m(Some(4), None)),
        ("c", "desk", 200, m(None, Some(4))),
        ("c", "desk", 200, m(Some(2), None)),
        ("c", "pharmacy", 560, m(Some(4), None)),
        ("d", "desk", 14 * hour, m(Some(4), Some(12))),
        ("d", "lab", 16 * hour, m(Some(5), None)),
        ("e", "desk", -10 * hour, m(Some(3), Some(200))),
        ("e", "lab", hour, m(Some(3), None)),
        ("f", "desk", 24 * hour, m(Some(5), Some(7))),
        ("f", "lobby", 24 * hour + 20, m(Some(5), None)),
        // The lab within the 15 s of a first impression.
        ("g", "desk", 3000, m(Some(4), Some(3))),
        ("g", "lab", 3010, m(Some(4), None)),
    ];
    for (i, (journey, code, seconds, measured)) in visits.into_iter().enumerate() {
        let id = format!("visit-{i}");
        app.record(key, event(code, journey, &id, at(seconds), measured))
            .await;
    }
    for (journey, overall, recommend) in [("a", 5, 10), ("b", 2, 3), ("d", 4, 8)] {
        let feedback = pb::JourneyFeedback {
            overall_satisfaction: Some(overall),
            likelihood_to_recommend: Some(recommend),
            complete_time: Some(at(20 * hour)),
            ..Default::default()
        };
        app.record_feedback(key, journey, feedback).await.unwrap();
    }
    // Forty more journeys, each split over two stream batches: one fold
    // then summarises forty journeys at once, and a later one refreshes
    // them by their difference.
    let crowd = |step: i64| -> Vec<pb::Encounter> {
        (0..40)
            .map(|n| {
                let (code, seconds) = match step {
                    0 => ("desk", 7 * hour + n * 60),
                    _ => ("lab", 7 * hour + n * 60 + 30 + n),
                };
                let measured = m(Some(1 + (n % 5) as i32), Some(5 + n));
                event(
                    code,
                    &format!("crowd-{n}"),
                    &format!("crowd-{n}-{step}"),
                    at(seconds),
                    measured,
                )
            })
            .collect()
    };
    app.ingest(key, vec![crowd(0)]).await.unwrap();
    TestApp::fold(&mut app.owner_connection().await, organisation, 1000).await;
    app.ingest(key, vec![crowd(1)]).await.unwrap();
}

#[tokio::test]
async fn the_journey_rollups_give_the_journey_analyses_the_figures_of_the_encounters() {
    let app = rolling_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.set_time_zone(key, "UTC").await;
    journey_fixture(&app, key, org.id).await;
    let mut rolled = app.analyses().await;
    let mut exact = app.exact_server().await;

    let hour = 3600;
    let scopes = [
        // June 1st: d runs past its end, e starts before it.
        ("june 1", at(-9 * hour), at(15 * hour)),
        // Three whole days: every journey whole.
        ("may 31 to june 2", at(-33 * hour), at(39 * hour)),
        // June 2nd whole, and most of June 1st at the start edge.
        ("june 1 05:00 on", at(-4 * hour), at(39 * hour)),
    ];
    for (name, start_time, end_time) in scopes {
        let scope = Some(pb::AnalysisScope {
            start_time: Some(start_time),
            end_time: Some(end_time),
            ..Default::default()
        });

        let request = pb::GetJourneyOutcomesRequest {
            scope: scope.clone(),
        };
        let from_rollups = rolled
            .get_journey_outcomes(authed(key, request.clone()))
            .await
            .unwrap()
            .into_inner();
        let from_encounters = exact
            .get_journey_outcomes(authed(key, request))
            .await
            .unwrap()
            .into_inner();
        assert!(from_encounters.journeys > 0, "{name}: no journeys");
        assert_eq!(
            to_the_ninth(&from_rollups),
            to_the_ninth(&from_encounters),
            "{name}: journey outcomes"
        );

        let request = pb::GetFirstImpressionsRequest {
            scope: scope.clone(),
        };
        let from_rollups = rolled
            .get_first_impressions(authed(key, request.clone()))
            .await
            .unwrap()
            .into_inner();
        let from_encounters = exact
            .get_first_impressions(authed(key, request))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            to_the_ninth(&from_rollups),
            to_the_ninth(&from_encounters),
            "{name}: first impressions"
        );

        let request = pb::GetPriorityMatrixRequest {
            scope: scope.clone(),
        };
        let mut from_rollups = rolled
            .get_priority_matrix(authed(key, request.clone()))
            .await
            .unwrap()
            .into_inner();
        let from_encounters = exact
            .get_priority_matrix(authed(key, request))
            .await
            .unwrap()
            .into_inner();
        // Correlations may differ in the last bits: sums in another order.
        for (r, e) in from_rollups
            .touchpoints
            .iter_mut()
            .zip(&from_encounters.touchpoints)
        {
            if let (Some(a), Some(b)) = (r.importance, e.importance) {
                assert!((a - b).abs() < 1e-9, "{name}: importance {a} against {b}");
                r.importance = e.importance;
            }
        }
        assert_eq!(
            to_the_ninth(&from_rollups),
            to_the_ninth(&from_encounters),
            "{name}: priority matrix"
        );

        let request = pb::GetMotCycleRequest {
            scope,
            max_variants: 20,
            ..Default::default()
        };
        let from_rollups = rolled
            .get_mot_cycle(authed(key, request.clone()))
            .await
            .unwrap()
            .into_inner();
        let from_encounters = exact
            .get_mot_cycle(authed(key, request))
            .await
            .unwrap()
            .into_inner();
        assert!(!from_rollups.pairs.is_empty(), "{name}: no pairs");
        // Both fold the same journeys with their exact times: only sums
        // taken in another order may differ, past the ninth place.
        assert!(
            !(from_rollups.pairs.iter().chain(&from_encounters.pairs))
                .any(|p| p.median_approximate)
        );
        assert_eq!(
            to_the_ninth(&from_rollups),
            to_the_ninth(&from_encounters),
            "{name}: MOT cycle"
        );
    }
}

#[tokio::test]
async fn an_analysis_waits_for_a_backlog_no_longer_than_its_fold_wait_and_reads_the_encounters() {
    // A fold wait of nothing: an analysis folds one piece and, with more
    // pending, reads the encounters.
    let app = spawn_app_with(|settings| {
        settings.exact_percentile_limit = 0;
        settings.rollup_delay = Duration::from_secs(3600);
        settings.fold_wait = Duration::ZERO;
    })
    .await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.set_time_zone(key, "UTC").await;
    app.create_touchpoint(key, crate::helpers::touchpoint("desk"))
        .await;
    // More than one piece of an analysis's fold (5,000) waits.
    let batches: Vec<Vec<pb::Encounter>> = (0..8)
        .map(|b| {
            (0..1000)
                .map(|n| {
                    let i = b * 1000 + n;
                    event(
                        "desk",
                        &format!("j{}", i / 4),
                        &format!("e{i}"),
                        at(i64::from(i) * 10 - 9 * 3600),
                        Measured {
                            satisfaction: Some(1 + i % 5),
                            wait: Some(i64::from(i % 900)),
                            first_response: None,
                        },
                    )
                })
                .collect()
        })
        .collect();
    app.ingest(key, batches).await.unwrap();

    let card = app.scorecard(key, fixture_day()).await;
    let waits = card.total.as_ref().unwrap().wait_seconds.as_ref().unwrap();
    assert!(!waits.approximate, "read from the rollups with a backlog");
    let left = pending(&app).await.get(&org.id).copied().unwrap_or(0);
    assert!(left > 0, "the analysis folded the whole backlog");
    // The same answer as a server that never reads the rollups.
    let exact = app
        .exact_server()
        .await
        .get_scorecard(crate::helpers::authed(
            key,
            pb::GetScorecardRequest {
                scope: Some(fixture_day()),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(card, exact);

    // With time to fold, the backlog is folded and the rollups read.
    let patient = AnalysisServiceClient::new(
        app.second_server(|s| {
            s.exact_percentile_limit = 0;
            s.fold_wait = Duration::from_secs(30);
        })
        .await,
    );
    let mut patient = patient;
    let card = patient
        .get_scorecard(crate::helpers::authed(
            key,
            pb::GetScorecardRequest {
                scope: Some(fixture_day()),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(card.total.unwrap().wait_seconds.unwrap().approximate);
    assert_eq!(pending(&app).await.get(&org.id).copied().unwrap_or(0), 0);
}

#[tokio::test]
async fn after_a_large_ingest_the_server_analyses_the_tables_itself() {
    let last_analyse = async |app: &TestApp| -> Option<chrono::DateTime<chrono::Utc>> {
        sqlx::query_scalar(
            "select last_analyze from pg_stat_user_tables where relname = 'encounter'",
        )
        .fetch_one(&mut app.owner_connection().await)
        .await
        .unwrap()
    };
    for (after, analysed) in [(0, false), (1000, true)] {
        let app = spawn_app_with(|settings| settings.analyze_after = after).await;
        let key = app.demo_key().await;
        let batch = (0..1500)
            .map(|n| encounter("reception-desk", "his", &n.to_string()))
            .collect();
        app.ingest(&key, vec![batch]).await.unwrap();
        let mut seen = None;
        for _ in 0..100 {
            seen = last_analyse(&app).await;
            if seen.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(seen.is_some(), analysed, "--analyze-after {after}");
    }
}
