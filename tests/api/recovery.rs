//! RecoveryService: the case a failed encounter opens, its deadline, its
//! moves from OPEN to RESOLVED, and the watch that streams new cases.

use std::time::Duration;

use prost_types::FieldMask;
use tonic::Code;
use verdad::{proto::verdad::v1 as pb, store};

use crate::helpers::{
    Org, TestApp, assert_error, authed, dissatisfied, encounter, observation, spawn_app,
    touchpoint, violated_fields,
};

/// Only the id of a case, to build updates on.
fn changes(id: &str) -> pb::RecoveryCase {
    pb::RecoveryCase {
        id: id.to_owned(),
        ..Default::default()
    }
}

/// An organisation with the touchpoints "desk" and "lobby".
async fn org_with_desk_and_lobby(app: &TestApp) -> (Org, pb::Touchpoint, pb::Touchpoint) {
    let org = app.create_org("St. Mary").await;
    let desk = app
        .create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    let lobby = app
        .create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;
    (org, desk, lobby)
}

/// The whole seconds from `open_time` to `due_time`, checking the fractions
/// agree.
#[track_caller]
fn deadline_seconds(case: &pb::RecoveryCase) -> i64 {
    let open = case.open_time.as_ref().expect("no open_time");
    let due = case.due_time.as_ref().expect("no due_time");
    assert_eq!(due.nanos, open.nanos, "{case:?}");
    due.seconds - open.seconds
}

// ---------------------------------------------------------------------------
// Opening cases
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_failed_encounter_opens_one_recovery_case() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut failing = encounter("entrance-guard", "door", "evt-1");
    failing.journey_id = "visit-7".into();
    failing.first_response_seconds = Some(40);
    failing.satisfaction = Some(1);

    let stored = app.recorded(&key, failing.clone()).await;

    let cases = app.all_cases(&key).await;
    assert_eq!(cases.len(), 1);
    let case = &cases[0];
    assert!(uuid::Uuid::parse_str(&case.id).is_ok(), "{}", case.id);
    assert_eq!(case.encounter_id, stored.id);
    assert_eq!(case.touchpoint_id, stored.touchpoint_id);
    assert_eq!(case.touchpoint_code, "entrance-guard");
    assert_eq!(case.journey_id, "visit-7");
    assert_eq!(case.status(), pb::RecoveryStatus::Open);
    assert_eq!(case.assignee, "");
    assert_eq!(case.resolution_note, "");
    assert!(case.resolve_time.is_none());
    assert_eq!(case.original_satisfaction, Some(1));
    assert_eq!(case.follow_up_satisfaction, None);
    assert!(!case.overdue);
    assert_eq!(deadline_seconds(case), 24 * 3600, "the default deadline");
    let opened = case.open_time.as_ref().unwrap().seconds;
    let now = chrono::Utc::now().timestamp();
    assert!((now - 60..=now + 5).contains(&opened), "open_time {opened}");
    assert_eq!(case.failure_reasons.len(), 2, "{:?}", case.failure_reasons);
    assert!(
        case.failure_reasons
            .contains(&"violated critical standard entrance-greeting-15s".to_owned()),
        "{:?}",
        case.failure_reasons
    );
    assert!(
        case.failure_reasons
            .contains(&"satisfaction 1 at or below the failure threshold 2".to_owned()),
        "{:?}",
        case.failure_reasons
    );
    assert_eq!(&app.get_case(&key, &case.id).await.unwrap(), case);

    // A replay never opens a second case.
    let replay = app.record(&key, failing.clone()).await;
    assert!(replay.duplicate);
    let resent = app.ingest(&key, vec![vec![failing]]).await.unwrap();
    assert_eq!(resent.duplicates, 1);
    assert_eq!(resent.recovery_cases_opened, 0);
    assert_eq!(app.all_cases(&key).await, cases);
}

#[tokio::test]
async fn an_encounter_that_does_not_fail_opens_no_case() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut greeted = encounter("entrance-guard", "door", "evt-1");
    greeted.first_response_seconds = Some(15);
    greeted.satisfaction = Some(3);
    let mut lost = encounter("lobby", "audit", "evt-2");
    lost.observations = vec![observation("lobby-signage", false)];

    app.recorded(&key, greeted).await;
    app.recorded(&key, lost).await;

    assert!(app.all_cases(&key).await.is_empty());
}

#[tokio::test]
async fn the_recovery_deadline_sets_the_due_time_of_cases_opened_after_it_changes() {
    let app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let before = app.open_case(key, "desk", "evt-1").await;
    assert_eq!(deadline_seconds(&before), 86_400);

    app.organisations()
        .await
        .update_organisation(authed(
            key,
            pb::UpdateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    recovery_deadline: Some(prost_types::Duration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["recovery_deadline".into()],
                }),
            },
        ))
        .await
        .expect("update_organisation failed");
    let after = app.open_case(key, "desk", "evt-2").await;

    assert_eq!(deadline_seconds(&after), 3600);
    let unchanged = app.get_case(key, &before.id).await.unwrap();
    assert_eq!(deadline_seconds(&unchanged), 86_400);
    assert_eq!(unchanged.due_time, before.due_time);
}

// ---------------------------------------------------------------------------
// Listing and reading
// ---------------------------------------------------------------------------

#[tokio::test]
async fn cases_are_listed_newest_first_and_filtered_by_status_touchpoint_and_overdue() {
    let app = spawn_app().await;
    let (org, desk, lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let a = app.open_case(key, "desk", "evt-a").await;
    let b = app.open_case(key, "lobby", "evt-b").await;
    let c = app.open_case(key, "desk", "evt-c").await;
    let ids =
        |cases: Vec<pb::RecoveryCase>| cases.into_iter().map(|case| case.id).collect::<Vec<_>>();
    let list = |request: pb::ListRecoveryCasesRequest| app.list_cases(key, request);

    assert_eq!(
        ids(list(Default::default()).await),
        [c.id.clone(), b.id.clone(), a.id.clone()]
    );
    assert_eq!(
        ids(list(pb::ListRecoveryCasesRequest {
            touchpoint_id: desk.id.clone(),
            ..Default::default()
        })
        .await),
        [c.id.clone(), a.id.clone()]
    );
    assert_eq!(
        ids(list(pb::ListRecoveryCasesRequest {
            touchpoint_id: lobby.id.clone(),
            ..Default::default()
        })
        .await),
        vec![b.id.clone()]
    );

    let mut working = changes(&b.id);
    working.status = pb::RecoveryStatus::InProgress.into();
    app.update_case(key, working, &["status"]).await.unwrap();
    assert_eq!(
        ids(list(pb::ListRecoveryCasesRequest {
            status: pb::RecoveryStatus::InProgress.into(),
            ..Default::default()
        })
        .await),
        vec![b.id.clone()]
    );
    assert_eq!(
        ids(list(pb::ListRecoveryCasesRequest {
            status: pb::RecoveryStatus::Open.into(),
            ..Default::default()
        })
        .await),
        [c.id.clone(), a.id.clone()]
    );

    // Nothing is overdue yet; then a's due time passes.
    assert!(
        list(pb::ListRecoveryCasesRequest {
            overdue_only: true,
            ..Default::default()
        })
        .await
        .is_empty()
    );
    let mut tx = store::begin_for(&app.pool, org.id).await.unwrap();
    sqlx::query("update recovery_case set due_time = now() - interval '1 minute' where id = $1")
        .bind(uuid::Uuid::parse_str(&a.id).unwrap())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(app.get_case(key, &a.id).await.unwrap().overdue);
    assert_eq!(
        ids(list(pb::ListRecoveryCasesRequest {
            overdue_only: true,
            ..Default::default()
        })
        .await),
        vec![a.id.clone()]
    );
    assert_eq!(
        ids(list(pb::ListRecoveryCasesRequest {
            overdue_only: true,
            touchpoint_id: lobby.id.clone(),
            ..Default::default()
        })
        .await),
        Vec::<String>::new()
    );

    // A resolved case is never overdue.
    let mut resolving = changes(&a.id);
    resolving.status = pb::RecoveryStatus::Resolved.into();
    resolving.resolution_note = "Apologised by phone.".into();
    let resolved = app
        .update_case(key, resolving, &["status", "resolution_note"])
        .await
        .unwrap();
    assert!(!resolved.overdue);
    assert!(
        list(pb::ListRecoveryCasesRequest {
            overdue_only: true,
            ..Default::default()
        })
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn cases_are_listed_a_page_at_a_time() {
    let app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let mut opened = Vec::new();
    for i in 0..5 {
        opened.push(app.open_case(key, "desk", &format!("evt-{i}")).await.id);
    }
    opened.reverse();
    let mut client = app.recovery().await;

    let mut request = pb::ListRecoveryCasesRequest {
        page_size: 2,
        ..Default::default()
    };
    let mut listed = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = client
            .list_recovery_cases(authed(key, request.clone()))
            .await
            .unwrap()
            .into_inner();
        sizes.push(page.recovery_cases.len());
        listed.extend(page.recovery_cases.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(listed, opened);

    let status = client
        .list_recovery_cases(authed(
            key,
            pb::ListRecoveryCasesRequest {
                page_size: -1,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);
}

#[tokio::test]
async fn an_unknown_case_is_not_found() {
    let app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    app.open_case(key, "desk", "evt-1").await;
    let unknown = uuid::Uuid::now_v7().to_string();

    let status = app.get_case(key, &unknown).await.unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    let mut assigning = changes(&unknown);
    assigning.assignee = "kim".into();
    let status = app
        .update_case(key, assigning, &["assignee"])
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
}

// ---------------------------------------------------------------------------
// Working a case
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_case_moves_from_open_to_in_progress_to_resolved() {
    let app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let opened = app.open_case(key, "desk", "evt-1").await;

    let mut taking = changes(&opened.id);
    taking.assignee = "kim".into();
    taking.status = pb::RecoveryStatus::InProgress.into();
    taking.resolution_note = "not in the mask".into();
    let working = app
        .update_case(key, taking, &["assignee", "status"])
        .await
        .unwrap();
    assert_eq!(working.status(), pb::RecoveryStatus::InProgress);
    assert_eq!(working.assignee, "kim");
    assert_eq!(working.resolution_note, "");
    assert!(working.resolve_time.is_none());
    assert_eq!(working.encounter_id, opened.encounter_id);
    assert_eq!(working.open_time, opened.open_time);
    assert_eq!(working.due_time, opened.due_time);
    assert_eq!(working.failure_reasons, opened.failure_reasons);

    let mut resolving = changes(&opened.id);
    resolving.status = pb::RecoveryStatus::Resolved.into();
    resolving.resolution_note = "Called back and apologised.".into();
    resolving.follow_up_satisfaction = Some(4);
    let resolved = app
        .update_case(
            key,
            resolving,
            &["status", "resolution_note", "follow_up_satisfaction"],
        )
        .await
        .unwrap();
    assert_eq!(resolved.status(), pb::RecoveryStatus::Resolved);
    assert_eq!(resolved.resolution_note, "Called back and apologised.");
    assert_eq!(resolved.follow_up_satisfaction, Some(4));
    assert_eq!(resolved.original_satisfaction, Some(1));
    assert_eq!(resolved.assignee, "kim");
    assert!(resolved.resolve_time.is_some());
    assert!(!resolved.overdue);

    assert_eq!(app.get_case(key, &opened.id).await.unwrap(), resolved);
}

#[tokio::test]
async fn an_open_case_may_be_resolved_at_once() {
    let app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let opened = app.open_case(key, "desk", "evt-1").await;

    let mut resolving = changes(&opened.id);
    resolving.status = pb::RecoveryStatus::Resolved.into();
    resolving.resolution_note = "Refunded the parking fee.".into();
    let resolved = app
        .update_case(key, resolving, &["status", "resolution_note"])
        .await
        .unwrap();

    assert_eq!(resolved.status(), pb::RecoveryStatus::Resolved);
    assert!(resolved.resolve_time.is_some());
    assert_eq!(resolved.follow_up_satisfaction, None);
}

#[tokio::test]
async fn resolving_needs_a_resolution_note() {
    let app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let opened = app.open_case(key, "desk", "evt-1").await;
    let mut resolving = changes(&opened.id);
    resolving.status = pb::RecoveryStatus::Resolved.into();

    let status = app
        .update_case(key, resolving.clone(), &["status"])
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["recovery_case.resolution_note"]);
    let status = app
        .update_case(key, resolving, &["status", "resolution_note"])
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["recovery_case.resolution_note"]);

    assert_eq!(app.get_case(key, &opened.id).await.unwrap(), opened);
}

#[tokio::test]
async fn a_case_never_moves_backwards() {
    let app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let opened = app.open_case(key, "desk", "evt-1").await;
    let mut taking = changes(&opened.id);
    taking.status = pb::RecoveryStatus::InProgress.into();
    let working = app.update_case(key, taking, &["status"]).await.unwrap();

    let mut reopening = changes(&opened.id);
    reopening.status = pb::RecoveryStatus::Open.into();
    let status = app
        .update_case(key, reopening, &["status"])
        .await
        .unwrap_err();

    assert_error(
        &status,
        Code::FailedPrecondition,
        "RECOVERY_STATUS_BACKWARD",
    );
    assert_eq!(app.get_case(key, &opened.id).await.unwrap(), working);
}

#[tokio::test]
async fn a_resolved_case_is_final() {
    let app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let opened = app.open_case(key, "desk", "evt-1").await;
    let mut resolving = changes(&opened.id);
    resolving.status = pb::RecoveryStatus::Resolved.into();
    resolving.resolution_note = "Done.".into();
    let resolved = app
        .update_case(key, resolving, &["status", "resolution_note"])
        .await
        .unwrap();

    let mut reassigning = changes(&opened.id);
    reassigning.assignee = "lee".into();
    let mut renoting = changes(&opened.id);
    renoting.resolution_note = "Rewritten.".into();
    let mut following_up = changes(&opened.id);
    following_up.follow_up_satisfaction = Some(5);
    let mut reopening = changes(&opened.id);
    reopening.status = pb::RecoveryStatus::Open.into();
    let attempts = [
        (reassigning, "assignee"),
        (renoting, "resolution_note"),
        (following_up, "follow_up_satisfaction"),
        (reopening, "status"),
    ];
    for (change, path) in attempts {
        let status = app.update_case(key, change, &[path]).await.unwrap_err();
        assert_error(&status, Code::FailedPrecondition, "RECOVERY_CASE_RESOLVED");
    }

    assert_eq!(app.get_case(key, &opened.id).await.unwrap(), resolved);
}

#[tokio::test]
async fn follow_up_satisfaction_is_1_to_5() {
    let app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let opened = app.open_case(key, "desk", "evt-1").await;

    for bad in [0, 6, -1] {
        let mut following_up = changes(&opened.id);
        following_up.follow_up_satisfaction = Some(bad);
        let status = app
            .update_case(key, following_up, &["follow_up_satisfaction"])
            .await
            .unwrap_err();
        assert_eq!(
            violated_fields(&status),
            ["recovery_case.follow_up_satisfaction"],
            "{bad}"
        );
    }
    assert_eq!(app.get_case(key, &opened.id).await.unwrap(), opened);

    for good in [1, 5] {
        let mut following_up = changes(&opened.id);
        following_up.follow_up_satisfaction = Some(good);
        let changed = app
            .update_case(key, following_up, &["follow_up_satisfaction"])
            .await
            .unwrap();
        assert_eq!(changed.follow_up_satisfaction, Some(good));
        assert_eq!(changed.status(), pb::RecoveryStatus::Open);
    }
}

#[tokio::test]
async fn an_unknown_update_mask_path_is_rejected() {
    let app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let opened = app.open_case(key, "desk", "evt-1").await;

    for path in ["encounter_id", "due_time", "no_such_field"] {
        let mut change = changes(&opened.id);
        change.assignee = "kim".into();
        let status = app
            .update_case(key, change, &["assignee", path])
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&status), ["update_mask"], "{path}");
    }
    assert_eq!(app.get_case(key, &opened.id).await.unwrap(), opened);
}

// ---------------------------------------------------------------------------
// Watching
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_watcher_receives_a_new_case_within_a_second() {
    let app = spawn_app().await;
    let (org, desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let mut watch = app.watch(key, "").await;

    let failed = app
        .recorded(key, dissatisfied("desk", "his", "evt-1"))
        .await;
    let case = watch.next_case().await;

    assert_eq!(case.encounter_id, failed.id);
    assert_eq!(case.touchpoint_id, desk.id);
    assert_eq!(case.touchpoint_code, "desk");
    assert_eq!(case.status(), pb::RecoveryStatus::Open);
    assert_eq!(case.original_satisfaction, Some(1));
    let listed = app.all_cases(key).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, case.id);

    // A replay opens no case, so nothing more arrives.
    let replay = app.record(key, dissatisfied("desk", "his", "evt-1")).await;
    assert!(replay.duplicate);
    watch.assert_quiet(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_watcher_receives_every_case_an_ingest_stream_opens() {
    let app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let mut watch = app.watch(key, "").await;

    let response = app
        .ingest(
            key,
            vec![
                vec![
                    dissatisfied("desk", "his", "evt-1"),
                    encounter("desk", "his", "evt-2"),
                ],
                vec![dissatisfied("lobby", "his", "evt-3")],
            ],
        )
        .await
        .unwrap();
    assert_eq!(response.recovery_cases_opened, 2);

    let mut seen = vec![watch.next_case().await.id, watch.next_case().await.id];
    seen.sort();
    let mut listed: Vec<String> = app.all_cases(key).await.into_iter().map(|c| c.id).collect();
    listed.sort();
    assert_eq!(seen, listed);
}

#[tokio::test]
async fn a_watcher_of_one_touchpoint_sees_only_its_cases() {
    let app = spawn_app().await;
    let (org, _desk, lobby) = org_with_desk_and_lobby(&app).await;
    let key = &org.admin_key;
    let mut watch = app.watch(key, &lobby.id).await;

    app.recorded(key, dissatisfied("desk", "his", "evt-1"))
        .await;
    let at_lobby = app
        .recorded(key, dissatisfied("lobby", "his", "evt-2"))
        .await;
    let case = watch.next_case().await;

    assert_eq!(case.encounter_id, at_lobby.id);
    assert_eq!(case.touchpoint_id, lobby.id);
    assert_eq!(app.all_cases(key).await.len(), 2);
}

#[tokio::test]
async fn a_watcher_never_sees_another_organisations_cases() {
    let app = spawn_app().await;
    let (a, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let b = app.create_org("Hospital B").await;
    app.create_touchpoint(&b.admin_key, touchpoint("desk"))
        .await;
    let mut a_watch = app.watch(&a.admin_key, "").await;
    let mut b_watch = app.watch(&b.admin_key, "").await;

    let failed = app
        .recorded(&a.admin_key, dissatisfied("desk", "his", "evt-1"))
        .await;

    assert_eq!(a_watch.next_case().await.encounter_id, failed.id);
    b_watch.assert_quiet(Duration::from_millis(1500)).await;
    assert!(app.all_cases(&b.admin_key).await.is_empty());
}

#[tokio::test]
async fn a_watch_filtered_by_a_touchpoint_the_organisation_lacks_is_not_found() {
    let app = spawn_app().await;
    let (a, a_desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let b = app.create_org("Hospital B").await;
    let mut client = app.recovery().await;
    for request in [
        // A's touchpoint, by id and by code, is none of B's.
        pb::WatchRecoveryCasesRequest {
            touchpoint_id: a_desk.id.clone(),
            ..Default::default()
        },
        pb::WatchRecoveryCasesRequest {
            touchpoint_code: "desk".into(),
            ..Default::default()
        },
    ] {
        let status = client
            .watch_recovery_cases(authed(&b.admin_key, request))
            .await
            .unwrap_err();
        assert_error(&status, Code::NotFound, "NOT_FOUND");
    }
    let status = client
        .watch_recovery_cases(authed(
            &a.admin_key,
            pb::WatchRecoveryCasesRequest {
                touchpoint_id: a_desk.id.clone(),
                touchpoint_code: "desk".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["touchpoint_id"]);

    // By code, A's own desk is watched like by id.
    let mut by_code = client
        .watch_recovery_cases(authed(
            &a.admin_key,
            pb::WatchRecoveryCasesRequest {
                touchpoint_code: "DESK".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.recorded(&a.admin_key, dissatisfied("lobby", "his", "evt-1"))
        .await;
    let at_desk = app
        .recorded(&a.admin_key, dissatisfied("desk", "his", "evt-2"))
        .await;
    let case = tokio::time::timeout(Duration::from_secs(1), by_code.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .recovery_case
        .unwrap();
    assert_eq!(case.encounter_id, at_desk.id);
}

#[tokio::test]
async fn a_watch_ends_with_unavailable_when_the_server_shuts_down() {
    let mut app = spawn_app().await;
    let (org, _desk, _lobby) = org_with_desk_and_lobby(&app).await;
    let mut watch = app.watch(&org.admin_key, "").await;

    let stopping = tokio::spawn(async move { app.shut_down().await });
    let ended = tokio::time::timeout(Duration::from_secs(5), watch.stream.message())
        .await
        .expect("the watch did not end with the server");
    let status = ended.expect_err("the watch ended as if by itself");
    assert_error(&status, Code::Unavailable, "UNAVAILABLE");
    assert!(status.message().contains("shutting down"), "{status:?}");
    stopping.await.unwrap().unwrap();
}
