//! Several servers share the outbox: each event goes out once, and what a
//! server left undelivered when it died goes out from the next.

use std::{collections::BTreeMap, time::Duration};

use verdad::proto::verdad::v1::{self as pb, encounter_service_client::EncounterServiceClient};

use crate::helpers::{
    Receiver, ServeProcess, authed, dissatisfied, spawn_app, verified, webhook_to,
};

/// Long enough for a lease the killed server held to run out (10 s and 5 s)
/// and a retry's backoff besides.
const WAIT: Duration = Duration::from_secs(45);

#[tokio::test]
async fn two_servers_deliver_each_event_once_and_in_order() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let receiver = Receiver::start().await;
    let (_, secret) = app
        .create_webhook(&key, webhook_to(&receiver.url(), &["recovery_case.opened"]))
        .await;
    let replica = app.second_server(|_| {}).await;
    let mut clients = [
        EncounterServiceClient::new(app.channel().await),
        EncounterServiceClient::new(replica),
    ];
    for n in 0..20 {
        clients[n % 2]
            .record_encounter(authed(
                &key,
                pb::RecordEncounterRequest {
                    encounter: Some(dissatisfied("reception-desk", "his", &format!("r-{n}"))),
                },
            ))
            .await
            .unwrap();
    }
    let delivered = receiver.wait_for(20, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.deliveries().len(), 20, "an event went out twice");
    let events = verified(&secret, &delivered);
    let mut seen = BTreeMap::new();
    for event in &events {
        *seen.entry(event.id.clone()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 20);
    let opened = app.case_ids_oldest_first(&key).await;
    let in_order: Vec<String> = events
        .iter()
        .map(|e| e.data()["recovery_case_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(in_order, opened);
}

#[tokio::test]
async fn events_left_in_the_outbox_by_a_killed_server_go_out_from_the_next() {
    let mut app = spawn_app().await;
    let key = app.demo_key().await;
    // Only the processes below deliver.
    app.shut_down().await.unwrap();
    let mut receiver = Receiver::start().await;
    receiver.stop().await;
    let args = ["--webhook-allow-private"];
    let mut first = ServeProcess::start(&app.database_url, &args).await;
    let mut webhooks = verdad::proto::verdad::v1::webhook_service_client::WebhookServiceClient::new(
        first.channel().await,
    );
    let created = webhooks
        .create_webhook(authed(
            &key,
            pb::CreateWebhookRequest {
                webhook: Some(webhook_to(&receiver.url(), &["recovery_case.opened"])),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut encounters = EncounterServiceClient::new(first.channel().await);
    for n in 0..3 {
        encounters
            .record_encounter(authed(
                &key,
                pb::RecordEncounterRequest {
                    encounter: Some(dissatisfied("reception-desk", "his", &format!("k-{n}"))),
                },
            ))
            .await
            .unwrap();
    }
    first.kill().await;

    receiver.restart().await;
    let _second = ServeProcess::start(&app.database_url, &args).await;
    let delivered = receiver.wait_for(3, WAIT).await;
    let events = verified(&created.secret, &delivered);
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.kind() == "recovery_case.opened"));
}
