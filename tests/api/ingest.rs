//! IngestEncounters: streams of batches, the per-item report of rejected
//! encounters, idempotent resends, conflicting replays and the batch limit.

use std::time::Duration;

use sqlx::Executor;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    TestApp, authed, dissatisfied, encounter, external_ids, fixture_day, spawn_app, spawn_app_with,
    touchpoint, violated_fields,
};

/// The field paths a rejection names, sorted.
fn rejection_fields(rejection: &pb::Rejection) -> Vec<String> {
    let mut fields: Vec<String> = rejection
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    fields.sort();
    fields
}

/// The rejections in stream order.
fn in_order(mut rejections: Vec<pb::Rejection>) -> Vec<pb::Rejection> {
    rejections.sort_by_key(|r| (r.batch_index, r.item_index));
    rejections
}

/// (batch, item, source, external_id, code) of each rejection.
fn summary(rejections: &[pb::Rejection]) -> Vec<(i32, i32, String, String, String)> {
    rejections
        .iter()
        .map(|r| {
            (
                r.batch_index,
                r.item_index,
                r.source.clone(),
                r.external_id.clone(),
                r.code.clone(),
            )
        })
        .collect()
}

fn row(batch: i32, item: i32, external_id: &str, code: &str) -> (i32, i32, String, String, String) {
    (
        batch,
        item,
        "his".to_owned(),
        external_id.to_owned(),
        code.to_owned(),
    )
}

/// An organisation with the touchpoint "desk" and the archived touchpoint
/// "old-desk"; returns its admin key.
async fn org_with_desks(app: &TestApp) -> String {
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    let old = app
        .create_touchpoint(&org.admin_key, touchpoint("old-desk"))
        .await;
    app.touchpoints()
        .await
        .archive_touchpoint(authed(
            &org.admin_key,
            pb::ArchiveTouchpointRequest { id: old.id },
        ))
        .await
        .expect("archive failed");
    org.admin_key
}

/// Two batches: three valid encounters (one of them failing) and six
/// invalid ones of every kind.
fn mixed_stream() -> Vec<Vec<pb::Encounter>> {
    let mut bad_satisfaction = encounter("desk", "his", "evt-0-1");
    bad_satisfaction.satisfaction = Some(9);
    let first = vec![
        encounter("desk", "his", "evt-0-0"),
        bad_satisfaction,
        encounter("desk", "his", "evt-0-2"),
    ];

    let mut two_bad_fields = encounter("desk", "his", "evt-1-3");
    two_bad_fields.effort = Some(0);
    two_bad_fields.journey_id = String::new();
    let mut unknown_observation = encounter("desk", "his", "evt-1-4");
    unknown_observation.observations = vec![pb::Observation {
        standard_code: "no-such-standard".into(),
        met: true,
        note: String::new(),
    }];
    let second = vec![
        encounter("nowhere", "his", "evt-1-0"),
        encounter("old-desk", "his", "evt-1-1"),
        dissatisfied("desk", "his", "evt-1-2"),
        two_bad_fields,
        unknown_observation,
        encounter("", "his", "evt-1-5"),
    ];
    vec![first, second]
}

#[tokio::test]
async fn a_mixed_stream_stores_the_valid_encounters_and_reports_each_invalid_one() {
    let app = spawn_app().await;
    let key = org_with_desks(&app).await;

    let response = app.ingest(&key, mixed_stream()).await.unwrap();

    assert_eq!(response.batches, 2);
    assert_eq!(response.accepted, 3);
    assert_eq!(response.duplicates, 0);
    assert_eq!(response.rejected, 6);
    assert_eq!(response.recovery_cases_opened, 1);
    let rejections = in_order(response.rejections);
    assert_eq!(
        summary(&rejections),
        [
            row(0, 1, "evt-0-1", "INVALID_ARGUMENT"),
            row(1, 0, "evt-1-0", "NOT_FOUND"),
            row(1, 1, "evt-1-1", "FAILED_PRECONDITION"),
            row(1, 3, "evt-1-3", "INVALID_ARGUMENT"),
            row(1, 4, "evt-1-4", "INVALID_ARGUMENT"),
            row(1, 5, "evt-1-5", "INVALID_ARGUMENT"),
        ]
    );
    assert_eq!(
        rejection_fields(&rejections[0]),
        ["encounters[1].satisfaction"]
    );
    assert!(
        rejections[0].message.contains("satisfaction"),
        "{}",
        rejections[0].message
    );
    assert_eq!(
        rejection_fields(&rejections[3]),
        ["encounters[3].effort", "encounters[3].journey_id"]
    );
    assert_eq!(
        rejection_fields(&rejections[4]),
        ["encounters[4].observations[0].standard_code"]
    );
    assert_eq!(
        rejection_fields(&rejections[5]),
        ["encounters[5].touchpoint_id"]
    );
    assert!(rejections.iter().all(|r| !r.message.is_empty()));

    let mut stored = external_ids(&app.list_encounters(&key, Default::default()).await);
    stored.sort();
    assert_eq!(stored, ["evt-0-0", "evt-0-2", "evt-1-2"]);
    let cases = app.all_cases(&key).await;
    assert_eq!(cases.len(), 1);
    let failed = app
        .get_encounter(&key, &cases[0].encounter_id)
        .await
        .unwrap();
    assert_eq!(failed.external_id, "evt-1-2");
    assert!(failed.evaluation.unwrap().failed);
}

#[tokio::test]
async fn resending_a_whole_stream_stores_nothing_new_and_reports_the_same_rejections() {
    let app = spawn_app().await;
    let key = org_with_desks(&app).await;
    let first = app.ingest(&key, mixed_stream()).await.unwrap();
    let before = app.list_encounters(&key, Default::default()).await;

    let again = app.ingest(&key, mixed_stream()).await.unwrap();

    assert_eq!(again.batches, 2);
    assert_eq!(again.accepted, 0);
    assert_eq!(again.duplicates, first.accepted);
    assert_eq!(again.rejected, first.rejected);
    assert_eq!(again.recovery_cases_opened, 0);
    assert_eq!(in_order(again.rejections), in_order(first.rejections));
    assert_eq!(app.list_encounters(&key, Default::default()).await, before);
    assert_eq!(app.all_cases(&key).await.len(), 1);
}

#[tokio::test]
async fn a_key_repeated_in_one_stream_is_a_duplicate_or_a_conflict() {
    let app = spawn_app().await;
    let key = org_with_desks(&app).await;
    let mut a = encounter("desk", "his", "evt-a");
    a.satisfaction = Some(4);
    let mut a_changed = a.clone();
    a_changed.satisfaction = Some(5);
    let c = encounter("desk", "his", "evt-c");
    let mut c_changed = c.clone();
    c_changed.comment = "edited".into();

    let response = app
        .ingest(
            &key,
            vec![
                vec![a.clone(), a.clone(), c, c_changed],
                vec![a_changed, encounter("desk", "his", "evt-b")],
            ],
        )
        .await
        .unwrap();

    assert_eq!(response.accepted, 3);
    assert_eq!(response.duplicates, 1);
    assert_eq!(response.rejected, 2);
    let rejections = in_order(response.rejections);
    assert_eq!(
        summary(&rejections),
        [
            row(0, 3, "evt-c", "ALREADY_EXISTS"),
            row(1, 0, "evt-a", "ALREADY_EXISTS"),
        ]
    );
    let stored = app.list_encounters(&key, Default::default()).await;
    assert_eq!(stored.len(), 3);
    let stored_a = stored.iter().find(|e| e.external_id == "evt-a").unwrap();
    assert_eq!(stored_a.satisfaction, Some(4));
    let stored_c = stored.iter().find(|e| e.external_id == "evt-c").unwrap();
    assert_eq!(stored_c.comment, "");
}

#[tokio::test]
async fn record_and_ingest_share_one_idempotency_key() {
    let app = spawn_app().await;
    let key = org_with_desks(&app).await;
    let mut a = encounter("desk", "his", "evt-a");
    a.satisfaction = Some(4);
    let stored_a = app.recorded(&key, a.clone()).await;
    let mut a_changed = a.clone();
    a_changed.satisfaction = Some(2);

    let response = app.ingest(&key, vec![vec![a, a_changed]]).await.unwrap();

    assert_eq!(response.accepted, 0);
    assert_eq!(response.duplicates, 1);
    assert_eq!(response.rejected, 1);
    assert_eq!(
        summary(&response.rejections),
        [row(0, 1, "evt-a", "ALREADY_EXISTS")]
    );
    assert_eq!(
        app.get_encounter(&key, &stored_a.id).await.unwrap(),
        stored_a
    );

    // And the other way round.
    let b = encounter("desk", "his", "evt-b");
    let response = app.ingest(&key, vec![vec![b.clone()]]).await.unwrap();
    assert_eq!(response.accepted, 1);
    let replay = app.record(&key, b).await;
    assert!(replay.duplicate);
    assert_eq!(app.count_encounters(&key).await, 2);
}

#[tokio::test]
async fn a_batch_over_5000_encounters_ends_the_stream_but_earlier_batches_stay_stored() {
    let app = spawn_app().await;
    let key = org_with_desks(&app).await;
    let huge: Vec<pb::Encounter> = (0..5001)
        .map(|i| encounter("desk", "his", &format!("huge-{i}")))
        .collect();

    let status = app
        .ingest(
            &key,
            vec![
                vec![
                    encounter("desk", "his", "first-0"),
                    encounter("desk", "his", "first-1"),
                ],
                huge,
                vec![encounter("desk", "his", "after")],
            ],
        )
        .await
        .unwrap_err();

    assert_eq!(violated_fields(&status), ["encounters"]);
    let mut stored = external_ids(&app.list_encounters(&key, Default::default()).await);
    stored.sort();
    assert_eq!(stored, ["first-0", "first-1"]);
}

#[tokio::test]
async fn failing_encounters_in_a_stream_open_one_case_each() {
    let app = spawn_app().await;
    let key = org_with_desks(&app).await;
    let batch = vec![
        dissatisfied("desk", "his", "evt-0"),
        encounter("desk", "his", "evt-1"),
        dissatisfied("desk", "his", "evt-2"),
    ];

    let response = app
        .ingest(
            &key,
            vec![batch, vec![dissatisfied("desk", "his", "evt-3")]],
        )
        .await
        .unwrap();

    assert_eq!(response.accepted, 4);
    assert_eq!(response.recovery_cases_opened, 3);
    let cases = app.all_cases(&key).await;
    assert_eq!(cases.len(), 3);
    let failed: Vec<pb::Encounter> = app
        .list_encounters(
            &key,
            pb::ListEncountersRequest {
                failed_only: true,
                ..Default::default()
            },
        )
        .await;
    let mut failed_ids: Vec<&str> = failed.iter().map(|e| e.id.as_str()).collect();
    let mut case_ids: Vec<&str> = cases.iter().map(|c| c.encounter_id.as_str()).collect();
    failed_ids.sort_unstable();
    case_ids.sort_unstable();
    assert_eq!(case_ids, failed_ids);
    assert!(
        cases
            .iter()
            .all(|c| c.status() == pb::RecoveryStatus::Open && c.original_satisfaction == Some(1))
    );
}

#[tokio::test]
async fn an_empty_stream_and_an_empty_batch_store_nothing() {
    let app = spawn_app().await;
    let key = org_with_desks(&app).await;

    let nothing = app.ingest(&key, Vec::new()).await.unwrap();
    assert_eq!(nothing, pb::IngestEncountersResponse::default());

    let empty_batch = app.ingest(&key, vec![Vec::new()]).await.unwrap();
    assert_eq!(empty_batch.batches, 1);
    assert_eq!(empty_batch.accepted, 0);
    assert_eq!(empty_batch.rejected, 0);
    assert_eq!(app.count_encounters(&key).await, 0);
}

#[tokio::test]
async fn an_ingested_encounter_is_evaluated_like_a_recorded_one() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut slow = encounter("entrance-guard", "door", "evt-1");
    slow.first_response_seconds = Some(40);
    slow.satisfaction = Some(5);

    let response = app.ingest(&key, vec![vec![slow]]).await.unwrap();

    assert_eq!(response.accepted, 1);
    assert_eq!(response.recovery_cases_opened, 1);
    let stored = app.list_encounters(&key, Default::default()).await;
    assert_eq!(stored.len(), 1);
    let evaluation = stored[0].evaluation.as_ref().unwrap();
    assert!(evaluation.failed);
    assert_eq!(
        evaluation.violated_critical_standards,
        ["entrance-greeting-15s"]
    );
    assert_eq!(stored[0].touchpoint_code, "entrance-guard");
    assert_eq!(stored[0].channel(), pb::Channel::InPerson);
    assert_eq!(app.all_cases(&key).await[0].encounter_id, stored[0].id);
}

#[tokio::test]
async fn with_one_stream_lane_streams_sent_at_once_take_turns_and_all_complete() {
    let app = spawn_app_with(|s| s.stream_batches_at_once = 1).await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("desk"))
        .await;
    let feed = |stream: usize| -> Vec<Vec<pb::Encounter>> {
        (0..5)
            .map(|batch| {
                (0..20)
                    .map(|i| encounter("desk", "his", &format!("s{stream}-b{batch}-{i}")))
                    .collect()
            })
            .collect()
    };

    let (first, second, third) = tokio::join!(
        app.ingest(&org.admin_key, feed(1)),
        app.ingest(&org.admin_key, feed(2)),
        app.ingest(&org.admin_key, feed(3)),
    );

    for answer in [first, second, third] {
        let answer = answer.unwrap();
        assert_eq!((answer.batches, answer.accepted), (5, 100));
    }
    assert_eq!(app.count_encounters(&org.admin_key).await, 300);
}

#[tokio::test]
async fn with_one_bulk_lane_a_stream_batch_holds_up_analyses_but_not_record_encounter() {
    let app = spawn_app_with(|s| s.bulk_lanes = 1).await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    let desk = app.create_touchpoint(key, touchpoint("desk")).await;
    app.create_touchpoint(key, touchpoint("lab")).await;

    // A stream's batch takes the only lane, then waits on the desk's row.
    let mut owner = app.hold_touchpoint(&desk.id).await;
    let batch = (0..3)
        .map(|i| encounter("desk", "his", &format!("streamed-{i}")))
        .collect();
    let stream = app.ingest(key, vec![batch]);
    let beside = async {
        app.until_a_statement_waits_for_a_lock().await;
        // A live call goes past it; an analysis waits for the lane.
        let recorded = app.record(key, encounter("lab", "his", "live-1")).await;
        assert!(!recorded.duplicate);
        let analysis = app.scorecard(key, fixture_day());
        tokio::pin!(analysis);
        let early = tokio::time::timeout(Duration::from_millis(300), &mut analysis).await;
        assert!(early.is_err(), "the analysis ran beside the batch");
        // When the row goes, the batch is stored and gives the lane up.
        owner.execute("rollback").await.unwrap();
        analysis.await
    };
    let (streamed, analysis) = tokio::join!(stream, beside);

    assert_eq!(streamed.unwrap().accepted, 3);
    // The analysis came after the batch: it counts it, folded in either by
    // the analysis or by the server's fold, which took turns with it.
    assert_eq!(analysis.total.unwrap().encounters, 4);
}

#[tokio::test]
async fn a_stream_whose_batch_finds_no_room_in_the_stream_budget_waits_for_it() {
    // A budget with room for one batch of some 40 KB: the smallest the
    // server takes beside a 64 KiB message limit.
    let app = spawn_app_with(|s| {
        s.max_message_bytes = 64 * 1024;
        s.stream_buffer_bytes = 0;
    })
    .await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    let desk = app.create_touchpoint(key, touchpoint("desk")).await;
    app.create_touchpoint(key, touchpoint("lab")).await;
    let big = |code: &str, id: &str| {
        let encounters = (0..40)
            .map(|i| pb::Encounter {
                comment: "x".repeat(1000),
                ..encounter(code, "his", &format!("{id}-{i}"))
            })
            .collect();
        vec![encounters]
    };

    // The first stream's batch is admitted, then waits on the desk's row.
    let mut owner = app.hold_touchpoint(&desk.id).await;
    let first = app.ingest(key, big("desk", "first"));
    let beside = async {
        app.until_a_statement_waits_for_a_lock().await;
        // The second stream's batch, for another touchpoint, finds no room
        // and is not read: nothing of it is stored meanwhile.
        let second = app.ingest(key, big("lab", "second"));
        tokio::pin!(second);
        let early = tokio::time::timeout(Duration::from_millis(500), &mut second).await;
        assert!(
            early.is_err(),
            "the second batch was stored beside the first"
        );
        assert_eq!(app.count_encounters(key).await, 0);
        owner.execute("rollback").await.unwrap();
        second.await
    };
    let (first, second) = tokio::join!(first, beside);
    assert_eq!(first.unwrap().accepted, 40);
    assert_eq!(second.unwrap().accepted, 40);
}

#[tokio::test]
async fn a_stream_of_batches_each_the_size_of_the_budget_flows_one_at_a_time() {
    // Room for one batch of some 40 KB: each must be stored before the
    // next is read, though the end of one and the start of the next share
    // HTTP/2 frames.
    let app = spawn_app_with(|s| {
        s.max_message_bytes = 64 * 1024;
        s.stream_buffer_bytes = 0;
    })
    .await;
    let org = app.create_org("St. Mary").await;
    let key = &org.admin_key;
    app.create_touchpoint(key, touchpoint("desk")).await;
    let batches: Vec<Vec<pb::Encounter>> = (0..5)
        .map(|b| {
            (0..40)
                .map(|i| pb::Encounter {
                    comment: "x".repeat(1000),
                    ..encounter("desk", "his", &format!("{b}-{i}"))
                })
                .collect()
        })
        .collect();
    let stored = tokio::time::timeout(Duration::from_secs(20), app.ingest(key, batches))
        .await
        .expect("the stream stalled")
        .unwrap();
    assert_eq!((stored.batches, stored.accepted), (5, 200));
}
