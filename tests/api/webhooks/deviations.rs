//! Journeys that close off the designed cycle open one DEVIATION case each,
//! and say so to the webhooks.

use std::time::Duration;

use prost_types::{FieldMask, Timestamp};
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    Org, Receiver, TestApp, encounter, feedback, keyed, minutes_ago, spawn_app_with, verified,
    webhook_to,
};

const WAIT: Duration = Duration::from_secs(20);

/// An organisation whose designed cycle is booking (10), reception (20),
/// consult (30) and payment (40), all key and routine, with a complaint
/// desk (key, exceptional) beside; its deviation checks as `checks`.
async fn clinic(app: &TestApp, checks: &[pb::DeviationCheck]) -> Org {
    let org = app.create_org("Clinic").await;
    for (code, position) in [
        ("booking", 10),
        ("reception", 20),
        ("consult", 30),
        ("payment", 40),
    ] {
        app.create_touchpoint(&org.admin_key, keyed(code, position, true))
            .await;
    }
    app.create_touchpoint(
        &org.admin_key,
        pb::Touchpoint {
            occurrence: pb::Occurrence::Exceptional.into(),
            ..keyed("complaint-desk", 0, true)
        },
    )
    .await;
    app.organisations()
        .await
        .update_organisation(crate::helpers::authed(
            &org.admin_key,
            pb::UpdateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    deviation_checks: checks.iter().map(|c| (*c).into()).collect(),
                    journey_idle_time: Some(prost_types::Duration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["deviation_checks".into(), "journey_idle_time".into()],
                }),
            },
        ))
        .await
        .expect("update_organisation failed");
    org
}

const BOTH: &[pb::DeviationCheck] = &[
    pb::DeviationCheck::SkippedKeyTouchpoint,
    pb::DeviationCheck::KeyStepOutOfOrder,
];

/// Records `codes` in `journey`, a minute apart, starting `start`.
async fn journey(app: &TestApp, key: &str, journey: &str, codes: &[&str], start: Timestamp) {
    for (n, code) in codes.iter().enumerate() {
        app.recorded(
            key,
            pb::Encounter {
                journey_id: journey.into(),
                occur_time: Some(Timestamp {
                    seconds: start.seconds + 60 * n as i64,
                    nanos: 0,
                }),
                satisfaction: Some(5),
                ..encounter(code, "emr", &format!("{journey}-{n}"))
            },
        )
        .await;
    }
}

async fn deviation_cases(app: &TestApp, key: &str) -> Vec<pb::RecoveryCase> {
    app.list_cases(
        key,
        pb::ListRecoveryCasesRequest {
            kind: pb::RecoveryCaseKind::Deviation.into(),
            ..Default::default()
        },
    )
    .await
}

#[tokio::test]
async fn feedback_closes_a_journey_and_a_deviating_one_opens_one_case() {
    let app = spawn_app_with(|_| {}).await;
    let org = clinic(&app, BOTH).await;
    let key = org.admin_key.as_str();
    let receiver = Receiver::start().await;
    let (_, secret) = app
        .create_webhook(
            key,
            webhook_to(
                &receiver.url(),
                &["recovery_case.opened", "journey.deviated"],
            ),
        )
        .await;
    // The checks were on before these visits began.
    app.as_owner(
        org.id,
        "update organisation set deviation_checks_start_time = now() - interval '1 hour'",
    )
    .await;

    journey(
        &app,
        key,
        "v-off",
        &["booking", "consult", "reception"],
        minutes_ago(30),
    )
    .await;
    journey(
        &app,
        key,
        "v-fine",
        &[
            "booking",
            "reception",
            "complaint-desk",
            "consult",
            "payment",
        ],
        minutes_ago(30),
    )
    .await;
    let given = feedback(4);
    for visit in ["v-off", "v-fine"] {
        app.record_feedback(key, visit, given.clone())
            .await
            .unwrap();
    }
    // A replayed feedback changes nothing.
    let replay = app.record_feedback(key, "v-off", given).await.unwrap();
    assert!(replay.duplicate);

    let deliveries = receiver.wait_for(2, WAIT).await;
    let events = verified(&secret, &deliveries);
    assert_eq!(events[0].kind(), "recovery_case.opened");
    assert_eq!(events[1].kind(), "journey.deviated");
    let data = events[1].data();
    assert_eq!(data["kind"], "deviation");
    assert_eq!(data["closed_by"], "feedback");
    assert_eq!(data["touchpoint_code"], "reception");
    assert!(data.get("encounter_id").is_none());
    assert_eq!(
        data["reasons"],
        serde_json::json!([
            "key touchpoint reception (cycle position 20) came after consult (cycle position 30)",
            "skipped key touchpoint payment"
        ])
    );
    assert!(!String::from_utf8_lossy(&deliveries[1].body).contains("v-off"));

    let cases = deviation_cases(&app, key).await;
    assert_eq!(cases.len(), 1);
    let case = &cases[0];
    assert_eq!(case.kind, pb::RecoveryCaseKind::Deviation as i32);
    assert_eq!(case.journey_id, "v-off");
    assert!(case.encounter_id.is_empty());
    assert_eq!(case.id, data["recovery_case_id"].as_str().unwrap());
    assert!(case.due_time.is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.deliveries().len(), 2);
}

#[tokio::test]
async fn an_idle_journey_closes_by_the_sweep_once_whichever_server_sweeps() {
    let app = spawn_app_with(|s| s.sweep_interval = Duration::from_millis(200)).await;
    let org = clinic(&app, &[pb::DeviationCheck::SkippedKeyTouchpoint]).await;
    let key = org.admin_key.as_str();
    // The checks were switched on three hours ago; the journey went quiet
    // two hours ago, longer than the idle hour.
    app.as_owner(
        org.id,
        "update organisation set deviation_checks_start_time = now() - interval '3 hours'",
    )
    .await;
    let _replica = app
        .second_server(|s| s.sweep_interval = Duration::from_millis(200))
        .await;
    journey(
        &app,
        key,
        "v-idle",
        &["booking", "reception"],
        minutes_ago(125),
    )
    .await;
    // Before the checks were on: not checked.
    journey(&app, key, "v-old", &["booking"], minutes_ago(300)).await;
    // Still going: not closed.
    journey(&app, key, "v-now", &["booking"], minutes_ago(5)).await;

    let mut cases = Vec::new();
    for _ in 0..100 {
        cases = deviation_cases(&app, key).await;
        if !cases.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let cases_now = deviation_cases(&app, key).await;
    assert_eq!(cases_now.len(), 1, "{cases_now:?}");
    assert_eq!(cases[0].journey_id, "v-idle");
    assert_eq!(
        cases[0].failure_reasons,
        [
            "skipped key touchpoint consult",
            "skipped key touchpoint payment"
        ]
    );
}

#[tokio::test]
async fn without_deviation_checks_journeys_open_nothing() {
    let app = spawn_app_with(|_| {}).await;
    let org = clinic(&app, &[]).await;
    let key = org.admin_key.as_str();
    journey(&app, key, "v-1", &["consult", "booking"], minutes_ago(30)).await;
    app.record_feedback(key, "v-1", feedback(2)).await.unwrap();
    assert!(deviation_cases(&app, key).await.is_empty());
    let organisation = app
        .organisations()
        .await
        .get_organisation(crate::helpers::authed(
            key,
            pb::GetOrganisationRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .organisation
        .unwrap();
    assert!(organisation.deviation_checks_start_time.is_none());
    assert_eq!(organisation.journey_idle_time.unwrap().seconds, 3600);
}
