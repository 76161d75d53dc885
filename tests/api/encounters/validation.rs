//! What RecordEncounter refuses: text too long, bad sources, attributes,
//! times and measurements out of range, each bad field named in one answer.

use std::collections::HashMap;

use chrono::{TimeDelta, Utc};
use prost_types::Timestamp;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    YEAR_2000, authed, encounter, field_set, spawn_app, timestamp, violated_fields,
};

#[tokio::test]
async fn the_largest_allowed_values_are_accepted() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
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

    let stored = app.recorded(&org.admin_key, largest.clone()).await;
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
    let stored = app.recorded(&org.admin_key, smallest).await;
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
    app.recorded(&org.admin_key, lowest_satisfaction).await;

    let token = encounter("desk", "Feed.v2_A-1", "evt-1");
    assert_eq!(
        app.recorded(&org.admin_key, token).await.source,
        "Feed.v2_A-1"
    );

    assert_eq!(app.count_encounters(&org.admin_key).await, 4);
}

#[tokio::test]
async fn required_fields_are_named_when_missing() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let mut empty = encounter("desk", "", "");
    empty.journey_id = String::new();
    empty.occur_time = None;

    let status = app.record_error(&org.admin_key, empty).await;

    assert_eq!(
        field_set(&status),
        [
            "encounter.external_id",
            "encounter.journey_id",
            "encounter.occur_time",
            "encounter.source",
        ]
    );
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);

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
    let (org, _desk) = app.org_with_desk().await;
    let mut long = encounter("desk", &"s".repeat(65), &"x".repeat(129));
    long.journey_id = "j".repeat(129);
    long.customer_ref = "c".repeat(257);
    long.staff_ref = "t".repeat(129);
    long.comment = "m".repeat(4001);

    let status = app.record_error(&org.admin_key, long).await;

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
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}

#[tokio::test]
async fn a_source_is_letters_digits_dots_underscores_and_hyphens() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    for (i, bad) in ["his feed", "his/feed", "his:1", "ürgent", "his\n"]
        .into_iter()
        .enumerate()
    {
        let status = app
            .record_error(&org.admin_key, encounter("desk", bad, &format!("evt-{i}")))
            .await;
        assert_eq!(violated_fields(&status), ["encounter.source"], "{bad:?}");
    }
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}

#[tokio::test]
async fn attributes_are_limited_in_number_and_size() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
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
        let status = app.record_error(&org.admin_key, bad).await;
        assert_eq!(field_set(&status), ["encounter.attributes"], "{what}");
    }
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}

#[tokio::test]
async fn occur_time_must_lie_between_2000_and_five_minutes_from_now() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
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
        let status = app.record_error(&org.admin_key, bad).await;
        assert_eq!(violated_fields(&status), ["encounter.occur_time"], "{what}");
    }
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}

#[tokio::test]
async fn measurements_outside_their_ranges_are_all_named() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let mut below = encounter("desk", "his", "evt-1");
    below.wait_seconds = Some(-1);
    below.first_response_seconds = Some(-1);
    below.duration_seconds = Some(-1);
    below.satisfaction = Some(0);
    below.effort = Some(0);
    let status = app.record_error(&org.admin_key, below).await;
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
    let status = app.record_error(&org.admin_key, above).await;
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
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}

#[tokio::test]
async fn unknown_channel_and_situation_numbers_are_rejected() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let mut bad = encounter("desk", "his", "evt-1");
    bad.channel = 9;
    bad.situation = 42;

    let status = app.record_error(&org.admin_key, bad).await;

    assert_eq!(
        field_set(&status),
        ["encounter.channel", "encounter.situation"]
    );
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}

#[tokio::test]
async fn every_bad_field_of_an_encounter_is_named_in_one_answer() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
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

    let status = app.record_error(&org.admin_key, bad).await;

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
    assert_eq!(app.count_encounters(&org.admin_key).await, 0);
}
