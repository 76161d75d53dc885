//! Reading and mapping hand-built Encounters and Bundles.

use chrono::{DateTime, Utc};
use chrono_tz::{Asia::Seoul, Tz};
use serde_json::{Value, json};

use super::*;
use crate::domain::feed::{FhirR4Mapping, FhirR4Rule, JourneySource};

const VISIT_SYSTEM: &str = "urn:oid:1.2.3.visit";
/// Values the fixture holds that are a patient's, or as good as: no
/// diagnostics may repeat them.
const PATIENT_VALUES: &[&str] = &["V-1001", "Patient/p-42", "MRN-9", "Jane Doe"];

fn encounter_json() -> Value {
    json!({
        "resourceType": "Encounter",
        "id": "enc-1",
        "meta": {"versionId": "3", "lastUpdated": "2024-07-15T12:00:00Z"},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
        "identifier": [
            {"use": "official", "system": VISIT_SYSTEM, "value": "V-1001"},
            {"system": "urn:oid:1.2.3.other", "value": "O-77"}
        ],
        "status": "in-progress",
        "_status": {"extension": [{"url": "http://example.org/why", "valueString": "triage done"}]},
        "statusHistory": [
            {"status": "arrived", "period": {
                "start": "2024-07-15T09:00:00+09:00", "end": "2024-07-15T09:20:00+09:00"}},
            {"status": "triaged", "period": {
                "start": "2024-07-15T09:20:00+09:00", "end": "2024-07-15T09:45:00+09:00"}}
        ],
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "EMER",
            "display": "emergency"
        },
        "type": [{"text": "ER visit"}],
        "serviceType": {"coding": [{"system": "http://example.org/st", "code": "cardio"}]},
        "priority": {"coding": [{"code": "EM"}]},
        "subject": {
            "reference": "Patient/p-42",
            "identifier": {"system": "urn:oid:1.2.3.mrn", "value": "MRN-9"},
            "display": "Jane Doe"
        },
        "episodeOfCare": [{"reference": "EpisodeOfCare/eoc-5"}],
        "participant": [
            {"type": [{"coding": [{"code": "ADM"}]}]},
            {"type": [{"coding": [{"code": "ATND"}]}], "individual": {"reference": "Practitioner/dr-7"}}
        ],
        "period": {"start": "2024-07-15T09:00:00+09:00"},
        "hospitalization": {"admitSource": {"text": "walk-in"}},
        "location": [
            {"location": {"reference": "Location/er-triage", "display": "ER triage"},
             "status": "completed",
             "period": {"start": "2024-07-15T09:05:00+09:00", "end": "2024-07-15T09:40:00+09:00"}},
            {"location": {"identifier": {"value": "XRAY-2"}},
             "status": "completed",
             "physicalType": {"coding": [{"code": "ro"}]},
             "period": {"start": "2024-07-15T10:00:00.123456789+09:00"}},
            {"location": {"reference": "Location/ward-3"},
             "status": "active",
             "period": {"start": "2024-07-15T11:30:00+09:00"}},
            {"location": {"reference": "Location/ward-9"},
             "status": "planned",
             "period": {"start": "2024-07-16"}}
        ],
        "partOf": {"reference": "Encounter/parent-1"},
        "serviceProvider": {"reference": "Organization/h1"}
    })
}

fn rule(
    location: &str,
    class_code: &str,
    service_type_code: &str,
    status: &str,
    touchpoint: &str,
) -> FhirR4Rule {
    FhirR4Rule {
        location: location.into(),
        class_code: class_code.into(),
        service_type_code: service_type_code.into(),
        status: status.into(),
        touchpoint_code: touchpoint.into(),
    }
}

fn mapping(rules: Vec<FhirR4Rule>) -> FhirR4Mapping {
    FhirR4Mapping {
        rules,
        journey_source: JourneySource::Identifier,
        journey_identifier_system: VISIT_SYSTEM.into(),
        customer_identifier_system: String::new(),
    }
}

/// Two location rules that take three of the fixture's four locations (the
/// fourth is only planned), and two that take none.
fn location_mapping() -> FhirR4Mapping {
    mapping(vec![
        rule("Location/ICU", "", "", "", "icu"),
        rule("location/ER-TRIAGE", "emer", "", "", "triage"),
        rule("", "AMB", "", "", "outpatient"),
        rule("", "", "CARDIO", "", "care"),
    ])
}

fn status_mapping() -> FhirR4Mapping {
    mapping(vec![
        rule("", "", "", "arrived", "arrival"),
        rule("", "", "", "TRIAGED", "triage"),
        rule("", "", "", "in-progress", "treatment"),
        rule("", "", "", "finished", "discharge"),
    ])
}

fn read(value: &Value) -> Result<Encounter, Vec<Issue>> {
    read_encounter(&serde_json::to_vec(value).unwrap())
}

fn changed(change: impl FnOnce(&mut Value)) -> Value {
    let mut value = encounter_json();
    change(&mut value);
    value
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn mapped(value: &Value, mapping: &FhirR4Mapping) -> Result<Vec<Moment>, Vec<Issue>> {
    moments(&read(value).unwrap(), mapping, Seoul)
}

/// The one issue reading `value` gives.
fn only_issue(value: &Value) -> Issue {
    let issues = read(value).unwrap_err();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_no_patient_values(&issues);
    issues.into_iter().next().unwrap()
}

fn assert_no_patient_values(issues: &[Issue]) {
    for issue in issues {
        for value in PATIENT_VALUES {
            assert!(!issue.diagnostics.contains(value), "{issue:?}");
            assert!(
                !issue.expression.iter().any(|e| e.contains(value)),
                "{issue:?}"
            );
        }
    }
}

#[test]
fn a_full_encounter_maps_its_locations_by_the_first_rule_that_takes_each() {
    let moments = mapped(&encounter_json(), &location_mapping()).unwrap();

    let summary: Vec<(&str, DateTime<Utc>)> = moments
        .iter()
        .map(|m| (m.touchpoint_code.as_str(), m.occur_time))
        .collect();
    assert_eq!(
        summary,
        [
            ("triage", utc("2024-07-15T00:05:00Z")),
            // Nanoseconds are cut to the microseconds PostgreSQL keeps.
            ("care", utc("2024-07-15T01:00:00.123456Z")),
            ("care", utc("2024-07-15T02:30:00Z")),
        ]
    );
    for moment in &moments {
        assert_eq!(moment.journey_id, "V-1001");
        assert_eq!(moment.customer_ref.as_deref(), Some("Patient/p-42"));
        assert_eq!(moment.staff_ref.as_deref(), Some("Practitioner/dr-7"));
        assert!(moment.external_id.starts_with("fhir:"));
        assert_eq!(moment.external_id.len(), 48);
        assert_eq!(moment.attributes[MOMENT_ATTRIBUTE], "location");
        assert_eq!(moment.attributes[STATUS_ATTRIBUTE], "in-progress");
        assert_eq!(moment.attributes.len(), 3);
    }
    let encounter = read(&encounter_json()).unwrap();
    let key = resource_key(&encounter, &location_mapping()).unwrap();
    assert!(
        moments
            .iter()
            .all(|m| m.attributes[RESOURCE_ATTRIBUTE] == key)
    );
}

#[test]
fn rules_hold_only_when_every_condition_they_set_does() {
    let none = mapping(vec![
        rule("Location/er-triage", "AMB", "", "", "a"),
        rule("", "EMER", "dental", "", "b"),
        rule("Location/ward-9", "", "", "", "planned-only"),
    ]);
    assert_eq!(mapped(&encounter_json(), &none), Ok(Vec::new()));
}

#[test]
fn the_status_history_and_the_current_status_map_to_status_rules() {
    let moments = mapped(&encounter_json(), &status_mapping()).unwrap();

    let summary: Vec<(&str, &str, DateTime<Utc>)> = moments
        .iter()
        .map(|m| {
            (
                m.touchpoint_code.as_str(),
                m.attributes[STATUS_ATTRIBUTE].as_str(),
                m.occur_time,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("arrival", "arrived", utc("2024-07-15T00:00:00Z")),
            ("triage", "triaged", utc("2024-07-15T00:20:00Z")),
            // Not in the history: it began when triage ended.
            ("treatment", "in-progress", utc("2024-07-15T00:45:00Z")),
        ]
    );
    assert!(
        moments
            .iter()
            .all(|m| m.attributes[MOMENT_ATTRIBUTE] == "status")
    );
}

#[test]
fn a_status_keeps_its_external_id_as_the_history_grows() {
    let first = mapped(&encounter_json(), &status_mapping()).unwrap();
    let finished = changed(|v| {
        v["status"] = json!("finished");
        v["statusHistory"].as_array_mut().unwrap().push(json!({
            "status": "in-progress",
            "period": {"start": "2024-07-15T09:45:00+09:00", "end": "2024-07-15T12:00:00+09:00"}
        }));
        v["period"]["end"] = json!("2024-07-15T12:10:00+09:00");
    });

    let later = mapped(&finished, &status_mapping()).unwrap();

    let ids = |moments: &[Moment]| -> Vec<String> {
        moments.iter().map(|m| m.external_id.clone()).collect()
    };
    assert_eq!(ids(&later)[..3], ids(&first)[..]);
    assert_eq!(later[3].touchpoint_code, "discharge");
    assert_eq!(later[3].occur_time, utc("2024-07-15T03:10:00Z"));
}

#[test]
fn a_status_rule_with_a_location_needs_the_encounter_to_have_been_there() {
    let rules = |location: &str| mapping(vec![rule(location, "", "", "arrived", "arrival")]);
    assert_eq!(
        mapped(&encounter_json(), &rules("XRAY-2")).unwrap().len(),
        1
    );
    assert_eq!(
        mapped(&encounter_json(), &rules("Location/icu")).unwrap(),
        []
    );
}

#[test]
fn a_planned_encounter_records_nothing_yet() {
    let planned = changed(|v| {
        v["status"] = json!("planned");
        v["statusHistory"] = json!([]);
    });
    assert_eq!(mapped(&planned, &location_mapping()), Ok(Vec::new()));
    assert_eq!(mapped(&planned, &status_mapping()), Ok(Vec::new()));
}

#[test]
fn the_journey_comes_from_the_source_the_mapping_names() {
    let mut by_part_of = location_mapping();
    by_part_of.journey_source = JourneySource::PartOf;
    let mut by_episode = location_mapping();
    by_episode.journey_source = JourneySource::EpisodeOfCare;
    let mut by_other_identifier = location_mapping();
    by_other_identifier.journey_identifier_system = "urn:oid:1.2.3.other".into();

    let journey = |value: &Value, mapping: &FhirR4Mapping| {
        mapped(value, mapping).map(|moments| moments[0].journey_id.clone())
    };
    assert_eq!(
        journey(&encounter_json(), &location_mapping()).unwrap(),
        "V-1001"
    );
    assert_eq!(
        journey(&encounter_json(), &by_other_identifier).unwrap(),
        "O-77"
    );
    assert_eq!(
        journey(&encounter_json(), &by_part_of).unwrap(),
        "Encounter/parent-1"
    );
    assert_eq!(
        journey(&encounter_json(), &by_episode).unwrap(),
        "EpisodeOfCare/eoc-5"
    );
    let part_of_by_identifier = changed(|v| v["partOf"] = json!({"identifier": {"value": "P-9"}}));
    assert_eq!(journey(&part_of_by_identifier, &by_part_of).unwrap(), "P-9");
}

#[test]
fn a_missing_journey_is_required_where_the_mapping_looks_for_it() {
    let mut by_part_of = location_mapping();
    by_part_of.journey_source = JourneySource::PartOf;
    let mut by_episode = location_mapping();
    by_episode.journey_source = JourneySource::EpisodeOfCare;
    let mut by_absent_system = location_mapping();
    by_absent_system.journey_identifier_system = "urn:nowhere".into();
    let bare = changed(|v| {
        let object = v.as_object_mut().unwrap();
        object.remove("partOf");
        object.remove("episodeOfCare");
    });

    let cases = [
        (&by_part_of, "Encounter.partOf"),
        (&by_episode, "Encounter.episodeOfCare[0]"),
        (&by_absent_system, "Encounter.identifier"),
    ];
    for (mapping, at) in cases {
        let issues = mapped(&bare, mapping).unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].code, IssueType::Required);
        assert_eq!(issues[0].expression, [at]);
    }
}

#[test]
fn a_journey_too_long_or_with_control_characters_is_refused_unrepeated() {
    for bad in ["V".repeat(129), "V-1001\nX".to_owned()] {
        let value = changed(|v| v["identifier"][0]["value"] = json!(bad));
        let issues = mapped(&value, &location_mapping()).unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].code, IssueType::Value);
        assert_eq!(issues[0].expression, ["Encounter.identifier[0].value"]);
        assert!(!issues[0].diagnostics.contains("VVVV"), "{issues:?}");
        assert_no_patient_values(&issues);
    }
}

#[test]
fn the_customer_is_the_subjects_identifier_of_the_system_or_its_reference() {
    let customer = |system: &str| {
        let mut mapping = location_mapping();
        mapping.customer_identifier_system = system.into();
        mapped(&encounter_json(), &mapping).unwrap()[0]
            .customer_ref
            .clone()
    };
    assert_eq!(customer("urn:oid:1.2.3.mrn").as_deref(), Some("MRN-9"));
    assert_eq!(customer("urn:oid:elsewhere"), None);
    assert_eq!(customer("").as_deref(), Some("Patient/p-42"));

    let anonymous = changed(|v| {
        v.as_object_mut().unwrap().remove("subject");
        v.as_object_mut().unwrap().remove("participant");
    });
    let moment = &mapped(&anonymous, &location_mapping()).unwrap()[0];
    assert_eq!(moment.customer_ref, None);
    assert_eq!(moment.staff_ref, None);
}

#[test]
fn staff_is_never_a_related_person() {
    let value = changed(|v| {
        v["participant"] = json!([
            {"individual": {"reference": "RelatedPerson/mother"}},
            {"individual": {"type": "RelatedPerson", "identifier": {"value": "friend"}}},
            {"individual": {"reference": "https://fhir.example.org/RelatedPerson/2"}},
            {"individual": {"reference": "PractitionerRole/nurse-3"}}
        ]);
    });
    let moments = mapped(&value, &location_mapping()).unwrap();
    assert_eq!(
        moments[0].staff_ref.as_deref(),
        Some("PractitionerRole/nurse-3")
    );
}

#[test]
fn staff_may_be_named_by_identifier() {
    let value = changed(|v| {
        v["participant"] = json!([{"individual": {"identifier": {"value": "NURSE-3"}}}]);
    });
    let moments = mapped(&value, &location_mapping()).unwrap();
    assert_eq!(moments[0].staff_ref.as_deref(), Some("NURSE-3"));
}

#[test]
fn an_encounter_without_identifier_cannot_be_kept_idempotent() {
    let mut by_part_of = location_mapping();
    by_part_of.journey_source = JourneySource::PartOf;
    let bare = changed(|v| {
        v.as_object_mut().unwrap().remove("identifier");
    });

    for mapping in [&location_mapping(), &by_part_of] {
        let issues = mapped(&bare, mapping).unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].code, IssueType::Required);
        assert_eq!(issues[0].expression, ["Encounter.identifier"]);
    }
    // Nothing to store needs nothing to key it by.
    assert_eq!(mapped(&bare, &mapping(vec![])), Ok(Vec::new()));
}

#[test]
fn resending_makes_the_same_keys_and_a_new_location_one_new_key() {
    let first = mapped(&encounter_json(), &location_mapping()).unwrap();
    let again = mapped(&encounter_json(), &location_mapping()).unwrap();
    let moved = changed(|v| {
        v["location"].as_array_mut().unwrap().push(json!({
            "location": {"reference": "Location/ward-4"},
            "period": {"start": "2024-07-15T15:00:00+09:00"}
        }));
    });
    let later = mapped(&moved, &location_mapping()).unwrap();

    assert_eq!(first, again);
    let ids: std::collections::BTreeSet<&str> =
        first.iter().map(|m| m.external_id.as_str()).collect();
    assert_eq!(ids.len(), 3, "every moment has its own key");
    let new: Vec<&Moment> = later
        .iter()
        .filter(|m| !ids.contains(m.external_id.as_str()))
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].occur_time, utc("2024-07-15T06:00:00Z"));

    // Another Encounter, even at the same places and times, has other keys.
    let other = changed(|v| v["identifier"][0]["value"] = json!("V-1002"));
    let other = mapped(&other, &location_mapping()).unwrap();
    assert!(other.iter().all(|m| !ids.contains(m.external_id.as_str())));
}

#[test]
fn the_same_location_at_the_same_time_is_one_moment() {
    let twice = changed(|v| {
        let first = v["location"][0].clone();
        v["location"].as_array_mut().unwrap().push(first);
    });
    assert_eq!(mapped(&twice, &location_mapping()).unwrap().len(), 3);
}

#[test]
fn a_date_without_a_time_is_the_start_of_that_day_in_the_zone() {
    let value = changed(|v| v["location"][0]["period"]["start"] = json!("2024-07-15"));
    let moments = mapped(&value, &location_mapping()).unwrap();
    assert_eq!(moments[0].occur_time, utc("2024-07-14T15:00:00Z"));
    let in_utc = moments_in(&value, chrono_tz::UTC);
    assert_eq!(in_utc[0].occur_time, utc("2024-07-15T00:00:00Z"));
}

fn moments_in(value: &Value, zone: Tz) -> Vec<Moment> {
    moments(&read(value).unwrap(), &location_mapping(), zone).unwrap()
}

#[test]
fn a_cancelled_or_mistaken_encounter_is_withdrawn_and_records_nothing() {
    for status in ["entered-in-error", "cancelled"] {
        let value = changed(|v| v["status"] = json!(status));
        let encounter = read(&value).unwrap();
        assert!(withdrawn(&encounter));
        assert_eq!(
            moments(&encounter, &location_mapping(), Seoul),
            Ok(Vec::new())
        );
        // The key to withdraw by is the one the moments were stored under.
        let stored = mapped(&encounter_json(), &location_mapping()).unwrap();
        assert_eq!(
            resource_key(&encounter, &location_mapping()).unwrap(),
            stored[0].attributes[RESOURCE_ATTRIBUTE]
        );
    }
    assert!(!withdrawn(&read(&encounter_json()).unwrap()));
}

#[test]
fn primitive_extensions_and_known_unread_elements_are_accepted() {
    let value = changed(|v| {
        v["_id"] = json!({"extension": []});
        v["location"][0]["period"]["_start"] = json!({"id": "s"});
        v["contained"] = json!([{"resourceType": "Location", "id": "l1",
            "modifierExtension": [{"url": "http://example.org/m"}]}]);
        v["extension"] = json!([{"url": "http://example.org/e", "valueBoolean": true}]);
        v["length"] = json!({"value": 3, "unit": "h"});
        v["diagnosis"] = json!([{"condition": {"reference": "Condition/c"}}]);
    });
    assert!(read(&value).is_ok());
}

#[test]
fn an_unknown_element_is_a_structure_issue_that_names_it() {
    let cases = [
        (
            changed(|v| v["location"][0]["bogus"] = json!(1)),
            "Encounter.location[0].bogus",
        ),
        // R5's name for what R4 calls period.
        (
            changed(|v| v["actualPeriod"] = json!({})),
            "Encounter.actualPeriod",
        ),
        (
            changed(|v| v["subject"]["identifier"]["valu"] = json!("x")),
            "Encounter.subject.identifier.valu",
        ),
    ];
    for (value, at) in cases {
        let issue = only_issue(&value);
        assert_eq!(issue.code, IssueType::Structure);
        assert_eq!(issue.expression, [at]);
        assert!(issue.diagnostics.starts_with(at), "{issue:?}");
    }
}

#[test]
fn an_unknown_element_with_a_strange_name_is_not_repeated() {
    let value = changed(|v| v["period"]["<script> and so on"] = json!(1));
    let issue = only_issue(&value);
    assert_eq!(issue.code, IssueType::Structure);
    assert_eq!(issue.expression, ["Encounter.period"]);
    assert!(!issue.diagnostics.contains("script"), "{issue:?}");
}

#[test]
fn a_wrong_type_is_a_value_issue_at_its_path() {
    let value = changed(|v| v["location"][0]["period"]["start"] = json!(20240715));
    let issue = only_issue(&value);
    assert_eq!(issue.code, IssueType::Value);
    assert_eq!(issue.expression, ["Encounter.location[0].period.start"]);
    assert!(issue.diagnostics.contains("expected a string"), "{issue:?}");

    for (change, at) in [
        (json!({"identifier": "V-1001"}), "Encounter.identifier"),
        (json!({"subject": "Patient/p-42"}), "Encounter.subject"),
        (json!({"location": {"location": {}}}), "Encounter.location"),
    ] {
        let value = changed(|v| {
            for (key, field) in change.as_object().unwrap() {
                v[key] = field.clone();
            }
        });
        let issue = only_issue(&value);
        assert_eq!(issue.code, IssueType::Value);
        assert_eq!(issue.expression, [at]);
    }
}

#[test]
fn a_missing_required_element_is_a_required_issue() {
    let cases = [("status", "Encounter.status"), ("class", "Encounter.class")];
    for (element, at) in cases {
        let value = changed(|v| {
            v.as_object_mut().unwrap().remove(element);
        });
        let issue = only_issue(&value);
        assert_eq!(issue.code, IssueType::Required);
        assert_eq!(issue.expression, [at]);
    }
    let no_place = changed(|v| v["location"][1] = json!({"status": "active"}));
    assert_eq!(
        only_issue(&no_place).expression,
        ["Encounter.location[1].location"]
    );
    let no_period = changed(|v| v["statusHistory"][1] = json!({"status": "arrived"}));
    assert_eq!(
        only_issue(&no_period).expression,
        ["Encounter.statusHistory[1].period"]
    );
}

#[test]
fn an_unknown_code_is_a_value_issue_that_lists_the_codes() {
    let value = changed(|v| v["status"] = json!("Patient/p-42"));
    let issue = only_issue(&value);
    assert_eq!(issue.code, IssueType::Value);
    assert_eq!(issue.expression, ["Encounter.status"]);
    assert!(
        issue.diagnostics.contains("in-progress, onleave"),
        "{issue:?}"
    );

    let value = changed(|v| v["location"][2]["status"] = json!("busy"));
    assert_eq!(
        only_issue(&value).expression,
        ["Encounter.location[2].status"]
    );
}

#[test]
fn a_resource_of_another_type_is_not_supported() {
    let patient = json!({"resourceType": "Patient", "id": "p-42"});
    let issue = only_issue(&patient);
    assert_eq!(issue.code, IssueType::NotSupported);
    assert!(issue.diagnostics.contains("Patient"), "{issue:?}");

    let untyped = changed(|v| {
        v.as_object_mut().unwrap().remove("resourceType");
    });
    assert_eq!(only_issue(&untyped).code, IssueType::Required);
}

#[test]
fn bad_date_times_are_value_issues_at_their_path() {
    let cases = [
        ("2024-07-15T09:05:00", "no offset"),
        ("2024-02-30", "does not exist"),
        ("2024-07-15T24:00:00Z", "hour 24"),
        ("2024-07-15T09:05:00+15:00", "±14:00"),
        ("15.07.2024", "not a FHIR dateTime"),
    ];
    for (bad, phrase) in cases {
        let value = changed(|v| v["location"][0]["period"]["start"] = json!(bad));
        let issue = only_issue(&value);
        assert_eq!(issue.code, IssueType::Value, "{bad}");
        assert_eq!(issue.expression, ["Encounter.location[0].period.start"]);
        assert!(issue.diagnostics.contains(phrase), "{bad}: {issue:?}");
        assert!(!issue.diagnostics.contains(bad), "{bad}: {issue:?}");
    }
    // An end is checked as strictly as a start.
    let value = changed(|v| v["statusHistory"][0]["period"]["end"] = json!("2024-07-15T09:05"));
    assert_eq!(
        only_issue(&value).expression,
        ["Encounter.statusHistory[0].period.end"]
    );
}

#[test]
fn a_modifier_extension_is_refused_wherever_it_is() {
    let value = changed(|v| {
        v["modifierExtension"] =
            json!([{"url": "http://example.org/not-really", "valueBoolean": true}]);
        v["location"][1]["modifierExtension"] = json!([{"url": "http://example.org/m"}]);
        v["hospitalization"]["modifierExtension"] = json!([{"url": "http://example.org/m"}]);
    });
    let issues = read(&value).unwrap_err();
    let at: Vec<&str> = issues.iter().map(|i| i.expression[0].as_str()).collect();
    assert_eq!(
        at,
        [
            "Encounter.modifierExtension",
            "Encounter.hospitalization.modifierExtension",
            "Encounter.location[1].modifierExtension",
        ]
    );
    assert!(issues.iter().all(|i| i.code == IssueType::NotSupported));
}

#[test]
fn json_that_does_not_parse_is_a_fatal_structure_issue_with_its_position() {
    let issues =
        read_encounter(b"{\n  \"resourceType\": \"Encounter\",\n  \"status\": }").unwrap_err();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].severity, Severity::Fatal);
    assert_eq!(issues[0].code, IssueType::Structure);
    assert!(
        issues[0].diagnostics.contains("line 3 column"),
        "{issues:?}"
    );

    for body in [&b""[..], b"[]", b"\"Encounter\"", b"{} {}", b"\xff"] {
        let issues = read_encounter(body).unwrap_err();
        assert_eq!(issues[0].code, IssueType::Structure, "{issues:?}");
    }
    let with_bom = [
        &b"\xEF\xBB\xBF"[..],
        &serde_json::to_vec(&encounter_json()).unwrap(),
    ]
    .concat();
    assert!(read_encounter(&with_bom).is_ok());
}

#[test]
fn a_repeated_property_is_refused_at_its_place() {
    let body = br#"{"resourceType": "Encounter", "status": "arrived", "class": {"code": "AMB", "code": "EMER"}}"#;
    let issues = read_encounter(body).unwrap_err();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].code, IssueType::Structure);
    assert_eq!(issues[0].expression, ["Encounter.class"]);
    assert!(
        issues[0].diagnostics.contains("repeats the property code"),
        "{issues:?}"
    );
}

fn bundle(kind: &str, entries: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "resourceType": "Bundle",
        "id": "b-1",
        "type": kind,
        "entry": entries,
    }))
    .unwrap()
}

fn create(resource: Value) -> Value {
    json!({
        "fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
        "resource": resource,
        "request": {"method": "POST", "url": "Encounter"},
    })
}

#[test]
fn batches_and_transactions_are_read_entry_by_entry() {
    for (kind, want) in [
        ("batch", BundleType::Batch),
        ("transaction", BundleType::Transaction),
    ] {
        let body = bundle(
            kind,
            vec![create(encounter_json()), create(encounter_json())],
        );
        let read = read_bundle(&body).unwrap();
        assert_eq!(read.kind, want);
        assert_eq!(read.id.as_deref(), Some("b-1"));
        assert_eq!(read.entry.len(), 2);
        for (i, entry) in read.entry.iter().enumerate() {
            assert!(read_entry(i, entry).is_ok());
        }
    }
    let absolute = json!({
        "resource": encounter_json(),
        "request": {"method": "POST", "url": "https://fhir.example.org/r4/Encounter"},
    });
    assert!(read_entry(0, &absolute).is_ok());
}

#[test]
fn bundles_of_other_types_are_refused() {
    let issues = read_bundle(&bundle("collection", vec![])).unwrap_err();
    assert_eq!(issues[0].code, IssueType::NotSupported);
    assert_eq!(issues[0].expression, ["Bundle.type"]);

    let issues = read_bundle(&bundle("pile", vec![])).unwrap_err();
    assert_eq!(issues[0].code, IssueType::Value);

    let untyped = br#"{"resourceType": "Bundle", "entry": []}"#;
    assert_eq!(
        read_bundle(untyped).unwrap_err()[0].code,
        IssueType::Required
    );

    let issues = read_bundle(&serde_json::to_vec(&encounter_json()).unwrap()).unwrap_err();
    assert_eq!(issues[0].code, IssueType::NotSupported);
}

#[test]
fn a_bad_entry_fails_alone() {
    let patient = json!({"resourceType": "Patient", "id": "p-42"});
    let broken = changed(|v| v["status"] = json!(3));
    let put = json!({
        "resource": encounter_json(),
        "request": {"method": "PUT", "url": "Encounter/enc-1"},
    });
    let body = bundle(
        "batch",
        vec![
            create(encounter_json()),
            create(patient),
            create(broken),
            put,
            json!({"request": {"method": "POST", "url": "Encounter"}}),
            json!({"resource": encounter_json()}),
            json!({"resource": encounter_json(), "request": {"method": "SEND", "url": "Encounter"},
                   "modifierExtension": [{"url": "http://example.org/m"}]}),
            json!("entry"),
        ],
    );
    let read = read_bundle(&body).unwrap();

    let results: Vec<Result<Encounter, Vec<Issue>>> = read
        .entry
        .iter()
        .enumerate()
        .map(|(i, entry)| read_entry(i, entry))
        .collect();
    assert!(results[0].is_ok());
    let issues = |i: usize| -> Vec<(IssueType, String)> {
        let issues = results[i].clone().unwrap_err();
        assert_no_patient_values(&issues);
        issues
            .into_iter()
            .map(|issue| (issue.code, issue.expression.join(",")))
            .collect()
    };
    let at = |code, at: &str| (code, at.to_owned());
    assert_eq!(
        issues(1),
        [at(IssueType::NotSupported, "Bundle.entry[1].resource")]
    );
    assert_eq!(
        issues(2),
        [at(IssueType::Value, "Bundle.entry[2].resource.status")]
    );
    assert_eq!(
        issues(3),
        [
            at(IssueType::NotSupported, "Bundle.entry[3].request.method"),
            at(IssueType::NotSupported, "Bundle.entry[3].request.url"),
        ]
    );
    assert_eq!(
        issues(4),
        [at(IssueType::Required, "Bundle.entry[4].resource")]
    );
    assert_eq!(
        issues(5),
        [at(IssueType::Required, "Bundle.entry[5].request")]
    );
    assert_eq!(
        issues(6),
        [at(
            IssueType::NotSupported,
            "Bundle.entry[6].modifierExtension"
        )]
    );
    assert_eq!(issues(7), [at(IssueType::Structure, "Bundle.entry[7]")]);
    let broken = results[2].clone().unwrap_err();
    assert!(
        broken[0]
            .diagnostics
            .starts_with("Bundle.entry[2].resource.status")
    );
}

#[test]
fn outcomes_render_as_fhir_json() {
    let issue = Issue::error(
        IssueType::NotSupported,
        "Bundle.type collection is not supported",
        Some("Bundle.type".to_owned()),
    );
    assert_eq!(
        operation_outcome(std::slice::from_ref(&issue)),
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": "not-supported",
                "diagnostics": "Bundle.type collection is not supported",
                "expression": ["Bundle.type"],
            }],
        })
    );
    assert_eq!(
        outcome_information("ignored")["issue"][0],
        json!({"severity": "information", "code": "informational", "diagnostics": "ignored"})
    );
    assert_eq!(
        operation_outcome(&[])["issue"][0]["severity"],
        "information"
    );

    let response = batch_response(vec![
        EntryResponse {
            status: 201,
            location: Some("Encounter/e1".into()),
            outcome: None,
        },
        EntryResponse {
            status: 422,
            location: None,
            outcome: Some(operation_outcome(&[issue])),
        },
        EntryResponse {
            status: 299,
            location: None,
            outcome: None,
        },
    ]);
    assert_eq!(response["type"], "batch-response");
    assert_eq!(
        response["entry"][0]["response"],
        json!({"status": "201 Created", "location": "Encounter/e1"})
    );
    assert_eq!(
        response["entry"][1]["response"]["status"],
        "422 Unprocessable Entity"
    );
    assert_eq!(
        response["entry"][1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(response["entry"][2]["response"]["status"], "299");
    assert_eq!(transaction_response(vec![])["type"], "transaction-response");
    for (status, line) in [
        (200, "200 OK"),
        (400, "400 Bad Request"),
        (404, "404 Not Found"),
        (409, "409 Conflict"),
        (412, "412 Precondition Failed"),
        (500, "500 Internal Server Error"),
    ] {
        assert_eq!(status_line(status), line);
    }
}

/// xorshift64*: enough randomness to shake the parsers, the same on every
/// run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a mutation writes: JSON's punctuation, and bytes that dateTimes,
/// numbers and UTF-8 trip over.
const ALPHABET: &[u8] = b"{}[]\":,09.-TZ+e\\ nul_x\x00\xff";

/// Reads `body` every way there is, mapping whatever reads.
fn shake(body: &[u8]) {
    let mappings = [location_mapping(), status_mapping()];
    let map_all = |encounter: &Encounter| {
        for mapping in &mappings {
            let _ = moments(encounter, mapping, Seoul);
            let _ = resource_key(encounter, mapping);
        }
        let _ = withdrawn(encounter);
    };
    match read_encounter(body) {
        Ok(encounter) => map_all(&encounter),
        Err(issues) => {
            let _ = operation_outcome(&issues);
        }
    }
    if let Ok(bundle) = read_bundle(body) {
        for (i, entry) in bundle.entry.iter().enumerate() {
            if let Ok(encounter) = read_entry(i, entry) {
                map_all(&encounter);
            }
        }
    }
}

#[test]
fn garbage_never_panics() {
    let encounter = serde_json::to_vec(&encounter_json()).unwrap();
    let batch = bundle(
        "batch",
        vec![
            create(encounter_json()),
            create(json!({"resourceType": "Encounter"})),
        ],
    );
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);

    for body in [&encounter, &batch] {
        for end in 0..body.len() {
            shake(&body[..end]);
        }
        for _ in 0..2000 {
            let mut mutated = body.clone();
            for _ in 0..=noise.below(4) {
                let at = noise.below(mutated.len());
                mutated[at] = ALPHABET[noise.below(ALPHABET.len())];
            }
            shake(&mutated);
        }
    }
    for _ in 0..500 {
        let body: Vec<u8> = (0..noise.below(64)).map(|_| noise.next() as u8).collect();
        shake(&body);
    }
    for deep in ["[".repeat(100_000), "{\"a\":".repeat(100_000)] {
        shake(deep.as_bytes());
    }
}
