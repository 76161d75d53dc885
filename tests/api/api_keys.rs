use std::time::Duration;

use tokio::time::Instant;
use tonic::Code;
use verdad::{
    domain::role::Role,
    proto::verdad::v1::{
        self as pb, api_key_service_client::ApiKeyServiceClient,
        encounter_service_client::EncounterServiceClient,
        recovery_service_client::RecoveryServiceClient,
    },
};

use crate::helpers::{assert_error, authed, dissatisfied, spawn_app, violated_fields};

#[tokio::test]
async fn a_created_key_works_once_and_its_secret_is_never_listed() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut keys = app.api_keys().await;

    let created = keys
        .create_api_key(authed(
            &org.admin_key,
            pb::CreateApiKeyRequest {
                display_name: "EMR feed".into(),
                role: pb::Role::Analyst.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let key = created.api_key.unwrap();
    assert!(created.secret.starts_with("vd_"));
    assert!(created.secret.starts_with(&key.secret_prefix));
    assert_eq!(key.role(), pb::Role::Analyst);
    assert_eq!(key.display_name, "EMR feed");

    // The new key authenticates: an analyst may read touchpoints.
    app.touchpoints()
        .await
        .list_touchpoints(authed(
            &created.secret,
            pb::ListTouchpointsRequest::default(),
        ))
        .await
        .expect("the new key does not work");

    let listed = keys
        .list_api_keys(authed(&org.admin_key, pb::ListApiKeysRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.api_keys.len(),
        2,
        "the first admin key and the new one"
    );
    assert_eq!(listed.api_keys[0].id, key.id, "newest first");
    let debug = format!("{listed:?}");
    assert!(
        !debug.contains(&created.secret),
        "a listed key shows its secret"
    );
    assert!(!debug.contains(&org.admin_key));
}

#[tokio::test]
async fn create_names_every_bad_field_and_writes_nothing() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut keys = app.api_keys().await;
    let status = keys
        .create_api_key(authed(
            &org.admin_key,
            pb::CreateApiKeyRequest {
                display_name: "".into(),
                role: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["display_name", "role"]);
    let status = keys
        .create_api_key(authed(
            &org.admin_key,
            pb::CreateApiKeyRequest {
                display_name: "x".repeat(201),
                role: 12,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["display_name", "role"]);
    let listed = keys
        .list_api_keys(authed(&org.admin_key, pb::ListApiKeysRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.api_keys.len(), 1);
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_and_listed_only_on_request() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut keys = app.api_keys().await;
    let created = keys
        .create_api_key(authed(
            &org.admin_key,
            pb::CreateApiKeyRequest {
                display_name: "kiosk".into(),
                role: pb::Role::Ingest.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let id = created.api_key.unwrap().id;
    // Known, so remembered by the server: an ingest key may not list keys.
    app.servers_listening_for_revocations(1).await;
    let status = keys
        .list_api_keys(authed(&created.secret, pb::ListApiKeysRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::PermissionDenied, "ROLE_NOT_ALLOWED");

    let revoked = keys
        .revoke_api_key(authed(
            &org.admin_key,
            pb::RevokeApiKeyRequest { id: id.clone() },
        ))
        .await
        .unwrap()
        .into_inner()
        .api_key
        .unwrap();
    assert!(revoked.revoke_time.is_some());

    let status = keys
        .list_api_keys(authed(&created.secret, pb::ListApiKeysRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "API_KEY_INVALID");

    let valid = keys
        .list_api_keys(authed(&org.admin_key, pb::ListApiKeysRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(valid.api_keys.iter().all(|k| k.id != id));
    let all = keys
        .list_api_keys(authed(
            &org.admin_key,
            pb::ListApiKeysRequest {
                show_revoked: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        all.api_keys
            .iter()
            .any(|k| k.id == id && k.revoke_time.is_some())
    );

    let status = keys
        .revoke_api_key(authed(&org.admin_key, pb::RevokeApiKeyRequest { id }))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "API_KEY_REVOKED");
}

#[tokio::test]
async fn the_last_admin_key_cannot_be_revoked() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut keys = app.api_keys().await;
    let listed = keys
        .list_api_keys(authed(&org.admin_key, pb::ListApiKeysRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let first = listed.api_keys[0].id.clone();

    let status = keys
        .revoke_api_key(authed(
            &org.admin_key,
            pb::RevokeApiKeyRequest { id: first.clone() },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::FailedPrecondition, "LAST_ADMIN_KEY");

    let second = app.key(&org, Role::Admin).await;
    keys.revoke_api_key(authed(&second, pb::RevokeApiKeyRequest { id: first }))
        .await
        .expect("with a second admin key the first can go");
    let status = keys
        .list_api_keys(authed(&org.admin_key, pb::ListApiKeysRequest::default()))
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "API_KEY_INVALID");
}

#[tokio::test]
async fn revoke_rejects_bad_ids_and_answers_not_found_for_unknown_ones() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut keys = app.api_keys().await;
    let status = keys
        .revoke_api_key(authed(
            &org.admin_key,
            pb::RevokeApiKeyRequest { id: "abc".into() },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);
    let status = keys
        .revoke_api_key(authed(
            &org.admin_key,
            pb::RevokeApiKeyRequest {
                id: uuid::Uuid::now_v7().to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "NOT_FOUND");
}

#[tokio::test]
async fn keys_are_listed_a_page_at_a_time() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    for _ in 0..6 {
        app.key(&org, Role::Ingest).await;
    }
    let mut keys = app.api_keys().await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = keys
            .list_api_keys(authed(
                &org.admin_key,
                pb::ListApiKeysRequest {
                    page_size: 3,
                    page_token: token,
                    show_revoked: false,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.api_keys.len() <= 3);
        seen.extend(page.api_keys.into_iter().map(|k| k.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (7, 7));

    let status = keys
        .list_api_keys(authed(
            &org.admin_key,
            pb::ListApiKeysRequest {
                page_size: -5,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_size"]);
}

#[tokio::test]
async fn a_key_revoked_through_one_server_is_refused_by_another_that_knew_it() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let mut replica = ApiKeyServiceClient::new(app.second_server(|_| {}).await);
    let second = app.key_known_to(&org, &mut replica).await;

    app.revoke_and_see_it_refused(&org, &second, &mut replica)
        .await;
}

#[tokio::test]
async fn revoking_a_key_ends_the_streams_it_opened_on_every_server() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    app.create_touchpoint(&org.admin_key, crate::helpers::touchpoint("desk"))
        .await;
    let feed = app.created_key(&org, Role::Ingest).await;
    let desk = app.created_key(&org, Role::Analyst).await;
    // The streams go to a second server; the keys are revoked through the
    // first.
    let other = app.second_server(|_| {}).await;
    app.servers_listening_for_revocations(2).await;

    let (batches, queued) = tokio::sync::mpsc::channel(4);
    let mut encounters = EncounterServiceClient::new(other.clone());
    let request = authed(
        &feed.secret,
        tokio_stream::wrappers::ReceiverStream::new(queued),
    );
    let stream = tokio::spawn(async move { encounters.ingest_encounters(request).await });
    let batch = |id: &str| pb::IngestEncountersRequest {
        encounters: vec![dissatisfied("desk", "his", id)],
    };
    batches.send(batch("before")).await.unwrap();
    let stored = async || {
        sqlx::query_scalar::<_, i64>("select count(*) from encounter")
            .fetch_one(&mut app.owner_connection().await)
            .await
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while stored().await < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stored().await, 1);
    let mut watch = RecoveryServiceClient::new(other)
        .watch_recovery_cases(authed(
            &desk.secret,
            pb::WatchRecoveryCasesRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();

    let mut keys = app.api_keys().await;
    for revoked in [&feed, &desk] {
        keys.revoke_api_key(authed(
            &org.admin_key,
            pb::RevokeApiKeyRequest {
                id: revoked.key.id.to_string(),
            },
        ))
        .await
        .unwrap();
    }

    // The watch ends at once, with the reason, not as if by itself.
    let ended = tokio::time::timeout(Duration::from_secs(2), watch.message())
        .await
        .expect("the watch went on after its key was revoked");
    let status = ended.expect_err("the watch ended as if by itself");
    assert_error(&status, Code::Unauthenticated, "API_KEY_REVOKED");
    // The next batch of the open stream is refused; the one before stays.
    batches.send(batch("after")).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), stream)
        .await
        .expect("the stream went on after its key was revoked")
        .unwrap()
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "API_KEY_REVOKED");
    assert_eq!(stored().await, 1);
}
