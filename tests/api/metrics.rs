//! Prometheus metrics on their own port: calls by method and code with
//! their latency, encounters by fate, recovery cases, the pool.

use std::{net::SocketAddr, time::Duration};

use sqlx::Executor;
use tonic::Code;
use verdad::proto::verdad::v1::{
    self as pb, analysis_service_client::AnalysisServiceClient,
    encounter_service_client::EncounterServiceClient,
};

use crate::helpers::{
    ServeProcess, authed, dissatisfied, encounter, fixture_day, free_addr, http_get, spawn_app,
    touchpoint,
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

/// Scrapes `addr` until the sample of `name` with `labels` reaches
/// `at_least`, for some five seconds; returns the last value read.
async fn until_sample(addr: SocketAddr, name: &str, labels: &[&str], at_least: f64) -> Option<f64> {
    let mut value = None;
    for _ in 0..500 {
        value = sample(&http_get(addr, "/metrics").await, name, labels);
        if value >= Some(at_least) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    value
}

#[tokio::test]
async fn calls_encounters_cases_and_the_pool_are_counted() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
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
    // Calls without a key to paths the server does not have: refused
    // before routing, and counted under one name whatever they sent.
    let mut raw = tonic::client::Grpc::new(server.channel().await);
    for n in 0..20 {
        raw.ready().await.unwrap();
        let path = format!("/made.up.Service{n}/Method{n}").parse().unwrap();
        let refused = raw
            .unary::<(), (), _>(
                tonic::Request::new(()),
                path,
                tonic_prost::ProstCodec::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
    // Over HTTP: a call the door makes, and two it refuses itself.
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    for path in ["/v1/touchpoints", "/v1/nowhere"] {
        http.get(format!("{base}{path}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
    }
    http.post(format!("{base}/v1/encounters"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"satisfaction\": \"high\"}")
        .send()
        .await
        .unwrap();
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
    assert_eq!(
        sample(
            &metrics,
            "verdad_grpc_calls_total",
            &[record_calls, "code=\"Ok\"", "door=\"grpc\""]
        ),
        Some(3.0)
    );
    let by_http = |method: &str, code: &str| {
        sample(
            &metrics,
            "verdad_grpc_calls_total",
            &[method, &format!("code=\"{code}\""), "door=\"http\""],
        )
    };
    assert_eq!(
        by_http(
            "method=\"/verdad.v1.TouchpointService/ListTouchpoints\"",
            "Ok"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(by_http("method=\"unimplemented\"", "NotFound"), Some(1.0));
    assert_eq!(by_http(record_calls, "InvalidArgument"), Some(1.0));
    assert_eq!(calls("InvalidArgument"), Some(1.0));
    assert_eq!(calls("Unauthenticated"), Some(1.0));
    assert!(!metrics.contains("made.up"), "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "verdad_grpc_calls_total",
            &["method=\"unimplemented\"", "code=\"Unauthenticated\""]
        ),
        Some(20.0)
    );
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
    // No lanes are limited by default, so no wait for one is measured.
    assert!(!metrics.contains("verdad_lane_"), "{metrics}");
    assert!(!metrics.contains(&key), "a key in the metrics");

    // Neither the metrics nor the log carry the key or the customer.
    assert!(server.terminate().await.success());
    let log = server.log();
    assert!(log.contains("RecordEncounter"), "{log}");
    assert!(!log.contains("made.up"), "a made-up path was logged");
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

#[tokio::test]
async fn waits_for_a_bulk_lane_are_counted_and_timed() {
    let app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let key = org.admin_key.clone();
    let desk = app.create_touchpoint(&key, touchpoint("desk")).await;
    let metrics_addr = free_addr();
    let server = ServeProcess::start(
        &app.database_url,
        &[
            "--metrics-addr",
            &metrics_addr.to_string(),
            "--bulk-lanes",
            "1",
        ],
    )
    .await;
    let channel = server.channel().await;
    let lane = |work: &str| format!("lanes=\"bulk_lanes\",work=\"{work}\"");
    let metric = async |name: &str, work: &str| {
        let metrics = http_get(metrics_addr, "/metrics").await;
        sample(&metrics, name, &[&lane(work)])
    };

    // A stream's batch takes the only lane, then waits on the desk's row;
    // an analysis waits for the lane meanwhile.
    let mut owner = app.hold_touchpoint(&desk.id).await;
    let batch = vec![pb::IngestEncountersRequest {
        encounters: vec![encounter("desk", "his", "streamed-1")],
    }];
    let mut encounters = EncounterServiceClient::new(channel.clone());
    let stream = encounters.ingest_encounters(authed(&key, tokio_stream::iter(batch)));
    let mut analyses = AnalysisServiceClient::new(channel);
    let held_for = Duration::from_millis(400);
    let beside = async {
        app.until_a_statement_waits_for_a_lock().await;
        let analysis = analyses.get_scorecard(authed(
            &key,
            pb::GetScorecardRequest {
                scope: Some(fixture_day()),
            },
        ));
        let release = async {
            let analysis = lane("analysis");
            let waiting =
                until_sample(metrics_addr, "verdad_lane_waiting", &[&analysis], 1.0).await;
            assert_eq!(waiting, Some(1.0), "the analysis is not counted as waiting");
            tokio::time::sleep(held_for).await;
            owner.execute("rollback").await.unwrap();
        };
        tokio::join!(analysis, release).0
    };
    let (streamed, analysed) = tokio::join!(stream, beside);
    assert_eq!(streamed.unwrap().into_inner().accepted, 1);
    assert_eq!(analysed.unwrap().into_inner().total.unwrap().encounters, 1);

    let wait = "verdad_lane_wait_duration_seconds";
    assert_eq!(metric("verdad_lane_waiting", "analysis").await, Some(0.0));
    assert_eq!(
        metric(&format!("{wait}_count"), "analysis").await,
        Some(1.0)
    );
    let waited = metric(&format!("{wait}_sum"), "analysis").await.unwrap();
    assert!(waited >= held_for.as_secs_f64(), "waited {waited} s");
    assert_eq!(
        metric(&format!("{wait}_count"), "stream_batch").await,
        Some(1.0)
    );
    // The server's own fold of the batch takes a lane too, some 50 ms on.
    let folds = until_sample(
        metrics_addr,
        &format!("{wait}_count"),
        &[&lane("fold")],
        1.0,
    )
    .await;
    assert!(folds >= Some(1.0), "no fold's wait counted");
}
