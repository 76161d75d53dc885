//! Webhooks through the API, and what arrives at a receiver.

use std::time::Duration;

use sqlx::Executor;
use tonic::transport::Channel;
use uuid::Uuid;
use verdad::proto::verdad::v1::{self as pb, webhook_service_client::WebhookServiceClient};

use super::{Delivery, TestApp, authed, verify};

/// A webhook for `types` to `url`.
pub(crate) fn webhook_to(url: &str, types: &[&str]) -> pb::Webhook {
    pb::Webhook {
        url: url.to_owned(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    }
}

/// Every event type.
pub(crate) const ALL_EVENTS: &[&str] = &[
    "recovery_case.opened",
    "recovery_case.updated",
    "recovery_case.overdue",
    "recovery_case.escalated",
    "recovery_case.resolved",
    "journey.deviated",
];

/// An event as the receiver verified it: its webhook-id and body.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) body: serde_json::Value,
}

impl Event {
    pub(crate) fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    pub(crate) fn data(&self) -> &serde_json::Value {
        &self.body["data"]
    }
}

/// The deliveries, each verified with `secret`, as events.
pub(crate) fn verified(secret: &str, deliveries: &[Delivery]) -> Vec<Event> {
    let now = chrono::Utc::now().timestamp();
    deliveries
        .iter()
        .map(|d| Event {
            id: d.header("webhook-id").expect("no webhook-id").to_owned(),
            body: verify(secret, d, now).unwrap_or_else(|e| panic!("{e}: {d:?}")),
        })
        .collect()
}

impl TestApp {
    pub(crate) async fn webhooks(&self) -> WebhookServiceClient<Channel> {
        WebhookServiceClient::new(self.channel().await)
    }

    /// Creates a webhook; returns it with its secret.
    pub(crate) async fn create_webhook(
        &self,
        key: &str,
        webhook: pb::Webhook,
    ) -> (pb::Webhook, String) {
        let created = self
            .webhooks()
            .await
            .create_webhook(authed(
                key,
                pb::CreateWebhookRequest {
                    webhook: Some(webhook),
                },
            ))
            .await
            .expect("create_webhook failed")
            .into_inner();
        (
            created.webhook.expect("no webhook in the response"),
            created.secret,
        )
    }

    /// The webhook's deliveries, newest first (the first page).
    pub(crate) async fn deliveries(&self, key: &str, webhook_id: &str) -> Vec<pb::WebhookDelivery> {
        self.webhooks()
            .await
            .list_webhook_deliveries(authed(
                key,
                pb::ListWebhookDeliveriesRequest {
                    webhook_id: webhook_id.to_owned(),
                    page_size: 500,
                    ..Default::default()
                },
            ))
            .await
            .expect("list_webhook_deliveries failed")
            .into_inner()
            .deliveries
    }

    /// The ids of the organisation's cases in the order they opened.
    pub(crate) async fn case_ids_oldest_first(&self, key: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .all_cases(key)
            .await
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.reverse();
        ids
    }

    /// Waits until every delivery of the webhook has settled (none pending).
    pub(crate) async fn deliveries_settled(
        &self,
        key: &str,
        webhook_id: &str,
    ) -> Vec<pb::WebhookDelivery> {
        for _ in 0..300 {
            let deliveries = self.deliveries(key, webhook_id).await;
            if deliveries
                .iter()
                .all(|d| d.state != pb::WebhookDeliveryState::Pending as i32)
            {
                return deliveries;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("deliveries did not settle");
    }

    /// Runs `sql` as the owner, acting as `organisation` so that row-level
    /// security lets an owner who is not a superuser through: for moving
    /// times back, as if time had gone by.
    pub(crate) async fn as_owner(&self, organisation: Uuid, sql: &str) {
        let mut owner = self.owner_connection().await;
        sqlx::query("select set_config('verdad.organisation_id', $1::text, false)")
            .bind(organisation)
            .execute(&mut owner)
            .await
            .unwrap();
        owner
            .execute(sql)
            .await
            .expect("the owner's statement failed");
    }

    /// Moves the demo hospital's cases' due times `hours` earlier, as if
    /// that much time had gone by since they opened.
    pub(crate) async fn age_cases(&self, hours: i64) {
        self.as_owner(
            verdad::demo::DEMO_ORGANISATION_ID,
            &format!("update recovery_case set due_time = due_time - interval '{hours} hours'"),
        )
        .await;
    }
}
