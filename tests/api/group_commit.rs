//! RecordEncounter's group commit: calls that arrive together are stored in
//! one transaction, and each still gets its own answer.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use sqlx::Executor;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    TestApp, assert_error, authed, dissatisfied, encounter, external_ids, spawn_app,
    spawn_app_with, touchpoint,
};

/// Sends every call at once, each on a task of its own, and returns the
/// answers in the order of `calls`.
async fn all_at_once(
    app: &TestApp,
    calls: Vec<(String, pb::Encounter)>,
) -> Vec<Result<pb::RecordEncounterResponse, tonic::Status>> {
    let client = app.encounters().await;
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|(key, encounter)| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client
                    .record_encounter(authed(
                        &key,
                        pb::RecordEncounterRequest {
                            encounter: Some(encounter),
                        },
                    ))
                    .await
                    .map(tonic::Response::into_inner)
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_sent_together_are_stored_together_and_each_gets_its_own_answer() {
    let app = spawn_app().await;
    let a = app.create_org("St. Mary").await;
    let b = app.create_org("St. John").await;
    for org in [&a, &b] {
        app.create_touchpoint(&org.admin_key, touchpoint("desk"))
            .await;
    }

    // A's calls: 20 encounters each sent twice (a replay), 5 of them
    // failing (a recovery case each), 5 at a touchpoint A lacks, and one key
    // sent with two different contents. B's: 20 encounters whose keys are
    // the same as A's first 20.
    let mut calls = Vec::new();
    for i in 0..20 {
        let sent = if i < 5 {
            dissatisfied("desk", "his", &format!("evt-{i}"))
        } else {
            encounter("desk", "his", &format!("evt-{i}"))
        };
        calls.push((&a, sent.clone()));
        calls.push((&a, sent));
        calls.push((&b, encounter("desk", "his", &format!("evt-{i}"))));
    }
    for i in 0..5 {
        calls.push((&a, encounter("kiosk", "his", &format!("lost-{i}"))));
    }
    let mut first = encounter("desk", "his", "clash");
    first.satisfaction = Some(5);
    let mut second = encounter("desk", "his", "clash");
    second.satisfaction = Some(3);
    calls.push((&a, first));
    calls.push((&a, second));

    let answers = all_at_once(
        &app,
        calls
            .iter()
            .map(|(org, sent)| (org.admin_key.clone(), sent.clone()))
            .collect(),
    )
    .await;

    let mut stored_by_key: HashMap<(String, String), Vec<pb::RecordEncounterResponse>> =
        HashMap::new();
    let mut clash = Vec::new();
    for ((org, sent), answer) in calls.iter().zip(answers) {
        let owner = if org.id == a.id { "a" } else { "b" };
        if sent.touchpoint_code == "kiosk" {
            assert_error(&answer.unwrap_err(), Code::NotFound, "NOT_FOUND");
            continue;
        }
        if sent.external_id == "clash" {
            clash.push(answer);
            continue;
        }
        let answer = answer.unwrap_or_else(|s| panic!("{} failed: {s:?}", sent.external_id));
        let stored = answer.encounter.as_ref().unwrap();
        assert_eq!(
            stored.external_id, sent.external_id,
            "another call's encounter"
        );
        assert_eq!(stored.satisfaction, sent.satisfaction);
        stored_by_key
            .entry((owner.to_owned(), sent.external_id.clone()))
            .or_default()
            .push(answer);
    }

    // Per key: one stored, its replay a duplicate of the same encounter.
    for ((owner, external_id), answers) in &stored_by_key {
        let expected = if owner == "a" { 2 } else { 1 };
        assert_eq!(answers.len(), expected, "{owner}/{external_id}");
        assert_eq!(
            answers.iter().filter(|r| !r.duplicate).count(),
            1,
            "{owner}/{external_id}: {answers:?}"
        );
        let ids: HashSet<&str> = answers
            .iter()
            .map(|r| r.encounter.as_ref().unwrap().id.as_str())
            .collect();
        assert_eq!(ids.len(), 1, "{owner}/{external_id}: one encounter");
    }
    // Of the two contents under one key, one is stored, the other refused.
    let (ok, refused): (Vec<_>, Vec<_>) = clash.into_iter().partition(Result::is_ok);
    assert_eq!((ok.len(), refused.len()), (1, 1));
    assert_error(
        refused[0].as_ref().unwrap_err(),
        Code::AlreadyExists,
        "ALREADY_EXISTS",
    );

    // Stored exactly so, each in its own organisation.
    let a_stored = app
        .list_encounters(&a.admin_key, pb::ListEncountersRequest::default())
        .await;
    let b_stored = app
        .list_encounters(&b.admin_key, pb::ListEncountersRequest::default())
        .await;
    assert_eq!(a_stored.len(), 21);
    assert_eq!(b_stored.len(), 20);
    let b_ids: HashSet<String> = b_stored.iter().map(|e| e.id.clone()).collect();
    assert!(a_stored.iter().all(|e| !b_ids.contains(&e.id)));
    assert!(
        !external_ids(&a_stored)
            .iter()
            .any(|id| id.starts_with("lost-"))
    );
    let cases = app.all_cases(&a.admin_key).await;
    assert_eq!(
        cases.len(),
        5,
        "one case per failed encounter, none for replays"
    );

    // Calls committed in one transaction share its start as receive_time:
    // fewer distinct times than calls shows they were grouped.
    let times: HashSet<(i64, i32)> = a_stored
        .iter()
        .chain(&b_stored)
        .map(|e| {
            let t = e.receive_time.as_ref().unwrap();
            (t.seconds, t.nanos)
        })
        .collect();
    assert!(
        times.len() < a_stored.len() + b_stored.len(),
        "{} calls, {} transactions",
        a_stored.len() + b_stored.len(),
        times.len()
    );
}

#[tokio::test]
async fn a_call_that_gives_up_while_queued_is_not_stored_and_those_cut_mid_batch_are_stored_once() {
    let app = spawn_app_with(|s| s.request_timeout = Duration::from_millis(300)).await;
    let org = app.create_org("St. Mary").await;
    let desk = app
        .create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;

    // Two batches of an organisation are under way at most. The first two
    // calls' batches wait on the touchpoint's row; the third call queues
    // behind them. All three run past the server's deadline.
    let mut owner = app.hold_touchpoint(&desk.id).await;
    let key = &org.admin_key;
    let app = &app;
    let later = |ms, id| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        app.try_record(key, encounter("desk", "his", id)).await
    };
    let (first, second, queued) =
        tokio::join!(later(0, "evt-1"), later(60, "evt-2"), later(120, "evt-3"));
    for cut in [first, second, queued] {
        assert_error(
            &cut.unwrap_err(),
            Code::DeadlineExceeded,
            "DEADLINE_EXCEEDED",
        );
    }
    owner.execute("rollback").await.unwrap();

    // The batches under way were committed when the lock went; the queued
    // call, whose caller had gone, was dropped.
    let mut stored = Vec::new();
    for _ in 0..50 {
        stored = external_ids(
            &app.list_encounters(key, pb::ListEncountersRequest::default())
                .await,
        );
        if stored.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stored.sort();
    assert_eq!(stored, vec!["evt-1", "evt-2"]);

    // Resending all three, as a client does after DEADLINE_EXCEEDED,
    // completes the set once.
    for (id, duplicate) in [("evt-1", true), ("evt-2", true), ("evt-3", false)] {
        let again = app
            .try_record(key, encounter("desk", "his", id))
            .await
            .unwrap();
        assert_eq!(again.duplicate, duplicate, "{id}");
    }
    assert_eq!(app.count_encounters(key).await, 3);
}
