//! JourneyService: the ordered encounters of a journey, its score and the
//! customer's feedback on the whole.

use chrono::{TimeDelta, Utc};
use prost_types::Timestamp;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    TestApp, YEAR_2000, assert_error, encounter, external_ids, feedback, field_set, minutes_ago,
    plus, spawn_app, timestamp, touchpoint,
};

/// An organisation with the touchpoint "desk" and no standards; its admin
/// key.
async fn org_with_desk(app: &TestApp) -> String {
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    org.admin_key
}

/// An encounter at "desk" in `journey_id` with `satisfaction`.
fn rated(journey_id: &str, external_id: &str, satisfaction: Option<i32>) -> pb::Encounter {
    let mut e = encounter("desk", "his", external_id);
    e.journey_id = journey_id.to_owned();
    e.satisfaction = satisfaction;
    e
}

#[tokio::test]
async fn a_journey_lists_its_encounters_in_time_order_and_ties_in_arrival_order() {
    let app = spawn_app().await;
    let key = org_with_desk(&app).await;
    let t = minutes_ago(120);
    let at = |external_id: &str, offset: i64| {
        let mut e = rated("visit-9", external_id, None);
        e.occur_time = Some(plus(&t, offset));
        e
    };

    app.recorded(&key, at("a", 0)).await;
    let response = app
        .ingest(
            &key,
            vec![
                vec![at("b", 0), at("c", -3600), at("d", 0)],
                vec![at("e", 0), at("f", -7200)],
            ],
        )
        .await
        .unwrap();
    assert_eq!(response.accepted, 5);
    app.recorded(&key, at("g", 0)).await;
    app.recorded(&key, at("h", -3600)).await;
    app.recorded(&key, rated("visit-10", "other-journey", Some(1)))
        .await;

    let journey = app.get_journey(&key, "visit-9").await.unwrap();

    assert_eq!(journey.journey_id, "visit-9");
    assert_eq!(
        external_ids(&journey.encounters),
        ["f", "c", "h", "a", "b", "d", "e", "g"]
    );
    assert_eq!(journey.encounter_count, 8);
    assert_eq!(journey.failed_encounter_count, 0);
    assert_eq!(journey.start_time, Some(plus(&t, -7200)));
    assert_eq!(journey.end_time, Some(plus(&t, 0)));
    assert!(journey.feedback.is_none());
    assert_eq!(journey.score, None, "nothing to score");
    assert!(
        journey
            .encounters
            .iter()
            .all(|e| e.evaluation.is_some() && !e.id.is_empty() && e.touchpoint_code == "desk")
    );
}

#[tokio::test]
async fn the_score_is_the_mean_satisfaction_on_a_0_to_100_scale() {
    let app = spawn_app().await;
    let key = org_with_desk(&app).await;
    app.recorded(&key, rated("visit-1", "e1", Some(4))).await;
    app.recorded(&key, rated("visit-1", "e2", None)).await;
    app.recorded(&key, rated("visit-1", "e3", Some(5))).await;
    app.recorded(&key, rated("visit-2", "e4", Some(3))).await;
    app.recorded(&key, rated("visit-3", "e5", Some(5))).await;

    let journey = app.get_journey(&key, "visit-1").await.unwrap();
    assert_eq!(journey.encounter_count, 3);
    assert_eq!(journey.failed_encounter_count, 0);
    assert_eq!(journey.score, Some(87.5));
    assert_eq!(
        app.get_journey(&key, "visit-2").await.unwrap().score,
        Some(50.0)
    );
    assert_eq!(
        app.get_journey(&key, "visit-3").await.unwrap().score,
        Some(100.0)
    );
}

#[tokio::test]
async fn one_failed_encounter_scores_the_whole_journey_zero() {
    let app = spawn_app().await;
    let key = app.demo_key().await;

    // A critical violation among satisfied moments.
    let mut greeted = encounter("entrance-guard", "door", "e1");
    greeted.first_response_seconds = Some(40);
    greeted.satisfaction = Some(5);
    let mut desk = encounter("reception-desk", "his", "e2");
    desk.first_response_seconds = Some(5);
    desk.satisfaction = Some(5);
    app.recorded(&key, greeted).await;
    app.recorded(&key, desk).await;
    let journey = app.get_journey(&key, "visit-1").await.unwrap();
    assert_eq!(journey.encounter_count, 2);
    assert_eq!(journey.failed_encounter_count, 1);
    assert_eq!(journey.score, Some(0.0));

    // Low satisfaction fails just as well, even without any satisfaction
    // left to average.
    let mut unhappy = encounter("pharmacy", "survey", "e3");
    unhappy.journey_id = "visit-2".into();
    unhappy.satisfaction = Some(2);
    let mut unrated = encounter("payment", "his", "e4");
    unrated.journey_id = "visit-2".into();
    app.recorded(&key, unhappy).await;
    app.recorded(&key, unrated).await;
    let journey = app.get_journey(&key, "visit-2").await.unwrap();
    assert_eq!(journey.failed_encounter_count, 1);
    assert_eq!(journey.score, Some(0.0));
}

#[tokio::test]
async fn an_unknown_journey_is_not_found() {
    let app = spawn_app().await;
    let key = org_with_desk(&app).await;
    app.recorded(&key, rated("visit-1", "e1", Some(4))).await;

    let status = app.get_journey(&key, "visit-404").await.unwrap_err();

    assert_error(&status, Code::NotFound, "NOT_FOUND");
}

#[tokio::test]
async fn feedback_may_come_before_the_encounters_and_shows_on_the_journey() {
    let app = spawn_app().await;
    let key = org_with_desk(&app).await;
    let done = minutes_ago(30);
    let sent = pb::JourneyFeedback {
        overall_satisfaction: Some(4),
        likelihood_to_recommend: Some(9),
        complete_time: Some(plus(&done, 0)),
        comment: "Kind nurses, long wait.".into(),
        receive_time: None,
    };

    let response = app
        .record_feedback(&key, "visit-1", sent.clone())
        .await
        .unwrap();

    assert!(!response.duplicate);
    // Stored, and the sender is told the journey is unknown so far.
    assert!(!response.journey_known);
    let stored = response.feedback.expect("no feedback in the response");
    assert_eq!(stored.overall_satisfaction, Some(4));
    assert_eq!(stored.likelihood_to_recommend, Some(9));
    assert_eq!(stored.complete_time, Some(plus(&done, 0)));
    assert_eq!(stored.comment, "Kind nurses, long wait.");
    assert!(stored.receive_time.is_some());

    let journey = app.get_journey(&key, "visit-1").await.unwrap();
    assert_eq!(journey.journey_id, "visit-1");
    assert_eq!(journey.feedback.as_ref(), Some(&stored));
    assert!(journey.encounters.is_empty());
    assert_eq!(journey.encounter_count, 0);
    assert_eq!(journey.score, None);

    let first = app.recorded(&key, rated("visit-1", "e1", Some(5))).await;
    let journey = app.get_journey(&key, "visit-1").await.unwrap();
    assert_eq!(journey.feedback.as_ref(), Some(&stored));
    assert_eq!(journey.encounters, [first]);
    assert_eq!(journey.encounter_count, 1);
    assert_eq!(journey.score, Some(100.0));
    // Sent again now that the journey has an encounter.
    let again = app.record_feedback(&key, "visit-1", sent).await.unwrap();
    assert!(again.duplicate);
    assert!(again.journey_known);
}

#[tokio::test]
async fn the_same_feedback_again_is_a_duplicate_and_other_feedback_is_refused() {
    let app = spawn_app().await;
    let key = org_with_desk(&app).await;
    let mut sent = feedback(4);
    sent.comment = "Fine.".into();
    let first = app
        .record_feedback(&key, "visit-1", sent.clone())
        .await
        .unwrap();
    assert!(!first.duplicate);

    let again = app
        .record_feedback(&key, "visit-1", sent.clone())
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.feedback, first.feedback);

    let mut lower = sent.clone();
    lower.overall_satisfaction = Some(2);
    let mut recommending = sent.clone();
    recommending.likelihood_to_recommend = Some(10);
    let mut other_comment = sent;
    other_comment.comment = "Actually not fine.".into();
    for other in [lower, recommending, other_comment] {
        let status = app
            .record_feedback(&key, "visit-1", other)
            .await
            .unwrap_err();
        assert_error(&status, Code::AlreadyExists, "ALREADY_EXISTS");
    }

    let journey = app.get_journey(&key, "visit-1").await.unwrap();
    assert_eq!(journey.feedback, first.feedback);
}

/// Valid feedback (satisfaction 3) with `change` made to it.
fn with(change: impl FnOnce(&mut pb::JourneyFeedback)) -> pb::JourneyFeedback {
    let mut changed = feedback(3);
    change(&mut changed);
    changed
}

#[tokio::test]
async fn invalid_feedback_is_refused_field_by_field_and_stores_nothing() {
    let app = spawn_app().await;
    let key = org_with_desk(&app).await;
    let cases: Vec<(&str, String, pb::JourneyFeedback, Vec<&str>)> = vec![
        ("no journey", String::new(), feedback(3), vec!["journey_id"]),
        (
            "a long journey id",
            "j".repeat(129),
            feedback(3),
            vec!["journey_id"],
        ),
        (
            "neither question answered",
            "visit-1".into(),
            with(|f| f.overall_satisfaction = None),
            vec!["feedback.overall_satisfaction"],
        ),
        (
            "satisfaction 0",
            "visit-1".into(),
            with(|f| f.overall_satisfaction = Some(0)),
            vec!["feedback.overall_satisfaction"],
        ),
        (
            "satisfaction 6",
            "visit-1".into(),
            with(|f| f.overall_satisfaction = Some(6)),
            vec!["feedback.overall_satisfaction"],
        ),
        (
            "recommendation -1",
            "visit-1".into(),
            with(|f| f.likelihood_to_recommend = Some(-1)),
            vec!["feedback.likelihood_to_recommend"],
        ),
        (
            "recommendation 11",
            "visit-1".into(),
            with(|f| f.likelihood_to_recommend = Some(11)),
            vec!["feedback.likelihood_to_recommend"],
        ),
        (
            "no complete_time",
            "visit-1".into(),
            with(|f| f.complete_time = None),
            vec!["feedback.complete_time"],
        ),
        (
            "completed before 2000",
            "visit-1".into(),
            with(|f| {
                f.complete_time = Some(Timestamp {
                    seconds: YEAR_2000 - 1,
                    nanos: 0,
                })
            }),
            vec!["feedback.complete_time"],
        ),
        (
            "completed ten minutes from now",
            "visit-1".into(),
            with(|f| f.complete_time = Some(timestamp(Utc::now() + TimeDelta::minutes(10)))),
            vec!["feedback.complete_time"],
        ),
        (
            "a long comment",
            "visit-1".into(),
            with(|f| f.comment = "c".repeat(4001)),
            vec!["feedback.comment"],
        ),
        (
            "everything wrong",
            String::new(),
            pb::JourneyFeedback {
                overall_satisfaction: Some(9),
                likelihood_to_recommend: Some(11),
                complete_time: None,
                comment: "c".repeat(4001),
                receive_time: None,
            },
            vec![
                "feedback.comment",
                "feedback.complete_time",
                "feedback.likelihood_to_recommend",
                "feedback.overall_satisfaction",
                "journey_id",
            ],
        ),
    ];
    for (what, journey_id, bad, fields) in cases {
        let status = app
            .record_feedback(&key, &journey_id, bad)
            .await
            .unwrap_err();
        assert_eq!(field_set(&status), fields, "{what}");
    }
    let status = app.get_journey(&key, "visit-1").await.unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
}

#[tokio::test]
async fn the_extremes_of_feedback_are_accepted() {
    let app = spawn_app().await;
    let key = org_with_desk(&app).await;

    let only_recommendation = pb::JourneyFeedback {
        overall_satisfaction: None,
        likelihood_to_recommend: Some(0),
        complete_time: Some(minutes_ago(1)),
        comment: String::new(),
        receive_time: None,
    };
    let stored = app
        .record_feedback(&key, "visit-1", only_recommendation)
        .await
        .unwrap()
        .feedback
        .unwrap();
    assert_eq!(stored.overall_satisfaction, None);
    assert_eq!(stored.likelihood_to_recommend, Some(0));

    let long_journey = "j".repeat(128);
    let oldest = pb::JourneyFeedback {
        overall_satisfaction: Some(1),
        likelihood_to_recommend: Some(10),
        complete_time: Some(Timestamp {
            seconds: YEAR_2000,
            nanos: 0,
        }),
        comment: "환".repeat(4000),
        receive_time: None,
    };
    app.record_feedback(&key, &long_journey, oldest)
        .await
        .unwrap();
    let journey = app.get_journey(&key, &long_journey).await.unwrap();
    assert_eq!(journey.feedback.unwrap().overall_satisfaction, Some(1));

    let mut soon = feedback(5);
    soon.complete_time = Some(timestamp(Utc::now() + TimeDelta::minutes(2)));
    app.record_feedback(&key, "visit-3", soon).await.unwrap();
}
