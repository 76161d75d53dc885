//! Who may call the encounter, journey and recovery methods, and that one
//! organisation's key never reads or changes another's encounters, journeys,
//! feedback or cases. (That a watcher never sees another organisation's
//! cases is tested in `recovery`.)

use prost_types::FieldMask;
use tonic::{Code, Request, Status};
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::helpers::{
    TestApp, assert_error, authed, dissatisfied, encounter, feedback, spawn_app, touchpoint,
};

#[track_caller]
fn assert_denied(status: &Status) {
    assert_error(status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
}

/// A page of recovery cases, or the error.
async fn list_cases_page(
    app: &TestApp,
    key: &str,
) -> Result<pb::ListRecoveryCasesResponse, Status> {
    app.recovery()
        .await
        .list_recovery_cases(authed(key, pb::ListRecoveryCasesRequest::default()))
        .await
        .map(tonic::Response::into_inner)
}

/// A page of encounters, or the error.
async fn list_encounters_page(
    app: &TestApp,
    key: &str,
) -> Result<pb::ListEncountersResponse, Status> {
    app.encounters()
        .await
        .list_encounters(authed(key, pb::ListEncountersRequest::default()))
        .await
        .map(tonic::Response::into_inner)
}

/// Opens a watch, or returns the error.
async fn try_watch(app: &TestApp, key: &str) -> Result<(), Status> {
    app.recovery()
        .await
        .watch_recovery_cases(authed(key, pb::WatchRecoveryCasesRequest::default()))
        .await
        .map(|_| ())
}

fn assigning(id: &str) -> pb::RecoveryCase {
    pb::RecoveryCase {
        id: id.to_owned(),
        assignee: "kim".into(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ingest_and_admin_keys_push_encounters_and_feedback_but_analysts_may_not() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    let ingest_key = app.key(&org, Role::Ingest).await;
    let analyst = app.key(&org, Role::Analyst).await;

    for (i, key) in [&ingest_key, &org.admin_key].into_iter().enumerate() {
        let response = app
            .record(key, encounter("desk", "his", &format!("rec-{i}")))
            .await;
        assert!(!response.duplicate);
        let streamed = app
            .ingest(
                key,
                vec![vec![encounter("desk", "his", &format!("ing-{i}"))]],
            )
            .await
            .expect("ingest failed");
        assert_eq!(streamed.accepted, 1);
        app.record_feedback(key, &format!("visit-{i}"), feedback(4))
            .await
            .expect("feedback failed");
    }

    let status = app
        .record_error(&analyst, encounter("desk", "his", "rec-x"))
        .await;
    assert_denied(&status);
    assert!(status.message().contains("analyst"), "{}", status.message());
    let status = app
        .ingest(&analyst, vec![vec![encounter("desk", "his", "ing-x")]])
        .await
        .unwrap_err();
    assert_denied(&status);
    let status = app
        .record_feedback(&analyst, "visit-x", feedback(4))
        .await
        .unwrap_err();
    assert_denied(&status);

    assert_eq!(app.count_encounters(&org.admin_key).await, 4);
    let status = app
        .get_journey(&org.admin_key, "visit-x")
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
}

#[tokio::test]
async fn analysts_and_admins_read_encounters_journeys_and_cases_but_ingest_keys_may_not() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    let ingest_key = app.key(&org, Role::Ingest).await;
    let analyst = app.key(&org, Role::Analyst).await;
    let failed = app
        .recorded(&ingest_key, dissatisfied("desk", "his", "evt-1"))
        .await;
    let case = app.all_cases(&org.admin_key).await.remove(0);

    for key in [&analyst, &org.admin_key] {
        assert_eq!(
            app.get_encounter(key, &failed.id).await.unwrap().id,
            failed.id
        );
        assert_eq!(
            list_encounters_page(&app, key)
                .await
                .unwrap()
                .encounters
                .len(),
            1
        );
        assert_eq!(
            app.get_journey(key, &failed.journey_id)
                .await
                .unwrap()
                .encounter_count,
            1
        );
        assert_eq!(
            list_cases_page(&app, key)
                .await
                .unwrap()
                .recovery_cases
                .len(),
            1
        );
        assert_eq!(app.get_case(key, &case.id).await.unwrap(), case);
        try_watch(&app, key).await.expect("readers may watch");
    }

    let denied = [
        app.get_encounter(&ingest_key, &failed.id)
            .await
            .unwrap_err(),
        list_encounters_page(&app, &ingest_key).await.unwrap_err(),
        app.get_journey(&ingest_key, &failed.journey_id)
            .await
            .unwrap_err(),
        list_cases_page(&app, &ingest_key).await.unwrap_err(),
        app.get_case(&ingest_key, &case.id).await.unwrap_err(),
        try_watch(&app, &ingest_key).await.unwrap_err(),
    ];
    for status in &denied {
        assert_denied(status);
    }
}

#[tokio::test]
async fn only_admins_erase_customers_and_update_recovery_cases() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    let ingest_key = app.key(&org, Role::Ingest).await;
    let analyst = app.key(&org, Role::Analyst).await;
    let mut failing = dissatisfied("desk", "his", "evt-1");
    failing.customer_ref = "cust-1".into();
    app.recorded(&org.admin_key, failing).await;
    let case = app.all_cases(&org.admin_key).await.remove(0);

    for key in [&analyst, &ingest_key] {
        let status = app.erase(key, "cust-1").await.unwrap_err();
        assert_denied(&status);
        let status = app
            .update_case(key, assigning(&case.id), &["assignee"])
            .await
            .unwrap_err();
        assert_denied(&status);
    }
    assert_eq!(app.count_encounters(&org.admin_key).await, 1);
    assert_eq!(app.get_case(&org.admin_key, &case.id).await.unwrap(), case);

    let changed = app
        .update_case(&org.admin_key, assigning(&case.id), &["assignee"])
        .await
        .unwrap();
    assert_eq!(changed.assignee, "kim");
    let erased = app.erase(&org.admin_key, "cust-1").await.unwrap();
    assert_eq!(erased.encounters, 1);
    assert_eq!(erased.recovery_cases, 1);
}

#[tokio::test]
async fn every_encounter_journey_and_recovery_method_requires_a_key() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    let some_id = uuid::Uuid::now_v7().to_string();
    let mut encounters = app.encounters().await;
    let mut journeys = app.journeys().await;
    let mut recovery = app.recovery().await;

    let statuses = [
        encounters
            .record_encounter(Request::new(pb::RecordEncounterRequest {
                encounter: Some(encounter("desk", "his", "evt-1")),
            }))
            .await
            .unwrap_err(),
        encounters
            .ingest_encounters(Request::new(tokio_stream::iter(vec![
                pb::IngestEncountersRequest {
                    encounters: vec![encounter("desk", "his", "evt-2")],
                },
            ])))
            .await
            .unwrap_err(),
        encounters
            .get_encounter(Request::new(pb::GetEncounterRequest {
                id: some_id.clone(),
            }))
            .await
            .unwrap_err(),
        encounters
            .list_encounters(Request::new(pb::ListEncountersRequest::default()))
            .await
            .unwrap_err(),
        encounters
            .erase_customer(Request::new(pb::EraseCustomerRequest {
                customer_ref: "cust-1".into(),
            }))
            .await
            .unwrap_err(),
        journeys
            .record_journey_feedback(Request::new(pb::RecordJourneyFeedbackRequest {
                journey_id: "visit-1".into(),
                feedback: Some(feedback(4)),
            }))
            .await
            .unwrap_err(),
        journeys
            .get_journey(Request::new(pb::GetJourneyRequest {
                journey_id: "visit-1".into(),
            }))
            .await
            .unwrap_err(),
        recovery
            .list_recovery_cases(Request::new(pb::ListRecoveryCasesRequest::default()))
            .await
            .unwrap_err(),
        recovery
            .get_recovery_case(Request::new(pb::GetRecoveryCaseRequest {
                id: some_id.clone(),
            }))
            .await
            .unwrap_err(),
        recovery
            .update_recovery_case(Request::new(pb::UpdateRecoveryCaseRequest {
                recovery_case: Some(assigning(&some_id)),
                update_mask: Some(FieldMask {
                    paths: vec!["assignee".into()],
                }),
            }))
            .await
            .unwrap_err(),
        recovery
            .watch_recovery_cases(Request::new(pb::WatchRecoveryCasesRequest::default()))
            .await
            .map(|_| ())
            .unwrap_err(),
    ];
    for status in &statuses {
        assert_error(status, Code::Unauthenticated, "API_KEY_MISSING");
    }
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
    let status = app
        .get_journey(&org.admin_key, "visit-1")
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
}

// ---------------------------------------------------------------------------
// Tenancy
// ---------------------------------------------------------------------------

#[tokio::test]
async fn another_organisations_encounters_are_neither_found_nor_listed_nor_used() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    let a_desk = app
        .create_touchpoint(&a.admin_key, touchpoint("a-desk"))
        .await;
    app.create_touchpoint(&b.admin_key, touchpoint("b-desk"))
        .await;
    let mut mine = encounter("a-desk", "his", "evt-1");
    mine.customer_ref = "cust-1".into();
    let mine = app.recorded(&a.admin_key, mine).await;

    let status = app.get_encounter(&b.admin_key, &mine.id).await.unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    for request in [
        pb::ListEncountersRequest::default(),
        pb::ListEncountersRequest {
            journey_id: mine.journey_id.clone(),
            ..Default::default()
        },
        pb::ListEncountersRequest {
            customer_ref: "cust-1".into(),
            ..Default::default()
        },
    ] {
        assert!(
            app.list_encounters(&b.admin_key, request.clone())
                .await
                .is_empty(),
            "B sees A's encounters with {request:?}"
        );
    }
    // A's touchpoint is no touchpoint of B's.
    let status = app
        .encounters()
        .await
        .list_encounters(authed(
            &b.admin_key,
            pb::ListEncountersRequest {
                touchpoint_id: a_desk.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    // B cannot record at A's touchpoint, by id or by code.
    let mut at_a_by_id = encounter("", "his", "evt-2");
    at_a_by_id.touchpoint_id = a_desk.id.clone();
    let status = app.record_error(&b.admin_key, at_a_by_id.clone()).await;
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = app
        .record_error(&b.admin_key, encounter("a-desk", "his", "evt-3"))
        .await;
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let streamed = app
        .ingest(&b.admin_key, vec![vec![at_a_by_id]])
        .await
        .unwrap();
    assert_eq!(streamed.accepted, 0);
    assert_eq!(streamed.rejected, 1);
    assert_eq!(streamed.rejections[0].code, "NOT_FOUND");

    assert_eq!(app.count_encounters(&b.admin_key).await, 0);
    assert_eq!(
        app.list_encounters(&a.admin_key, Default::default()).await,
        [mine]
    );
}

#[tokio::test]
async fn each_organisation_has_its_own_idempotency_keys() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    app.create_touchpoint(&a.admin_key, touchpoint("desk"))
        .await;
    app.create_touchpoint(&b.admin_key, touchpoint("desk"))
        .await;
    let mut a_one = encounter("desk", "his", "evt-1");
    a_one.satisfaction = Some(4);
    let a_stored = app.recorded(&a.admin_key, a_one.clone()).await;

    // The same key with other content is no conflict in B, and the very
    // same content is no duplicate there.
    let mut b_one = a_one;
    b_one.satisfaction = Some(2);
    let b_response = app.record(&b.admin_key, b_one).await;
    assert!(!b_response.duplicate);
    assert_ne!(b_response.encounter.unwrap().id, a_stored.id);
    let a_two = encounter("desk", "his", "evt-2");
    let a_streamed = app
        .ingest(&a.admin_key, vec![vec![a_two.clone()]])
        .await
        .unwrap();
    let b_streamed = app.ingest(&b.admin_key, vec![vec![a_two]]).await.unwrap();
    assert_eq!((a_streamed.accepted, a_streamed.duplicates), (1, 0));
    assert_eq!((b_streamed.accepted, b_streamed.duplicates), (1, 0));

    assert_eq!(app.count_encounters(&a.admin_key).await, 2);
    assert_eq!(app.count_encounters(&b.admin_key).await, 2);
    assert_eq!(
        app.get_encounter(&a.admin_key, &a_stored.id).await.unwrap(),
        a_stored
    );
}

#[tokio::test]
async fn erasing_a_customer_in_one_organisation_leaves_the_other_untouched() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    app.create_touchpoint(&a.admin_key, touchpoint("desk"))
        .await;
    app.create_touchpoint(&b.admin_key, touchpoint("desk"))
        .await;
    let mut a_failing = dissatisfied("desk", "his", "evt-1");
    a_failing.customer_ref = "cust-1".into();
    app.recorded(&a.admin_key, a_failing).await;
    app.record_feedback(&a.admin_key, "visit-1", feedback(2))
        .await
        .unwrap();
    let mut b_fine = encounter("desk", "his", "evt-1");
    b_fine.customer_ref = "cust-1".into();
    app.recorded(&b.admin_key, b_fine).await;

    let erased = app.erase(&b.admin_key, "cust-1").await.unwrap();

    assert_eq!(
        erased,
        pb::EraseCustomerResponse {
            encounters: 1,
            journeys: 1,
            journey_feedback: 0,
            recovery_cases: 0,
        }
    );
    assert_eq!(app.count_encounters(&b.admin_key).await, 0);
    let a_customer = app
        .list_encounters(
            &a.admin_key,
            pb::ListEncountersRequest {
                customer_ref: "cust-1".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(a_customer.len(), 1);
    let a_journey = app.get_journey(&a.admin_key, "visit-1").await.unwrap();
    assert_eq!(a_journey.encounter_count, 1);
    assert!(a_journey.feedback.is_some());
    assert_eq!(app.all_cases(&a.admin_key).await.len(), 1);
}

#[tokio::test]
async fn another_organisations_journeys_and_feedback_are_neither_read_nor_changed() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    app.create_touchpoint(&a.admin_key, touchpoint("desk"))
        .await;
    let mut rated = encounter("desk", "his", "evt-1");
    rated.satisfaction = Some(5);
    app.recorded(&a.admin_key, rated).await;
    let a_feedback = app
        .record_feedback(&a.admin_key, "visit-1", feedback(5))
        .await
        .unwrap()
        .feedback;

    let status = app.get_journey(&b.admin_key, "visit-1").await.unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    // B's feedback on the same journey id is B's own: no conflict, no
    // duplicate, and A's stays as it was.
    let b_recorded = app
        .record_feedback(&b.admin_key, "visit-1", feedback(1))
        .await
        .unwrap();
    assert!(!b_recorded.duplicate);
    let same = feedback(3);
    app.record_feedback(&a.admin_key, "visit-2", same.clone())
        .await
        .unwrap();
    let b_same = app
        .record_feedback(&b.admin_key, "visit-2", same)
        .await
        .unwrap();
    assert!(!b_same.duplicate);

    let b_journey = app.get_journey(&b.admin_key, "visit-1").await.unwrap();
    assert_eq!(
        b_journey.feedback.and_then(|f| f.overall_satisfaction),
        Some(1)
    );
    assert!(b_journey.encounters.is_empty());
    let a_journey = app.get_journey(&a.admin_key, "visit-1").await.unwrap();
    assert_eq!(a_journey.feedback, a_feedback);
    assert_eq!(a_journey.encounter_count, 1);
    assert_eq!(a_journey.score, Some(100.0));
}

#[tokio::test]
async fn another_organisations_recovery_cases_are_neither_read_nor_changed() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    let a_desk = app
        .create_touchpoint(&a.admin_key, touchpoint("desk"))
        .await;
    app.create_touchpoint(&b.admin_key, touchpoint("desk"))
        .await;
    let case = app.open_case(&a.admin_key, "desk", "evt-1").await;

    let status = app.get_case(&b.admin_key, &case.id).await.unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = app
        .update_case(&b.admin_key, assigning(&case.id), &["assignee"])
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let resolving = pb::RecoveryCase {
        id: case.id.clone(),
        status: pb::RecoveryStatus::Resolved.into(),
        resolution_note: "Taken over.".into(),
        ..Default::default()
    };
    let status = app
        .update_case(&b.admin_key, resolving, &["status", "resolution_note"])
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    assert!(app.all_cases(&b.admin_key).await.is_empty());
    let status = app
        .recovery()
        .await
        .list_recovery_cases(authed(
            &b.admin_key,
            pb::ListRecoveryCasesRequest {
                touchpoint_id: a_desk.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    // B's own failures open B's own cases.
    let b_case = app.open_case(&b.admin_key, "desk", "evt-1").await;
    assert_ne!(b_case.id, case.id);

    assert_eq!(app.get_case(&a.admin_key, &case.id).await.unwrap(), case);
    assert_eq!(app.all_cases(&a.admin_key).await, [case]);
}
