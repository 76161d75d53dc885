//! EncounterService: recording, reading, listing and erasing encounters,
//! with their validation, idempotency and evaluation against the standards
//! in force. Also the helpers the other encounter, journey and recovery tests
//! share.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use prost_types::{FieldMask, Timestamp};
use tonic::{Code, Status};
use verdad::{demo, proto::verdad::v1 as pb};

use crate::helpers::{
    TestApp, assert_error, authed, create_standard, create_touchpoint, observed_rule, spawn_app,
    standard, touchpoint, violated_fields,
};

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// 2000-01-01T00:00:00Z, the earliest time Verdad accepts.
pub(crate) const YEAR_2000: i64 = 946_684_800;

/// `time` as a protobuf timestamp, cut to the microsecond Verdad keeps.
pub(crate) fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: (time.timestamp_subsec_micros() * 1000) as i32,
    }
}

/// Now minus `minutes`, to the microsecond.
pub(crate) fn minutes_ago(minutes: i64) -> Timestamp {
    timestamp(Utc::now() - TimeDelta::minutes(minutes))
}

/// `seconds` after `base` (before it when negative).
pub(crate) fn plus(base: &Timestamp, seconds: i64) -> Timestamp {
    Timestamp {
        seconds: base.seconds + seconds,
        nanos: base.nanos,
    }
}

/// A valid encounter at the touchpoint with `touchpoint_code`, in journey
/// "visit-1", an hour ago, with nothing measured.
pub(crate) fn encounter(touchpoint_code: &str, source: &str, external_id: &str) -> pb::Encounter {
    pb::Encounter {
        touchpoint_code: touchpoint_code.to_owned(),
        journey_id: "visit-1".to_owned(),
        // Fixed, so that building the same encounter twice gives the same
        // content, as a sender's replay does.
        occur_time: Some(Timestamp {
            seconds: 1_780_304_400, // 2026-06-01T09:00:00Z
            nanos: 0,
        }),
        source: source.to_owned(),
        external_id: external_id.to_owned(),
        ..Default::default()
    }
}

/// A valid encounter that fails in any organisation whose failure threshold
/// is the default 2: its satisfaction is 1.
pub(crate) fn dissatisfied(
    touchpoint_code: &str,
    source: &str,
    external_id: &str,
) -> pb::Encounter {
    let mut failing = encounter(touchpoint_code, source, external_id);
    failing.satisfaction = Some(1);
    failing
}

/// The admin key of the demo hospital, creating it on first use.
pub(crate) async fn demo_key(app: &TestApp) -> String {
    match demo::ensure_demo(&app.pool)
        .await
        .expect("cannot create the demo hospital")
    {
        Some(created) => created.secret,
        None => demo::new_admin_key(&app.pool).await.unwrap().secret,
    }
}

/// Records `encounter` and returns the answer, whatever it is.
pub(crate) async fn try_record(
    app: &TestApp,
    key: &str,
    encounter: pb::Encounter,
) -> Result<pb::RecordEncounterResponse, Status> {
    app.encounters()
        .await
        .record_encounter(authed(
            key,
            pb::RecordEncounterRequest {
                encounter: Some(encounter),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Records `encounter`, which must succeed.
pub(crate) async fn record(
    app: &TestApp,
    key: &str,
    encounter: pb::Encounter,
) -> pb::RecordEncounterResponse {
    try_record(app, key, encounter)
        .await
        .expect("record_encounter failed")
}

/// Records `encounter` and returns it as stored.
/// The answer must be the encounter as stored: when `key` may read
/// encounters, the stored one is read back and compared.
pub(crate) async fn recorded(app: &TestApp, key: &str, encounter: pb::Encounter) -> pb::Encounter {
    let answer = record(app, key, encounter)
        .await
        .encounter
        .expect("no encounter in the response");
    match get_encounter(app, key, &answer.id).await {
        Ok(stored) => assert_eq!(answer, stored, "the answer is not the encounter as stored"),
        Err(status) => assert_eq!(status.code(), Code::PermissionDenied, "{status:?}"),
    }
    answer
}

/// Records `encounter`, which must fail, and returns the status.
pub(crate) async fn record_error(app: &TestApp, key: &str, encounter: pb::Encounter) -> Status {
    try_record(app, key, encounter)
        .await
        .expect_err("record_encounter succeeded")
}

/// Sends `batches` as one IngestEncounters stream.
pub(crate) async fn ingest(
    app: &TestApp,
    key: &str,
    batches: Vec<Vec<pb::Encounter>>,
) -> Result<pb::IngestEncountersResponse, Status> {
    let requests: Vec<pb::IngestEncountersRequest> = batches
        .into_iter()
        .map(|encounters| pb::IngestEncountersRequest { encounters })
        .collect();
    app.encounters()
        .await
        .ingest_encounters(authed(key, tokio_stream::iter(requests)))
        .await
        .map(tonic::Response::into_inner)
}

/// Every encounter `request` lists, page by page.
pub(crate) async fn list_encounters(
    app: &TestApp,
    key: &str,
    mut request: pb::ListEncountersRequest,
) -> Vec<pb::Encounter> {
    let mut client = app.encounters().await;
    let mut all = Vec::new();
    for _ in 0..1000 {
        let page = client
            .list_encounters(authed(key, request.clone()))
            .await
            .expect("list_encounters failed")
            .into_inner();
        all.extend(page.encounters);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
    panic!("pagination does not end");
}

/// How many encounters the key's organisation holds.
pub(crate) async fn count_encounters(app: &TestApp, key: &str) -> usize {
    list_encounters(app, key, pb::ListEncountersRequest::default())
        .await
        .len()
}

/// One page of ListEncounters.
pub(crate) async fn list_page(
    app: &TestApp,
    key: &str,
    request: pb::ListEncountersRequest,
) -> Result<pb::ListEncountersResponse, Status> {
    app.encounters()
        .await
        .list_encounters(authed(key, request))
        .await
        .map(tonic::Response::into_inner)
}

/// The external ids of every encounter `request` lists, in order.
pub(crate) async fn ids_listed(
    app: &TestApp,
    key: &str,
    request: pb::ListEncountersRequest,
) -> Vec<String> {
    external_ids(&list_encounters(app, key, request).await)
}

/// The external ids of `encounters`, in order.
pub(crate) fn external_ids(encounters: &[pb::Encounter]) -> Vec<String> {
    encounters.iter().map(|e| e.external_id.clone()).collect()
}

/// Gets one encounter.
pub(crate) async fn get_encounter(
    app: &TestApp,
    key: &str,
    id: &str,
) -> Result<pb::Encounter, Status> {
    app.encounters()
        .await
        .get_encounter(authed(key, pb::GetEncounterRequest { id: id.to_owned() }))
        .await
        .map(|r| {
            r.into_inner()
                .encounter
                .expect("no encounter in the response")
        })
}

/// The result of the standard `code` in the encounter's evaluation.
#[track_caller]
pub(crate) fn result<'a>(encounter: &'a pb::Encounter, code: &str) -> &'a pb::StandardResult {
    let evaluation = encounter.evaluation.as_ref().expect("no evaluation");
    evaluation
        .results
        .iter()
        .find(|r| r.standard_code == code)
        .unwrap_or_else(|| panic!("no result for {code} in {evaluation:?}"))
}

/// The encounter's evaluation.
#[track_caller]
pub(crate) fn evaluation_of(encounter: &pb::Encounter) -> &pb::Evaluation {
    encounter.evaluation.as_ref().expect("no evaluation")
}

/// The field paths of a status's BadRequest, sorted and without repeats.
#[track_caller]
pub(crate) fn field_set(status: &Status) -> Vec<String> {
    let mut fields = violated_fields(status);
    fields.sort();
    fields.dedup();
    fields
}

/// Journey feedback completed an hour ago.
pub(crate) fn feedback(overall_satisfaction: i32) -> pb::JourneyFeedback {
    pb::JourneyFeedback {
        overall_satisfaction: Some(overall_satisfaction),
        likelihood_to_recommend: None,
        complete_time: Some(minutes_ago(60)),
        comment: String::new(),
        receive_time: None,
    }
}

/// Records journey feedback.
pub(crate) async fn record_feedback(
    app: &TestApp,
    key: &str,
    journey_id: &str,
    feedback: pb::JourneyFeedback,
) -> Result<pb::RecordJourneyFeedbackResponse, Status> {
    app.journeys()
        .await
        .record_journey_feedback(authed(
            key,
            pb::RecordJourneyFeedbackRequest {
                journey_id: journey_id.to_owned(),
                feedback: Some(feedback),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Gets a journey.
pub(crate) async fn get_journey(
    app: &TestApp,
    key: &str,
    journey_id: &str,
) -> Result<pb::Journey, Status> {
    app.journeys()
        .await
        .get_journey(authed(
            key,
            pb::GetJourneyRequest {
                journey_id: journey_id.to_owned(),
            },
        ))
        .await
        .map(|r| r.into_inner().journey.expect("no journey in the response"))
}

/// Every recovery case `request` lists, page by page.
pub(crate) async fn list_cases(
    app: &TestApp,
    key: &str,
    mut request: pb::ListRecoveryCasesRequest,
) -> Vec<pb::RecoveryCase> {
    let mut client = app.recovery().await;
    let mut all = Vec::new();
    for _ in 0..1000 {
        let page = client
            .list_recovery_cases(authed(key, request.clone()))
            .await
            .expect("list_recovery_cases failed")
            .into_inner();
        all.extend(page.recovery_cases);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
    panic!("pagination does not end");
}

/// Every recovery case of the key's organisation.
pub(crate) async fn all_cases(app: &TestApp, key: &str) -> Vec<pb::RecoveryCase> {
    list_cases(app, key, pb::ListRecoveryCasesRequest::default()).await
}

/// Erases a customer.
pub(crate) async fn erase(
    app: &TestApp,
    key: &str,
    customer_ref: &str,
) -> Result<pb::EraseCustomerResponse, Status> {
    app.encounters()
        .await
        .erase_customer(authed(
            key,
            pb::EraseCustomerRequest {
                customer_ref: customer_ref.to_owned(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// An organisation with a touchpoint "desk" (in person) and its admin key.
async fn org_with_desk(app: &TestApp) -> (crate::helpers::Org, pb::Touchpoint) {
    let org = app.create_org("St. Mary").await;
    let desk = create_touchpoint(app, &org.admin_key, touchpoint("desk")).await;
    (org, desk)
}

// ---------------------------------------------------------------------------
// RecordEncounter and GetEncounter
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_recorded_encounter_is_stored_as_sent_and_read_back_by_id() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let desk = create_touchpoint(&app, &org.admin_key, touchpoint("reception-desk")).await;
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

    let response = record(&app, &org.admin_key, sent).await;

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

    let read = get_encounter(&app, &org.admin_key, &stored.id)
        .await
        .unwrap();
    assert_eq!(read, stored);
}

#[tokio::test]
async fn an_encounter_names_its_touchpoint_by_id_and_keeps_an_explicit_channel() {
    let app = spawn_app().await;
    let (org, desk) = org_with_desk(&app).await;
    let mut by_id = encounter("", "his", "evt-1");
    by_id.touchpoint_id = desk.id.clone();
    by_id.channel = pb::Channel::Phone.into();

    let stored = recorded(&app, &org.admin_key, by_id).await;

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
    let (org, desk) = org_with_desk(&app).await;

    let neither = encounter("", "his", "evt-1");
    let status = record_error(&app, &org.admin_key, neither).await;
    assert_eq!(violated_fields(&status), ["encounter.touchpoint_id"]);

    let mut both = encounter("desk", "his", "evt-2");
    both.touchpoint_id = desk.id.clone();
    let status = record_error(&app, &org.admin_key, both).await;
    assert_eq!(violated_fields(&status), ["encounter.touchpoint_id"]);

    assert_eq!(count_encounters(&app, &org.admin_key).await, 0);
}

#[tokio::test]
async fn an_unknown_touchpoint_is_not_found() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;

    let status = record_error(&app, &org.admin_key, encounter("nowhere", "his", "evt-1")).await;
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    let mut by_id = encounter("", "his", "evt-2");
    by_id.touchpoint_id = uuid::Uuid::now_v7().to_string();
    let status = record_error(&app, &org.admin_key, by_id).await;
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    assert_eq!(count_encounters(&app, &org.admin_key).await, 0);
}

#[tokio::test]
async fn an_archived_touchpoint_takes_no_encounters() {
    let app = spawn_app().await;
    let (org, desk) = org_with_desk(&app).await;
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

    let status = record_error(&app, &org.admin_key, encounter("desk", "his", "evt-1")).await;
    assert_error(&status, Code::FailedPrecondition, "TOUCHPOINT_ARCHIVED");
    let mut by_id = encounter("", "his", "evt-2");
    by_id.touchpoint_id = desk.id.clone();
    let status = record_error(&app, &org.admin_key, by_id).await;
    assert_error(&status, Code::FailedPrecondition, "TOUCHPOINT_ARCHIVED");

    assert_eq!(count_encounters(&app, &org.admin_key).await, 0);
}

#[tokio::test]
async fn get_encounter_rejects_a_malformed_id_and_does_not_find_an_unknown_one() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    recorded(&app, &org.admin_key, encounter("desk", "his", "evt-1")).await;

    let status = get_encounter(&app, &org.admin_key, "not-a-uuid")
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
    let status = get_encounter(&app, &org.admin_key, "").await.unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);

    let status = get_encounter(&app, &org.admin_key, &uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_largest_allowed_values_are_accepted() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let mut largest = encounter("desk", &"s".repeat(64), &"x".repeat(128));
    largest.journey_id = "j".repeat(128);
    largest.customer_ref = "c".repeat(256);
    largest.staff_ref = "t".repeat(128);
    // Characters, not bytes: each of these is three bytes in UTF-8.
    largest.comment = "환".repeat(4000);
    largest.attributes = (0..32)
        .map(|i| (format!("{i:0>64}"), "v".repeat(1024)))
        .collect();
    largest.wait_seconds = Some(604_800);
    largest.first_response_seconds = Some(604_800);
    largest.duration_seconds = Some(604_800);
    largest.satisfaction = Some(5);
    largest.effort = Some(7);
    largest.situation = pb::Situation::Coping.into();
    largest.channel = pb::Channel::Remote.into();
    largest.occur_time = Some(timestamp(Utc::now() + TimeDelta::minutes(2)));

    let stored = recorded(&app, &org.admin_key, largest.clone()).await;
    assert_eq!(stored.comment, largest.comment);
    assert_eq!(stored.attributes, largest.attributes);
    assert_eq!(stored.journey_id, largest.journey_id);

    let mut smallest = encounter("desk", "S", "x");
    smallest.journey_id = "j".into();
    smallest.wait_seconds = Some(0);
    smallest.first_response_seconds = Some(0);
    smallest.duration_seconds = Some(0);
    smallest.satisfaction = Some(3);
    smallest.effort = Some(1);
    smallest.occur_time = Some(Timestamp {
        seconds: YEAR_2000,
        nanos: 0,
    });
    let stored = recorded(&app, &org.admin_key, smallest).await;
    assert_eq!(stored.wait_seconds, Some(0));
    assert_eq!(stored.effort, Some(1));
    assert_eq!(
        stored.occur_time,
        Some(Timestamp {
            seconds: YEAR_2000,
            nanos: 0
        })
    );

    let mut lowest_satisfaction = encounter("desk", "his", "evt-low");
    lowest_satisfaction.satisfaction = Some(1);
    recorded(&app, &org.admin_key, lowest_satisfaction).await;

    let token = encounter("desk", "Feed.v2_A-1", "evt-1");
    assert_eq!(
        recorded(&app, &org.admin_key, token).await.source,
        "Feed.v2_A-1"
    );

    assert_eq!(count_encounters(&app, &org.admin_key).await, 4);
}

#[tokio::test]
async fn required_fields_are_named_when_missing() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let mut empty = encounter("desk", "", "");
    empty.journey_id = String::new();
    empty.occur_time = None;

    let status = record_error(&app, &org.admin_key, empty).await;

    assert_eq!(
        field_set(&status),
        [
            "encounter.external_id",
            "encounter.journey_id",
            "encounter.occur_time",
            "encounter.source",
        ]
    );
    assert_eq!(count_encounters(&app, &org.admin_key).await, 0);

    let status = app
        .encounters()
        .await
        .record_encounter(authed(
            &org.admin_key,
            pb::RecordEncounterRequest { encounter: None },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn text_one_character_too_long_is_named_field_by_field_in_one_answer() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let mut long = encounter("desk", &"s".repeat(65), &"x".repeat(129));
    long.journey_id = "j".repeat(129);
    long.customer_ref = "c".repeat(257);
    long.staff_ref = "t".repeat(129);
    long.comment = "m".repeat(4001);

    let status = record_error(&app, &org.admin_key, long).await;

    assert_eq!(
        field_set(&status),
        [
            "encounter.comment",
            "encounter.customer_ref",
            "encounter.external_id",
            "encounter.journey_id",
            "encounter.source",
            "encounter.staff_ref",
        ]
    );
    assert_eq!(count_encounters(&app, &org.admin_key).await, 0);
}

#[tokio::test]
async fn a_source_is_letters_digits_dots_underscores_and_hyphens() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    for (i, bad) in ["his feed", "his/feed", "his:1", "ürgent", "his\n"]
        .into_iter()
        .enumerate()
    {
        let status = record_error(
            &app,
            &org.admin_key,
            encounter("desk", bad, &format!("evt-{i}")),
        )
        .await;
        assert_eq!(violated_fields(&status), ["encounter.source"], "{bad:?}");
    }
    assert_eq!(count_encounters(&app, &org.admin_key).await, 0);
}

#[tokio::test]
async fn attributes_are_limited_in_number_and_size() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let too_many: HashMap<String, String> =
        (0..33).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let cases = [
        ("33 entries", too_many),
        (
            "an empty key",
            HashMap::from([(String::new(), "v".to_owned())]),
        ),
        (
            "a 65-character key",
            HashMap::from([("k".repeat(65), "v".to_owned())]),
        ),
        (
            "a 1025-character value",
            HashMap::from([("k".to_owned(), "v".repeat(1025))]),
        ),
    ];
    for (i, (what, attributes)) in cases.into_iter().enumerate() {
        let mut bad = encounter("desk", "his", &format!("evt-{i}"));
        bad.attributes = attributes;
        let status = record_error(&app, &org.admin_key, bad).await;
        assert_eq!(field_set(&status), ["encounter.attributes"], "{what}");
    }
    assert_eq!(count_encounters(&app, &org.admin_key).await, 0);
}

#[tokio::test]
async fn occur_time_must_lie_between_2000_and_five_minutes_from_now() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let cases = [
        ("missing", None),
        (
            "a second before 2000",
            Some(Timestamp {
                seconds: YEAR_2000 - 1,
                nanos: 0,
            }),
        ),
        (
            "ten minutes ahead",
            Some(timestamp(Utc::now() + TimeDelta::minutes(10))),
        ),
        (
            "next year",
            Some(timestamp(Utc::now() + TimeDelta::days(365))),
        ),
    ];
    for (i, (what, occur_time)) in cases.into_iter().enumerate() {
        let mut bad = encounter("desk", "his", &format!("evt-{i}"));
        bad.occur_time = occur_time;
        let status = record_error(&app, &org.admin_key, bad).await;
        assert_eq!(violated_fields(&status), ["encounter.occur_time"], "{what}");
    }
    assert_eq!(count_encounters(&app, &org.admin_key).await, 0);
}

#[tokio::test]
async fn measurements_outside_their_ranges_are_all_named() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let mut below = encounter("desk", "his", "evt-1");
    below.wait_seconds = Some(-1);
    below.first_response_seconds = Some(-1);
    below.duration_seconds = Some(-1);
    below.satisfaction = Some(0);
    below.effort = Some(0);
    let status = record_error(&app, &org.admin_key, below).await;
    assert_eq!(
        field_set(&status),
        [
            "encounter.duration_seconds",
            "encounter.effort",
            "encounter.first_response_seconds",
            "encounter.satisfaction",
            "encounter.wait_seconds",
        ]
    );

    let mut above = encounter("desk", "his", "evt-2");
    above.wait_seconds = Some(604_801);
    above.first_response_seconds = Some(604_801);
    above.duration_seconds = Some(i64::MAX);
    above.satisfaction = Some(6);
    above.effort = Some(8);
    let status = record_error(&app, &org.admin_key, above).await;
    assert_eq!(
        field_set(&status),
        [
            "encounter.duration_seconds",
            "encounter.effort",
            "encounter.first_response_seconds",
            "encounter.satisfaction",
            "encounter.wait_seconds",
        ]
    );
    assert_eq!(count_encounters(&app, &org.admin_key).await, 0);
}

#[tokio::test]
async fn unknown_channel_and_situation_numbers_are_rejected() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let mut bad = encounter("desk", "his", "evt-1");
    bad.channel = 9;
    bad.situation = 42;

    let status = record_error(&app, &org.admin_key, bad).await;

    assert_eq!(
        field_set(&status),
        ["encounter.channel", "encounter.situation"]
    );
    assert_eq!(count_encounters(&app, &org.admin_key).await, 0);
}

#[tokio::test]
async fn every_bad_field_of_an_encounter_is_named_in_one_answer() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let mut bad = encounter("desk", "bad source", "");
    bad.journey_id = String::new();
    bad.comment = "m".repeat(4001);
    bad.satisfaction = Some(9);
    bad.wait_seconds = Some(-5);
    bad.channel = 7;
    bad.occur_time = Some(Timestamp {
        seconds: 0,
        nanos: 0,
    });
    bad.attributes = HashMap::from([(String::new(), "v".to_owned())]);

    let status = record_error(&app, &org.admin_key, bad).await;

    assert_eq!(
        field_set(&status),
        [
            "encounter.attributes",
            "encounter.channel",
            "encounter.comment",
            "encounter.external_id",
            "encounter.journey_id",
            "encounter.occur_time",
            "encounter.satisfaction",
            "encounter.source",
            "encounter.wait_seconds",
        ]
    );
    assert_eq!(count_encounters(&app, &org.admin_key).await, 0);
}

/// An observation standard of `code` (minor, observed) at `touchpoint_code`,
/// every touchpoint when empty.
fn observed(code: &str, touchpoint_code: &str) -> pb::Standard {
    let mut observed = standard(code, touchpoint_code);
    observed.severity = pb::Severity::Minor.into();
    observed.rule = observed_rule();
    observed
}

/// An observation of the standard `code` without a note.
pub(crate) fn observation(code: &str, met: bool) -> pb::Observation {
    pb::Observation {
        standard_code: code.to_owned(),
        met,
        note: String::new(),
    }
}

#[tokio::test]
async fn observations_must_name_observed_standards_in_force_at_the_touchpoint() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let key = &org.admin_key;
    create_touchpoint(&app, key, touchpoint("lobby")).await;
    create_standard(&app, key, observed("badge", "")).await;
    create_standard(&app, key, observed("signage", "lobby")).await;
    create_standard(&app, key, standard("greet", "desk")).await;
    let retired = create_standard(&app, key, observed("retired", "")).await;
    app.standards()
        .await
        .archive_standard(authed(
            key,
            pb::ArchiveStandardRequest {
                id: retired.id.clone(),
            },
        ))
        .await
        .expect("archive failed");

    let cases: [(&str, Vec<pb::Observation>, Vec<&str>); 5] = [
        (
            "an unknown code",
            vec![observation("no-such-standard", true)],
            vec!["encounter.observations[0].standard_code"],
        ),
        (
            "an observed standard of another touchpoint",
            vec![observation("badge", true), observation("signage", false)],
            vec!["encounter.observations[1].standard_code"],
        ),
        (
            "a metric standard",
            vec![observation("greet", true)],
            vec!["encounter.observations[0].standard_code"],
        ),
        (
            "an archived standard",
            vec![observation("retired", true)],
            vec!["encounter.observations[0].standard_code"],
        ),
        (
            "two bad codes",
            vec![
                observation("nope", true),
                observation("badge", true),
                observation("signage", true),
            ],
            vec![
                "encounter.observations[0].standard_code",
                "encounter.observations[2].standard_code",
            ],
        ),
    ];
    for (i, (what, observations, fields)) in cases.into_iter().enumerate() {
        let mut bad = encounter("desk", "audit", &format!("evt-{i}"));
        bad.observations = observations;
        let status = record_error(&app, key, bad).await;
        assert_eq!(field_set(&status), fields, "{what}");
    }
    assert_eq!(count_encounters(&app, key).await, 0);

    // Codes match regardless of case.
    let mut good = encounter("desk", "audit", "evt-good");
    good.observations = vec![pb::Observation {
        standard_code: "BADGE".into(),
        met: false,
        note: "n".repeat(1000),
    }];
    let stored = recorded(&app, key, good).await;
    assert_eq!(result(&stored, "badge").outcome(), pb::Outcome::Violated);
    assert_eq!(stored.observations.len(), 1);
    assert_eq!(stored.observations[0].note, "n".repeat(1000));
    assert!(!stored.observations[0].met);
}

#[tokio::test]
async fn observations_are_unique_per_standard_and_notes_are_short() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let key = &org.admin_key;
    create_standard(&app, key, observed("badge", "")).await;

    let mut twice = encounter("desk", "audit", "evt-1");
    twice.observations = vec![observation("badge", true), observation("badge", false)];
    let status = record_error(&app, key, twice).await;
    assert_eq!(field_set(&status), ["encounter.observations"]);

    let mut long_note = encounter("desk", "audit", "evt-2");
    long_note.observations = vec![pb::Observation {
        standard_code: "badge".into(),
        met: true,
        note: "n".repeat(1001),
    }];
    let status = record_error(&app, key, long_note).await;
    let fields = field_set(&status);
    assert!(
        !fields.is_empty()
            && fields
                .iter()
                .all(|f| f.starts_with("encounter.observations")),
        "{fields:?}"
    );
    assert_eq!(count_encounters(&app, key).await, 0);
}

#[tokio::test]
async fn at_most_64_observations_are_accepted() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let key = &org.admin_key;
    let mut standards = app.standards().await;
    for i in 0..65 {
        standards
            .create_standard(authed(
                key,
                pb::CreateStandardRequest {
                    standard: Some(observed(&format!("audit-{i:02}"), "")),
                },
            ))
            .await
            .expect("create_standard failed");
    }
    let all: Vec<pb::Observation> = (0..65)
        .map(|i| observation(&format!("audit-{i:02}"), true))
        .collect();

    let mut too_many = encounter("desk", "audit", "evt-65");
    too_many.observations = all.clone();
    let status = record_error(&app, key, too_many).await;
    assert_eq!(field_set(&status), ["encounter.observations"]);
    assert_eq!(count_encounters(&app, key).await, 0);

    let mut most = encounter("desk", "audit", "evt-64");
    most.observations = all[..64].to_vec();
    let stored = recorded(&app, key, most).await;
    assert_eq!(stored.observations.len(), 64);
    let evaluation = evaluation_of(&stored);
    assert_eq!(evaluation.results.len(), 65);
    let met = evaluation
        .results
        .iter()
        .filter(|r| r.outcome() == pb::Outcome::Met)
        .count();
    assert_eq!(met, 64);
    assert_eq!(
        result(&stored, "audit-64").outcome(),
        pb::Outcome::NotApplicable
    );
}

// ---------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_replay_with_the_same_content_returns_the_stored_encounter() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let mut sent = encounter("desk", "his", "evt-1");
    sent.customer_ref = "patient-1".into();
    sent.satisfaction = Some(4);

    let first = record(&app, &org.admin_key, sent.clone()).await;
    let second = record(&app, &org.admin_key, sent).await;

    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.encounter, first.encounter);
    assert_eq!(count_encounters(&app, &org.admin_key).await, 1);
}

#[tokio::test]
async fn a_replay_with_other_content_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let mut sent = encounter("desk", "his-feed", "evt-77");
    sent.satisfaction = Some(4);
    let stored = recorded(&app, &org.admin_key, sent.clone()).await;

    let mut other = sent.clone();
    other.satisfaction = Some(5);
    let status = record_error(&app, &org.admin_key, other).await;
    assert_error(&status, Code::AlreadyExists, "ALREADY_EXISTS");
    assert!(
        status.message().contains("his-feed"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("evt-77"), "{}", status.message());

    let mut other_comment = sent.clone();
    other_comment.comment = "changed my mind".into();
    let status = record_error(&app, &org.admin_key, other_comment).await;
    assert_error(&status, Code::AlreadyExists, "ALREADY_EXISTS");

    let mut other_ref = sent;
    other_ref.customer_ref = "someone".into();
    let status = record_error(&app, &org.admin_key, other_ref).await;
    assert_error(&status, Code::AlreadyExists, "ALREADY_EXISTS");

    let read = get_encounter(&app, &org.admin_key, &stored.id)
        .await
        .unwrap();
    assert_eq!(read, stored);
    assert_eq!(count_encounters(&app, &org.admin_key).await, 1);
}

#[tokio::test]
async fn output_only_fields_of_a_replay_are_ignored() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let sent = encounter("desk", "his", "evt-1");
    let stored = recorded(&app, &org.admin_key, sent.clone()).await;

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
    let replay = record(&app, &org.admin_key, decorated).await;

    assert!(replay.duplicate);
    assert_eq!(replay.encounter.as_ref(), Some(&stored));
    assert_eq!(count_encounters(&app, &org.admin_key).await, 1);
}

#[tokio::test]
async fn the_idempotency_key_is_the_source_with_the_external_id() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;

    let from_his = record(&app, &org.admin_key, encounter("desk", "his", "evt-1")).await;
    let from_kiosk = record(&app, &org.admin_key, encounter("desk", "kiosk", "evt-1")).await;
    let other_id = record(&app, &org.admin_key, encounter("desk", "his", "evt-2")).await;

    assert!(!from_his.duplicate && !from_kiosk.duplicate && !other_id.duplicate);
    let ids: std::collections::HashSet<String> = [from_his, from_kiosk, other_id]
        .into_iter()
        .map(|r| r.encounter.unwrap().id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(count_encounters(&app, &org.admin_key).await, 3);
}

// ---------------------------------------------------------------------------
// Evaluation against the demo hospital's standards
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_encounter_is_evaluated_against_every_standard_in_force_at_its_touchpoint() {
    let app = spawn_app().await;
    let key = demo_key(&app).await;
    let mut greeted = encounter("entrance-guard", "door", "evt-1");
    greeted.first_response_seconds = Some(10);
    greeted.satisfaction = Some(5);

    let stored = recorded(&app, &key, greeted).await;

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
    let (org, desk) = org_with_desk(&app).await;
    let key = &org.admin_key;
    let greeting = create_standard(&app, key, standard("greeting", "desk")).await;
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

    create_touchpoint(&app, key, touchpoint("kiosk")).await;
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
    let (org, _desk) = org_with_desk(&app).await;
    let key = &org.admin_key;
    // The server keeps the organisation as it was: without a customer key.
    let mut plain = encounter("desk", "his", "evt-1");
    plain.journey_id = "another-visit".into();
    let without = recorded(&app, key, plain).await;
    // The first makes the key; the next reads it afresh; the last is
    // stored with the organisation kept as the one before read it.
    for external_id in ["evt-2", "evt-3", "evt-4"] {
        let mut sent = encounter("desk", "his", external_id);
        sent.customer_ref = "patient-7".into();
        assert!(recorded(&app, key, sent).await.has_customer_ref);
    }

    let erased = erase(&app, key, "patient-7").await.unwrap();
    assert_eq!(erased.encounters, 3, "{erased:?}");
    let left = get_encounter(&app, key, &without.id).await;
    assert!(left.is_ok(), "{left:?}");
}

#[tokio::test]
async fn violating_a_critical_standard_fails_the_encounter() {
    let app = spawn_app().await;
    let key = demo_key(&app).await;
    let mut slow = encounter("entrance-guard", "door", "evt-1");
    slow.first_response_seconds = Some(40);
    slow.satisfaction = Some(4);

    let stored = recorded(&app, &key, slow).await;

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
    let key = demo_key(&app).await;
    let mut lost = encounter("lobby", "audit", "evt-1");
    lost.observations = vec![
        observation("lobby-signage", false),
        observation("Name-Badge", false),
    ];
    lost.satisfaction = Some(3);

    let stored = recorded(&app, &key, lost).await;

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
    let key = demo_key(&app).await;
    let mut unhappy = encounter("reception-desk", "survey", "evt-1");
    unhappy.first_response_seconds = Some(5);
    unhappy.satisfaction = Some(2);
    let stored = recorded(&app, &key, unhappy).await;
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
    let stored = recorded(&app, &key, lukewarm).await;
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
    let stored = recorded(&app, &key, strict).await;
    let evaluation = evaluation_of(&stored);
    assert!(evaluation.failed);
    assert!(evaluation.low_satisfaction);
}

#[tokio::test]
async fn standards_whose_field_or_observation_is_missing_are_not_applicable() {
    let app = spawn_app().await;
    let key = demo_key(&app).await;

    let unmeasured = recorded(&app, &key, encounter("waiting-area", "his", "evt-1")).await;
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
    let stored = recorded(&app, &key, long_wait).await;
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
    let stored = recorded(&app, &key, explained).await;
    assert_eq!(
        result(&stored, "consultation-explained").outcome(),
        pb::Outcome::Met
    );
    assert_eq!(
        result(&stored, "name-badge").outcome(),
        pb::Outcome::NotApplicable
    );
}

// ---------------------------------------------------------------------------
// ListEncounters
// ---------------------------------------------------------------------------

#[tokio::test]
async fn encounters_are_listed_newest_first_and_later_arrivals_first_among_equal_times() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let base = minutes_ago(300);
    let at = |external_id: &str, offset: i64| {
        let mut e = encounter("desk", "his", external_id);
        e.occur_time = Some(plus(&base, offset));
        e
    };
    for e in [
        at("oldest", 0),
        at("tie-first", 7200),
        at("middle", 3600),
        at("tie-second", 7200),
        at("tie-third", 7200),
    ] {
        recorded(&app, &org.admin_key, e).await;
    }

    let listed = list_encounters(&app, &org.admin_key, Default::default()).await;

    assert_eq!(
        external_ids(&listed),
        ["tie-third", "tie-second", "tie-first", "middle", "oldest"]
    );
    assert!(listed.iter().all(|e| e.customer_ref.is_empty()));
    assert!(listed.iter().all(|e| e.evaluation.is_some()));
}

#[tokio::test]
async fn pages_return_every_encounter_once_in_order() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let base = minutes_ago(120);
    for i in 0..8 {
        let mut e = encounter("desk", "his", &format!("evt-{i}"));
        // Pairs share their time, so pages must split ties correctly.
        e.occur_time = Some(plus(&base, i / 2));
        recorded(&app, &org.admin_key, e).await;
    }
    let mut client = app.encounters().await;

    let whole = client
        .list_encounters(authed(&org.admin_key, pb::ListEncountersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(whole.next_page_token.is_empty());
    assert_eq!(
        external_ids(&whole.encounters),
        [
            "evt-7", "evt-6", "evt-5", "evt-4", "evt-3", "evt-2", "evt-1", "evt-0"
        ]
    );

    let mut paged = Vec::new();
    let mut request = pb::ListEncountersRequest {
        page_size: 3,
        ..Default::default()
    };
    let mut sizes = Vec::new();
    loop {
        let page = client
            .list_encounters(authed(&org.admin_key, request.clone()))
            .await
            .unwrap()
            .into_inner();
        sizes.push(page.encounters.len());
        paged.extend(page.encounters);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, [3, 3, 2]);
    assert_eq!(paged, whole.encounters);
}

#[tokio::test]
async fn page_size_defaults_to_50_and_is_capped_at_500() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let many: Vec<pb::Encounter> = (0..501)
        .map(|i| encounter("desk", "backfill", &format!("evt-{i:03}")))
        .collect();
    let response = ingest(&app, &org.admin_key, vec![many]).await.unwrap();
    assert_eq!(response.accepted, 501);
    let mut client = app.encounters().await;

    let default = client
        .list_encounters(authed(&org.admin_key, pb::ListEncountersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(default.encounters.len(), 50);
    assert!(!default.next_page_token.is_empty());

    let capped = client
        .list_encounters(authed(
            &org.admin_key,
            pb::ListEncountersRequest {
                page_size: 100_000,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(capped.encounters.len(), 500);
    assert!(!capped.next_page_token.is_empty());
    let rest = client
        .list_encounters(authed(
            &org.admin_key,
            pb::ListEncountersRequest {
                page_size: 100_000,
                page_token: capped.next_page_token,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.encounters.len(), 1);
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn list_rejects_negative_page_sizes_foreign_tokens_and_empty_time_windows() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    for i in 0..3 {
        let mut e = encounter("desk", "his", &format!("evt-{i}"));
        e.journey_id = "visit-1".into();
        recorded(&app, &org.admin_key, e).await;
    }
    let list = |request: pb::ListEncountersRequest| list_page(&app, &org.admin_key, request);

    let status = list(pb::ListEncountersRequest {
        page_size: -1,
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);

    let status = list(pb::ListEncountersRequest {
        page_token: "garbage".into(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);

    let first = list(pb::ListEncountersRequest {
        page_size: 1,
        journey_id: "visit-1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(!first.next_page_token.is_empty());
    let status = list(pb::ListEncountersRequest {
        page_size: 1,
        journey_id: "visit-2".into(),
        page_token: first.next_page_token.clone(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
    let status = list(pb::ListEncountersRequest {
        page_size: 1,
        journey_id: "visit-1".into(),
        failed_only: true,
        page_token: first.next_page_token,
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);

    let now = minutes_ago(0);
    let status = list(pb::ListEncountersRequest {
        start_time: Some(plus(&now, 0)),
        end_time: Some(plus(&now, 0)),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["end_time"]);
    let status = list(pb::ListEncountersRequest {
        start_time: Some(plus(&now, 0)),
        end_time: Some(plus(&now, -3600)),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["end_time"]);
}

#[tokio::test]
async fn list_filters_select_the_matching_encounters() {
    let app = spawn_app().await;
    let (org, desk) = org_with_desk(&app).await;
    let key = &org.admin_key;
    let mut phone_tp = touchpoint("phone");
    phone_tp.channel = pb::Channel::Phone.into();
    let phone = create_touchpoint(&app, key, phone_tp).await;
    let base = minutes_ago(600);

    let mut e1 = encounter("desk", "his", "e1");
    e1.journey_id = "j-1".into();
    e1.occur_time = Some(plus(&base, 0));
    e1.customer_ref = "cust-1".into();
    e1.situation = pb::Situation::Recovery.into();
    e1.satisfaction = Some(5);
    let mut e2 = encounter("phone", "his", "e2");
    e2.journey_id = "j-1".into();
    e2.occur_time = Some(plus(&base, 3600));
    e2.customer_ref = "cust-2".into();
    e2.satisfaction = Some(1);
    let mut e3 = encounter("desk", "his", "e3");
    e3.journey_id = "j-2".into();
    e3.occur_time = Some(plus(&base, 7200));
    e3.customer_ref = "cust-1".into();
    e3.channel = pb::Channel::Phone.into();
    e3.situation = pb::Situation::Coping.into();
    let mut e4 = encounter("desk", "his", "e4");
    e4.journey_id = "j-3".into();
    e4.occur_time = Some(plus(&base, 10800));
    for e in [e1, e2, e3, e4] {
        recorded(&app, key, e).await;
    }
    let ids = |request: pb::ListEncountersRequest| ids_listed(&app, key, request);

    assert_eq!(ids(Default::default()).await, ["e4", "e3", "e2", "e1"]);
    assert_eq!(
        ids(pb::ListEncountersRequest {
            start_time: Some(plus(&base, 3600)),
            end_time: Some(plus(&base, 10800)),
            ..Default::default()
        })
        .await,
        ["e3", "e2"],
        "start_time is inclusive, end_time exclusive"
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            start_time: Some(plus(&base, 1)),
            ..Default::default()
        })
        .await,
        ["e4", "e3", "e2"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            end_time: Some(plus(&base, 3601)),
            ..Default::default()
        })
        .await,
        ["e2", "e1"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            touchpoint_id: phone.id.clone(),
            ..Default::default()
        })
        .await,
        ["e2"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            touchpoint_id: desk.id.clone(),
            ..Default::default()
        })
        .await,
        ["e4", "e3", "e1"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            journey_id: "j-1".into(),
            ..Default::default()
        })
        .await,
        ["e2", "e1"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            situation: pb::Situation::Recovery.into(),
            ..Default::default()
        })
        .await,
        ["e1"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            channel: pb::Channel::Phone.into(),
            ..Default::default()
        })
        .await,
        ["e3", "e2"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            failed_only: true,
            ..Default::default()
        })
        .await,
        ["e2"]
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            customer_ref: "cust-1".into(),
            ..Default::default()
        })
        .await,
        ["e3", "e1"]
    );
    assert!(
        ids(pb::ListEncountersRequest {
            customer_ref: "cust-unknown".into(),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        ids(pb::ListEncountersRequest {
            customer_ref: "cust-1".into(),
            touchpoint_id: desk.id.clone(),
            situation: pb::Situation::Coping.into(),
            ..Default::default()
        })
        .await,
        ["e3"]
    );
    let by_customer = list_encounters(
        &app,
        key,
        pb::ListEncountersRequest {
            customer_ref: "cust-1".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        by_customer
            .iter()
            .all(|e| e.customer_ref.is_empty() && e.has_customer_ref)
    );
}

// ---------------------------------------------------------------------------
// EraseCustomer
// ---------------------------------------------------------------------------

#[tokio::test]
async fn erasing_a_customer_deletes_every_journey_they_appear_in() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let key = &org.admin_key;
    let in_journey = |journey: &str, external_id: &str, customer: &str, satisfaction: i32| {
        let mut e = encounter("desk", "his", external_id);
        e.journey_id = journey.to_owned();
        e.customer_ref = customer.to_owned();
        e.satisfaction = Some(satisfaction);
        e
    };
    // J1: the customer (failing, so with a case), a companion without a
    // reference, and feedback.
    recorded(&app, key, in_journey("j-1", "a", "cust-1", 1)).await;
    recorded(&app, key, in_journey("j-1", "b", "", 5)).await;
    record_feedback(&app, key, "j-1", feedback(2))
        .await
        .unwrap();
    // J2: the customer again.
    recorded(&app, key, in_journey("j-2", "c", "cust-1", 4)).await;
    // J3: another customer, failing, with feedback.
    recorded(&app, key, in_journey("j-3", "d", "cust-2", 1)).await;
    record_feedback(&app, key, "j-3", feedback(1))
        .await
        .unwrap();
    // J4: feedback only.
    record_feedback(&app, key, "j-4", feedback(5))
        .await
        .unwrap();
    assert_eq!(all_cases(&app, key).await.len(), 2);

    let erased = erase(&app, key, "cust-1").await.unwrap();

    assert_eq!(
        erased,
        pb::EraseCustomerResponse {
            encounters: 3,
            journeys: 2,
            journey_feedback: 1,
            recovery_cases: 1,
        }
    );
    let left = list_encounters(&app, key, Default::default()).await;
    assert_eq!(external_ids(&left), ["d"]);
    for gone in ["j-1", "j-2"] {
        let status = get_journey(&app, key, gone).await.unwrap_err();
        assert_error(&status, Code::NotFound, "NOT_FOUND");
    }
    let j3 = get_journey(&app, key, "j-3").await.unwrap();
    assert_eq!(j3.encounter_count, 1);
    assert!(j3.feedback.is_some());
    let j4 = get_journey(&app, key, "j-4").await.unwrap();
    assert!(j4.feedback.is_some());
    let cases = all_cases(&app, key).await;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].journey_id, "j-3");
    assert!(
        list_encounters(
            &app,
            key,
            pb::ListEncountersRequest {
                customer_ref: "cust-1".into(),
                ..Default::default()
            }
        )
        .await
        .is_empty()
    );

    // Erasing again finds nothing.
    let again = erase(&app, key, "cust-1").await.unwrap();
    assert_eq!(again, pb::EraseCustomerResponse::default());
}

#[tokio::test]
async fn erasing_an_unknown_customer_erases_nothing() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    let mut known = dissatisfied("desk", "his", "evt-1");
    known.customer_ref = "cust-1".into();
    recorded(&app, &org.admin_key, known).await;
    recorded(&app, &org.admin_key, encounter("desk", "his", "evt-2")).await;

    let erased = erase(&app, &org.admin_key, "cust-unknown").await.unwrap();

    assert_eq!(erased, pb::EraseCustomerResponse::default());
    assert_eq!(count_encounters(&app, &org.admin_key).await, 2);
    assert_eq!(all_cases(&app, &org.admin_key).await.len(), 1);
}

#[tokio::test]
async fn erasing_needs_a_customer_ref() {
    let app = spawn_app().await;
    let (org, _desk) = org_with_desk(&app).await;
    recorded(&app, &org.admin_key, encounter("desk", "his", "evt-1")).await;

    let status = erase(&app, &org.admin_key, "").await.unwrap_err();

    assert_eq!(violated_fields(&status), ["customer_ref"]);
    assert_eq!(count_encounters(&app, &org.admin_key).await, 1);
}
