//! The scenarios of what is read from the records: the analyses and the
//! recovery cases.

use serde_json::{Value, json};

use super::{DAY_END, DAY_START, Key, Scenario, scope, step};

pub(super) fn analyses() -> Scenario {
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
            step(
                "GetMotCycleDiagram",
                Analyst,
                with(json!({"format": "DIAGRAM_FORMAT_MERMAID", "minPairShare": 0})),
            )
            .answers("/mediaType", json!("text/vnd.mermaid")),
            step(
                "GetMotCycleDiagram",
                Analyst,
                with(
                    json!({"format": "DIAGRAM_FORMAT_DOT", "weight": "DIAGRAM_WEIGHT_MEDIAN_TIME",
                            "maxTouchpoints": 5}),
                ),
            ),
            step(
                "GetMotCycleDiagram",
                Analyst,
                with(json!({"minPairShare": 2})),
            )
            .invalid("format"),
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
pub(super) fn recovery() -> Scenario {
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
            step("AcknowledgeRecoveryCase", Admin, json!({"id": case})),
            step("AcknowledgeRecoveryCase", Analyst, json!({"id": case})).denied(),
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
