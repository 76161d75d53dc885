//! Evaluation against the standards in force at the touchpoint (the demo
//! hospital's), and changes to them made through another server.

use prost_types::FieldMask;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    assert_error, authed, encounter, evaluation_of, observation, result, spawn_app, standard,
    touchpoint,
};

#[tokio::test]
async fn an_encounter_is_evaluated_against_every_standard_in_force_at_its_touchpoint() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut greeted = encounter("entrance-guard", "door", "evt-1");
    greeted.first_response_seconds = Some(10);
    greeted.satisfaction = Some(5);

    let stored = app.recorded(&key, greeted).await;

    let evaluation = evaluation_of(&stored);
    let mut codes: Vec<&str> = evaluation
        .results
        .iter()
        .map(|r| r.standard_code.as_str())
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        ["entrance-greeting-15s", "name-badge", "satisfied-customer"]
    );
    assert!(!evaluation.failed);
    assert!(!evaluation.low_satisfaction);
    assert!(evaluation.violated_critical_standards.is_empty());

    let greeting = result(&stored, "entrance-greeting-15s");
    assert_eq!(greeting.outcome(), pb::Outcome::Met);
    assert_eq!(greeting.severity(), pb::Severity::Critical);
    assert_eq!(greeting.rule_text, "first_response_seconds <= 15");
    let in_force = app
        .standards()
        .await
        .get_standard(authed(
            &key,
            pb::GetStandardRequest {
                id: String::new(),
                code: "entrance-greeting-15s".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert_eq!(greeting.standard_id, in_force.id);

    let badge = result(&stored, "name-badge");
    assert_eq!(badge.outcome(), pb::Outcome::NotApplicable);
    assert_eq!(badge.severity(), pb::Severity::Minor);
    assert_eq!(badge.rule_text, "observed");
    let satisfied = result(&stored, "satisfied-customer");
    assert_eq!(satisfied.outcome(), pb::Outcome::Met);
    assert_eq!(satisfied.rule_text, "satisfaction >= 4");
    assert!(evaluation.results.iter().all(|r| !r.standard_id.is_empty()));
}

#[tokio::test]
async fn touchpoint_and_standard_changes_through_one_server_apply_at_once_on_another() {
    let app = spawn_app().await;
    let (org, desk) = app.org_with_desk().await;
    let key = &org.admin_key;
    let greeting = app.create_standard(key, standard("greeting", "desk")).await;
    // The other server keeps what its first ingest read.
    let mut other =
        pb::encounter_service_client::EncounterServiceClient::new(app.second_server(|_| {}).await);
    let mut record_there = async |touchpoint_code: &str, external_id: &str| {
        let mut sent = encounter(touchpoint_code, "his", external_id);
        sent.first_response_seconds = Some(20);
        other
            .record_encounter(authed(
                key,
                pb::RecordEncounterRequest {
                    encounter: Some(sent),
                },
            ))
            .await
            .map(|r| r.into_inner().encounter.unwrap())
    };
    let slow = record_there("desk", "evt-1").await.unwrap();
    assert_eq!(result(&slow, "greeting").outcome(), pb::Outcome::Violated);

    app.standards()
        .await
        .update_standard(authed(
            key,
            pb::UpdateStandardRequest {
                standard: Some(pb::Standard {
                    id: greeting.id.clone(),
                    rule: crate::helpers::metric_rule(
                        pb::MetricField::FirstResponseSeconds,
                        pb::Comparison::LessOrEqual,
                        30.0,
                    ),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["metric_rule".into()],
                }),
            },
        ))
        .await
        .unwrap();
    let relaxed = record_there("desk", "evt-2").await.unwrap();
    assert_eq!(result(&relaxed, "greeting").outcome(), pb::Outcome::Met);

    app.create_touchpoint(key, touchpoint("kiosk")).await;
    let at_kiosk = record_there("kiosk", "evt-3").await.unwrap();
    assert_eq!(at_kiosk.touchpoint_code, "kiosk");

    app.touchpoints()
        .await
        .archive_touchpoint(authed(key, pb::ArchiveTouchpointRequest { id: desk.id }))
        .await
        .unwrap();
    let status = record_there("desk", "evt-4").await.unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "TOUCHPOINT_ARCHIVED");
}

#[tokio::test]
async fn the_first_customer_reference_after_ingests_without_one_pseudonymises_like_the_rest() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let key = &org.admin_key;
    // The server keeps the organisation as it was: without a customer key.
    let mut plain = encounter("desk", "his", "evt-1");
    plain.journey_id = "another-visit".into();
    let without = app.recorded(key, plain).await;
    // The first makes the key; the next reads it afresh; the last is
    // stored with the organisation kept as the one before read it.
    for external_id in ["evt-2", "evt-3", "evt-4"] {
        let mut sent = encounter("desk", "his", external_id);
        sent.customer_ref = "patient-7".into();
        assert!(app.recorded(key, sent).await.has_customer_ref);
    }

    let erased = app.erase(key, "patient-7").await.unwrap();
    assert_eq!(erased.encounters, 3, "{erased:?}");
    let left = app.get_encounter(key, &without.id).await;
    assert!(left.is_ok(), "{left:?}");
}

#[tokio::test]
async fn violating_a_critical_standard_fails_the_encounter() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut slow = encounter("entrance-guard", "door", "evt-1");
    slow.first_response_seconds = Some(40);
    slow.satisfaction = Some(4);

    let stored = app.recorded(&key, slow).await;

    let evaluation = evaluation_of(&stored);
    assert!(evaluation.failed);
    assert!(!evaluation.low_satisfaction);
    assert_eq!(
        evaluation.violated_critical_standards,
        ["entrance-greeting-15s"]
    );
    assert_eq!(
        result(&stored, "entrance-greeting-15s").outcome(),
        pb::Outcome::Violated
    );
    assert_eq!(
        result(&stored, "satisfied-customer").outcome(),
        pb::Outcome::Met
    );
}

#[tokio::test]
async fn minor_violations_do_not_fail_the_encounter() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut lost = encounter("lobby", "audit", "evt-1");
    lost.observations = vec![
        observation("lobby-signage", false),
        observation("Name-Badge", false),
    ];
    lost.satisfaction = Some(3);

    let stored = app.recorded(&key, lost).await;

    assert_eq!(
        result(&stored, "lobby-signage").outcome(),
        pb::Outcome::Violated
    );
    assert_eq!(
        result(&stored, "name-badge").outcome(),
        pb::Outcome::Violated
    );
    assert_eq!(
        result(&stored, "satisfied-customer").outcome(),
        pb::Outcome::Violated
    );
    let evaluation = evaluation_of(&stored);
    assert_eq!(evaluation.results.len(), 3);
    assert!(!evaluation.failed, "minor violations failed the encounter");
    assert!(!evaluation.low_satisfaction);
    assert!(evaluation.violated_critical_standards.is_empty());
}

#[tokio::test]
async fn satisfaction_at_or_below_the_failure_threshold_fails_the_encounter() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut unhappy = encounter("reception-desk", "survey", "evt-1");
    unhappy.first_response_seconds = Some(5);
    unhappy.satisfaction = Some(2);
    let stored = app.recorded(&key, unhappy).await;
    let evaluation = evaluation_of(&stored);
    assert!(evaluation.failed);
    assert!(evaluation.low_satisfaction);
    assert!(evaluation.violated_critical_standards.is_empty());
    assert_eq!(
        result(&stored, "reception-greeting-15s").outcome(),
        pb::Outcome::Met
    );

    let mut lukewarm = encounter("reception-desk", "survey", "evt-2");
    lukewarm.satisfaction = Some(3);
    let stored = app.recorded(&key, lukewarm).await;
    assert!(!evaluation_of(&stored).failed);

    // A stricter organisation fails 3 as well.
    app.organisations()
        .await
        .update_organisation(authed(
            &key,
            pb::UpdateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    failure_threshold: 3,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["failure_threshold".into()],
                }),
            },
        ))
        .await
        .expect("update_organisation failed");
    let mut strict = encounter("reception-desk", "survey", "evt-3");
    strict.satisfaction = Some(3);
    let stored = app.recorded(&key, strict).await;
    let evaluation = evaluation_of(&stored);
    assert!(evaluation.failed);
    assert!(evaluation.low_satisfaction);
}

#[tokio::test]
async fn standards_whose_field_or_observation_is_missing_are_not_applicable() {
    let app = spawn_app().await;
    let key = app.demo_key().await;

    let unmeasured = app
        .recorded(&key, encounter("waiting-area", "his", "evt-1"))
        .await;
    let evaluation = evaluation_of(&unmeasured);
    assert!(!evaluation.failed);
    assert!(
        evaluation
            .results
            .iter()
            .all(|r| r.outcome() == pb::Outcome::NotApplicable),
        "{evaluation:?}"
    );
    let waiting = result(&unmeasured, "waiting-30min");
    assert_eq!(waiting.rule_text, "wait_seconds <= 1800");
    assert_eq!(waiting.severity(), pb::Severity::Critical);

    let mut long_wait = encounter("waiting-area", "his", "evt-2");
    long_wait.wait_seconds = Some(1801);
    let stored = app.recorded(&key, long_wait).await;
    assert_eq!(
        result(&stored, "waiting-30min").outcome(),
        pb::Outcome::Violated
    );
    assert_eq!(
        evaluation_of(&stored).violated_critical_standards,
        ["waiting-30min"]
    );

    let mut explained = encounter("consultation-room", "survey", "evt-3");
    explained.observations = vec![observation("CONSULTATION-EXPLAINED", true)];
    let stored = app.recorded(&key, explained).await;
    assert_eq!(
        result(&stored, "consultation-explained").outcome(),
        pb::Outcome::Met
    );
    assert_eq!(
        result(&stored, "name-badge").outcome(),
        pb::Outcome::NotApplicable
    );
}
