use tonic::{Code, Request};
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::helpers::{assert_error, authed, spawn_app, standard, touchpoint};

#[tokio::test]
async fn calls_without_a_valid_key_are_unauthenticated() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut client = app.touchpoints().await;

    let status = client
        .list_touchpoints(Request::new(pb::ListTouchpointsRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "API_KEY_MISSING");

    let mut basic = Request::new(pb::ListTouchpointsRequest::default());
    basic
        .metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    let status = client.list_touchpoints(basic).await.unwrap_err();
    assert_error(&status, Code::Unauthenticated, "AUTHORIZATION_MALFORMED");

    let status = client
        .list_touchpoints(authed(
            "vd_not-a-real-key",
            pb::ListTouchpointsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "API_KEY_INVALID");
    assert!(
        !status.message().contains("vd_not-a-real-key"),
        "the key is echoed back"
    );

    // A bad key writes nothing either.
    let status = client
        .create_touchpoint(authed(
            "vd_wrong",
            pb::CreateTouchpointRequest {
                touchpoint: Some(touchpoint("lobby")),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let listed = client
        .list_touchpoints(authed(
            &org.admin_key,
            pb::ListTouchpointsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.touchpoints.is_empty());
}

#[tokio::test]
async fn every_service_requires_a_key() {
    let app = spawn_app().await;
    let status = app
        .api_keys()
        .await
        .list_api_keys(Request::new(pb::ListApiKeysRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "API_KEY_MISSING");
}

#[tokio::test]
async fn analysts_read_touchpoints_but_may_not_change_them() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let analyst = app.key(&org, Role::Analyst).await;
    let mut client = app.touchpoints().await;

    client
        .list_touchpoints(authed(&analyst, pb::ListTouchpointsRequest::default()))
        .await
        .expect("analysts read");
    let status = client
        .create_touchpoint(authed(
            &analyst,
            pb::CreateTouchpointRequest {
                touchpoint: Some(touchpoint("lobby")),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    assert!(status.message().contains("analyst"), "{}", status.message());
    assert!(
        status.message().contains("CreateTouchpoint"),
        "{}",
        status.message()
    );

    let status = client
        .archive_touchpoint(authed(
            &analyst,
            pb::ArchiveTouchpointRequest {
                id: uuid::Uuid::now_v7().to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    let listed = client
        .list_touchpoints(authed(&analyst, pb::ListTouchpointsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.touchpoints.is_empty(),
        "a denied call wrote something"
    );
}

#[tokio::test]
async fn ingest_keys_read_the_touchpoint_catalogue_and_nothing_else() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;
    let ingest = app.key(&org, Role::Ingest).await;
    let mut touchpoints = app.touchpoints().await;
    let listed = touchpoints
        .list_touchpoints(authed(&ingest, pb::ListTouchpointsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.touchpoints.len(), 1);
    let lobby = touchpoints
        .get_touchpoint(authed(
            &ingest,
            pb::GetTouchpointRequest {
                id: String::new(),
                code: "lobby".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lobby.touchpoint.unwrap().code, "lobby");
    let status = touchpoints
        .create_touchpoint(authed(
            &ingest,
            pb::CreateTouchpointRequest {
                touchpoint: Some(touchpoint("kiosk")),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    let status = app
        .standards()
        .await
        .list_standards(authed(&ingest, pb::ListStandardsRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    let status = app
        .api_keys()
        .await
        .create_api_key(authed(
            &ingest,
            pb::CreateApiKeyRequest {
                display_name: "x".into(),
                role: pb::Role::Admin.into(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
}

#[tokio::test]
async fn only_admins_manage_keys() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let analyst = app.key(&org, Role::Analyst).await;
    let mut keys = app.api_keys().await;
    for status in [
        keys.list_api_keys(authed(&analyst, pb::ListApiKeysRequest::default()))
            .await
            .unwrap_err(),
        keys.create_api_key(authed(
            &analyst,
            pb::CreateApiKeyRequest {
                display_name: "x".into(),
                role: pb::Role::Admin.into(),
            },
        ))
        .await
        .unwrap_err(),
        keys.revoke_api_key(authed(
            &analyst,
            pb::RevokeApiKeyRequest {
                id: uuid::Uuid::now_v7().to_string(),
            },
        ))
        .await
        .unwrap_err(),
    ] {
        assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    }
}

#[tokio::test]
async fn analysts_read_standards_and_the_manual_but_only_admins_change_them() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let analyst = app.key(&org, Role::Analyst).await;
    let ingest = app.key(&org, Role::Ingest).await;
    let existing = app
        .create_standard(&org.admin_key, standard("badge", ""))
        .await;
    let mut client = app.standards().await;

    for key in [&analyst, &org.admin_key] {
        client
            .list_standards(authed(key, pb::ListStandardsRequest::default()))
            .await
            .expect("readers list standards");
        client
            .get_standard(authed(
                key,
                pb::GetStandardRequest {
                    id: existing.id.clone(),
                    code: String::new(),
                },
            ))
            .await
            .expect("readers get standards");
        client
            .get_service_manual(authed(key, pb::GetServiceManualRequest::default()))
            .await
            .expect("readers get the manual");
    }

    for key in [&analyst, &ingest] {
        let denied = [
            client
                .create_standard(authed(
                    key,
                    pb::CreateStandardRequest {
                        standard: Some(standard("greet", "")),
                    },
                ))
                .await
                .unwrap_err(),
            client
                .update_standard(authed(
                    key,
                    pb::UpdateStandardRequest {
                        standard: Some(pb::Standard {
                            id: existing.id.clone(),
                            title: "x".into(),
                            ..Default::default()
                        }),
                        update_mask: None,
                    },
                ))
                .await
                .unwrap_err(),
            client
                .archive_standard(authed(
                    key,
                    pb::ArchiveStandardRequest {
                        id: existing.id.clone(),
                    },
                ))
                .await
                .unwrap_err(),
            client
                .unarchive_standard(authed(
                    key,
                    pb::UnarchiveStandardRequest {
                        id: existing.id.clone(),
                    },
                ))
                .await
                .unwrap_err(),
        ];
        for status in denied {
            assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
        }
    }
    for status in [
        client
            .list_standards(authed(&ingest, pb::ListStandardsRequest::default()))
            .await
            .unwrap_err(),
        client
            .get_service_manual(authed(&ingest, pb::GetServiceManualRequest::default()))
            .await
            .unwrap_err(),
        client
            .get_service_manual(Request::new(pb::GetServiceManualRequest::default()))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(
            status.code(),
            Code::PermissionDenied | Code::Unauthenticated
        ));
    }
    let listed = client
        .list_standards(authed(&org.admin_key, pb::ListStandardsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.standards,
        vec![existing],
        "a denied call wrote something"
    );
}
