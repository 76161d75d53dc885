//! Webhooks: made, read, changed, rotated and deleted by admins, with what
//! was delivered to them.

use uuid::Uuid;

use super::{App, Caller, ListRequest, Operation, Parsed, access::permit, named_touchpoints};
use crate::{
    domain::{
        code::Lookup,
        paging::{Listing, PageToken},
        refusal::Refusal,
        webhook::{
            Delivery, DeliveryState, NewWebhook, Secret, Webhook, WebhookChanges, check_room,
        },
    },
    error::{Error, Result},
    store::{
        self,
        webhook::{NotRequeued, WebhookValues},
    },
};

/// A webhook and its secret, shown this once.
pub struct WithSecret {
    pub webhook: Webhook,
    pub secret: String,
}

/// A webhook's deliveries to list.
#[derive(Debug, Clone)]
pub struct DeliveriesRequest {
    pub webhook_id: Uuid,
    pub list: ListRequest<Option<DeliveryState>>,
}

impl App {
    pub async fn create_webhook(
        &self,
        caller: &Caller,
        new: Parsed<NewWebhook>,
    ) -> Result<WithSecret> {
        let org = permit(caller, Operation::CreateWebhook)?;
        let new = new?;
        let secret = Secret::generate()?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        check_room(store::webhook::count(&mut tx, org).await?)?;
        let touchpoint_ids = touchpoints(&mut tx, org, &new.touchpoint_codes).await?;
        let values = WebhookValues {
            url: &new.url,
            description: &new.description,
            event_types: &new.event_types,
            touchpoint_ids: &touchpoint_ids,
            stages: &new.stages,
        };
        let webhook =
            store::webhook::insert(&mut tx, org, Uuid::now_v7(), &values, secret.bytes()).await?;
        tx.commit().await?;
        Ok(WithSecret {
            webhook,
            secret: secret.reveal(),
        })
    }

    pub async fn get_webhook(&self, caller: &Caller, id: Parsed<Uuid>) -> Result<Webhook> {
        let org = permit(caller, Operation::GetWebhook)?;
        let id = id?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let webhook = found(store::webhook::get(&mut tx, org, id).await?, id)?;
        tx.commit().await?;
        Ok(webhook)
    }

    pub async fn list_webhooks(
        &self,
        caller: &Caller,
        request: Parsed<ListRequest<()>>,
    ) -> Result<Listing<Webhook>> {
        let org = permit(caller, Operation::ListWebhooks)?;
        let ListRequest {
            size, page_token, ..
        } = request?;
        let query = self.tokens.query(org, "webhooks");
        let after = PageToken::decode(&page_token, &query)?.map(|t| t.after);
        let mut tx = store::begin_for(&self.pool, org).await?;
        let rows = store::webhook::list(&mut tx, org, after, size + 1).await?;
        tx.commit().await?;
        let rows = rows.into_iter().map(|w| (w.id, w)).collect();
        Ok(Listing::new(rows, size, query))
    }

    pub async fn update_webhook(
        &self,
        caller: &Caller,
        update: Parsed<(Uuid, WebhookChanges)>,
    ) -> Result<Webhook> {
        let org = permit(caller, Operation::UpdateWebhook)?;
        let (id, changes) = update?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let touchpoint_ids = match &changes.touchpoint_codes {
            Some(codes) => Some(touchpoints(&mut tx, org, codes).await?),
            None => None,
        };
        let webhook =
            store::webhook::update(&mut tx, org, id, &changes, touchpoint_ids.as_deref()).await?;
        let webhook = found(webhook, id)?;
        tx.commit().await?;
        Ok(webhook)
    }

    pub async fn delete_webhook(&self, caller: &Caller, id: Parsed<Uuid>) -> Result<()> {
        let org = permit(caller, Operation::DeleteWebhook)?;
        let id = id?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        if !store::webhook::delete(&mut tx, org, id).await? {
            return Err(Error::not_found("webhook", id.to_string()));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Makes a new secret; the old one signs beside it for `grace_seconds`.
    pub async fn rotate_webhook_secret(
        &self,
        caller: &Caller,
        rotation: Parsed<(Uuid, i64)>,
    ) -> Result<WithSecret> {
        let org = permit(caller, Operation::RotateWebhookSecret)?;
        let (id, grace_seconds) = rotation?;
        let secret = Secret::generate()?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        let webhook =
            store::webhook::rotate(&mut tx, org, id, secret.bytes(), grace_seconds).await?;
        let webhook = found(webhook, id)?;
        tx.commit().await?;
        Ok(WithSecret {
            webhook,
            secret: secret.reveal(),
        })
    }

    pub async fn list_webhook_deliveries(
        &self,
        caller: &Caller,
        request: Parsed<DeliveriesRequest>,
    ) -> Result<Listing<Delivery>> {
        let org = permit(caller, Operation::ListWebhookDeliveries)?;
        let DeliveriesRequest { webhook_id, list } = request?;
        let query = self.tokens.query(
            org,
            &format!("webhook_deliveries {webhook_id} {:?}", list.filter),
        );
        // Deliveries page by their sequence number, carried as a token's
        // "after" id.
        let before = PageToken::decode(&list.page_token, &query)?
            .map(|t| i64::try_from(t.after.as_u64_pair().1).unwrap_or(i64::MAX));
        let mut tx = store::begin_for(&self.pool, org).await?;
        found(
            store::webhook::get(&mut tx, org, webhook_id).await?,
            webhook_id,
        )?;
        let rows = store::webhook::deliveries(
            &mut tx,
            org,
            webhook_id,
            list.filter,
            before,
            list.size + 1,
        )
        .await?;
        tx.commit().await?;
        let rows = (rows.into_iter())
            .map(|(seq, d)| (Uuid::from_u64_pair(0, seq.unsigned_abs()), d))
            .collect();
        Ok(Listing::new(rows, list.size, query))
    }

    /// Queues an event for the webhook again, with the same webhook-id.
    pub async fn redeliver_webhook_event(
        &self,
        caller: &Caller,
        request: Parsed<(Uuid, Uuid)>,
    ) -> Result<Delivery> {
        let org = permit(caller, Operation::RedeliverWebhookEvent)?;
        let (webhook_id, event_id) = request?;
        let mut tx = store::begin_for(&self.pool, org).await?;
        found(
            store::webhook::get(&mut tx, org, webhook_id).await?,
            webhook_id,
        )?;
        let delivery = match store::webhook::redeliver(&mut tx, org, webhook_id, event_id).await? {
            Ok(delivery) => delivery,
            Err(NotRequeued::Unknown) => {
                return Err(Error::not_found(
                    "webhook event",
                    crate::domain::webhook::message_id(event_id),
                ));
            }
            Err(NotRequeued::Pending) => {
                return Err(Refusal::new(
                    "WEBHOOK_EVENT_PENDING",
                    format!(
                        "event {} is still waiting to be delivered to webhook {webhook_id}",
                        crate::domain::webhook::message_id(event_id)
                    ),
                )
                .into());
            }
        };
        tx.commit().await?;
        crate::webhooks::wake();
        Ok(delivery)
    }
}

async fn touchpoints(
    tx: &mut sqlx::PgConnection,
    org: Uuid,
    codes: &[String],
) -> Result<Vec<Uuid>> {
    let lookups: Vec<Lookup> = codes.iter().cloned().map(Lookup::Code).collect();
    named_touchpoints(tx, org, &lookups).await
}

fn found(webhook: Option<Webhook>, id: Uuid) -> Result<Webhook> {
    webhook.ok_or_else(|| Error::not_found("webhook", id.to_string()))
}
