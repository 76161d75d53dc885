//! Whole journeys: perfect against flawed ones, and first impressions.

use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    Measured, TestApp, answered, assert_close, assert_distribution, assert_rate, at, authed, event,
    fixture_day, keyed, scorecard_fixture, spawn_app, standard,
};

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
        app.record_feedback(key, journey, answered(overall, recommend))
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
    app.create_touchpoint(key, keyed("desk", 10, true)).await;
    app.create_touchpoint(key, keyed("lab", 20, true)).await;
    // An event log: where and when, nothing rated, no standards.
    for journey in 0..5 {
        for (step, code) in ["desk", "lab"].into_iter().enumerate() {
            let time = at(journey * 600 + step as i64 * 60);
            let id = format!("{journey}-{step}");
            app.record(
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
    app.record(key, rated).await;
    let mut greet = standard("greet", "lab");
    greet.rule = Some(pb::standard::Rule::ObservedRule(pb::ObservedRule {}));
    app.create_standard(key, greet).await;
    let observed = pb::Encounter {
        observations: vec![pb::Observation {
            standard_code: "greet".into(),
            met: true,
            ..Default::default()
        }],
        ..event("lab", "j1", "observed", at(700), Measured::default())
    };
    app.record(key, observed).await;
    let judged = outcomes(&app).await;
    assert_eq!((judged.journeys, judged.judged_journeys), (5, 2));
    assert_rate(&judged.perfect_share, 2, 2);
    assert_eq!(judged.perfect.unwrap().journeys, 2);
}

#[tokio::test]
async fn first_impressions_read_the_first_contact_of_each_journey() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.create_touchpoint(key, keyed("guard", 10, true)).await;
    app.create_touchpoint(key, keyed("desk", 20, true)).await;
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
        app.record(key, e).await;
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
