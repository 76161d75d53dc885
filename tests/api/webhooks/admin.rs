//! Managing webhooks: what is checked, what is shown, and who may.

use prost_types::FieldMask;
use tonic::Code;
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::helpers::{ALL_EVENTS, authed, spawn_app, violated_fields, webhook_to};

const URL: &str = "https://tickets.example.org/verdad";

#[tokio::test]
async fn a_webhook_is_made_read_listed_changed_and_deleted_and_its_secret_shown_once() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut hook = webhook_to(URL, &["recovery_case.opened", "recovery_case.opened"]);
    hook.touchpoint_codes = vec!["pharmacy".into(), "PHARMACY".into()];
    hook.stages = vec![pb::Stage::PostService.into()];
    hook.description = "Pharmacy tickets".into();
    let (created, secret) = app.create_webhook(&key, hook).await;
    assert_eq!(created.url, URL);
    assert_eq!(created.event_types, ["recovery_case.opened"]);
    assert_eq!(created.touchpoint_codes, ["pharmacy"]);
    assert_eq!(created.description, "Pharmacy tickets");
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert!(created.previous_secret_expire_time.is_none());
    assert_eq!(secret.len(), "whsec_".len() + 44);

    let mut webhooks = app.webhooks().await;
    let got = webhooks
        .get_webhook(authed(
            &key,
            pb::GetWebhookRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap();
    assert_eq!(got, created);
    assert!(
        !format!("{got:?}").contains(&secret[6..]),
        "the secret is shown once"
    );

    let changed = webhooks
        .update_webhook(authed(
            &key,
            pb::UpdateWebhookRequest {
                webhook: Some(pb::Webhook {
                    id: created.id.clone(),
                    event_types: ALL_EVENTS.iter().map(|e| (*e).to_owned()).collect(),
                    touchpoint_codes: vec![],
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["event_types".into(), "touchpoint_codes".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap();
    assert_eq!(changed.event_types.len(), ALL_EVENTS.len());
    assert!(changed.touchpoint_codes.is_empty());
    assert_eq!(changed.url, URL, "fields outside the mask stay");
    assert_eq!(changed.stages, created.stages);

    let (second, _) = app.create_webhook(&key, webhook_to(URL, ALL_EVENTS)).await;
    let first_page = webhooks
        .list_webhooks(authed(
            &key,
            pb::ListWebhooksRequest {
                page_size: 1,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.webhooks[0].id, created.id);
    let second_page = webhooks
        .list_webhooks(authed(
            &key,
            pb::ListWebhooksRequest {
                page_size: 1,
                page_token: first_page.next_page_token,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second_page.webhooks[0].id, second.id);
    assert!(second_page.next_page_token.is_empty());

    webhooks
        .delete_webhook(authed(
            &key,
            pb::DeleteWebhookRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap();
    let gone = webhooks
        .get_webhook(authed(
            &key,
            pb::GetWebhookRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let again = webhooks
        .delete_webhook(authed(&key, pb::DeleteWebhookRequest { id: created.id }))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
}

#[tokio::test]
async fn every_bad_field_of_a_webhook_is_named_and_nothing_is_written() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let mut webhooks = app.webhooks().await;
    let bad = pb::Webhook {
        url: "ftp://tickets.example.org/".into(),
        event_types: vec!["recovery_case.opened".into(), "case.exploded".into()],
        touchpoint_codes: vec!["no spaces please".into()],
        stages: vec![42],
        description: "x".repeat(501),
        ..Default::default()
    };
    let refused = webhooks
        .create_webhook(authed(
            &key,
            pb::CreateWebhookRequest { webhook: Some(bad) },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&refused),
        [
            "webhook.url",
            "webhook.event_types[1]",
            "webhook.touchpoint_codes[0]",
            "webhook.stages[0]",
            "webhook.description",
        ]
    );
    let none = webhooks
        .create_webhook(authed(
            &key,
            pb::CreateWebhookRequest {
                webhook: Some(webhook_to(URL, &[])),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&none), ["webhook.event_types"]);
    let unknown_touchpoint = webhooks
        .create_webhook(authed(
            &key,
            pb::CreateWebhookRequest {
                webhook: Some(pb::Webhook {
                    touchpoint_codes: vec!["helipad".into()],
                    ..webhook_to(URL, ALL_EVENTS)
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown_touchpoint.code(), Code::NotFound);
    let listed = webhooks
        .list_webhooks(authed(&key, pb::ListWebhooksRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.webhooks.is_empty(),
        "a refused request writes nothing"
    );

    let (created, _) = app.create_webhook(&key, webhook_to(URL, ALL_EVENTS)).await;
    let output_only = webhooks
        .update_webhook(authed(
            &key,
            pb::UpdateWebhookRequest {
                webhook: Some(pb::Webhook {
                    id: created.id.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["create_time".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(output_only.code(), Code::InvalidArgument);
    let emptied = webhooks
        .update_webhook(authed(
            &key,
            pb::UpdateWebhookRequest {
                webhook: Some(pb::Webhook {
                    id: created.id,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["event_types".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&emptied), ["webhook.event_types"]);
}

#[tokio::test]
async fn only_admin_keys_manage_webhooks() {
    let app = spawn_app().await;
    let org = app.create_org("Hospital").await;
    for role in [Role::Ingest, Role::Analyst] {
        let key = app.key(&org, role).await;
        let refused = app
            .webhooks()
            .await
            .create_webhook(authed(
                &key,
                pb::CreateWebhookRequest {
                    webhook: Some(webhook_to(URL, ALL_EVENTS)),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{role}");
    }
}

#[tokio::test]
async fn an_organisation_has_at_most_fifty_webhooks() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    for _ in 0..50 {
        app.create_webhook(&key, webhook_to(URL, ALL_EVENTS)).await;
    }
    let refused = app
        .webhooks()
        .await
        .create_webhook(authed(
            &key,
            pb::CreateWebhookRequest {
                webhook: Some(webhook_to(URL, ALL_EVENTS)),
            },
        ))
        .await
        .unwrap_err();
    crate::helpers::assert_error(&refused, Code::FailedPrecondition, "WEBHOOK_LIMIT");
}
