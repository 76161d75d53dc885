//! The HTTP door and the gRPC door are one API: one suite of scenarios,
//! covering every service, runs once through gRPC on a fresh app and once
//! through HTTP on another, and every step must end alike (the same answer
//! once ids, server times, page tokens and secrets are normalised; the same
//! code, reason, fields and message when refused), and the two databases
//! must hold the same rows. Over HTTP, every refusal also has the AIP-193
//! status of its code.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;
use verdad::domain::role::Role as KeyRole;

use crate::helpers::{Door, Doors, Refusal, TestApp, aip193_status, spawn_app};

/// Whose key a step presents.
#[derive(Debug, Clone, Copy)]
enum Key {
    Admin,
    Analyst,
    Ingest,
    None,
}

/// What a step must come to, through either door.
#[derive(Debug, Clone)]
enum Expect {
    Ok,
    /// Succeeds, and the answer has `value` at the JSON pointer.
    OkWith(&'static str, Value),
    Refused {
        code: &'static str,
        reason: Option<&'static str>,
        field: Option<&'static str>,
    },
}

/// One call of a scenario. Strings of the request of the form
/// `{{name/json/pointer}}` are replaced by what the answer saved as `name`
/// has there, so that a step may name what an earlier one made.
#[derive(Debug, Clone)]
struct Step {
    rpc: &'static str,
    key: Key,
    request: Value,
    save: Option<&'static str>,
    expect: Expect,
}

fn step(rpc: &'static str, key: Key, request: Value) -> Step {
    Step {
        rpc,
        key,
        request,
        save: None,
        expect: Expect::Ok,
    }
}

impl Step {
    fn save(mut self, name: &'static str) -> Self {
        self.save = Some(name);
        self
    }

    fn answers(mut self, pointer: &'static str, value: Value) -> Self {
        self.expect = Expect::OkWith(pointer, value);
        self
    }

    fn refused(mut self, code: &'static str, reason: &'static str) -> Self {
        self.expect = Expect::Refused {
            code,
            reason: Some(reason),
            field: None,
        };
        self
    }

    fn invalid(mut self, field: &'static str) -> Self {
        self.expect = Expect::Refused {
            code: "INVALID_ARGUMENT",
            reason: Some("INVALID_ARGUMENT"),
            field: Some(field),
        };
        self
    }

    fn denied(self) -> Self {
        self.refused("PERMISSION_DENIED", "ROLE_NOT_ALLOWED")
    }

    fn not_found(self) -> Self {
        self.refused("NOT_FOUND", "NOT_FOUND")
    }
}

struct Scenario {
    name: &'static str,
    steps: Vec<Step>,
}

/// The day the scenarios' encounters happen on, and its scope.
const DAY_START: &str = "2026-11-23T00:00:00Z";
const DAY_END: &str = "2026-11-24T00:00:00Z";

fn scope() -> Value {
    json!({"startTime": DAY_START, "endTime": DAY_END})
}

fn touchpoints() -> Scenario {
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

fn standards() -> Scenario {
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

fn organisation_and_keys() -> Scenario {
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

/// An encounter of the scenario's day, from the EMR.
fn encounter(external_id: &str, touchpoint: &str, time: &str, more: Value) -> Value {
    let mut encounter = json!({
        "touchpointCode": touchpoint, "journeyId": "visit-0001",
        "occurTime": format!("2026-11-23T{time}Z"), "source": "emr", "externalId": external_id,
    });
    let (Value::Object(base), Value::Object(more)) = (&mut encounter, more) else {
        unreachable!()
    };
    base.extend(more);
    encounter
}

fn encounters() -> Scenario {
    use Key::*;
    let first = encounter(
        "evt-1",
        "reception-desk",
        "09:00:05",
        json!({"customerRef": "patient-8812", "firstResponseSeconds": "40", "satisfaction": 2}),
    );
    let second = encounter(
        "evt-2",
        "waiting-area",
        "09:20:00",
        json!({"customerRef": "patient-8812", "waitSeconds": "2400", "satisfaction": 3,
               "channel": "CHANNEL_IN_PERSON", "situation": "SITUATION_COPING",
               "staffRef": "nurse-kim", "comment": "Long wait, kind nurse",
               "observations": [{"standardCode": "name-badge", "met": false, "note": "none"}],
               "attributes": {"ward": "3A", "shift": "day"}}),
    );
    let mut changed = first.clone();
    changed["satisfaction"] = json!(3);
    Scenario {
        name: "encounters",
        steps: vec![
            step(
                "RecordEncounter",
                Ingest,
                json!({"encounter": first.clone()}),
            )
            .save("evt1")
            .answers("/encounter/evaluation/failed", json!(true)),
            step(
                "RecordEncounter",
                Ingest,
                json!({"encounter": first.clone()}),
            )
            .answers("/duplicate", json!(true)),
            step("RecordEncounter", Ingest, json!({"encounter": changed}))
                .refused("ALREADY_EXISTS", "ALREADY_EXISTS"),
            step("RecordEncounter", Admin, json!({"encounter": second})).save("evt2"),
            step(
                "RecordEncounter",
                Ingest,
                json!({"encounter": encounter("evt-bad", "payment", "09:40:00",
                                              json!({"satisfaction": 9}))}),
            )
            .invalid("encounter.satisfaction"),
            step(
                "RecordEncounter",
                Ingest,
                json!({"encounter": encounter("evt-early", "payment", "09:40:00",
                                              json!({"occurTime": "1999-12-31T23:59:59Z"}))}),
            )
            .invalid("encounter.occur_time"),
            step(
                "RecordEncounter",
                Ingest,
                json!({"encounter": encounter("evt-nowhere", "nowhere", "09:40:00", json!({}))}),
            )
            .not_found(),
            step(
                "RecordEncounter",
                Ingest,
                json!({"encounter": encounter("evt-kiosk", "old-kiosk", "09:41:00", json!({}))}),
            )
            .refused("FAILED_PRECONDITION", "TOUCHPOINT_ARCHIVED"),
            step(
                "RecordEncounter",
                Analyst,
                json!({"encounter": encounter("evt-analyst", "payment", "09:42:00", json!({}))}),
            )
            .denied(),
            step(
                "IngestEncounters",
                Ingest,
                json!([
                    {"encounters": [
                        encounter("evt-3", "payment", "09:40:00",
                                  json!({"satisfaction": 5, "durationSeconds": "300",
                                         "customerRef": "patient-8812"})),
                        encounter("evt-4", "reception-desk", "10:00:00",
                                  json!({"journeyId": "visit-0002", "firstResponseSeconds": "5",
                                         "satisfaction": 4, "effort": 2})),
                    ]},
                    {"encounters": [
                        encounter("evt-5", "payment", "10:30:00",
                                  json!({"journeyId": "visit-0002", "satisfaction": 9})),
                        encounter("evt-6", "waiting-area", "10:10:00",
                                  json!({"journeyId": "visit-0002", "waitSeconds": "600",
                                         "satisfaction": 1})),
                    ]},
                ]),
            )
            .answers("/accepted", json!("3")),
            step(
                "IngestEncounters",
                Ingest,
                json!([{"encounters": [
                    encounter("evt-3", "payment", "09:40:00",
                              json!({"satisfaction": 5, "durationSeconds": "300",
                                     "customerRef": "patient-8812"})),
                    encounter("evt-1", "reception-desk", "09:00:05",
                              json!({"customerRef": "patient-8812", "satisfaction": 5})),
                ]}]),
            )
            .answers("/duplicates", json!("1")),
            step("IngestEncounters", Analyst, json!([{"encounters": []}])).denied(),
            step(
                "GetEncounter",
                Analyst,
                json!({"id": "{{evt2/encounter/id}}"}),
            ),
            step(
                "GetEncounter",
                Analyst,
                json!({"id": "0190f3a0-0000-7000-8000-000000000004"}),
            )
            .not_found(),
            step(
                "GetEncounter",
                Ingest,
                json!({"id": "{{evt1/encounter/id}}"}),
            )
            .denied(),
            step(
                "ListEncounters",
                Analyst,
                json!({"journeyId": "visit-0001"}),
            ),
            step(
                "ListEncounters",
                Analyst,
                json!({"failedOnly": true, "startTime": DAY_START, "endTime": DAY_END}),
            ),
            step(
                "ListEncounters",
                Analyst,
                json!({"touchpointCode": "reception-desk", "pageSize": 1}),
            )
            .save("listed"),
            step(
                "ListEncounters",
                Analyst,
                json!({"touchpointCode": "reception-desk", "pageSize": 1,
                       "pageToken": "{{listed/nextPageToken}}"}),
            ),
            step(
                "ListEncounters",
                Admin,
                json!({"customerRef": "patient-8812", "situation": "SITUATION_COPING",
                       "channel": "CHANNEL_IN_PERSON"}),
            ),
            step(
                "ListEncounters",
                Analyst,
                json!({"startTime": DAY_END, "endTime": DAY_START}),
            )
            .invalid("end_time"),
        ],
    }
}

fn journeys() -> Scenario {
    use Key::*;
    let feedback = json!({"overallSatisfaction": 4, "likelihoodToRecommend": 8,
                          "completeTime": "2026-11-23T12:00:00Z", "comment": "Kind staff"});
    Scenario {
        name: "journeys",
        steps: vec![
            step(
                "RecordJourneyFeedback",
                Ingest,
                json!({"journeyId": "visit-0001", "feedback": feedback.clone()}),
            )
            .answers("/journeyKnown", json!(true)),
            step(
                "RecordJourneyFeedback",
                Ingest,
                json!({"journeyId": "visit-0001", "feedback": feedback}),
            )
            .answers("/duplicate", json!(true)),
            step(
                "RecordJourneyFeedback",
                Ingest,
                json!({"journeyId": "visit-0001",
                       "feedback": {"overallSatisfaction": 2,
                                    "completeTime": "2026-11-23T12:00:00Z"}}),
            )
            .refused("ALREADY_EXISTS", "ALREADY_EXISTS"),
            step(
                "RecordJourneyFeedback",
                Ingest,
                json!({"journeyId": "visit-0002",
                       "feedback": {"overallSatisfaction": 7,
                                    "completeTime": "2026-11-23T12:00:00Z"}}),
            )
            .invalid("feedback.overall_satisfaction"),
            step(
                "RecordJourneyFeedback",
                Ingest,
                json!({"journeyId": "visit-unknown",
                       "feedback": {"likelihoodToRecommend": 10,
                                    "completeTime": "2026-11-23T13:00:00Z"}}),
            )
            .answers("/feedback/likelihoodToRecommend", json!(10)),
            step(
                "RecordJourneyFeedback",
                Analyst,
                json!({"journeyId": "visit-0002",
                       "feedback": {"overallSatisfaction": 3,
                                    "completeTime": "2026-11-23T12:00:00Z"}}),
            )
            .denied(),
            step("GetJourney", Analyst, json!({"journeyId": "visit-0001"})),
            step("GetJourney", Admin, json!({"journeyId": "visit-0002"})),
            step("GetJourney", Analyst, json!({"journeyId": "visit-none"})).not_found(),
            step("GetJourney", Ingest, json!({"journeyId": "visit-0001"})).denied(),
        ],
    }
}

fn analyses() -> Scenario {
    use Key::*;
    let with = |more: Value| {
        let mut request = json!({"scope": scope()});
        if let (Value::Object(request), Value::Object(more)) = (&mut request, more) {
            request.extend(more);
        }
        request
    };
    Scenario {
        name: "analyses",
        steps: vec![
            step("GetScorecard", Analyst, with(json!({}))),
            step(
                "GetScorecard",
                Admin,
                json!({"scope": {"startTime": DAY_START, "endTime": DAY_END,
                                 "touchpointCodes": ["reception-desk", "waiting-area"]}}),
            ),
            step(
                "GetScorecard",
                Analyst,
                json!({"scope": {"startTime": DAY_START, "endTime": DAY_END,
                                 "touchpointIds": ["{{desk/touchpoint/id}}"],
                                 "stage": "STAGE_PRE_SERVICE", "channel": "CHANNEL_IN_PERSON"}}),
            ),
            step(
                "GetScorecard",
                Analyst,
                json!({"scope": {"startTime": DAY_END, "endTime": DAY_START}}),
            )
            .invalid("scope.end_time"),
            step(
                "GetScorecard",
                Analyst,
                json!({"scope": {"startTime": DAY_START, "endTime": DAY_END,
                                 "touchpointCodes": ["nowhere"]}}),
            )
            .not_found(),
            step("GetScorecard", Ingest, with(json!({}))).denied(),
            step(
                "GetMotCycle",
                Analyst,
                with(json!({"maxVariants": 5, "maxPairs": 10, "minPairCount": "1"})),
            ),
            step("GetJourneyOutcomes", Analyst, with(json!({}))),
            step("GetFirstImpressions", Analyst, with(json!({}))),
            step("GetPriorityMatrix", Analyst, with(json!({}))),
            step("GetGuidelineBreakdown", Analyst, with(json!({}))),
            step(
                "GetTrend",
                Analyst,
                with(
                    json!({"figure": "TREND_FIGURE_CSAT", "granularity": "GRANULARITY_DAY",
                            "perTouchpoint": true}),
                ),
            ),
            step(
                "GetTrend",
                Analyst,
                with(
                    json!({"figure": "TREND_FIGURE_ENCOUNTERS", "granularity": "GRANULARITY_WEEK"}),
                ),
            ),
            step("GetTrend", Analyst, with(json!({}))).invalid("figure"),
            step("GetComplianceReport", Analyst, with(json!({}))),
            step("GetRecoveryPerformance", Analyst, with(json!({}))),
            step(
                "ExportEventLog",
                Analyst,
                with(json!({"format": "EVENT_LOG_FORMAT_CSV"})),
            ),
            step(
                "ExportEventLog",
                Admin,
                with(json!({"format": "EVENT_LOG_FORMAT_XES"})),
            ),
            step("ExportEventLog", Ingest, with(json!({}))).denied(),
        ],
    }
}

fn recovery() -> Scenario {
    use Key::*;
    let case = "{{cases/recoveryCases/0/id}}";
    let update = |changes: Value, mask: &str| {
        let mut recovery_case = json!({"id": case});
        if let (Value::Object(recovery_case), Value::Object(changes)) =
            (&mut recovery_case, changes)
        {
            recovery_case.extend(changes);
        }
        json!({"recoveryCase": recovery_case, "updateMask": mask})
    };
    Scenario {
        name: "recovery",
        steps: vec![
            step("ListRecoveryCases", Analyst, json!({})).save("cases"),
            step(
                "ListRecoveryCases",
                Analyst,
                json!({"status": "RECOVERY_STATUS_OPEN", "touchpointCode": "reception-desk"}),
            ),
            step(
                "ListRecoveryCases",
                Admin,
                json!({"pageSize": 1, "overdueOnly": false,
                       "touchpointId": "{{waiting/touchpoint/id}}"}),
            ),
            step("ListRecoveryCases", Ingest, json!({})).denied(),
            step("GetRecoveryCase", Analyst, json!({"id": case})),
            step(
                "GetRecoveryCase",
                Analyst,
                json!({"id": "0190f3a0-0000-7000-8000-000000000005"}),
            )
            .not_found(),
            step(
                "UpdateRecoveryCase",
                Admin,
                update(
                    json!({"assignee": "nurse-kim", "status": "RECOVERY_STATUS_IN_PROGRESS"}),
                    "assignee,status",
                ),
            ),
            step(
                "UpdateRecoveryCase",
                Admin,
                update(json!({"status": "RECOVERY_STATUS_RESOLVED"}), "status"),
            )
            .invalid("recovery_case.resolution_note"),
            step(
                "UpdateRecoveryCase",
                Admin,
                update(json!({"status": "RECOVERY_STATUS_OPEN"}), "status"),
            )
            .refused("FAILED_PRECONDITION", "RECOVERY_STATUS_BACKWARD"),
            step(
                "UpdateRecoveryCase",
                Admin,
                update(json!({"followUpSatisfaction": 6}), "followUpSatisfaction"),
            )
            .invalid("recovery_case.follow_up_satisfaction"),
            step(
                "UpdateRecoveryCase",
                Analyst,
                update(json!({"assignee": "me"}), "assignee"),
            )
            .denied(),
            step(
                "UpdateRecoveryCase",
                Admin,
                update(
                    json!({"status": "RECOVERY_STATUS_RESOLVED",
                           "resolutionNote": "Called back, apologised",
                           "followUpSatisfaction": 4}),
                    "status,resolutionNote,followUpSatisfaction",
                ),
            ),
            step(
                "UpdateRecoveryCase",
                Admin,
                update(json!({"assignee": "someone-else"}), "assignee"),
            )
            .refused("FAILED_PRECONDITION", "RECOVERY_CASE_RESOLVED"),
            step(
                "ListRecoveryCases",
                Analyst,
                json!({"status": "RECOVERY_STATUS_RESOLVED"}),
            ),
        ],
    }
}

fn erasure() -> Scenario {
    use Key::*;
    Scenario {
        name: "erasure",
        steps: vec![
            step(
                "EraseCustomer",
                Analyst,
                json!({"customerRef": "patient-8812"}),
            )
            .denied(),
            step("EraseCustomer", Admin, json!({"customerRef": ""})).invalid("customer_ref"),
            step(
                "EraseCustomer",
                Admin,
                json!({"customerRef": "patient-8812"}),
            ),
            step(
                "EraseCustomer",
                Admin,
                json!({"customerRef": "patient-8812"}),
            ),
            step(
                "ListEncounters",
                Analyst,
                json!({"customerRef": "patient-8812"}),
            ),
            step(
                "GetEncounter",
                Analyst,
                json!({"id": "{{evt2/encounter/id}}"}),
            )
            .not_found(),
            step("GetJourney", Analyst, json!({"journeyId": "visit-0001"})).not_found(),
            step("GetJourney", Analyst, json!({"journeyId": "visit-0002"})),
        ],
    }
}

fn suite() -> Vec<Scenario> {
    vec![
        touchpoints(),
        standards(),
        organisation_and_keys(),
        encounters(),
        journeys(),
        analyses(),
        recovery(),
        erasure(),
    ]
}

/// One step's outcome through one door.
#[derive(Debug, Clone)]
struct Outcome {
    label: String,
    result: Result<Value, Refusal>,
}

/// The organisation a run acts for and its keys.
struct Run {
    organisation: Uuid,
    admin: String,
    analyst: String,
    ingest: String,
}

async fn arrange(app: &TestApp) -> Run {
    let org = app.create_org("Conformance Hospital").await;
    Run {
        organisation: org.id,
        analyst: app.key(&org, KeyRole::Analyst).await,
        ingest: app.key(&org, KeyRole::Ingest).await,
        admin: org.admin_key,
    }
}

/// `request` with every `{{name/pointer}}` replaced from `saved`.
fn resolve(request: &Value, saved: &HashMap<&str, Value>) -> Value {
    match request {
        Value::String(text) if text.starts_with("{{") && text.ends_with("}}") => {
            let reference = &text[2..text.len() - 2];
            let (name, pointer) = reference.split_once('/').unwrap();
            saved
                .get(name)
                .and_then(|answer| answer.pointer(&format!("/{pointer}")))
                .unwrap_or_else(|| panic!("nothing saved at {reference}"))
                .clone()
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, saved)).collect()),
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(k, v)| (k.clone(), resolve(v, saved)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What a run of the suite through one door came to.
struct Ran {
    outcomes: Vec<Outcome>,
    /// The steps that did not end as their scenario expects.
    surprises: Vec<String>,
    /// The organisation's rows after each scenario.
    dumps: Vec<(&'static str, Dump)>,
    /// Kept until the comparison is done.
    _app: TestApp,
}

type Dump = BTreeMap<&'static str, Vec<Value>>;

/// Runs the whole suite through `door` of a fresh app.
async fn run_suite(door: Door) -> Ran {
    let app = spawn_app().await;
    let run = arrange(&app).await;
    let doors: Doors = app.doors().await;
    let mut saved: HashMap<&str, Value> = HashMap::new();
    let mut outcomes = Vec::new();
    let mut surprises = Vec::new();
    let mut dumps = Vec::new();
    for scenario in suite() {
        for (index, step) in scenario.steps.iter().enumerate() {
            let label = format!("{} #{index} {}", scenario.name, step.rpc);
            let key = match step.key {
                Key::Admin => Some(run.admin.as_str()),
                Key::Analyst => Some(run.analyst.as_str()),
                Key::Ingest => Some(run.ingest.as_str()),
                Key::None => None,
            };
            let request = resolve(&step.request, &saved);
            let result = doors.call(door, step.rpc, key, &request).await;
            if let Some(wrong) = unexpected(&step.expect, &result) {
                surprises.push(format!("{door} {label}: {wrong}"));
            }
            if let (Some(name), Ok(answer)) = (step.save, &result) {
                saved.insert(name, answer.clone());
            }
            outcomes.push(Outcome { label, result });
        }
        dumps.push((scenario.name, rows(&app, run.organisation).await));
    }
    Ran {
        outcomes,
        surprises,
        dumps,
        _app: app,
    }
}

/// What is wrong with `result` for `expect`, if anything.
fn unexpected(expect: &Expect, result: &Result<Value, Refusal>) -> Option<String> {
    match (expect, result) {
        (Expect::Ok, Ok(_)) => None,
        (Expect::OkWith(pointer, value), Ok(answer)) => (answer.pointer(pointer) != Some(value))
            .then(|| format!("expected {value} at {pointer}: {answer}")),
        (
            Expect::Refused {
                code,
                reason,
                field,
            },
            Err(refusal),
        ) => {
            let wrong = refusal.code != *code
                || reason.is_some_and(|reason| refusal.reason != reason)
                || field.is_some_and(|field| !refusal.fields.iter().any(|f| f == field));
            wrong.then(|| format!("expected {code} {reason:?} {field:?}, got {refusal:?}"))
        }
        (expect, result) => Some(format!("expected {expect:?}, got {result:?}")),
    }
}

/// Replaces what differs between two runs of the same calls: ids (each
/// distinct one becomes `id#n` in order of appearance, so references stay
/// checked), times the server took from its clock (`<now>`; the fixed
/// times the scenarios send are kept), secrets, digests and page tokens.
struct Normaliser {
    ids: HashMap<String, usize>,
    /// Times from here on are the server's clock's.
    since: DateTime<Utc>,
}

impl Normaliser {
    fn new(since: DateTime<Utc>) -> Self {
        Self {
            ids: HashMap::new(),
            since,
        }
    }

    fn value(&mut self, value: &Value, key: &str) -> Value {
        match value {
            Value::Object(object) => {
                let mut out = Map::new();
                for (k, v) in object {
                    out.insert(k.clone(), self.value(v, k));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v, key)).collect()),
            Value::String(text) => match key {
                "secret" | "secretPrefix" | "secret_prefix" => json!("<secret>"),
                "nextPageToken" | "pageToken" if !text.is_empty() => json!("<page token>"),
                k if k.ends_with("_hash") || k == "customer_key" => json!("<digest>"),
                _ => Value::String(self.text(text)),
            },
            other => other.clone(),
        }
    }

    fn text(&mut self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        while at < bytes.len() {
            if let Some(id) = uuid_at(text, at) {
                let next = self.ids.len() + 1;
                let n = *self.ids.entry(id.to_ascii_lowercase()).or_insert(next);
                out.push_str(&format!("id#{n}"));
                at += 36;
                continue;
            }
            if let Some((time, length)) = time_at(text, at) {
                if time >= self.since {
                    out.push_str("<now>");
                } else {
                    out.push_str(&text[at..at + length]);
                }
                at += length;
                continue;
            }
            let c = text[at..].chars().next().unwrap();
            out.push(c);
            at += c.len_utf8();
        }
        out
    }
}

/// The UUID that starts at `at`, when one does.
fn uuid_at(text: &str, at: usize) -> Option<&str> {
    let candidate = text.get(at..at + 36)?;
    let ok = candidate.bytes().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    let bounded = at == 0 || !text.as_bytes()[at - 1].is_ascii_alphanumeric();
    (ok && bounded).then_some(candidate)
}

/// The RFC 3339 time (or PostgreSQL's JSON form of one) that starts at
/// `at`, and its length.
fn time_at(text: &str, at: usize) -> Option<(DateTime<Utc>, usize)> {
    let bytes = text.as_bytes();
    let digits = |from: usize, n: usize| {
        bytes
            .get(from..from + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let char_at = |i: usize| bytes.get(i).copied();
    if !(digits(at, 4)
        && char_at(at + 4) == Some(b'-')
        && digits(at + 5, 2)
        && char_at(at + 7) == Some(b'-')
        && digits(at + 8, 2)
        && matches!(char_at(at + 10), Some(b'T' | b' '))
        && digits(at + 11, 2)
        && char_at(at + 13) == Some(b':')
        && digits(at + 14, 2)
        && char_at(at + 16) == Some(b':')
        && digits(at + 17, 2))
    {
        return None;
    }
    let mut end = at + 19;
    if char_at(end) == Some(b'.') {
        end += 1;
        while char_at(end).is_some_and(|b| b.is_ascii_digit()) {
            end += 1;
        }
    }
    match char_at(end) {
        Some(b'Z') => end += 1,
        Some(b'+' | b'-') if digits(end + 1, 2) && char_at(end + 3) == Some(b':') => end += 6,
        Some(b'+' | b'-') if digits(end + 1, 2) => end += 3,
        _ => return None,
    }
    let mut candidate = text[at..end].replacen(' ', "T", 1);
    if candidate.len() == end - at && candidate.as_bytes()[candidate.len() - 3] != b':' {
        // "+00" as PostgreSQL writes it.
        if matches!(candidate.as_bytes()[candidate.len() - 3], b'+' | b'-') {
            candidate.push_str(":00");
        }
    }
    let time = DateTime::parse_from_rfc3339(&candidate).ok()?;
    Some((time.with_timezone(&Utc), end - at))
}

/// The rows an organisation has in the main tables, each table's rows as
/// JSON in a fixed order.
async fn rows(app: &TestApp, organisation: Uuid) -> Dump {
    let mut owner = app.owner_connection().await;
    sqlx::query("select set_config('verdad.organisation_id', $1::text, false)")
        .bind(organisation)
        .execute(&mut owner)
        .await
        .unwrap();
    let tables: [(&str, &str, &str); 8] = [
        ("organisation", "id", "t.id"),
        ("touchpoint", "organisation_id", "t.code"),
        ("standard", "organisation_id", "t.code"),
        ("standard_revision", "organisation_id", "t.id"),
        ("encounter", "organisation_id", "t.source, t.external_id"),
        ("recovery_case", "organisation_id", "t.id"),
        ("journey_feedback", "organisation_id", "t.journey_id"),
        ("api_key", "organisation_id", "t.id"),
    ];
    let mut dump = BTreeMap::new();
    for (table, column, order) in tables {
        let texts: Vec<String> = sqlx::query_scalar(&format!(
            "select to_jsonb(t)::text from {table} t where {column} = $1 order by {order}"
        ))
        .bind(organisation)
        .fetch_all(&mut owner)
        .await
        .unwrap();
        dump.insert(
            table,
            texts
                .iter()
                .map(|text| serde_json::from_str(text).unwrap())
                .collect(),
        );
    }
    dump
}

/// The outcome as compared: the answer, or what the refusal says.
fn comparable(result: &Result<Value, Refusal>) -> Value {
    match result {
        Ok(answer) => json!({"ok": answer}),
        Err(refusal) => json!({"refused": {
            "code": refusal.code,
            "reason": refusal.reason,
            "fields": refusal.fields,
            "message": refusal.message,
        }}),
    }
}

#[tokio::test]
async fn every_scenario_ends_alike_through_grpc_and_http_and_stores_the_same_rows() {
    // Arrange
    let since = Utc::now() - Duration::minutes(1);

    // Act
    let (grpc, http) = tokio::join!(run_suite(Door::Grpc), run_suite(Door::Http));

    // Assert: each step as the scenario means it.
    let surprises: Vec<&String> = grpc.surprises.iter().chain(&http.surprises).collect();
    assert!(
        surprises.is_empty(),
        "steps that did not end as their scenario expects:\n{}",
        surprises
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Every step alike.
    assert_eq!(grpc.outcomes.len(), http.outcomes.len());
    let mut by_grpc = Normaliser::new(since);
    let mut by_http = Normaliser::new(since);
    let mut differences = Vec::new();
    for (g, h) in grpc.outcomes.iter().zip(&http.outcomes) {
        let left = by_grpc.value(&comparable(&g.result), "");
        let right = by_http.value(&comparable(&h.result), "");
        if left != right {
            differences.push(format!("{}:\n  gRPC: {left}\n  HTTP: {right}", g.label));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} steps differ between the doors:\n{}",
        differences.len(),
        grpc.outcomes.len(),
        differences.join("\n")
    );

    // Every HTTP refusal has the AIP-193 status of its code, and the suite
    // met each kind it means to.
    let mut statuses = BTreeMap::new();
    for outcome in &http.outcomes {
        if let Err(refusal) = &outcome.result {
            assert_eq!(
                refusal.http_status,
                Some(aip193_status(&refusal.code)),
                "{}: {refusal:?}",
                outcome.label
            );
            statuses.insert(refusal.code.clone(), refusal.http_status.unwrap());
        }
    }
    assert_eq!(
        statuses,
        BTreeMap::from([
            ("ALREADY_EXISTS".to_owned(), 409),
            ("FAILED_PRECONDITION".to_owned(), 400),
            ("INVALID_ARGUMENT".to_owned(), 400),
            ("NOT_FOUND".to_owned(), 404),
            ("PERMISSION_DENIED".to_owned(), 403),
            ("UNAUTHENTICATED".to_owned(), 401),
        ])
    );

    // The same rows stored after each scenario, ids mapped as the answers
    // mapped them.
    for ((scenario, g), (_, h)) in grpc.dumps.iter().zip(&http.dumps) {
        for (table, grpc_rows) in g {
            let http_rows = &h[table];
            assert_eq!(
                grpc_rows.len(),
                http_rows.len(),
                "after {scenario}, {table}: {} rows through gRPC, {} through HTTP",
                grpc_rows.len(),
                http_rows.len()
            );
            for (g, h) in grpc_rows.iter().zip(http_rows) {
                let left = by_grpc.value(g, "");
                let right = by_http.value(h, "");
                assert_eq!(
                    left, right,
                    "after {scenario}, a row of {table} differs between the doors"
                );
            }
        }
    }
    for table in grpc.dumps[0].1.keys() {
        assert!(
            grpc.dumps.iter().any(|(_, dump)| !dump[table].is_empty()),
            "no {table} rows were compared"
        );
    }
}

#[test]
fn the_suite_calls_every_rpc_but_the_watch() {
    let pool = crate::helpers::descriptors();
    let called: std::collections::BTreeSet<&str> = suite()
        .iter()
        .flat_map(|scenario| scenario.steps.iter().map(|step| step.rpc))
        .collect();
    let every: std::collections::BTreeSet<String> = pool
        .services()
        .filter(|s| s.package_name() == "verdad.v1")
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .map(|m| m.name().to_owned())
        .filter(|name| name != "WatchRecoveryCases")
        .collect();
    let called: std::collections::BTreeSet<String> =
        called.into_iter().map(str::to_owned).collect();
    assert_eq!(called, every);
}

#[test]
fn the_normaliser_keeps_references_and_fixed_times() {
    let since = "2026-12-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let mut normaliser = Normaliser::new(since);
    let a = "0190f3a0-0000-7000-8000-00000000000a";
    let b = "0190F3A0-0000-7000-8000-00000000000B";
    let value = json!({
        "id": a, "other": [b, format!("case {a} of {b}")],
        "occurTime": "2026-11-23T09:00:05Z", "createTime": "2026-12-07T11:26:12.123456Z",
        "receive_time": "2026-12-07T11:26:12.123456+00:00", "secret": "vd_xyz",
        "nextPageToken": "abc", "pageToken": "", "content_hash": "\\x00ff",
    });
    assert_eq!(
        normaliser.value(&value, ""),
        json!({
            "id": "id#1", "other": ["id#2", "case id#1 of id#2"],
            "occurTime": "2026-11-23T09:00:05Z", "createTime": "<now>",
            "receive_time": "<now>", "secret": "<secret>",
            "nextPageToken": "<page token>", "pageToken": "", "content_hash": "<digest>",
        })
    );
}

/// proto3 JSON takes an enum by its name or by its number, and both doors
/// take `{"stage": 2}` in a body; a query parameter must too. (The door once
/// handed a query value to the mapping as a JSON string, so `?stage=2` was
/// refused, "unrecognized enum value '2'", where the same request over gRPC
/// answered.)
#[tokio::test]
async fn an_enum_given_by_its_number_is_read_alike_through_both_doors() {
    // Arrange
    let app = spawn_app().await;
    let run = arrange(&app).await;
    let doors = app.doors().await;
    doors
        .grpc(
            "CreateTouchpoint",
            Some(&run.admin),
            &json!({"touchpoint": {"code": "desk", "displayName": "Desk",
                                   "stage": "STAGE_SERVICE", "channel": "CHANNEL_IN_PERSON"}}),
        )
        .await
        .unwrap();
    let request = json!({"stage": 2, "pageSize": 5});

    // Act
    let over_grpc = doors
        .grpc("ListTouchpoints", Some(&run.analyst), &request)
        .await;
    let over_http = doors
        .http("ListTouchpoints", Some(&run.analyst), &request)
        .await;

    // Assert
    assert_eq!(
        over_grpc
            .as_ref()
            .ok()
            .and_then(|a| a.pointer("/touchpoints/0/code")),
        Some(&json!("desk"))
    );
    assert_eq!(
        over_http.map_err(|refusal| refusal.message),
        over_grpc.map_err(|refusal| refusal.message),
        "GET /v1/touchpoints?stage=2&pageSize=5"
    );
}
