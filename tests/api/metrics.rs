//! Prometheus metrics on their own port: calls by method and code with
//! their latency, encounters by fate, recovery cases, the pool.

use tonic::Code;
use verdad::proto::verdad::v1::{self as pb, encounter_service_client::EncounterServiceClient};

use crate::{
    encounters::{demo_key, dissatisfied, encounter},
    helpers::{authed, spawn_app},
    process::{ServeProcess, free_addr, http_get},
};

/// The value of the sample whose line starts with `name` and holds every
/// one of `labels`; None when there is none.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.split(['{', ' ']).next() == Some(name))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn calls_encounters_cases_and_the_pool_are_counted() {
    let app = spawn_app().await;
    let key = demo_key(&app).await;
    let metrics_addr = free_addr();
    let mut server = ServeProcess::start(
        &app.database_url,
        &[
            "--metrics-addr",
            &metrics_addr.to_string(),
            "--db-max-connections",
            "3",
        ],
    )
    .await;
    let mut client = EncounterServiceClient::new(server.channel().await);
    let record =
        |encounter: Option<pb::Encounter>| authed(&key, pb::RecordEncounterRequest { encounter });
    client
        .record_encounter(record(Some(encounter("reception-desk", "his", "1"))))
        .await
        .unwrap();
    let again = client
        .record_encounter(record(Some(encounter("reception-desk", "his", "1"))))
        .await
        .unwrap();
    assert!(again.into_inner().duplicate);
    let customer = pb::Encounter {
        customer_ref: "patient-4711".into(),
        ..dissatisfied("reception-desk", "his", "2")
    };
    client
        .record_encounter(record(Some(customer)))
        .await
        .unwrap();
    let refused = client.record_encounter(record(None)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let stranger = client
        .record_encounter(authed(
            "vk_not_a_real_key",
            pb::RecordEncounterRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::Unauthenticated);
    // The pool's gauges are read every second.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let metrics = http_get(metrics_addr, "/metrics").await;
    let record_calls = "method=\"/verdad.v1.EncounterService/RecordEncounter\"";
    let calls = |code: &str| {
        sample(
            &metrics,
            "verdad_grpc_calls_total",
            &[record_calls, &format!("code=\"{code}\"")],
        )
    };
    assert_eq!(calls("Ok"), Some(3.0), "{metrics}");
    assert_eq!(calls("InvalidArgument"), Some(1.0));
    assert_eq!(calls("Unauthenticated"), Some(1.0));
    assert_eq!(
        sample(
            &metrics,
            "verdad_grpc_call_duration_seconds_count",
            &[record_calls, "code=\"Ok\""]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "verdad_grpc_call_duration_seconds_bucket",
            &[record_calls, "code=\"Ok\"", "le=\"30\""]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(&metrics, "verdad_encounters_ingested_total", &[]),
        Some(2.0)
    );
    assert_eq!(
        sample(&metrics, "verdad_encounters_duplicated_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "verdad_encounters_rejected_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "verdad_recovery_cases_opened_total", &[]),
        Some(1.0)
    );
    // Three calls one after another: three batches of one.
    assert_eq!(
        sample(&metrics, "verdad_record_batch_calls_count", &[]),
        Some(3.0)
    );
    assert_eq!(
        sample(&metrics, "verdad_record_batch_calls_bucket", &["le=\"1\""]),
        Some(3.0)
    );
    assert_eq!(
        sample(&metrics, "verdad_db_pool_max_connections", &[]),
        Some(3.0)
    );
    let in_use = sample(
        &metrics,
        "verdad_db_pool_connections",
        &["state=\"in_use\""],
    );
    let idle = sample(&metrics, "verdad_db_pool_connections", &["state=\"idle\""]);
    assert!(matches!((in_use, idle), (Some(u), Some(i)) if u + i >= 1.0 && u + i <= 3.0));
    assert_eq!(sample(&metrics, "verdad_db_pool_waiting", &[]), Some(0.0));
    assert!(!metrics.contains(&key), "a key in the metrics");

    // Neither the metrics nor the log carry the key or the customer.
    assert!(server.terminate().await.success());
    let log = server.log();
    assert!(log.contains("RecordEncounter"), "{log}");
    assert!(!log.contains(&key), "the key was logged");
    assert!(
        !log.contains("vk_not_a_real_key"),
        "a presented key was logged"
    );
    assert!(
        !log.contains("patient-4711"),
        "a customer reference was logged"
    );
}
