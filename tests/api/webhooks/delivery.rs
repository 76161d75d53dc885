//! What a receiver gets: signed, thin events, in order, once in effect.

use std::time::Duration;

use prost_types::FieldMask;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    ALL_EVENTS, Receiver, authed, dissatisfied, signatures, spawn_app, spawn_app_with, verified,
    verify, webhook_to,
};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_failed_encounter_and_the_work_on_its_case_arrive_signed_thin_and_in_order() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let receiver = Receiver::start().await;
    let (webhook, secret) = app
        .create_webhook(&key, webhook_to(&receiver.url(), ALL_EVENTS))
        .await;
    assert!(secret.starts_with("whsec_"), "{secret}");

    let failed = app
        .recorded(
            &key,
            pb::Encounter {
                customer_ref: "patient-secret-77".into(),
                comment: "the nurse at the desk was rude".into(),
                staff_ref: "staff-0042".into(),
                ..dissatisfied("reception-desk", "his", "w-1")
            },
        )
        .await;
    let case = app.all_cases(&key).await.remove(0);
    app.update_case(
        &key,
        pb::RecoveryCase {
            id: case.id.clone(),
            assignee: "Nurse Kim Jiwoo".into(),
            ..Default::default()
        },
        &["assignee"],
    )
    .await
    .unwrap();
    app.recovery()
        .await
        .acknowledge_recovery_case(authed(
            &key,
            pb::AcknowledgeRecoveryCaseRequest {
                id: case.id.clone(),
            },
        ))
        .await
        .unwrap();
    app.update_case(
        &key,
        pb::RecoveryCase {
            id: case.id.clone(),
            status: pb::RecoveryStatus::Resolved.into(),
            resolution_note: "Called the patient back and apologised".into(),
            ..Default::default()
        },
        &["status", "resolution_note"],
    )
    .await
    .unwrap();

    let deliveries = receiver.wait_for(4, WAIT).await;
    let events = verified(&secret, &deliveries);
    let kinds: Vec<&str> = events.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            "recovery_case.opened",
            "recovery_case.updated",
            "recovery_case.updated",
            "recovery_case.resolved"
        ]
    );
    for (delivery, event) in deliveries.iter().zip(&events) {
        assert_eq!(delivery.method, "POST");
        assert_eq!(delivery.path, "/hooks");
        assert_eq!(delivery.header("content-type"), Some("application/json"));
        assert!(event.id.starts_with("msg_"), "{}", event.id);
        assert_eq!(event.data()["recovery_case_id"], case.id.as_str());
        assert_eq!(event.data()["touchpoint_code"], "reception-desk");
        // Thin: ids, codes, times and reasons; nothing a person typed or
        // that names the patient.
        let text = String::from_utf8(delivery.body.clone()).unwrap();
        for private in [
            "patient-secret-77",
            "rude",
            "staff-0042",
            "Kim Jiwoo",
            "apologised",
            failed.journey_id.as_str(),
        ] {
            assert!(!text.contains(private), "{private} in {text}");
        }
    }
    let opened = events[0].data();
    assert_eq!(opened["kind"], "failure");
    assert_eq!(opened["encounter_id"], failed.id.as_str());
    assert_eq!(opened["status"], "open");
    assert!(
        opened["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("satisfaction 1 at or below")
    );
    assert_eq!(
        events[1].data()["changed_fields"],
        serde_json::json!(["assignee"])
    );
    assert_eq!(
        events[2].data()["changed_fields"],
        serde_json::json!(["acknowledge_time"])
    );
    assert!(events[2].data()["acknowledge_time"].is_string());
    assert_eq!(events[3].data()["status"], "resolved");
    let ids: std::collections::BTreeSet<_> = events.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 4, "every event has an id of its own");

    // The deliveries as the admin sees them: delivered, one attempt each.
    let listed = app.deliveries_settled(&key, &webhook.id).await;
    assert_eq!(listed.len(), 4);
    for delivery in &listed {
        assert_eq!(delivery.state, pb::WebhookDeliveryState::Delivered as i32);
        assert_eq!(delivery.attempt_count, 1);
        assert_eq!(delivery.attempts[0].status_code, Some(204));
        assert!(delivery.attempts[0].error.is_empty());
        assert!(delivery.deliver_time.is_some());
        assert!(delivery.next_attempt_time.is_none());
    }
    let newest_first: Vec<&str> = listed.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(newest_first[0], "recovery_case.resolved");
    assert_eq!(listed[3].event_id, events[0].id);
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_event_once_in_effect_and_in_order() {
    let app = spawn_app_with(|s| s.webhooks.first_retry = Duration::from_millis(300)).await;
    let key = app.demo_key().await;
    let mut receiver = Receiver::start().await;
    receiver.set_status(503);
    let (_, secret) = app
        .create_webhook(&key, webhook_to(&receiver.url(), &["recovery_case.opened"]))
        .await;
    for n in 1..=3 {
        app.recorded(
            &key,
            dissatisfied("reception-desk", "his", &format!("d-{n}")),
        )
        .await;
    }
    // The first event is refused, and nobody answers for a while after.
    wait_until(|| receiver.deliveries().iter().any(|d| d.answered == 503)).await;
    receiver.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    receiver.set_status(204);
    receiver.restart().await;

    let delivered = receiver.wait_for(3, WAIT).await;
    let events = verified(&secret, &delivered);
    let cases = app.case_ids_oldest_first(&key).await;
    let delivered_cases: Vec<String> = events
        .iter()
        .map(|e| e.data()["recovery_case_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered_cases, cases, "in the order the cases opened");
    // Retries carry the same webhook-id; no event was accepted twice.
    let everything = receiver.deliveries();
    let ids: Vec<&str> = everything
        .iter()
        .map(|d| d.header("webhook-id").unwrap())
        .collect();
    for event in &events {
        let accepted = everything
            .iter()
            .filter(|d| d.header("webhook-id") == Some(&event.id) && d.answered == 204)
            .count();
        assert_eq!(accepted, 1, "{} accepted {accepted} times", event.id);
    }
    assert!(ids.iter().all(|id| events.iter().any(|e| e.id == *id)));
    // Per endpoint in order: nothing of a later event before an earlier
    // one was accepted.
    let position = |id: &str| events.iter().position(|e| e.id == id).unwrap();
    let mut highest = 0;
    for delivery in &everything {
        let at = position(delivery.header("webhook-id").unwrap());
        assert!(at >= highest, "event {at} after event {highest}");
        highest = at;
    }
}

#[tokio::test]
async fn retries_run_out_into_a_dead_letter_that_can_be_redelivered() {
    let app = spawn_app_with(|s| {
        s.webhooks.first_retry = Duration::from_millis(100);
        s.webhooks.retry_window = Duration::from_millis(700);
    })
    .await;
    let key = app.demo_key().await;
    let receiver = Receiver::start().await;
    receiver.set_status(500);
    let (webhook, secret) = app
        .create_webhook(&key, webhook_to(&receiver.url(), &["recovery_case.opened"]))
        .await;
    app.recorded(&key, dissatisfied("reception-desk", "his", "dl-1"))
        .await;

    let listed = app.deliveries_settled(&key, &webhook.id).await;
    let failed = &listed[0];
    assert_eq!(failed.state, pb::WebhookDeliveryState::Failed as i32);
    assert!(failed.attempt_count >= 2, "{failed:?}");
    let last = &failed.attempts[0];
    assert_eq!(last.status_code, Some(500));
    assert_eq!(last.error, "answered 500 Internal Server Error");
    assert!(last.response_excerpt.len() <= 256);
    assert!(last.latency.is_some());
    let refused = receiver.deliveries().len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        receiver.deliveries().len(),
        refused,
        "a dead letter is not retried"
    );

    receiver.set_status(204);
    let mut webhooks = app.webhooks().await;
    let again = webhooks
        .redeliver_webhook_event(authed(
            &key,
            pb::RedeliverWebhookEventRequest {
                webhook_id: webhook.id.clone(),
                event_id: failed.event_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .delivery
        .unwrap();
    assert_eq!(again.event_id, failed.event_id);
    let delivered = receiver.wait_for(1, WAIT).await;
    assert_eq!(verified(&secret, &delivered)[0].id, failed.event_id);
    let listed = app.deliveries_settled(&key, &webhook.id).await;
    assert_eq!(listed.len(), 2, "the redelivery is a delivery of its own");
    assert_eq!(listed[0].state, pb::WebhookDeliveryState::Delivered as i32);

    // An event unknown to the webhook, and one still pending, are refused.
    let unknown = webhooks
        .redeliver_webhook_event(authed(
            &key,
            pb::RedeliverWebhookEventRequest {
                webhook_id: webhook.id.clone(),
                event_id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let malformed = webhooks
        .redeliver_webhook_event(authed(
            &key,
            pb::RedeliverWebhookEventRequest {
                webhook_id: webhook.id.clone(),
                event_id: "evt-1".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(malformed.message().contains("event_id"), "{malformed:?}");
}

#[tokio::test]
async fn a_redirect_is_not_followed_but_counted_as_a_failed_attempt() {
    let app = spawn_app_with(|s| s.webhooks.first_retry = Duration::from_secs(60)).await;
    let key = app.demo_key().await;
    let receiver = Receiver::start().await;
    receiver.set_status(307);
    let (webhook, _) = app
        .create_webhook(&key, webhook_to(&receiver.url(), &["recovery_case.opened"]))
        .await;
    app.recorded(&key, dissatisfied("reception-desk", "his", "r-1"))
        .await;
    let attempts = loop {
        let listed = app.deliveries(&key, &webhook.id).await;
        if let Some(d) = listed.first().filter(|d| d.attempt_count > 0) {
            break d.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(attempts.state, pb::WebhookDeliveryState::Pending as i32);
    assert_eq!(attempts.attempts[0].status_code, Some(307));
    assert!(attempts.next_attempt_time.is_some());
    assert_eq!(receiver.deliveries().len(), 1);
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_for_the_grace_period() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let receiver = Receiver::start().await;
    let (webhook, old) = app
        .create_webhook(&key, webhook_to(&receiver.url(), &["recovery_case.opened"]))
        .await;
    let mut webhooks = app.webhooks().await;
    let rotate = |grace: Option<i64>| pb::RotateWebhookSecretRequest {
        id: webhook.id.clone(),
        grace_period: grace.map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
    };
    let rotated = webhooks
        .rotate_webhook_secret(authed(&key, rotate(None)))
        .await
        .unwrap()
        .into_inner();
    let new = rotated.secret;
    assert_ne!(new, old);
    assert!(
        rotated
            .webhook
            .unwrap()
            .previous_secret_expire_time
            .is_some()
    );

    app.recorded(&key, dissatisfied("reception-desk", "his", "s-1"))
        .await;
    let first = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(signatures(&first).len(), 2);
    let now = chrono::Utc::now().timestamp();
    verify(&new, &first, now).expect("the new secret signs");
    verify(&old, &first, now).expect("the old secret still signs");

    // Without a grace period the old secret stops at once.
    let newest = webhooks
        .rotate_webhook_secret(authed(&key, rotate(Some(0))))
        .await
        .unwrap()
        .into_inner();
    assert!(
        newest
            .webhook
            .unwrap()
            .previous_secret_expire_time
            .is_none()
    );
    app.recorded(&key, dissatisfied("reception-desk", "his", "s-2"))
        .await;
    let second = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(signatures(&second).len(), 1);
    verify(&newest.secret, &second, now).expect("the newest secret signs");
    assert!(verify(&new, &second, now).is_err());

    let too_long = webhooks
        .rotate_webhook_secret(authed(&key, rotate(Some(8 * 24 * 3600))))
        .await
        .unwrap_err();
    assert_eq!(too_long.code(), Code::InvalidArgument);
    assert!(too_long.message().contains("grace_period"));
}

#[tokio::test]
async fn filters_keep_events_of_other_touchpoints_and_stages_away() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let receiver = Receiver::start().await;
    let mut only_pharmacy = webhook_to(&receiver.url(), &["recovery_case.opened"]);
    only_pharmacy.touchpoint_codes = vec!["pharmacy".into()];
    let (_, secret) = app.create_webhook(&key, only_pharmacy).await;
    let other = Receiver::start().await;
    let mut pre_service = webhook_to(&other.url(), &["recovery_case.opened"]);
    pre_service.stages = vec![pb::Stage::PreService.into()];
    app.create_webhook(&key, pre_service).await;
    let mut updates_only = webhook_to(&other.url(), &["recovery_case.resolved"]);
    updates_only.description = "resolutions only".into();
    app.create_webhook(&key, updates_only).await;

    app.recorded(&key, dissatisfied("reception-desk", "his", "f-1"))
        .await;
    app.recorded(&key, dissatisfied("pharmacy", "his", "f-2"))
        .await;
    let delivered = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        verified(&secret, &delivered)[0].data()["touchpoint_code"],
        "pharmacy"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.deliveries().len(), 1);
    assert!(
        other.deliveries().is_empty(),
        "neither reception nor pharmacy is in the pre-service stage: {:?}",
        other.deliveries()
    );
}

#[tokio::test]
async fn private_addresses_are_refused_unless_the_operator_allows_them() {
    let app = spawn_app_with(|s| s.webhooks.allow_private = false).await;
    let key = app.demo_key().await;
    let mut webhooks = app.webhooks().await;
    for url in [
        "http://127.0.0.1:9000/hooks",
        "http://localhost/hooks",
        "http://10.20.30.40/hooks",
        "http://[::1]/hooks",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let refused = webhooks
            .create_webhook(authed(
                &key,
                pb::CreateWebhookRequest {
                    webhook: Some(webhook_to(url, &["recovery_case.opened"])),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{url}");
        assert!(refused.message().contains("webhook.url"), "{refused:?}");
    }
    let (created, _) = app
        .create_webhook(
            &key,
            webhook_to(
                "https://tickets.example.org/hooks",
                &["recovery_case.opened"],
            ),
        )
        .await;
    let moved = webhooks
        .update_webhook(authed(
            &key,
            pb::UpdateWebhookRequest {
                webhook: Some(pb::Webhook {
                    id: created.id,
                    url: "http://192.168.1.10/hooks".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["url".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(moved.code(), Code::InvalidArgument);
}

async fn wait_until(done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the condition did not come true");
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_the_event_is_retried() {
    let app = spawn_app_with(|s| {
        s.webhooks.timeout = Duration::from_secs(1);
        s.webhooks.first_retry = Duration::from_millis(200);
    })
    .await;
    let key = app.demo_key().await;
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_secs(3));
    let (webhook, secret) = app
        .create_webhook(&key, webhook_to(&receiver.url(), &["recovery_case.opened"]))
        .await;
    app.recorded(&key, dissatisfied("reception-desk", "his", "t-1"))
        .await;
    let first = loop {
        let listed = app.deliveries(&key, &webhook.id).await;
        if let Some(d) = listed.first().filter(|d| d.attempt_count > 0) {
            break d.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first.attempts[0].error, "timed out after 1s");
    assert_eq!(first.attempts[0].status_code, None);
    receiver.set_delay(Duration::ZERO);
    let delivered = receiver.wait_for(1, WAIT).await;
    assert_eq!(verified(&secret, &delivered)[0].id, first.event_id);
}
