//! `verdad.v1.WebhookService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    caller,
    convert::{
        delivery_state_from_proto, delivery_state_to_proto, stage_from_proto, stage_to_proto,
    },
    enum_field,
    field_mask::MaskRules,
    item_bytes, page_budget, parse_id, required_enum, timestamp,
};
use crate::{
    app::{
        App, ListRequest,
        webhooks::{DeliveriesRequest, WithSecret},
    },
    domain::{
        code::parse_code,
        paging,
        text::optional_text,
        touchpoint::Stage,
        violation::{FieldViolation, Violations},
        webhook::{
            DESCRIPTION_MAX_CHARS, Delivery, EventType, MAX_TOUCHPOINT_FILTERS, NewWebhook,
            Webhook, WebhookChanges, message_id, parse_grace, parse_message_id, parse_url,
        },
    },
    error::{Error, Result},
    proto::verdad::v1 as pb,
};

const MASK: MaskRules = MaskRules {
    mutable: &[
        "url",
        "event_types",
        "touchpoint_codes",
        "stages",
        "description",
    ],
    fixed: &[
        "id",
        "create_time",
        "update_time",
        "previous_secret_expire_time",
    ],
    aliases: &[],
};

pub struct WebhookApi {
    app: Arc<App>,
    /// Whether URLs may name private and loopback addresses.
    allow_private: bool,
}

impl WebhookApi {
    pub fn new(app: Arc<App>, allow_private: bool) -> Self {
        Self { app, allow_private }
    }
}

#[tonic::async_trait]
impl pb::webhook_service_server::WebhookService for WebhookApi {
    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::CreateWebhookResponse>, Status> {
        let caller = caller(&request)?;
        let new = new_webhook(request.into_inner().webhook, self.allow_private);
        let WithSecret { webhook, secret } = self
            .app
            .create_webhook(&caller, new.map_err(Error::from))
            .await?;
        Ok(Response::new(pb::CreateWebhookResponse {
            webhook: Some(to_proto(webhook)),
            secret,
        }))
    }

    async fn get_webhook(
        &self,
        request: Request<pb::GetWebhookRequest>,
    ) -> Result<Response<pb::GetWebhookResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        let webhook = self.app.get_webhook(&caller, id).await?;
        Ok(Response::new(pb::GetWebhookResponse {
            webhook: Some(to_proto(webhook)),
        }))
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let r = request.into_inner();
        let list = paging::page_size(r.page_size)
            .map(|size| ListRequest {
                size,
                filter: (),
                page_token: r.page_token,
            })
            .map_err(Error::from);
        let listing = self.app.list_webhooks(&caller, list).await?;
        let (webhooks, next_page_token) = listing.page(budget, to_proto, item_bytes);
        Ok(Response::new(pb::ListWebhooksResponse {
            webhooks,
            next_page_token,
        }))
    }

    async fn update_webhook(
        &self,
        request: Request<pb::UpdateWebhookRequest>,
    ) -> Result<Response<pb::UpdateWebhookResponse>, Status> {
        let caller = caller(&request)?;
        let update = update(request.into_inner(), self.allow_private);
        let webhook = self.app.update_webhook(&caller, update).await?;
        Ok(Response::new(pb::UpdateWebhookResponse {
            webhook: Some(to_proto(webhook)),
        }))
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        let caller = caller(&request)?;
        let id = parse_id("id", &request.get_ref().id).map_err(Error::from);
        self.app.delete_webhook(&caller, id).await?;
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let id = v.check(parse_id("id", &r.id));
        let grace = v.check(parse_grace(
            "grace_period",
            r.grace_period.map(|d| (d.seconds, d.nanos)),
        ));
        let rotation = v.finish(|| Some((id?, grace?))).map_err(Error::from);
        let WithSecret { webhook, secret } =
            self.app.rotate_webhook_secret(&caller, rotation).await?;
        Ok(Response::new(pb::RotateWebhookSecretResponse {
            webhook: Some(to_proto(webhook)),
            secret,
        }))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        let (caller, budget) = (caller(&request)?, page_budget(&request));
        let r = request.into_inner();
        let mut v = Violations::new();
        let webhook_id = v.check(parse_id("webhook_id", &r.webhook_id));
        let size = v.check(paging::page_size(r.page_size));
        let state = v.check(enum_field("state", r.state, delivery_state_from_proto));
        let parsed = v
            .finish(|| {
                Some(DeliveriesRequest {
                    webhook_id: webhook_id?,
                    list: ListRequest {
                        size: size?,
                        filter: state?,
                        page_token: r.page_token,
                    },
                })
            })
            .map_err(Error::from);
        let listing = self.app.list_webhook_deliveries(&caller, parsed).await?;
        let (deliveries, next_page_token) = listing.page(budget, delivery_to_proto, item_bytes);
        Ok(Response::new(pb::ListWebhookDeliveriesResponse {
            deliveries,
            next_page_token,
        }))
    }

    async fn redeliver_webhook_event(
        &self,
        request: Request<pb::RedeliverWebhookEventRequest>,
    ) -> Result<Response<pb::RedeliverWebhookEventResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let webhook_id = v.check(parse_id("webhook_id", &r.webhook_id));
        let event_id = v.check(parse_message_id("event_id", &r.event_id));
        let parsed = v
            .finish(|| Some((webhook_id?, event_id?)))
            .map_err(Error::from);
        let delivery = self.app.redeliver_webhook_event(&caller, parsed).await?;
        Ok(Response::new(pb::RedeliverWebhookEventResponse {
            delivery: Some(delivery_to_proto(delivery)),
        }))
    }
}

fn to_proto(webhook: Webhook) -> pb::Webhook {
    pb::Webhook {
        id: webhook.id.to_string(),
        url: webhook.url,
        event_types: (webhook.event_types.iter())
            .map(|t| t.as_str().to_owned())
            .collect(),
        touchpoint_codes: webhook.touchpoint_codes,
        stages: (webhook.stages.into_iter())
            .map(|s| stage_to_proto(s).into())
            .collect(),
        description: webhook.description,
        create_time: Some(timestamp(webhook.create_time)),
        update_time: Some(timestamp(webhook.update_time)),
        previous_secret_expire_time: webhook.previous_secret_expire_time.map(timestamp),
    }
}

fn delivery_to_proto(d: Delivery) -> pb::WebhookDelivery {
    let pending = d.state == crate::domain::webhook::DeliveryState::Pending;
    pb::WebhookDelivery {
        id: d.id.to_string(),
        webhook_id: d.webhook_id.to_string(),
        event_id: message_id(d.event_id),
        event_type: d.event_type,
        state: delivery_state_to_proto(d.state).into(),
        create_time: Some(timestamp(d.create_time)),
        next_attempt_time: pending.then(|| timestamp(d.next_attempt_time)),
        deliver_time: d.deliver_time.map(timestamp),
        attempt_count: d.attempt_count,
        attempts: (d.attempts.into_iter())
            .map(|a| pb::WebhookAttempt {
                attempt_time: Some(timestamp(a.attempt_time)),
                status_code: a.status_code,
                latency: Some(prost_types::Duration {
                    seconds: i64::from(a.latency_ms / 1000),
                    nanos: (a.latency_ms % 1000) * 1_000_000,
                }),
                error: a.error,
                response_excerpt: a.response_excerpt,
            })
            .collect(),
    }
}

fn new_webhook(
    webhook: Option<pb::Webhook>,
    allow_private: bool,
) -> Result<NewWebhook, Vec<FieldViolation>> {
    let Some(w) = webhook else {
        return Err(vec![FieldViolation::new("webhook", "is required")]);
    };
    let mut v = Violations::new();
    let url = v.check(parse_url("webhook.url", &w.url, allow_private));
    let event_types = v.check(event_types(&w.event_types));
    let touchpoint_codes = v.check(touchpoint_codes(&w.touchpoint_codes));
    let stages = v.check(stages(&w.stages));
    let description = v.check(optional_text(
        "webhook.description",
        &w.description,
        DESCRIPTION_MAX_CHARS,
    ));
    v.finish(|| {
        Some(NewWebhook {
            url: url?,
            description: description?,
            event_types: event_types?,
            touchpoint_codes: touchpoint_codes?,
            stages: stages?,
        })
    })
}

fn update(
    request: pb::UpdateWebhookRequest,
    allow_private: bool,
) -> Result<(Uuid, WebhookChanges)> {
    let w = request
        .webhook
        .ok_or_else(|| Error::invalid("webhook", "is required"))?;
    let id = parse_id("webhook.id", &w.id)?;
    let given = [
        !w.url.is_empty(),
        !w.event_types.is_empty(),
        !w.touchpoint_codes.is_empty(),
        !w.stages.is_empty(),
        !w.description.is_empty(),
    ];
    let paths = MASK.paths(request.update_mask, &given)?;
    let mut v = Violations::new();
    let mut changes = WebhookChanges::default();
    for path in paths {
        match path {
            "url" => changes.url = v.check(parse_url("webhook.url", &w.url, allow_private)),
            "event_types" => changes.event_types = v.check(event_types(&w.event_types)),
            "touchpoint_codes" => {
                changes.touchpoint_codes = v.check(touchpoint_codes(&w.touchpoint_codes))
            }
            "stages" => changes.stages = v.check(stages(&w.stages)),
            "description" => {
                changes.description = v.check(optional_text(
                    "webhook.description",
                    &w.description,
                    DESCRIPTION_MAX_CHARS,
                ))
            }
            _ => {}
        }
    }
    Ok((id, v.finish(|| Some(changes))?))
}

/// At least one known event type; repeats count once.
fn event_types(given: &[String]) -> Result<Vec<EventType>, FieldViolation> {
    if given.is_empty() {
        return Err(FieldViolation::new(
            "webhook.event_types",
            "must name at least one event type",
        ));
    }
    let mut types = Vec::new();
    for (i, name) in given.iter().enumerate() {
        let Some(event) = EventType::parse(name.trim()) else {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            return Err(FieldViolation::new(
                format!("webhook.event_types[{i}]"),
                format!(
                    "{name:?} is not an event type; they are {}",
                    known.join(", ")
                ),
            ));
        };
        if !types.contains(&event) {
            types.push(event);
        }
    }
    Ok(types)
}

fn touchpoint_codes(given: &[String]) -> Result<Vec<String>, FieldViolation> {
    if given.len() > MAX_TOUCHPOINT_FILTERS {
        return Err(FieldViolation::new(
            "webhook.touchpoint_codes",
            format!("may name at most {MAX_TOUCHPOINT_FILTERS} touchpoints"),
        ));
    }
    let mut codes: Vec<String> = Vec::new();
    for (i, code) in given.iter().enumerate() {
        let code = parse_code(&format!("webhook.touchpoint_codes[{i}]"), code)?;
        if !codes.iter().any(|c| c.eq_ignore_ascii_case(&code)) {
            codes.push(code);
        }
    }
    Ok(codes)
}

fn stages(given: &[i32]) -> Result<Vec<Stage>, FieldViolation> {
    let mut stages = Vec::new();
    for (i, stage) in given.iter().enumerate() {
        let stage = required_enum(&format!("webhook.stages[{i}]"), *stage, stage_from_proto)?;
        if !stages.contains(&stage) {
            stages.push(stage);
        }
    }
    Ok(stages)
}
