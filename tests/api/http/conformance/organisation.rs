//! The scenario of the organisation and its API keys.

use serde_json::json;

use super::{Key, Scenario, step};

pub(super) fn organisation_and_keys() -> Scenario {
    use Key::*;
    Scenario {
        name: "organisation and keys",
        steps: vec![
            step("GetOrganisation", Analyst, json!({})).save("org"),
            step(
                "GetOrganisation",
                Admin,
                json!({"id": "{{org/organisation/id}}"}),
            ),
            step(
                "GetOrganisation",
                Admin,
                json!({"id": "0190f3a0-0000-7000-8000-000000000002"}),
            )
            .not_found(),
            step("GetOrganisation", Ingest, json!({})).denied(),
            step(
                "UpdateOrganisation",
                Admin,
                json!({"organisation": {"displayName": "Conformance General",
                                        "recoveryDeadline": "7200s",
                                        "firstImpressionWindow": "20s"},
                       "updateMask": "displayName,recoveryDeadline,firstImpressionWindow"}),
            ),
            step(
                "UpdateOrganisation",
                Admin,
                json!({"organisation": {"failureThreshold": 9}, "updateMask": "failureThreshold"}),
            )
            .invalid("organisation.failure_threshold"),
            step(
                "UpdateOrganisation",
                Admin,
                json!({"organisation": {"timeZone": "Mars/Olympus"}, "updateMask": "timeZone"}),
            )
            .invalid("organisation.time_zone"),
            step(
                "UpdateOrganisation",
                Analyst,
                json!({"organisation": {"displayName": "Mine now"}, "updateMask": "displayName"}),
            )
            .denied(),
            step(
                "CreateApiKey",
                Admin,
                json!({"displayName": "EMR feed", "role": "ROLE_INGEST"}),
            )
            .save("feed"),
            step(
                "CreateApiKey",
                Admin,
                json!({"displayName": "Second admin", "role": "ROLE_ADMIN"}),
            ),
            step(
                "CreateApiKey",
                Admin,
                json!({"displayName": "", "role": "ROLE_INGEST"}),
            )
            .invalid("display_name"),
            step("CreateApiKey", Admin, json!({"displayName": "No role"})).invalid("role"),
            step(
                "CreateApiKey",
                Ingest,
                json!({"displayName": "Mine", "role": "ROLE_ADMIN"}),
            )
            .denied(),
            step("ListApiKeys", Admin, json!({})),
            step("ListApiKeys", Analyst, json!({})).denied(),
            step("RevokeApiKey", Admin, json!({"id": "{{feed/apiKey/id}}"})),
            step("RevokeApiKey", Admin, json!({"id": "{{feed/apiKey/id}}"}))
                .refused("FAILED_PRECONDITION", "API_KEY_REVOKED"),
            step(
                "RevokeApiKey",
                Admin,
                json!({"id": "0190f3a0-0000-7000-8000-000000000003"}),
            )
            .not_found(),
            step("RevokeApiKey", Admin, json!({"id": "key-1"})).invalid("id"),
            step(
                "ListApiKeys",
                Admin,
                json!({"showRevoked": true, "pageSize": 10}),
            ),
        ],
    }
}
