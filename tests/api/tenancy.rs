//! One organisation's key never reads or changes another's data, through
//! any method.

use prost_types::FieldMask;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{assert_error, authed, spawn_app, standard, touchpoint};

#[tokio::test]
async fn another_organisations_touchpoint_is_not_found_by_any_method() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    let mine = app
        .create_touchpoint(&a.admin_key, touchpoint("lobby"))
        .await;
    let mut client = app.touchpoints().await;

    let status = client
        .get_touchpoint(authed(
            &b.admin_key,
            pb::GetTouchpointRequest {
                id: mine.id.clone(),
                code: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = client
        .get_touchpoint(authed(
            &b.admin_key,
            pb::GetTouchpointRequest {
                id: String::new(),
                code: "lobby".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    let changes = pb::Touchpoint {
        id: mine.id.clone(),
        display_name: "Taken over".into(),
        ..Default::default()
    };
    let status = client
        .update_touchpoint(authed(
            &b.admin_key,
            pb::UpdateTouchpointRequest {
                touchpoint: Some(changes),
                update_mask: Some(FieldMask {
                    paths: vec!["display_name".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    let status = client
        .archive_touchpoint(authed(
            &b.admin_key,
            pb::ArchiveTouchpointRequest {
                id: mine.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = client
        .unarchive_touchpoint(authed(
            &b.admin_key,
            pb::UnarchiveTouchpointRequest {
                id: mine.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    let still_mine = client
        .get_touchpoint(authed(
            &a.admin_key,
            pb::GetTouchpointRequest {
                id: mine.id.clone(),
                code: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();
    assert_eq!(still_mine, mine, "organisation B changed A's touchpoint");
}

#[tokio::test]
async fn lists_and_codes_are_per_organisation() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    app.create_touchpoint(&a.admin_key, touchpoint("lobby"))
        .await;
    app.create_touchpoint(&a.admin_key, touchpoint("pharmacy"))
        .await;
    // The same code is free in another organisation.
    let theirs = app
        .create_touchpoint(&b.admin_key, touchpoint("lobby"))
        .await;

    let for_b = app
        .list_touchpoints(
            &b.admin_key,
            pb::ListTouchpointsRequest {
                show_archived: true,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(for_b, vec![theirs.clone()]);
    let for_a = app
        .list_touchpoints(
            &a.admin_key,
            pb::ListTouchpointsRequest {
                show_archived: true,
                ..Default::default()
            },
        )
        .await;
    assert_eq!(for_a.len(), 2);
    assert!(for_a.iter().all(|t| t.id != theirs.id));
}

#[tokio::test]
async fn another_organisations_keys_are_invisible_and_cannot_be_revoked() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    let mut keys = app.api_keys().await;
    let a_extra = keys
        .create_api_key(authed(
            &a.admin_key,
            pb::CreateApiKeyRequest {
                display_name: "A feed".into(),
                role: pb::Role::Ingest.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    // A key B creates belongs to B alone.
    let b_analyst = keys
        .create_api_key(authed(
            &b.admin_key,
            pb::CreateApiKeyRequest {
                display_name: "B analyst".into(),
                role: pb::Role::Analyst.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .secret;
    app.create_touchpoint(&a.admin_key, touchpoint("lobby"))
        .await;
    let seen_by_b_analyst = app
        .list_touchpoints(&b_analyst, pb::ListTouchpointsRequest::default())
        .await;
    assert!(seen_by_b_analyst.is_empty());

    let for_b = keys
        .list_api_keys(authed(
            &b.admin_key,
            pb::ListApiKeysRequest {
                show_revoked: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        for_b.api_keys.len(),
        2,
        "B's first admin key and its analyst key"
    );
    assert!(
        for_b
            .api_keys
            .iter()
            .all(|k| k.id != a_extra.id && k.display_name != "A feed")
    );

    let status = keys
        .revoke_api_key(authed(
            &b.admin_key,
            pb::RevokeApiKeyRequest {
                id: a_extra.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let for_a = keys
        .list_api_keys(authed(&a.admin_key, pb::ListApiKeysRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        for_a
            .api_keys
            .iter()
            .any(|k| k.id == a_extra.id && k.revoke_time.is_none())
    );
}

#[tokio::test]
async fn another_organisations_standard_is_not_found_by_any_method() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    app.create_touchpoint(&a.admin_key, touchpoint("desk"))
        .await;
    let mine = app
        .create_standard(&a.admin_key, standard("greet", "desk"))
        .await;
    let mut client = app.standards().await;

    let status = client
        .get_standard(authed(
            &b.admin_key,
            pb::GetStandardRequest {
                id: mine.id.clone(),
                code: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = client
        .get_standard(authed(
            &b.admin_key,
            pb::GetStandardRequest {
                id: String::new(),
                code: "greet".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = client
        .update_standard(authed(
            &b.admin_key,
            pb::UpdateStandardRequest {
                standard: Some(pb::Standard {
                    id: mine.id.clone(),
                    title: "Taken over".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["title".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = client
        .archive_standard(authed(
            &b.admin_key,
            pb::ArchiveStandardRequest {
                id: mine.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = client
        .unarchive_standard(authed(
            &b.admin_key,
            pb::UnarchiveStandardRequest {
                id: mine.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = client
        .list_standards(authed(
            &b.admin_key,
            pb::ListStandardsRequest {
                touchpoint_id: mine.touchpoint_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let manual = client
        .get_service_manual(authed(&b.admin_key, pb::GetServiceManualRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .service_manual
        .unwrap();
    assert_eq!(manual.organisation_display_name, "Hospital B");
    assert!(manual.stages.iter().all(|s| s.touchpoints.is_empty()));
    assert!(!manual.markdown.contains("greet"));

    let still_mine = client
        .get_standard(authed(
            &a.admin_key,
            pb::GetStandardRequest {
                id: mine.id.clone(),
                code: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .standard
        .unwrap();
    assert_eq!(still_mine, mine, "organisation B changed A's standard");
}

#[tokio::test]
async fn a_standard_cannot_be_attached_to_another_organisations_touchpoint() {
    let app = spawn_app().await;
    let a = app.create_org("Hospital A").await;
    let b = app.create_org("Hospital B").await;
    let a_desk = app
        .create_touchpoint(&a.admin_key, touchpoint("desk"))
        .await;
    let mut client = app.standards().await;

    let mut by_id = standard("greet", "");
    by_id.touchpoint_id = a_desk.id.clone();
    let status = client
        .create_standard(authed(
            &b.admin_key,
            pb::CreateStandardRequest {
                standard: Some(by_id),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    let status = client
        .create_standard(authed(
            &b.admin_key,
            pb::CreateStandardRequest {
                standard: Some(standard("greet", "desk")),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");

    // Moving B's own standard onto A's touchpoint fails the same way.
    let theirs = app
        .create_standard(&b.admin_key, standard("badge", ""))
        .await;
    let status = client
        .update_standard(authed(
            &b.admin_key,
            pb::UpdateStandardRequest {
                standard: Some(pb::Standard {
                    id: theirs.id.clone(),
                    touchpoint_id: a_desk.id.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["touchpoint_id".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
    // The same code is free in another organisation.
    app.create_standard(&a.admin_key, standard("badge", ""))
        .await;
}
