//! What each kind of HL7 v2 message does, over a real MLLP connection:
//! the ACK it gets and what it stores.

use chrono::{TimeZone, Utc};
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    Mllp, TestApp, authed, demo_adt_feed, external_ids, hl7_feed, hl7_file, spawn_app,
};

/// The demo hospital with its ADT feed: its admin key and the feed's id.
async fn demo_with_feed(app: &TestApp) -> (String, String) {
    let key = app.demo_key().await;
    let feed = app.create_feed(&key, demo_adt_feed()).await;
    (key, feed.id)
}

async fn stored(app: &TestApp, key: &str) -> Vec<pb::Encounter> {
    app.list_encounters(key, pb::ListEncountersRequest::default())
        .await
}

fn at(encounter: &pb::Encounter) -> chrono::DateTime<Utc> {
    let time = encounter.occur_time.as_ref().unwrap();
    chrono::DateTime::from_timestamp(time.seconds, time.nanos as u32).unwrap()
}

#[tokio::test]
async fn a_registration_stores_one_encounter_at_its_touchpoint() {
    let app = spawn_app().await;
    let (key, feed) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    let ack = mllp.send(&hl7_file("a04.hl7")).await;

    ack.assert("AA", "A04-0001");
    assert!(
        ack.raw.starts_with("MSH|^~\\&|VERDAD|QI|EPIC|MAIN|"),
        "{}",
        ack.raw
    );
    let encounters = stored(&app, &key).await;
    assert_eq!(encounters.len(), 1);
    let e = &encounters[0];
    assert_eq!(e.touchpoint_code, "reception-desk");
    assert_eq!(e.journey_id, "V1001");
    assert!(e.has_customer_ref);
    assert_eq!(e.staff_ref, "CLERK7");
    assert_eq!(
        (e.source.as_str(), e.external_id.as_str()),
        ("adt", "A04-0001")
    );
    assert_eq!(e.attributes["hl7.trigger_event"], "A04");
    // EVN-2 without an offset: 08:55 in Seoul, the organisation's zone.
    assert_eq!(
        at(e),
        Utc.with_ymd_and_hms(2026, 11, 30, 23, 55, 0).unwrap()
    );
    // The customer is pseudonymised like every customer reference: the
    // patient's identifier finds the encounter, nothing shows it.
    let by_customer = app
        .list_encounters(
            &key,
            pb::ListEncountersRequest {
                customer_ref: "MRN1001".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(external_ids(&by_customer), ["A04-0001"]);
    app.feed_counted(&key, &feed, [1, 0, 0, 0]).await;
}

#[tokio::test]
async fn a_resent_message_is_acknowledged_and_stored_once() {
    let app = spawn_app().await;
    let (key, feed) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    mllp.send(&hl7_file("a04.hl7"))
        .await
        .assert("AA", "A04-0001");
    let mut again = Mllp::connect(&app).await;
    again
        .send(&hl7_file("a04.hl7"))
        .await
        .assert("AA", "A04-0001");

    assert_eq!(stored(&app, &key).await.len(), 1);
    app.feed_counted(&key, &feed, [1, 1, 0, 0]).await;
}

#[tokio::test]
async fn an_event_no_rule_takes_is_acknowledged_and_ignored() {
    let app = spawn_app().await;
    let (key, feed) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    mllp.send(&hl7_file("a08.hl7"))
        .await
        .assert("AA", "A08-0001");

    assert!(stored(&app, &key).await.is_empty());
    app.feed_counted(&key, &feed, [0, 0, 1, 0]).await;
}

#[tokio::test]
async fn moves_admits_transfers_and_discharges_land_at_their_touchpoints() {
    let app = spawn_app().await;
    let (key, _) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    for (file, control) in [
        ("a04.hl7", "A04-0001"),
        ("a09.hl7", "A09-0001"),
        ("a10.hl7", "A10-0001"),
        ("a02.hl7", "A02-0001"),
        ("a01.hl7", "A01-0001"),
        ("a03.hl7", "A03-0001"),
    ] {
        mllp.send(&hl7_file(file)).await.assert("AA", control);
    }

    let encounters = stored(&app, &key).await;
    let by_id = |id: &str| encounters.iter().find(|e| e.external_id == id).unwrap();
    assert_eq!(by_id("A09-0001").touchpoint_code, "waiting-area");
    assert_eq!(by_id("A10-0001").touchpoint_code, "consultation-room");
    assert_eq!(by_id("A02-0001").touchpoint_code, "examination");
    assert_eq!(by_id("A02-0001").staff_ref, "NURSE3");
    assert_eq!(by_id("A01-0001").touchpoint_code, "reception-desk");
    assert_eq!(by_id("A03-0001").touchpoint_code, "payment");
    // EVN-6 (event occurred) wins over EVN-2, minutes precision, offset.
    assert_eq!(
        at(by_id("A01-0001")),
        Utc.with_ymd_and_hms(2026, 12, 1, 1, 10, 0).unwrap()
    );
    // Fractions of a second and an offset.
    let discharge = by_id("A03-0001").occur_time.unwrap();
    assert_eq!(
        (discharge.seconds, discharge.nanos),
        (
            Utc.with_ymd_and_hms(2026, 12, 1, 2, 30, 0)
                .unwrap()
                .timestamp(),
            123_400_000
        )
    );
}

#[tokio::test]
async fn cancels_withdraw_what_the_cancelled_event_stored_once() {
    let app = spawn_app().await;
    let (key, _) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;
    for file in ["a04.hl7", "a10.hl7", "a02.hl7", "a03.hl7"] {
        mllp.send(&hl7_file(file))
            .await
            .assert("AA", &stored_id(file));
    }

    // A12 withdraws the transfer, A13 the discharge, A11 the registration.
    mllp.send(&hl7_file("a12.hl7"))
        .await
        .assert("AA", "A12-0001");
    assert_eq!(
        sorted(external_ids(&stored(&app, &key).await)),
        ["A03-0001", "A04-0001", "A10-0001"]
    );
    mllp.send(&hl7_file("a13.hl7"))
        .await
        .assert("AA", "A13-0001");
    mllp.send(&hl7_file("a11.hl7"))
        .await
        .assert("AA", "A11-0001");
    assert_eq!(external_ids(&stored(&app, &key).await), ["A10-0001"]);

    // Resending a cancel withdraws nothing more; resending a withdrawn
    // original does not bring it back.
    mllp.send(&hl7_file("a11.hl7"))
        .await
        .assert("AA", "A11-0001");
    mllp.send(&hl7_file("a04.hl7"))
        .await
        .assert("AA", "A04-0001");
    assert_eq!(external_ids(&stored(&app, &key).await), ["A10-0001"]);
}

fn stored_id(file: &str) -> String {
    format!("{}-0001", file.trim_end_matches(".hl7").to_uppercase())
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn escapes_repetitions_and_custom_delimiters_are_read_as_meant() {
    let app = spawn_app().await;
    let (key, _) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    mllp.send(&hl7_file("escapes.hl7"))
        .await
        .assert("AA", "ESC|0001");
    mllp.send(&hl7_file("repetitions.hl7"))
        .await
        .assert("AA", "REP-0001");
    mllp.send(&hl7_file("custom_delimiters.hl7"))
        .await
        .assert("AA", "CUS-0001");

    let encounters = stored(&app, &key).await;
    let by_id = |id: &str| encounters.iter().find(|e| e.external_id == id).unwrap();
    assert_eq!(by_id("ESC|0001").journey_id, "V|2002");
    assert_eq!(by_id("ESC|0001").staff_ref, "CLERK&7");
    // The first repetition of PV1-19.
    assert_eq!(by_id("REP-0001").journey_id, "V3003");
    assert_eq!(by_id("CUS-0001").journey_id, "V#4004");
    let customers = |reference: &str| {
        let app = &app;
        let key = &key;
        let reference = reference.to_owned();
        async move {
            external_ids(
                &app.list_encounters(
                    key,
                    pb::ListEncountersRequest {
                        customer_ref: reference,
                        ..Default::default()
                    },
                )
                .await,
            )
        }
    };
    assert_eq!(customers("MRN^2002").await, ["ESC|0001"]);
    // The first repetition of PID-3 when no assigning authority is set.
    assert_eq!(customers("9001011234567").await, ["REP-0001"]);
    assert_eq!(customers("MRN4004").await, ["CUS-0001"]);
}

#[tokio::test]
async fn an_assigning_authority_picks_the_patient_identifier() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut feed = demo_adt_feed();
    if let Some(pb::feed::Mapping::Hl7v2(m)) = &mut feed.mapping {
        m.customer_assigning_authority = "HOSP".into();
    }
    app.create_feed(&key, feed).await;
    let mut mllp = Mllp::connect(&app).await;

    mllp.send(&hl7_file("repetitions.hl7"))
        .await
        .assert("AA", "REP-0001");

    let found = app
        .list_encounters(
            &key,
            pb::ListEncountersRequest {
                customer_ref: "MRN3003".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(external_ids(&found), ["REP-0001"]);
}

#[tokio::test]
async fn euc_kr_messages_are_decoded_by_their_character_set() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    app.create_feed(
        &key,
        hl7_feed("adt", "EPIC", "MAIN", &[("A04", "접수", "reception-desk")]),
    )
    .await;
    let mut mllp = Mllp::connect(&app).await;

    mllp.send(&hl7_file("euc_kr.hl7"))
        .await
        .assert("AA", "EUC-0001");

    let encounters = stored(&app, &key).await;
    assert_eq!(external_ids(&encounters), ["EUC-0001"]);
    assert_eq!(encounters[0].touchpoint_code, "reception-desk");
}

#[tokio::test]
async fn a_matched_message_that_cannot_be_mapped_gets_ae_and_is_listed() {
    let app = spawn_app().await;
    let (key, feed) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    let ack = mllp.send(&hl7_file("missing_pv1.hl7")).await;

    ack.assert("AE", "NOPV1-0001");
    assert_eq!((ack.segment.as_str(), ack.field.as_str()), ("PV1", "19"));
    assert_eq!(ack.error_code, "101");
    assert!(stored(&app, &key).await.is_empty());
    let rejections = app.rejections(&key, &feed).await;
    assert_eq!(rejections.len(), 1);
    let r = &rejections[0];
    assert_eq!(
        (
            r.control_id.as_str(),
            r.acknowledgement.as_str(),
            r.segment.as_str(),
            r.field
        ),
        ("NOPV1-0001", "AE", "PV1", 19)
    );
    assert!(!r.reason.contains("MRN5005"), "{}", r.reason);
    app.feed_counted(&key, &feed, [0, 0, 0, 1]).await;
}

#[tokio::test]
async fn an_archived_touchpoint_gets_ae() {
    let app = spawn_app().await;
    let (key, feed) = demo_with_feed(&app).await;
    let desk = app
        .touchpoints()
        .await
        .get_touchpoint(authed(
            &key,
            pb::GetTouchpointRequest {
                code: "reception-desk".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();
    app.touchpoints()
        .await
        .archive_touchpoint(authed(&key, pb::ArchiveTouchpointRequest { id: desk.id }))
        .await
        .unwrap();
    let mut mllp = Mllp::connect(&app).await;

    let ack = mllp.send(&hl7_file("a04.hl7")).await;

    ack.assert("AE", "A04-0001");
    assert!(ack.text.contains("archived"), "{}", ack.text);
    assert_eq!(app.rejections(&key, &feed).await.len(), 1);
}

#[tokio::test]
async fn times_of_every_precision_with_and_without_offsets() {
    let app = spawn_app().await;
    let (key, _) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;
    let cases = [
        (
            "2026",
            Utc.with_ymd_and_hms(2025, 12, 31, 15, 0, 0).unwrap(),
            0,
        ),
        (
            "202611",
            Utc.with_ymd_and_hms(2026, 10, 31, 15, 0, 0).unwrap(),
            0,
        ),
        (
            "20261201",
            Utc.with_ymd_and_hms(2026, 11, 30, 15, 0, 0).unwrap(),
            0,
        ),
        (
            "2026120109",
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            0,
        ),
        (
            "202612010930",
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 30, 0).unwrap(),
            0,
        ),
        (
            "20261201093015",
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 30, 15).unwrap(),
            0,
        ),
        (
            "20261201093015.5",
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 30, 15).unwrap(),
            500_000_000,
        ),
        (
            "20261201093015.1234-0500",
            Utc.with_ymd_and_hms(2026, 12, 1, 14, 30, 15).unwrap(),
            123_400_000,
        ),
        (
            "202612010930+0000",
            Utc.with_ymd_and_hms(2026, 12, 1, 9, 30, 0).unwrap(),
            0,
        ),
    ];
    for (i, (text, wanted, nanos)) in cases.iter().enumerate() {
        let control = format!("T{i}");
        let message = format!(
            "MSH|^~\\&|EPIC|MAIN|||20261201100000||ADT^A04|{control}|P|2.5\r\
             EVN|A04|{text}\r\
             PID|1||MRN9\r\
             PV1|1|O|RECEPTION||||||||||||||||V{i}\r"
        );
        mllp.send(message.as_bytes()).await.assert("AA", &control);
        let found = app
            .list_encounters(
                &key,
                pb::ListEncountersRequest {
                    journey_id: format!("V{i}"),
                    ..Default::default()
                },
            )
            .await;
        let time = found[0].occur_time.unwrap();
        assert_eq!(
            (time.seconds, time.nanos),
            (wanted.timestamp(), *nanos),
            "{text}"
        );
    }

    // A time that is no time, and one far in the future: AE naming EVN-2.
    for (control, text) in [
        ("BAD1", "20261301"),
        ("BAD2", "20991201"),
        ("BAD3", "2026120109301"),
    ] {
        let message = format!(
            "MSH|^~\\&|EPIC|MAIN|||20261201100000||ADT^A04|{control}|P|2.5\r\
             EVN|A04|{text}\r\
             PV1|1|O|RECEPTION||||||||||||||||VX\r"
        );
        let ack = mllp.send(message.as_bytes()).await;
        ack.assert("AE", control);
        assert_eq!(
            (ack.segment.as_str(), ack.field.as_str()),
            ("EVN", "2"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn unknown_senders_and_other_versions_are_rejected() {
    let app = spawn_app().await;
    let (key, feed) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    let ack = mllp.send(&hl7_file("unknown_sender.hl7")).await;
    ack.assert("AR", "UNK-0001");
    assert_eq!(ack.error_code, "204");

    let ack = mllp.send(&hl7_file("version3.hl7")).await;
    ack.assert("AR", "V3-0001");
    assert_eq!((ack.segment.as_str(), ack.field.as_str()), ("MSH", "12"));

    assert!(stored(&app, &key).await.is_empty());
    // The version error is the feed's to see; the unknown sender is no
    // organisation's.
    let rejections = app.rejections(&key, &feed).await;
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].control_id, "V3-0001");
}

#[tokio::test]
async fn a_feed_of_one_organisation_never_stores_into_another() {
    let app = spawn_app().await;
    let (a_key, _) = demo_with_feed(&app).await;
    let (b, _desk) = app.org_with_desk().await;
    app.create_feed(
        &b.admin_key,
        hl7_feed("adt", "LAB", "NORTH", &[("A04", "", "desk")]),
    )
    .await;
    let mut mllp = Mllp::connect(&app).await;

    // EPIC/MAIN is A's: its messages go to A, whatever else they say.
    mllp.send(&hl7_file("a04.hl7"))
        .await
        .assert("AA", "A04-0001");
    let b_message = String::from_utf8(hl7_file("a09.hl7"))
        .unwrap()
        .replacen("EPIC|MAIN", "LAB|NORTH", 1)
        .replace("ADT^A09^ADT_A09", "ADT^A04^ADT_A01");
    mllp.send(b_message.as_bytes())
        .await
        .assert("AA", "A09-0001");

    assert_eq!(external_ids(&stored(&app, &a_key).await), ["A04-0001"]);
    let b_stored = stored(&app, &b.admin_key).await;
    assert_eq!(external_ids(&b_stored), ["A09-0001"]);
    assert_eq!(b_stored[0].touchpoint_code, "desk");
}

#[tokio::test]
async fn a_feed_pinned_to_certificates_refuses_plain_connections() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut feed = demo_adt_feed();
    if let Some(pb::feed::Mapping::Hl7v2(m)) = &mut feed.mapping {
        m.client_certificate_sha256 = vec!["ab".repeat(32)];
    }
    let feed = app.create_feed(&key, feed).await;
    let mut mllp = Mllp::connect(&app).await;

    let ack = mllp.send(&hl7_file("a04.hl7")).await;

    ack.assert("AR", "A04-0001");
    assert!(stored(&app, &key).await.is_empty());
    assert!(app.rejections(&key, &feed.id).await.is_empty());
}

#[tokio::test]
async fn training_messages_and_long_control_ids_are_rejected() {
    let app = spawn_app().await;
    let (key, _) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;
    let message = |control: &str, processing: &str| {
        format!(
            "MSH|^~\\&|EPIC|MAIN|||20261201100000||ADT^A04|{control}|{processing}|2.5\r\
             EVN|A04|20261201095500\r\
             PV1|1|O|RECEPTION||||||||||||||||V1\r"
        )
    };

    let ack = mllp.send(message("TRAIN-1", "T").as_bytes()).await;
    ack.assert("AR", "TRAIN-1");
    assert_eq!((ack.field.as_str(), ack.error_code.as_str()), ("11", "202"));

    let long = "X".repeat(3000);
    let ack = mllp.send(message(&long, "P").as_bytes()).await;
    assert_eq!((ack.code.as_str(), ack.field.as_str()), ("AR", "10"));

    // The connection goes on, and nothing was stored.
    mllp.send(message("OK-1", "P").as_bytes())
        .await
        .assert("AA", "OK-1");
    assert_eq!(external_ids(&stored(&app, &key).await), ["OK-1"]);
}

#[tokio::test]
async fn a_feeds_default_character_set_reads_what_msh18_leaves_unsaid() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut feed = hl7_feed("adt", "EPIC", "MAIN", &[("A04", "접수", "reception-desk")]);
    let feed_id = app.create_feed(&key, feed.clone()).await.id;
    let mut mllp = Mllp::connect(&app).await;

    // Without a default, EUC-KR that MSH-18 does not name is refused.
    mllp.send(&hl7_file("euc_kr_undeclared.hl7"))
        .await
        .assert("AR", "EUC-0002");

    if let Some(pb::feed::Mapping::Hl7v2(m)) = &mut feed.mapping {
        m.default_character_set = "KS X 1001".into();
    }
    feed.id = feed_id;
    app.feeds()
        .await
        .update_feed(authed(
            &key,
            pb::UpdateFeedRequest {
                feed: Some(feed),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["hl7v2.default_character_set".into()],
                }),
            },
        ))
        .await
        .unwrap();

    mllp.send(&hl7_file("euc_kr_undeclared.hl7"))
        .await
        .assert("AA", "EUC-0002");
    let encounters = stored(&app, &key).await;
    assert_eq!(external_ids(&encounters), ["EUC-0002"]);
    assert_eq!(encounters[0].touchpoint_code, "reception-desk");
}
