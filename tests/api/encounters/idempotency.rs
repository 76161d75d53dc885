//! Idempotency: the source with the external id is the key; a replay with
//! the same content returns the stored encounter, other content is refused.

use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{assert_error, encounter, minutes_ago, spawn_app};

#[tokio::test]
async fn a_replay_with_the_same_content_returns_the_stored_encounter() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let mut sent = encounter("desk", "his", "evt-1");
    sent.customer_ref = "patient-1".into();
    sent.satisfaction = Some(4);

    let first = app.record(&org.admin_key, sent.clone()).await;
    let second = app.record(&org.admin_key, sent).await;

    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.encounter, first.encounter);
    assert_eq!(app.count_encounters(&org.admin_key).await, 1);
}

#[tokio::test]
async fn a_replay_with_other_content_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let mut sent = encounter("desk", "his-feed", "evt-77");
    sent.satisfaction = Some(4);
    let stored = app.recorded(&org.admin_key, sent.clone()).await;

    let mut other = sent.clone();
    other.satisfaction = Some(5);
    let status = app.record_error(&org.admin_key, other).await;
    assert_error(&status, Code::AlreadyExists, "ALREADY_EXISTS");
    assert!(
        status.message().contains("his-feed"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("evt-77"), "{}", status.message());

    let mut other_comment = sent.clone();
    other_comment.comment = "changed my mind".into();
    let status = app.record_error(&org.admin_key, other_comment).await;
    assert_error(&status, Code::AlreadyExists, "ALREADY_EXISTS");

    let mut other_ref = sent;
    other_ref.customer_ref = "someone".into();
    let status = app.record_error(&org.admin_key, other_ref).await;
    assert_error(&status, Code::AlreadyExists, "ALREADY_EXISTS");

    let read = app.get_encounter(&org.admin_key, &stored.id).await.unwrap();
    assert_eq!(read, stored);
    assert_eq!(app.count_encounters(&org.admin_key).await, 1);
}

#[tokio::test]
async fn output_only_fields_of_a_replay_are_ignored() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let sent = encounter("desk", "his", "evt-1");
    let stored = app.recorded(&org.admin_key, sent.clone()).await;

    let mut decorated = sent;
    decorated.id = uuid::Uuid::now_v7().to_string();
    decorated.has_customer_ref = true;
    decorated.receive_time = Some(minutes_ago(5));
    decorated.evaluation = Some(pb::Evaluation {
        failed: true,
        low_satisfaction: true,
        violated_critical_standards: vec!["made-up".into()],
        results: Vec::new(),
    });
    let replay = app.record(&org.admin_key, decorated).await;

    assert!(replay.duplicate);
    assert_eq!(replay.encounter.as_ref(), Some(&stored));
    assert_eq!(app.count_encounters(&org.admin_key).await, 1);
}

#[tokio::test]
async fn the_idempotency_key_is_the_source_with_the_external_id() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;

    let from_his = app
        .record(&org.admin_key, encounter("desk", "his", "evt-1"))
        .await;
    let from_kiosk = app
        .record(&org.admin_key, encounter("desk", "kiosk", "evt-1"))
        .await;
    let other_id = app
        .record(&org.admin_key, encounter("desk", "his", "evt-2"))
        .await;

    assert!(!from_his.duplicate && !from_kiosk.duplicate && !other_id.duplicate);
    let ids: std::collections::HashSet<String> = [from_his, from_kiosk, other_id]
        .into_iter()
        .map(|r| r.encounter.unwrap().id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(app.count_encounters(&org.admin_key).await, 3);
}
