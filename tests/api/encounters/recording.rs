//! RecordEncounter and GetEncounter: an encounter is stored as sent, names
//! its touchpoint exactly once, and is read back by its id.

use std::collections::HashMap;

use chrono::Utc;
use prost_types::Timestamp;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    assert_error, authed, encounter, evaluation_of, plus, spawn_app, touchpoint, violated_fields,
};

#[tokio::test]
async fn a_recorded_encounter_is_stored_as_sent_and_read_back_by_id() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let desk = app
        .create_touchpoint(&org.admin_key, touchpoint("reception-desk"))
        .await;
    // Whole microseconds: they must survive the round trip exactly.
    let occur = Timestamp {
        seconds: Utc::now().timestamp() - 3600,
        nanos: 123_456_000,
    };
    let sent = pb::Encounter {
        touchpoint_code: "RECEPTION-DESK".into(),
        journey_id: "visit-42".into(),
        customer_ref: "patient-0042".into(),
        occur_time: Some(plus(&occur, 0)),
        wait_seconds: Some(300),
        first_response_seconds: Some(12),
        duration_seconds: Some(240),
        satisfaction: Some(4),
        effort: Some(2),
        situation: pb::Situation::Adaptability.into(),
        staff_ref: "nurse-7".into(),
        comment: "Asked for a wheelchair.".into(),
        attributes: HashMap::from([
            ("ward".to_owned(), "3B".to_owned()),
            ("language".to_owned(), "ko".to_owned()),
        ]),
        source: "his".into(),
        external_id: "evt-1".into(),
        ..Default::default()
    };

    let response = app.record(&org.admin_key, sent).await;

    assert!(!response.duplicate);
    let stored = response.encounter.expect("no encounter");
    assert!(uuid::Uuid::parse_str(&stored.id).is_ok(), "{}", stored.id);
    assert_eq!(stored.touchpoint_id, desk.id);
    assert_eq!(stored.touchpoint_code, "reception-desk");
    assert_eq!(stored.journey_id, "visit-42");
    assert_eq!(stored.customer_ref, "", "the customer reference is echoed");
    assert!(stored.has_customer_ref);
    assert_eq!(
        stored.occur_time.as_ref(),
        Some(&occur),
        "occur_time not kept to the microsecond"
    );
    assert_eq!(
        stored.channel(),
        pb::Channel::InPerson,
        "the touchpoint's channel"
    );
    assert_eq!(stored.wait_seconds, Some(300));
    assert_eq!(stored.first_response_seconds, Some(12));
    assert_eq!(stored.duration_seconds, Some(240));
    assert_eq!(stored.satisfaction, Some(4));
    assert_eq!(stored.effort, Some(2));
    assert_eq!(stored.situation(), pb::Situation::Adaptability);
    assert_eq!(stored.staff_ref, "nurse-7");
    assert_eq!(stored.comment, "Asked for a wheelchair.");
    assert_eq!(stored.attributes.len(), 2);
    assert_eq!(stored.attributes["ward"], "3B");
    assert_eq!(stored.attributes["language"], "ko");
    assert!(stored.observations.is_empty());
    assert_eq!(stored.source, "his");
    assert_eq!(stored.external_id, "evt-1");
    let received = stored.receive_time.as_ref().expect("no receive_time");
    let now = Utc::now().timestamp();
    assert!(
        (now - 60..=now + 60).contains(&received.seconds),
        "receive_time {received:?} is not now"
    );
    let evaluation = evaluation_of(&stored);
    assert!(!evaluation.failed);
    assert!(!evaluation.low_satisfaction);
    assert!(evaluation.violated_critical_standards.is_empty());
    assert!(evaluation.results.is_empty(), "no standards are in force");

    let read = app.get_encounter(&org.admin_key, &stored.id).await.unwrap();
    assert_eq!(read, stored);
}

#[tokio::test]
async fn an_encounter_names_its_touchpoint_by_id_and_keeps_an_explicit_channel() {
    let app = spawn_app().await;
    let (org, desk) = app.org_with_desk().await;
    let mut by_id = encounter("", "his", "evt-1");
    by_id.touchpoint_id = desk.id.clone();
    by_id.channel = pb::Channel::Phone.into();

    let stored = app.recorded(&org.admin_key, by_id).await;

    assert_eq!(stored.touchpoint_id, desk.id);
    assert_eq!(stored.touchpoint_code, "desk");
    assert_eq!(stored.channel(), pb::Channel::Phone);
    assert!(!stored.has_customer_ref);
    assert_eq!(stored.satisfaction, None);
    assert_eq!(stored.wait_seconds, None);
}

#[tokio::test]
async fn the_touchpoint_must_be_named_exactly_once() {
    let app = spawn_app().await;
    let (org, desk) = app.org_with_desk().await;

    let neither = encounter("", "his", "evt-1");
    let status = app.record_error(&org.admin_key, neither).await;
    assert_eq!(violated_fields(&status), ["encounter.touchpoint_id"]);

    let mut both = encounter("desk", "his", "evt-2");
    both.touchpoint_id = desk.id.clone();
    let status = app.record_error(&org.admin_key, both).await;
    assert_eq!(violated_fields(&status), ["encounter.touchpoint_id"]);

    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}

#[tokio::test]
async fn an_unknown_touchpoint_is_not_found() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;

    let status = app
        .record_error(&org.admin_key, encounter("nowhere", "his", "evt-1"))
        .await;
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    let mut by_id = encounter("", "his", "evt-2");
    by_id.touchpoint_id = uuid::Uuid::now_v7().to_string();
    let status = app.record_error(&org.admin_key, by_id).await;
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}

#[tokio::test]
async fn an_archived_touchpoint_takes_no_encounters() {
    let app = spawn_app().await;
    let (org, desk) = app.org_with_desk().await;
    app.touchpoints()
        .await
        .archive_touchpoint(authed(
            &org.admin_key,
            pb::ArchiveTouchpointRequest {
                id: desk.id.clone(),
            },
        ))
        .await
        .expect("archive failed");

    let status = app
        .record_error(&org.admin_key, encounter("desk", "his", "evt-1"))
        .await;
    assert_error(&status, Code::FailedPrecondition, "TOUCHPOINT_ARCHIVED");
    let mut by_id = encounter("", "his", "evt-2");
    by_id.touchpoint_id = desk.id.clone();
    let status = app.record_error(&org.admin_key, by_id).await;
    assert_error(&status, Code::FailedPrecondition, "TOUCHPOINT_ARCHIVED");

    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}

#[tokio::test]
async fn get_encounter_rejects_a_malformed_id_and_does_not_find_an_unknown_one() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    app.recorded(&org.admin_key, encounter("desk", "his", "evt-1"))
        .await;

    let status = app
        .get_encounter(&org.admin_key, "not-a-uuid")
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
    let status = app.get_encounter(&org.admin_key, "").await.unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);

    let status = app
        .get_encounter(&org.admin_key, &uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
}
