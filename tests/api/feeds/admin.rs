//! Feeds as an admin manages them: created, read, listed, changed,
//! archived, previewed; refused with the field at fault.

use prost_types::FieldMask;
use tonic::Code;
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::helpers::{
    assert_error, authed, demo_adt_feed, hl7_feed, hl7_file, spawn_app, violated_fields,
};

fn hl7(feed: &pb::Feed) -> &pb::Hl7v2Mapping {
    match &feed.mapping {
        Some(pb::feed::Mapping::Hl7v2(m)) => m,
        other => panic!("not an HL7 v2 feed: {other:?}"),
    }
}

#[tokio::test]
async fn a_created_feed_reads_back_with_its_defaults() {
    let app = spawn_app().await;
    let key = app.demo_key().await;

    let created = app.create_feed(&key, demo_adt_feed()).await;

    assert!(!created.id.is_empty());
    assert_eq!(created.code, "adt");
    let mapping = hl7(&created);
    assert_eq!(mapping.journey_field, "PV1-19");
    assert_eq!(mapping.customer_field, "PID-3");
    assert_eq!(mapping.staff_field, "EVN-5");
    assert_eq!(mapping.rules.len(), 7);
    assert_eq!(mapping.rules[0].event, "ADT^A04");
    assert_eq!(
        created.counts.unwrap_or_default(),
        pb::FeedCounts::default()
    );
    assert_eq!(app.feed(&key, &created.id).await.code, "adt");

    let listed = app
        .feeds()
        .await
        .list_feeds(authed(&key, pb::ListFeedsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.feeds.len(), 1);
    assert_eq!(listed.feeds[0].id, created.id);
}

#[tokio::test]
async fn a_feed_with_faults_is_refused_naming_each_field() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut feed = hl7_feed(
        "bad code!",
        "",
        "MA|N",
        &[
            ("ADT^", "", "reception-desk"),
            ("A04", "", "no-such-touchpoint"),
        ],
    );
    if let Some(pb::feed::Mapping::Hl7v2(m)) = &mut feed.mapping {
        m.journey_field = "PV1".into();
        m.client_certificate_sha256 = vec!["abc".into()];
    }

    let status = app
        .feeds()
        .await
        .create_feed(authed(&key, pb::CreateFeedRequest { feed: Some(feed) }))
        .await
        .unwrap_err();

    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "feed.code",
            "feed.hl7v2.client_certificate_sha256[0]",
            "feed.hl7v2.journey_field",
            "feed.hl7v2.rules[0].event",
            "feed.hl7v2.sending_application",
            "feed.hl7v2.sending_facility",
        ]
    );

    // A rule naming a touchpoint the organisation lacks is named too.
    let status = app
        .feeds()
        .await
        .create_feed(authed(
            &key,
            pb::CreateFeedRequest {
                feed: Some(hl7_feed("adt", "EPIC", "", &[("A04", "", "no-such")])),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["feed.hl7v2.rules[0].touchpoint_code"]
    );
}

#[tokio::test]
async fn only_admins_manage_feeds() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let created = app
        .create_feed(
            &org.admin_key,
            hl7_feed("adt", "EPIC", "", &[("A04", "", "desk")]),
        )
        .await;
    for role in [Role::Ingest, Role::Analyst] {
        let other = app.key(&org, role).await;
        let status = app
            .feeds()
            .await
            .get_feed(authed(
                &other,
                pb::GetFeedRequest {
                    id: created.id.clone(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{role:?}");
    }
}

#[tokio::test]
async fn a_sender_belongs_to_one_live_feed_across_organisations() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let first = app.create_feed(&key, demo_adt_feed()).await;
    let other = app.create_org("St. Mary").await;
    app.create_touchpoint(&other.admin_key, crate::helpers::touchpoint("desk"))
        .await;
    let claim = || pb::CreateFeedRequest {
        feed: Some(hl7_feed("copy", "epic", "main", &[("A04", "", "desk")])),
    };

    let status = app
        .feeds()
        .await
        .create_feed(authed(&other.admin_key, claim()))
        .await
        .unwrap_err();
    assert_error(&status, Code::AlreadyExists, "ALREADY_EXISTS");
    assert!(!status.message().contains(&first.id), "{status:?}");

    // Once archived, the sender is free again.
    app.feeds()
        .await
        .archive_feed(authed(
            &key,
            pb::ArchiveFeedRequest {
                id: first.id.clone(),
            },
        ))
        .await
        .unwrap();
    app.feeds()
        .await
        .create_feed(authed(&other.admin_key, claim()))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_update_changes_the_masked_fields_and_keeps_the_kind() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let created = app.create_feed(&key, demo_adt_feed()).await;
    let mut changed = hl7_feed("ignored", "EPIC2", "", &[("A04", "", "payment")]);
    changed.id = created.id.clone();
    changed.display_name = "Renamed".into();

    let updated = app
        .feeds()
        .await
        .update_feed(authed(
            &key,
            pb::UpdateFeedRequest {
                feed: Some(changed.clone()),
                update_mask: Some(FieldMask {
                    paths: vec!["display_name".into(), "hl7v2.rules".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .feed
        .unwrap();
    assert_eq!(updated.display_name, "Renamed");
    assert_eq!(updated.code, "adt");
    assert_eq!(hl7(&updated).sending_application, "EPIC");
    assert_eq!(hl7(&updated).rules.len(), 1);
    assert_eq!(hl7(&updated).rules[0].touchpoint_code, "payment");

    // A FHIR field on an HL7 v2 feed is refused: the kind stays.
    let status = app
        .feeds()
        .await
        .update_feed(authed(
            &key,
            pb::UpdateFeedRequest {
                feed: Some(changed),
                update_mask: Some(FieldMask {
                    paths: vec!["fhir_r4.journey_identifier_system".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask"]);
}

#[tokio::test]
async fn a_preview_maps_a_message_and_stores_nothing() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let feed = app.create_feed(&key, demo_adt_feed()).await;
    let message = String::from_utf8(hl7_file("a04.hl7")).unwrap();

    let preview = app
        .feeds()
        .await
        .preview_feed_message(authed(
            &key,
            pb::PreviewFeedMessageRequest {
                feed_id: feed.id.clone(),
                message,
            },
        ))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(preview.acknowledgement, "AA");
    assert_eq!(preview.outcome, "store");
    let encounter = &preview.encounters[0];
    assert_eq!(encounter.touchpoint_code, "reception-desk");
    assert_eq!(encounter.journey_id, "V1001");
    assert!(encounter.has_customer_ref);
    assert!(encounter.customer_ref.is_empty());
    assert_eq!(encounter.staff_ref, "CLERK7");
    assert_eq!(encounter.external_id, "A04-0001");
    assert_eq!(encounter.source, "adt");
    assert_eq!(app.count_encounters(&key).await, 0);

    let refused = app
        .feeds()
        .await
        .preview_feed_message(authed(
            &key,
            pb::PreviewFeedMessageRequest {
                feed_id: feed.id,
                message: String::from_utf8(hl7_file("missing_pv1.hl7")).unwrap(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refused.acknowledgement, "AE");
    let rejection = refused.rejection.unwrap();
    assert_eq!((rejection.segment.as_str(), rejection.field), ("PV1", 19));
}

#[tokio::test]
async fn a_preview_of_a_cancel_names_what_it_would_withdraw() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let feed = app.create_feed(&key, demo_adt_feed()).await;
    crate::helpers::Mllp::connect(&app)
        .await
        .send(&hl7_file("a04.hl7"))
        .await
        .assert("AA", "A04-0001");

    let preview = app
        .feeds()
        .await
        .preview_feed_message(authed(
            &key,
            pb::PreviewFeedMessageRequest {
                feed_id: feed.id,
                message: String::from_utf8(hl7_file("a11.hl7")).unwrap(),
            },
        ))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(preview.outcome, "withdraw");
    assert_eq!(preview.withdrawn_external_ids, ["A04-0001"]);
    assert_eq!(app.count_encounters(&key).await, 1);
}
