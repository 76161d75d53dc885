//! FHIR R4 Encounters and Bundles through the FHIR door: what each stores
//! and how FHIR is answered.

use serde_json::Value;
use verdad::{domain::role::Role, proto::verdad::v1 as pb};

use crate::helpers::{Org, TestApp, demo_fhir_feed, external_ids, fhir_file, spawn_app};

async fn demo_with_fhir_feed(app: &TestApp) -> String {
    let key = app.demo_key().await;
    app.create_feed(&key, demo_fhir_feed()).await;
    key
}

async fn stored(app: &TestApp, key: &str) -> Vec<pb::Encounter> {
    app.list_encounters(key, pb::ListEncountersRequest::default())
        .await
}

fn issue_codes(outcome: &Value) -> Vec<String> {
    outcome["issue"]
        .as_array()
        .map(|issues| {
            issues
                .iter()
                .map(|i| i["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_encounter_stores_one_moment_per_mapped_location_once() {
    let app = spawn_app().await;
    let key = demo_with_fhir_feed(&app).await;

    let created = app
        .fhir_post(
            &key,
            "/Encounter",
            Some("ehr-fhir"),
            fhir_file("encounter.json"),
        )
        .await;

    assert_eq!(created.status, 201, "{:?}", created.body);
    assert!(created.content_type.starts_with("application/fhir+json"));
    assert_eq!(created.body["resourceType"], "OperationOutcome");
    let encounters = stored(&app, &key).await;
    let mut touchpoints: Vec<(String, String)> = encounters
        .iter()
        .map(|e| (e.touchpoint_code.clone(), e.journey_id.clone()))
        .collect();
    touchpoints.sort();
    assert_eq!(
        touchpoints,
        [
            ("consultation-room".to_owned(), "V2001".to_owned()),
            ("reception-desk".to_owned(), "V2001".to_owned()),
            ("waiting-area".to_owned(), "V2001".to_owned()),
        ]
    );
    assert!(
        encounters
            .iter()
            .all(|e| e.source == "ehr-fhir" && e.has_customer_ref)
    );
    assert!(
        encounters
            .iter()
            .all(|e| e.staff_ref == "Practitioner/nurse-5")
    );
    let by_patient = app
        .list_encounters(
            &key,
            pb::ListEncountersRequest {
                customer_ref: "MRN2001".into(),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(by_patient.len(), 3);

    // The same resource again: the same keys, nothing stored twice.
    let again = app
        .fhir_post(
            &key,
            "/Encounter",
            Some("ehr-fhir"),
            fhir_file("encounter.json"),
        )
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    let mut before = external_ids(&encounters);
    let mut after = external_ids(&stored(&app, &key).await);
    before.sort();
    after.sort();
    assert_eq!(before, after);
}

#[tokio::test]
async fn an_encounter_entered_in_error_withdraws_its_moments() {
    let app = spawn_app().await;
    let key = demo_with_fhir_feed(&app).await;
    app.fhir_post(
        &key,
        "/Encounter",
        Some("ehr-fhir"),
        fhir_file("encounter.json"),
    )
    .await;
    assert_eq!(stored(&app, &key).await.len(), 3);

    let withdrawn = app
        .fhir_post(
            &key,
            "/Encounter",
            Some("ehr-fhir"),
            fhir_file("entered_in_error.json"),
        )
        .await;

    assert_eq!(withdrawn.status, 200, "{:?}", withdrawn.body);
    assert!(stored(&app, &key).await.is_empty());

    // A late resend of the earlier version does not bring them back.
    let late = app
        .fhir_post(
            &key,
            "/Encounter",
            Some("ehr-fhir"),
            fhir_file("encounter.json"),
        )
        .await;
    assert_eq!(late.status, 200, "{:?}", late.body);
    assert!(stored(&app, &key).await.is_empty());
}

#[tokio::test]
async fn a_malformed_encounter_is_answered_with_the_element_at_fault() {
    let app = spawn_app().await;
    let key = demo_with_fhir_feed(&app).await;

    let refused = app
        .fhir_post(
            &key,
            "/Encounter",
            Some("ehr-fhir"),
            fhir_file("wrong_type.json"),
        )
        .await;

    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.body["resourceType"], "OperationOutcome");
    assert_eq!(
        refused.body["issue"][0]["expression"][0],
        "Encounter.location[1].period.start"
    );
    assert!(!refused.body.to_string().contains("MRN2001"));
    assert!(stored(&app, &key).await.is_empty());

    let garbage = app
        .fhir_post(
            &key,
            "/Encounter",
            Some("ehr-fhir"),
            b"{\"resourceType\":".to_vec(),
        )
        .await;
    assert_eq!(garbage.status, 400);
    assert_eq!(issue_codes(&garbage.body), ["structure"]);
}

#[tokio::test]
async fn a_batch_answers_each_entry_on_its_own() {
    let app = spawn_app().await;
    let key = demo_with_fhir_feed(&app).await;

    let answer = app
        .fhir_post(&key, "", Some("ehr-fhir"), fhir_file("batch.json"))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["type"], "batch-response");
    let statuses: Vec<&str> = answer.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses[0], "201 Created");
    assert!(statuses[1].starts_with('4'), "{statuses:?}");
    assert_eq!(statuses[2], "201 Created");
    let mut journeys: Vec<String> = stored(&app, &key)
        .await
        .into_iter()
        .map(|e| e.journey_id)
        .collect();
    journeys.sort();
    assert_eq!(journeys, ["V3001", "V3002"]);
}

#[tokio::test]
async fn a_transaction_stores_all_or_nothing() {
    let app = spawn_app().await;
    let key = demo_with_fhir_feed(&app).await;

    let refused = app
        .fhir_post(
            &key,
            "",
            Some("ehr-fhir"),
            fhir_file("transaction_with_a_fault.json"),
        )
        .await;
    assert!(refused.status >= 400, "{:?}", refused.body);
    assert_eq!(refused.body["resourceType"], "OperationOutcome");
    let expression = refused.body["issue"][0]["expression"][0]
        .as_str()
        .unwrap_or("");
    assert!(
        expression.starts_with("Bundle.entry[1]"),
        "{:?}",
        refused.body
    );
    assert!(stored(&app, &key).await.is_empty());

    let done = app
        .fhir_post(&key, "", Some("ehr-fhir"), fhir_file("transaction.json"))
        .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.body["type"], "transaction-response");
    assert_eq!(stored(&app, &key).await.len(), 2);
}

#[tokio::test]
async fn the_door_refuses_as_fhir_does() {
    let app = spawn_app().await;
    let key = demo_with_fhir_feed(&app).await;
    let encounter = || fhir_file("encounter.json");

    // No feed named, a feed of another kind, an unknown feed.
    let none = app.fhir_post(&key, "/Encounter", None, encounter()).await;
    assert_eq!(none.status, 400);
    app.create_feed(&key, crate::helpers::demo_adt_feed()).await;
    let hl7 = app
        .fhir_post(&key, "/Encounter", Some("adt"), encounter())
        .await;
    assert_eq!(hl7.status, 422, "{:?}", hl7.body);
    let unknown = app
        .fhir_post(&key, "/Encounter", Some("nope"), encounter())
        .await;
    assert_eq!(unknown.status, 404);

    // No key, an analyst's key.
    let anonymous = app
        .fhir_post("vd_nope", "/Encounter", Some("ehr-fhir"), encounter())
        .await;
    assert_eq!(anonymous.status, 401);
    let demo = Org {
        id: verdad::demo::DEMO_ORGANISATION_ID,
        admin_key: key.clone(),
    };
    let analyst = app.key(&demo, Role::Analyst).await;
    let denied = app
        .fhir_post(&analyst, "/Encounter", Some("ehr-fhir"), encounter())
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body["resourceType"], "OperationOutcome");

    // An ingest key may send.
    let ingest = app.key(&demo, Role::Ingest).await;
    let sent = app
        .fhir_post(&ingest, "/Encounter", Some("ehr-fhir"), encounter())
        .await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);

    // What the door does not do.
    let other = app
        .fhir_post(&key, "/Patient", Some("ehr-fhir"), b"{}".to_vec())
        .await;
    assert_eq!(other.status, 404);
    let metadata: Value = reqwest::get(format!("http://{}/fhir/r4/metadata", app.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resourceType"], "CapabilityStatement");
    assert_eq!(metadata["fhirVersion"], "4.0.1");
}

#[tokio::test]
async fn a_key_of_one_organisation_never_stores_through_anothers_feed() {
    let app = spawn_app().await;
    let a_key = demo_with_fhir_feed(&app).await;
    let (b, _desk) = app.org_with_desk().await;
    let b_ingest = app.key(&b, Role::Ingest).await;

    let answer = app
        .fhir_post(
            &b_ingest,
            "/Encounter",
            Some("ehr-fhir"),
            fhir_file("encounter.json"),
        )
        .await;

    assert_eq!(answer.status, 404, "{:?}", answer.body);
    assert!(stored(&app, &a_key).await.is_empty());
    assert!(stored(&app, &b.admin_key).await.is_empty());
}

#[tokio::test]
async fn a_preview_maps_an_encounter_and_stores_nothing() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let feed = app.create_feed(&key, demo_fhir_feed()).await;
    let preview = |message: Vec<u8>| {
        let app = &app;
        let key = &key;
        let feed_id = feed.id.clone();
        async move {
            app.feeds()
                .await
                .preview_feed_message(crate::helpers::authed(
                    key,
                    pb::PreviewFeedMessageRequest {
                        feed_id,
                        message: String::from_utf8(message).unwrap(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };

    let stores = preview(fhir_file("encounter.json")).await;
    assert_eq!(
        (stores.acknowledgement.as_str(), stores.outcome.as_str()),
        ("201", "store")
    );
    assert_eq!(stores.encounters.len(), 3);
    assert!(stores.encounters.iter().all(|e| e.journey_id == "V2001"));

    let refused = preview(fhir_file("wrong_type.json")).await;
    assert_eq!(
        (refused.acknowledgement.as_str(), refused.outcome.as_str()),
        ("400", "reject")
    );
    assert_eq!(
        refused.rejection.unwrap().segment,
        "Encounter.location[1].period.start"
    );
    assert!(stored(&app, &key).await.is_empty());
}
