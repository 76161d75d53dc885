//! EraseCustomer: every journey the customer appears in goes, with its
//! feedback and cases; nothing else does.

use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    assert_error, dissatisfied, encounter, external_ids, feedback, spawn_app, violated_fields,
};

#[tokio::test]
async fn erasing_a_customer_deletes_every_journey_they_appear_in() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let key = &org.admin_key;
    let in_journey = |journey: &str, external_id: &str, customer: &str, satisfaction: i32| {
        let mut e = encounter("desk", "his", external_id);
        e.journey_id = journey.to_owned();
        e.customer_ref = customer.to_owned();
        e.satisfaction = Some(satisfaction);
        e
    };
    // J1: the customer (failing, so with a case), a companion without a
    // reference, and feedback.
    app.recorded(key, in_journey("j-1", "a", "cust-1", 1)).await;
    app.recorded(key, in_journey("j-1", "b", "", 5)).await;
    app.record_feedback(key, "j-1", feedback(2)).await.unwrap();
    // J2: the customer again.
    app.recorded(key, in_journey("j-2", "c", "cust-1", 4)).await;
    // J3: another customer, failing, with feedback.
    app.recorded(key, in_journey("j-3", "d", "cust-2", 1)).await;
    app.record_feedback(key, "j-3", feedback(1)).await.unwrap();
    // J4: feedback only.
    app.record_feedback(key, "j-4", feedback(5)).await.unwrap();
    assert_eq!(app.all_cases(key).await.len(), 2);

    let erased = app.erase(key, "cust-1").await.unwrap();

    assert_eq!(
        erased,
        pb::EraseCustomerResponse {
            encounters: 3,
            journeys: 2,
            journey_feedback: 1,
            recovery_cases: 1,
        }
    );
    let left = app.list_encounters(key, Default::default()).await;
    assert_eq!(external_ids(&left), ["d"]);
    for gone in ["j-1", "j-2"] {
        let status = app.get_journey(key, gone).await.unwrap_err();
        assert_error(&status, Code::NotFound, "NOT_FOUND");
    }
    let j3 = app.get_journey(key, "j-3").await.unwrap();
    assert_eq!(j3.encounter_count, 1);
    assert!(j3.feedback.is_some());
    let j4 = app.get_journey(key, "j-4").await.unwrap();
    assert!(j4.feedback.is_some());
    let cases = app.all_cases(key).await;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].journey_id, "j-3");
    assert!(
        app.list_encounters(
            key,
            pb::ListEncountersRequest {
                customer_ref: "cust-1".into(),
                ..Default::default()
            }
        )
        .await
        .is_empty()
    );

    // Erasing again finds nothing.
    let again = app.erase(key, "cust-1").await.unwrap();
    assert_eq!(again, pb::EraseCustomerResponse::default());
}

#[tokio::test]
async fn erasing_an_unknown_customer_erases_nothing() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let mut known = dissatisfied("desk", "his", "evt-1");
    known.customer_ref = "cust-1".into();
    app.recorded(&org.admin_key, known).await;
    app.recorded(&org.admin_key, encounter("desk", "his", "evt-2"))
        .await;

    let erased = app.erase(&org.admin_key, "cust-unknown").await.unwrap();

    assert_eq!(erased, pb::EraseCustomerResponse::default());
    assert_eq!(app.count_encounters(&org.admin_key).await, 2);
    assert_eq!(app.all_cases(&org.admin_key).await.len(), 1);
}

#[tokio::test]
async fn erasing_needs_a_customer_ref() {
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    app.recorded(&org.admin_key, encounter("desk", "his", "evt-1"))
        .await;

    let status = app.erase(&org.admin_key, "").await.unwrap_err();

    assert_eq!(violated_fields(&status), ["customer_ref"]);
    assert_eq!(app.count_encounters(&org.admin_key).await, 1);
}
