//! The scenarios of the catalogue: touchpoints and the standards kept at them.

use serde_json::json;

use super::{Key, Scenario, step};

pub(super) fn touchpoints() -> Scenario {
    use Key::*;
    let create = |code: &str, name: &str, stage: &str, position: i32| {
        json!({"touchpoint": {
            "code": code, "displayName": name, "stage": stage,
            "channel": "CHANNEL_IN_PERSON", "occurrence": "OCCURRENCE_ROUTINE",
            "key": position == 10, "cyclePosition": position}})
    };
    Scenario {
        name: "touchpoints",
        steps: vec![
            step(
                "CreateTouchpoint",
                Admin,
                create("reception-desk", "Reception desk", "STAGE_PRE_SERVICE", 10),
            )
            .save("desk"),
            step(
                "CreateTouchpoint",
                Admin,
                create("waiting-area", "Waiting area", "STAGE_SERVICE", 20),
            )
            .save("waiting"),
            step(
                "CreateTouchpoint",
                Admin,
                create("payment", "Payment", "STAGE_POST_SERVICE", 30),
            ),
            step(
                "CreateTouchpoint",
                Admin,
                create("old-kiosk", "Old kiosk", "STAGE_PRE_SERVICE", 40),
            )
            .save("kiosk"),
            step(
                "CreateTouchpoint",
                Admin,
                create("reception-desk", "Again", "STAGE_SERVICE", 50),
            )
            .refused("ALREADY_EXISTS", "ALREADY_EXISTS"),
            step(
                "CreateTouchpoint",
                Admin,
                create("bad code!", "Bad", "STAGE_SERVICE", 50),
            )
            .invalid("touchpoint.code"),
            step(
                "CreateTouchpoint",
                Admin,
                json!({"touchpoint": {"code": "no-stage", "displayName": "No stage",
                                      "channel": "CHANNEL_PHONE"}}),
            )
            .invalid("touchpoint.stage"),
            step(
                "CreateTouchpoint",
                Analyst,
                create("analysts-desk", "Nope", "STAGE_SERVICE", 50),
            )
            .denied(),
            step(
                "CreateTouchpoint",
                Ingest,
                create("feeds-desk", "Nope", "STAGE_SERVICE", 50),
            )
            .denied(),
            step(
                "CreateTouchpoint",
                None,
                create("nobodys-desk", "Nope", "STAGE_SERVICE", 50),
            )
            .refused("UNAUTHENTICATED", "API_KEY_MISSING"),
            step("GetTouchpoint", Ingest, json!({"code": "reception-desk"})),
            step(
                "GetTouchpoint",
                Analyst,
                json!({"id": "{{waiting/touchpoint/id}}"}),
            ),
            step("GetTouchpoint", Analyst, json!({"code": "nowhere"})).not_found(),
            step("ListTouchpoints", Analyst, json!({"pageSize": 2})).save("page1"),
            step(
                "ListTouchpoints",
                Analyst,
                json!({"pageSize": 2, "pageToken": "{{page1/nextPageToken}}"}),
            ),
            step(
                "ListTouchpoints",
                Ingest,
                json!({"stage": "STAGE_PRE_SERVICE", "key": false}),
            ),
            step("ListTouchpoints", Analyst, json!({"pageSize": -1})).invalid("page_size"),
            step(
                "UpdateTouchpoint",
                Admin,
                json!({"touchpoint": {"id": "{{desk/touchpoint/id}}", "displayName": "Front desk",
                                      "description": "Where a visit begins"},
                       "updateMask": "displayName,description"}),
            ),
            step(
                "UpdateTouchpoint",
                Admin,
                json!({"touchpoint": {"id": "{{desk/touchpoint/id}}", "cyclePosition": 20000},
                       "updateMask": "cyclePosition"}),
            )
            .invalid("touchpoint.cycle_position"),
            step(
                "ArchiveTouchpoint",
                Admin,
                json!({"id": "{{kiosk/touchpoint/id}}"}),
            )
            .answers("/touchpoint/archived", json!(true)),
            step(
                "UpdateTouchpoint",
                Admin,
                json!({"touchpoint": {"id": "{{kiosk/touchpoint/id}}", "displayName": "Renamed"},
                       "updateMask": "displayName"}),
            )
            .refused("FAILED_PRECONDITION", "TOUCHPOINT_ARCHIVED"),
            step(
                "ArchiveTouchpoint",
                Admin,
                json!({"id": "{{kiosk/touchpoint/id}}"}),
            )
            .refused("FAILED_PRECONDITION", "TOUCHPOINT_ARCHIVED"),
            step(
                "UnarchiveTouchpoint",
                Admin,
                json!({"id": "{{kiosk/touchpoint/id}}"}),
            ),
            step(
                "UnarchiveTouchpoint",
                Admin,
                json!({"id": "{{kiosk/touchpoint/id}}"}),
            )
            .refused("FAILED_PRECONDITION", "TOUCHPOINT_NOT_ARCHIVED"),
            step(
                "ArchiveTouchpoint",
                Admin,
                json!({"id": "{{kiosk/touchpoint/id}}"}),
            ),
            step(
                "ArchiveTouchpoint",
                Admin,
                json!({"id": "0190f3a0-0000-7000-8000-000000000001"}),
            )
            .not_found(),
            step("ArchiveTouchpoint", Admin, json!({"id": "not-an-id"})).invalid("id"),
            step("ListTouchpoints", Analyst, json!({"showArchived": true})),
        ],
    }
}
pub(super) fn standards() -> Scenario {
    use Key::*;
    let greet = json!({"standard": {
        "code": "greet-15s", "title": "Greet within 15 seconds",
        "touchpointCode": "reception-desk", "element": "ELEMENT_HUMANWARE",
        "severity": "SEVERITY_CRITICAL", "guidance": "Greet the visitor.",
        "metricRule": {"field": "METRIC_FIELD_FIRST_RESPONSE_SECONDS",
                       "comparison": "COMPARISON_LESS_OR_EQUAL", "threshold": 15}}});
    Scenario {
        name: "standards",
        steps: vec![
            step("CreateStandard", Admin, greet.clone()).save("greet"),
            step(
                "CreateStandard",
                Admin,
                json!({"standard": {
                    "code": "name-badge", "title": "Staff wear a name badge",
                    "element": "ELEMENT_HARDWARE", "severity": "SEVERITY_MINOR",
                    "observedRule": {}}}),
            ),
            step(
                "CreateStandard",
                Admin,
                json!({"standard": {
                    "code": "wait-30m", "title": "Wait at most 30 minutes",
                    "touchpointId": "{{waiting/touchpoint/id}}", "element": "ELEMENT_SOFTWARE",
                    "severity": "SEVERITY_MINOR",
                    "metricRule": {"field": "METRIC_FIELD_WAIT_SECONDS",
                                   "comparison": "COMPARISON_LESS_OR_EQUAL", "threshold": 1800}}}),
            )
            .save("wait"),
            step("CreateStandard", Admin, greet.clone())
                .refused("ALREADY_EXISTS", "ALREADY_EXISTS"),
            step(
                "CreateStandard",
                Admin,
                json!({"standard": {
                    "code": "kiosk-works", "title": "The kiosk works",
                    "touchpointCode": "old-kiosk", "element": "ELEMENT_HARDWARE",
                    "severity": "SEVERITY_MINOR", "observedRule": {}}}),
            )
            .refused("FAILED_PRECONDITION", "TOUCHPOINT_ARCHIVED"),
            step(
                "CreateStandard",
                Admin,
                json!({"standard": {
                    "code": "nowhere-std", "title": "Somewhere else",
                    "touchpointCode": "nowhere", "element": "ELEMENT_HARDWARE",
                    "severity": "SEVERITY_MINOR", "observedRule": {}}}),
            )
            .not_found(),
            step(
                "CreateStandard",
                Admin,
                json!({"standard": {
                    "code": "no-rule", "title": "No rule", "element": "ELEMENT_HARDWARE",
                    "severity": "SEVERITY_MINOR"}}),
            )
            .invalid("standard.rule"),
            step("CreateStandard", Analyst, greet).denied(),
            step("GetStandard", Analyst, json!({"code": "greet-15s"})),
            step("GetStandard", Admin, json!({"id": "{{wait/standard/id}}"})),
            step("GetStandard", Analyst, json!({"code": "nope"})).not_found(),
            step("GetStandard", Ingest, json!({"code": "greet-15s"})).denied(),
            step(
                "ListStandards",
                Analyst,
                json!({"touchpointCode": "reception-desk"}),
            ),
            step(
                "ListStandards",
                Analyst,
                json!({"active": true, "organisationWide": true}),
            ),
            step(
                "ListStandards",
                Analyst,
                json!({"pageSize": 1, "element": "ELEMENT_HUMANWARE"}),
            ),
            step(
                "UpdateStandard",
                Admin,
                json!({"standard": {"id": "{{greet/standard/id}}", "title": "Greet within 15 s",
                                    "guidance": "Look up, smile, greet."},
                       "updateMask": "title,guidance"}),
            ),
            step(
                "UpdateStandard",
                Admin,
                json!({"standard": {"id": "{{greet/standard/id}}", "title": ""},
                       "updateMask": "title"}),
            )
            .invalid("standard.title"),
            step(
                "ArchiveStandard",
                Admin,
                json!({"id": "{{wait/standard/id}}"}),
            ),
            step(
                "ArchiveStandard",
                Admin,
                json!({"id": "{{wait/standard/id}}"}),
            )
            .refused("FAILED_PRECONDITION", "STANDARD_ARCHIVED"),
            step(
                "UnarchiveStandard",
                Admin,
                json!({"id": "{{wait/standard/id}}"}),
            ),
            step("GetServiceManual", Analyst, json!({})),
            step(
                "GetServiceManual",
                Analyst,
                json!({"stage": "STAGE_PRE_SERVICE", "pageSize": 1}),
            ),
            step("GetServiceManual", Ingest, json!({})).denied(),
        ],
    }
}
