//! The scenarios of what is recorded: encounters, journeys and their
//! feedback, and a customer's erasure.

use serde_json::{Value, json};

use super::{DAY_END, DAY_START, Key, Scenario, step};

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

pub(super) fn encounters() -> Scenario {
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
pub(super) fn journeys() -> Scenario {
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
pub(super) fn erasure() -> Scenario {
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
