//! The scenario of the webhooks an admin manages. Its webhooks want an
//! event no scenario makes, so that no delivery changes their rows while
//! the doors are compared.

use serde_json::json;

use super::{Key, Scenario, step};

pub(super) fn webhooks() -> Scenario {
    use Key::*;
    let hook = |description: &str| {
        json!({"url": "https://tickets.example.org/verdad",
               "eventTypes": ["journey.deviated"],
               "stages": ["STAGE_SERVICE"],
               "description": description})
    };
    Scenario {
        name: "webhooks",
        steps: vec![
            step("CreateWebhook", Admin, json!({"webhook": hook("kept")})).save("hook"),
            step("CreateWebhook", Admin, json!({"webhook": hook("gone")})).save("gone"),
            step(
                "CreateWebhook",
                Admin,
                json!({"webhook": {"url": "gopher://tickets.example.org/",
                                   "eventTypes": ["journey.deviated"]}}),
            )
            .invalid("webhook.url"),
            step(
                "CreateWebhook",
                Admin,
                json!({"webhook": {"url": "https://tickets.example.org/",
                                   "eventTypes": ["case.lost"]}}),
            )
            .invalid("webhook.event_types[0]"),
            step("CreateWebhook", Analyst, json!({"webhook": hook("x")})).denied(),
            step("GetWebhook", Admin, json!({"id": "{{hook/webhook/id}}"}))
                .answers("/webhook/eventTypes", json!(["journey.deviated"])),
            step(
                "GetWebhook",
                Admin,
                json!({"id": "0190f3a0-0000-7000-8000-000000000009"}),
            )
            .not_found(),
            step("ListWebhooks", Admin, json!({"pageSize": 1})),
            step(
                "UpdateWebhook",
                Admin,
                json!({"webhook": {"id": "{{hook/webhook/id}}", "description": "kept on"},
                       "updateMask": "description"}),
            )
            .answers("/webhook/description", json!("kept on")),
            step(
                "UpdateWebhook",
                Admin,
                json!({"webhook": {"id": "{{hook/webhook/id}}"}, "updateMask": "createTime"}),
            )
            .invalid("update_mask"),
            step(
                "RotateWebhookSecret",
                Admin,
                json!({"id": "{{hook/webhook/id}}", "gracePeriod": "3600s"}),
            ),
            step(
                "RotateWebhookSecret",
                Admin,
                json!({"id": "{{hook/webhook/id}}", "gracePeriod": "9999999s"}),
            )
            .invalid("grace_period"),
            step(
                "ListWebhookDeliveries",
                Admin,
                json!({"webhookId": "{{hook/webhook/id}}", "pageSize": 10}),
            ),
            step(
                "ListWebhookDeliveries",
                Analyst,
                json!({"webhookId": "{{hook/webhook/id}}"}),
            )
            .denied(),
            step(
                "RedeliverWebhookEvent",
                Admin,
                json!({"webhookId": "{{hook/webhook/id}}",
                       "eventId": "msg_0190f3a0000070008000000000000009"}),
            )
            .not_found(),
            step(
                "RedeliverWebhookEvent",
                Admin,
                json!({"webhookId": "{{hook/webhook/id}}", "eventId": "42"}),
            )
            .invalid("event_id"),
            step("DeleteWebhook", Admin, json!({"id": "{{gone/webhook/id}}"})),
            step("DeleteWebhook", Admin, json!({"id": "{{gone/webhook/id}}"})).not_found(),
        ],
    }
}
