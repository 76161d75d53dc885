//! Overdue cases: told once, escalated up the organisation's ladder until
//! someone acknowledges them, and counted in the recovery performance.

use std::time::Duration;

use prost_types::FieldMask;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use crate::helpers::{
    ALL_EVENTS, Event, Receiver, TestApp, authed, dissatisfied, spawn_app_with, verified,
    violated_fields, webhook_to,
};

const WAIT: Duration = Duration::from_secs(20);

fn step(hours: i64, to: &str) -> pb::EscalationStep {
    pb::EscalationStep {
        delay: Some(prost_types::Duration {
            seconds: hours * 3600,
            nanos: 0,
        }),
        escalate_to: to.into(),
    }
}

async fn set_ladder(app: &TestApp, key: &str, ladder: Vec<pb::EscalationStep>) -> pb::Organisation {
    app.organisations()
        .await
        .update_organisation(authed(
            key,
            pb::UpdateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    escalation_ladder: ladder,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["escalation_ladder".into()],
                }),
            },
        ))
        .await
        .expect("update_organisation failed")
        .into_inner()
        .organisation
        .unwrap()
}

fn of_case<'a>(events: &'a [Event], case: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.data()["recovery_case_id"] == case)
        .collect()
}

#[tokio::test]
async fn an_overdue_case_is_told_once_and_climbs_the_ladder_until_acknowledged() {
    let app = spawn_app_with(|s| s.sweep_interval = Duration::from_millis(200)).await;
    let key = app.demo_key().await;
    let organisation = set_ladder(
        &app,
        &key,
        vec![step(1, "charge-nurse"), step(2, "ward-manager")],
    )
    .await;
    assert_eq!(organisation.escalation_ladder.len(), 2);
    let receiver = Receiver::start().await;
    let (_, secret) = app
        .create_webhook(&key, webhook_to(&receiver.url(), ALL_EVENTS))
        .await;

    app.recorded(&key, dissatisfied("reception-desk", "his", "e-1"))
        .await;
    app.recorded(&key, dissatisfied("pharmacy", "his", "e-2"))
        .await;
    let cases = app.all_cases(&key).await;
    let (climbing, acknowledged) = (cases[1].id.clone(), cases[0].id.clone());
    app.recovery()
        .await
        .acknowledge_recovery_case(authed(
            &key,
            pb::AcknowledgeRecoveryCaseRequest {
                id: acknowledged.clone(),
            },
        ))
        .await
        .unwrap();
    // Both were due three and a half hours ago: past both steps.
    app.age_cases(24 + 3).await;
    tokio::time::sleep(Duration::from_millis(1800)).await;

    let deliveries = receiver.wait_for(7, WAIT).await;
    let events = verified(&secret, &deliveries);
    let kinds = |case: &str| -> Vec<String> {
        of_case(&events, case)
            .iter()
            .map(|e| e.kind().to_owned())
            .collect()
    };
    assert_eq!(
        kinds(&climbing),
        [
            "recovery_case.opened",
            "recovery_case.overdue",
            "recovery_case.escalated",
            "recovery_case.escalated"
        ]
    );
    assert_eq!(
        kinds(&acknowledged),
        [
            "recovery_case.opened",
            "recovery_case.updated",
            "recovery_case.overdue"
        ],
        "an acknowledged case is overdue but does not escalate"
    );
    let steps: Vec<(i64, String)> = of_case(&events, &climbing)
        .iter()
        .filter(|e| e.kind() == "recovery_case.escalated")
        .map(|e| {
            (
                e.data()["escalation_level"].as_i64().unwrap(),
                e.data()["escalated_to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (1, "charge-nurse".to_owned()),
            (2, "ward-manager".to_owned())
        ]
    );
    let case = app.get_case(&key, &climbing).await.unwrap();
    assert_eq!(case.escalation_level, 2);
    assert_eq!(case.escalated_to, "ward-manager");
    assert!(case.escalate_time.is_some() && case.overdue);

    // More sweeps tell nothing more.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.deliveries().len(), 7);

    // The recovery performance counts acknowledgements and escalations.
    let figures = app
        .analyses()
        .await
        .get_recovery_performance(authed(
            &key,
            pb::GetRecoveryPerformanceRequest {
                scope: Some(pb::AnalysisScope::default()),
                acknowledge_within: Some(prost_types::Duration {
                    seconds: 3600,
                    nanos: 0,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(figures.opened, 2);
    let within = figures.acknowledged_within.unwrap();
    assert_eq!((within.numerator, within.denominator), (1, 2));
    assert_eq!(figures.seconds_to_acknowledge.unwrap().count, 1);
    let escalated = figures.escalated.unwrap();
    assert_eq!((escalated.numerator, escalated.denominator), (1, 2));
    assert_eq!(figures.escalations, 2);
}

#[tokio::test]
async fn a_ladder_is_checked_step_by_step() {
    let app = spawn_app_with(|_| {}).await;
    let key = app.demo_key().await;
    let refused = app
        .organisations()
        .await
        .update_organisation(authed(
            &key,
            pb::UpdateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    escalation_ladder: vec![
                        step(1, "charge-nurse"),
                        pb::EscalationStep {
                            delay: None,
                            escalate_to: "director".into(),
                        },
                        pb::EscalationStep {
                            delay: Some(prost_types::Duration {
                                seconds: 30,
                                nanos: 0,
                            }),
                            escalate_to: String::new(),
                        },
                    ],
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["escalation_ladder".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&refused),
        [
            "organisation.escalation_ladder[1].delay",
            "organisation.escalation_ladder[2].delay",
        ]
    );
    let acknowledged_missing = app
        .recovery()
        .await
        .acknowledge_recovery_case(authed(
            &key,
            pb::AcknowledgeRecoveryCaseRequest {
                id: uuid::Uuid::now_v7().to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(acknowledged_missing.code(), Code::NotFound);
}

#[tokio::test]
async fn acknowledging_is_once_and_a_resolved_case_cannot_be() {
    let app = spawn_app_with(|_| {}).await;
    let key = app.demo_key().await;
    app.recorded(&key, dissatisfied("reception-desk", "his", "k-1"))
        .await;
    let case = app.all_cases(&key).await.remove(0);
    let mut recovery = app.recovery().await;
    let acknowledge = || {
        authed(
            &key,
            pb::AcknowledgeRecoveryCaseRequest {
                id: case.id.clone(),
            },
        )
    };
    let first = recovery
        .acknowledge_recovery_case(acknowledge())
        .await
        .unwrap()
        .into_inner()
        .recovery_case
        .unwrap();
    let again = recovery
        .acknowledge_recovery_case(acknowledge())
        .await
        .unwrap()
        .into_inner()
        .recovery_case
        .unwrap();
    assert!(first.acknowledge_time.is_some());
    assert_eq!(again.acknowledge_time, first.acknowledge_time);
    app.update_case(
        &key,
        pb::RecoveryCase {
            id: case.id.clone(),
            status: pb::RecoveryStatus::Resolved.into(),
            resolution_note: "Apologised".into(),
            ..Default::default()
        },
        &["status", "resolution_note"],
    )
    .await
    .unwrap();
    let refused = recovery
        .acknowledge_recovery_case(acknowledge())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
}
