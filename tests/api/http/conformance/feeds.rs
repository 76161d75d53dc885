//! The scenario of the feeds an admin manages.

use serde_json::json;

use super::{Key, Scenario, step};

pub(super) fn feeds() -> Scenario {
    use Key::*;
    let hl7 = || {
        json!({"code": "adt", "displayName": "ADT",
               "hl7v2": {"sendingApplication": "EPIC", "sendingFacility": "MAIN",
                         "rules": [{"event": "ADT^A04", "pointOfCare": "ER",
                                    "touchpointCode": "reception-desk"}],
                         "staffField": "EVN-5"}})
    };
    Scenario {
        name: "feeds",
        steps: vec![
            step("CreateFeed", Admin, json!({"feed": hl7()})).save("feed"),
            step("CreateFeed", Admin, json!({"feed": hl7()}))
                .refused("ALREADY_EXISTS", "ALREADY_EXISTS"),
            step(
                "CreateFeed",
                Admin,
                json!({"feed": {"code": "bad", "displayName": "Bad",
                                "hl7v2": {"sendingApplication": "LAB", "journeyField": "PV1",
                                          "rules": [{"event": "A04", "touchpointCode": "reception-desk"}]}}}),
            )
            .invalid("feed.hl7v2.journey_field"),
            step(
                "CreateFeed",
                Admin,
                json!({"feed": {"code": "fhir", "displayName": "FHIR",
                                "fhirR4": {"rules": [{"location": "Location/er",
                                                      "touchpointCode": "reception-desk"}],
                                           "journeySource": "FHIR_JOURNEY_SOURCE_PART_OF"}}}),
            ),
            step("CreateFeed", Analyst, json!({"feed": hl7()})).denied(),
            step("GetFeed", Admin, json!({"id": "{{feed/feed/id}}"}))
                .answers("/feed/hl7v2/journeyField", json!("PV1-19")),
            step(
                "GetFeed",
                Admin,
                json!({"id": "0190f3a0-0000-7000-8000-000000000003"}),
            )
            .not_found(),
            step("GetFeed", Ingest, json!({"id": "{{feed/feed/id}}"})).denied(),
            step("ListFeeds", Admin, json!({"pageSize": 1})),
            step(
                "UpdateFeed",
                Admin,
                json!({"feed": {"id": "{{feed/feed/id}}", "displayName": "ADT (EPIC)"},
                       "updateMask": "displayName"}),
            )
            .answers("/feed/displayName", json!("ADT (EPIC)")),
            step(
                "UpdateFeed",
                Admin,
                json!({"feed": {"id": "{{feed/feed/id}}",
                                "fhirR4": {"journeyIdentifierSystem": "urn:x"}},
                       "updateMask": "fhirR4.journeyIdentifierSystem"}),
            )
            .invalid("update_mask"),
            step(
                "PreviewFeedMessage",
                Admin,
                json!({"feedId": "{{feed/feed/id}}",
                       "message": "MSH|^~\\&|EPIC|MAIN|||20261123090000||ADT^A04|C1|P|2.5\rEVN|A04|20261123085500|||CLERK1\rPV1|1|O|ER||||||||||||||||V1\r"}),
            )
            .answers("/outcome", json!("store")),
            step(
                "PreviewFeedMessage",
                Admin,
                json!({"feedId": "{{feed/feed/id}}", "message": ""}),
            )
            .invalid("message"),
            step(
                "ListFeedRejections",
                Admin,
                json!({"feedId": "{{feed/feed/id}}"}),
            ),
            step(
                "ListFeedRejections",
                Analyst,
                json!({"feedId": "{{feed/feed/id}}"}),
            )
            .denied(),
            step("ArchiveFeed", Admin, json!({"id": "{{feed/feed/id}}"})),
            step("ArchiveFeed", Admin, json!({"id": "{{feed/feed/id}}"}))
                .refused("FAILED_PRECONDITION", "FEED_ARCHIVED"),
        ],
    }
}
