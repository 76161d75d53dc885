//! OrganisationService: a key's own organisation and its settings.

use prost_types::FieldMask;
use tonic::Code;
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::helpers::{assert_error, authed, spawn_app, violated_fields};

fn update(
    key: &str,
    organisation: pb::Organisation,
    paths: &[&str],
) -> tonic::Request<pb::UpdateOrganisationRequest> {
    authed(
        key,
        pb::UpdateOrganisationRequest {
            organisation: Some(organisation),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
        },
    )
}

#[tokio::test]
async fn a_key_reads_its_own_organisation_with_the_default_failure_threshold() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let analyst = app.key(&org, Role::Analyst).await;

    let read = app
        .organisations()
        .await
        .get_organisation(authed(&analyst, pb::GetOrganisationRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .organisation
        .unwrap();

    assert_eq!(read.id, org.id.to_string());
    assert_eq!(read.display_name, "St. Mary");
    assert_eq!(read.kind(), pb::OrganisationKind::Hospital);
    assert_eq!(read.time_zone, "Asia/Seoul");
    assert_eq!(read.failure_threshold, 2);
}

#[tokio::test]
async fn admins_change_the_failure_threshold_and_time_zone() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut client = app.organisations().await;

    let changed = client
        .update_organisation(update(
            &org.admin_key,
            pb::Organisation {
                failure_threshold: 3,
                time_zone: "Europe/Amsterdam".into(),
                display_name: "not in the mask".into(),
                ..Default::default()
            },
            &["failure_threshold", "time_zone"],
        ))
        .await
        .unwrap()
        .into_inner()
        .organisation
        .unwrap();
    assert_eq!(changed.failure_threshold, 3);
    assert_eq!(changed.time_zone, "Europe/Amsterdam");
    assert_eq!(changed.display_name, "St. Mary");

    // 0 switches the satisfaction rule off; only a mask can say so.
    let off = client
        .update_organisation(update(
            &org.admin_key,
            pb::Organisation::default(),
            &["failure_threshold"],
        ))
        .await
        .unwrap()
        .into_inner()
        .organisation
        .unwrap();
    assert_eq!(off.failure_threshold, 0);
}

#[tokio::test]
async fn bad_settings_are_named_and_change_nothing() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut client = app.organisations().await;

    let status = client
        .update_organisation(update(
            &org.admin_key,
            pb::Organisation {
                failure_threshold: 5,
                kind: 9,
                ..Default::default()
            },
            &["failure_threshold", "kind", "display_name"],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "organisation.failure_threshold",
            "organisation.kind",
            "organisation.display_name"
        ]
    );
    let status = client
        .update_organisation(update(
            &org.admin_key,
            pb::Organisation {
                time_zone: "Mars/Olympus_Mons".into(),
                failure_threshold: 1,
                ..Default::default()
            },
            &["time_zone", "failure_threshold"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["organisation.time_zone"]);
    // Names the database knows that are no place's IANA zone: the host's
    // own zone, the zone files' internals, POSIX-style and legacy names.
    for zone in ["localtime", "posixrules", "Factory", "GMT+0", "EST5EDT"] {
        let status = client
            .update_organisation(update(
                &org.admin_key,
                pb::Organisation {
                    time_zone: zone.into(),
                    ..Default::default()
                },
                &["time_zone"],
            ))
            .await
            .unwrap_err();
        assert_eq!(
            violated_fields(&status),
            ["organisation.time_zone"],
            "{zone}"
        );
        assert!(status.message().contains("IANA"), "{zone}: {status:?}");
    }
    let status = client
        .update_organisation(update(
            &org.admin_key,
            pb::Organisation::default(),
            &["create_time"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let seconds = |seconds, nanos| Some(prost_types::Duration { seconds, nanos });
    let status = client
        .update_organisation(update(
            &org.admin_key,
            pb::Organisation {
                recovery_deadline: seconds(59, 0),
                first_impression_window: seconds(15, 500_000_000),
                ..Default::default()
            },
            &["recovery_deadline", "first_impression_window"],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "organisation.recovery_deadline",
            "organisation.first_impression_window"
        ]
    );
    let status = client
        .update_organisation(update(
            &org.admin_key,
            pb::Organisation {
                recovery_deadline: seconds(31 * 86_400, 0),
                first_impression_window: seconds(3601, 0),
                ..Default::default()
            },
            &["recovery_deadline", "first_impression_window"],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "organisation.recovery_deadline",
            "organisation.first_impression_window"
        ]
    );

    let read = client
        .get_organisation(authed(
            &org.admin_key,
            pb::GetOrganisationRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .organisation
        .unwrap();
    assert_eq!(read.failure_threshold, 2);
    assert_eq!(read.time_zone, "Asia/Seoul");
    assert_eq!(read.recovery_deadline.unwrap().seconds, 86_400);
    assert_eq!(read.first_impression_window.unwrap().seconds, 15);
}

#[tokio::test]
async fn another_organisation_is_not_found_and_cannot_be_changed() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    let mut client = app.organisations().await;

    let status = client
        .get_organisation(authed(
            &b.admin_key,
            pb::GetOrganisationRequest {
                id: a.id.to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = client
        .update_organisation(update(
            &b.admin_key,
            pb::Organisation {
                id: a.id.to_string(),
                failure_threshold: 4,
                ..Default::default()
            },
            &["failure_threshold"],
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    let a_seen = client
        .get_organisation(authed(
            &a.admin_key,
            pb::GetOrganisationRequest {
                id: a.id.to_string(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .organisation
        .unwrap();
    assert_eq!(a_seen.failure_threshold, 2);
    assert_eq!(a_seen.display_name, "Hospital A");
    let b_seen = client
        .get_organisation(authed(&b.admin_key, pb::GetOrganisationRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .organisation
        .unwrap();
    assert_eq!(b_seen.id, b.id.to_string());
}

#[tokio::test]
async fn analysts_read_but_only_admins_change_and_ingest_keys_do_neither() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let analyst = app.key(&org, Role::Analyst).await;
    let ingest = app.key(&org, Role::Ingest).await;
    let mut client = app.organisations().await;

    let status = client
        .update_organisation(update(
            &analyst,
            pb::Organisation {
                failure_threshold: 4,
                ..Default::default()
            },
            &["failure_threshold"],
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    let status = client
        .get_organisation(authed(&ingest, pb::GetOrganisationRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    let status = client
        .get_organisation(tonic::Request::new(pb::GetOrganisationRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "API_KEY_MISSING");
}
