//! The three streams over HTTP: IngestEncounters as newline-delimited
//! JSON, WatchRecoveryCases as Server-Sent Events, ExportEventLog as the
//! file.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_stream::StreamExt;
use verdad::{proto::verdad::v1 as pb, store::PoolOptions};

use crate::helpers::{authed, default_pool_options, spawn_app, spawn_app_with_pool};

fn line(external_id: &str, touchpoint: &str, satisfaction: i32) -> Value {
    json!({"touchpointCode": touchpoint, "journeyId": format!("v-{external_id}"),
           "source": "kiosk", "externalId": external_id, "satisfaction": satisfaction,
           "occurTime": "2026-06-01T09:00:00Z"})
}

fn ndjson(batches: &[Vec<Value>]) -> String {
    batches
        .iter()
        .map(|encounters| format!("{}\n", json!({ "encounters": encounters })))
        .collect()
}

#[tokio::test]
async fn an_ndjson_body_is_a_stream_of_batches_with_per_item_rejections() {
    // Arrange
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let http = app.http(&org.admin_key);
    let body = ndjson(&[
        vec![line("a", "desk", 5), line("b", "desk", 1)],
        vec![line("c", "nowhere", 5)],
        vec![line("a", "desk", 5)],
    ]);

    // Act
    let summary = http
        .send_raw(
            Method::POST,
            "/v1/encounters:ingest",
            "application/x-ndjson",
            body,
        )
        .await;

    // Assert
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.text);
    let summary = summary.json;
    assert_eq!(summary["batches"], "3");
    assert_eq!(summary["accepted"], "2");
    assert_eq!(summary["duplicates"], "1");
    assert_eq!(summary["rejected"], "1");
    assert_eq!(summary["recoveryCasesOpened"], "1");
    assert_eq!(summary["rejections"][0]["batchIndex"], 1);
    assert_eq!(summary["rejections"][0]["code"], "NOT_FOUND");
    assert_eq!(app.count_encounters(&org.admin_key).await, 2);
}

#[tokio::test]
async fn a_line_that_is_not_a_batch_ends_the_stream_after_the_batches_before_it() {
    // Arrange
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let http = app.http(&org.admin_key);
    let body = format!(
        "{}\n{}\n",
        json!({"encounters": [line("a", "desk", 5)]}),
        json!({"encounters": [{"touchpointCode": "desk", "satisfaction": "high"}]})
    );

    // Act
    let refused = http
        .send_raw(
            Method::POST,
            "/v1/encounters:ingest",
            "application/x-ndjson",
            body,
        )
        .await;

    // Assert
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(
        refused.violated_fields(),
        ["batches[1].encounters[0].satisfaction"]
    );
    assert!(refused.text.contains("line 2"), "{}", refused.text);
    assert_eq!(app.count_encounters(&org.admin_key).await, 1);
}

#[tokio::test]
async fn one_json_batch_may_be_sent_as_application_json() {
    // Arrange
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let http = app.http(&org.admin_key);

    // Act
    let summary = http
        .post(
            "/v1/encounters:ingest",
            json!({"encounters": [line("a", "desk", 5), line("b", "desk", 4)]}),
        )
        .await;

    // Assert
    assert_eq!(summary.json["accepted"], "2", "{}", summary.text);
    assert_eq!(summary.json["batches"], "1");
}

#[tokio::test]
async fn a_watch_is_a_stream_of_server_sent_events() {
    // Arrange
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let http = app.http(&org.admin_key);
    let response = http
        .request(Method::GET, "/v1/recoveryCases:watch?touchpointCode=desk")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = response.bytes_stream();

    // Act: a failing encounter opens a case while the watch is open.
    let recorded = http.post("/v1/encounters", line("a", "desk", 1)).await;

    // Assert
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("\n\n") {
        let piece = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("no event within 10 s")
            .expect("the stream ended")
            .unwrap();
        text.push_str(std::str::from_utf8(&piece).unwrap());
    }
    let data = text
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap();
    let event: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        event["recoveryCase"]["encounterId"],
        recorded.json["encounter"]["id"]
    );
}

#[tokio::test]
async fn a_watch_that_cannot_begin_is_an_error_answer_not_a_stream() {
    // Arrange
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;

    // Act
    let refused = app
        .http(&org.admin_key)
        .get("/v1/recoveryCases:watch?touchpointCode=nowhere")
        .await;

    // Assert
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(refused.content_type, "application/json");
}

#[tokio::test]
async fn the_event_log_is_the_file_the_grpc_export_streams() {
    // Arrange
    let app = spawn_app().await;
    let (org, _desk) = app.org_with_desk().await;
    let http = app.http(&org.admin_key);
    http.post(
        "/v1/encounters:ingest",
        json!({"encounters": [line("a", "desk", 5), line("b", "desk", 4)]}),
    )
    .await;
    let scope = "scope.startTime=2026-01-01T00:00:00Z&scope.endTime=2027-01-01T00:00:00Z";
    let mut grpc = Vec::new();
    let mut pieces = app
        .analyses()
        .await
        .export_event_log(authed(
            &org.admin_key,
            pb::ExportEventLogRequest {
                scope: Some(pb::AnalysisScope {
                    start_time: Some(prost_types::Timestamp {
                        seconds: 1_767_225_600,
                        nanos: 0,
                    }),
                    end_time: Some(prost_types::Timestamp {
                        seconds: 1_798_761_600,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
                format: pb::EventLogFormat::Csv as i32,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    while let Some(piece) = pieces.message().await.unwrap() {
        grpc.extend_from_slice(&piece.chunk);
    }

    // Act
    let csv = http.get(&format!("/v1/analyses/eventLog?{scope}")).await;
    let xes = http
        .get(&format!(
            "/v1/analyses/eventLog?{scope}&format=EVENT_LOG_FORMAT_XES"
        ))
        .await;

    // Assert
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.content_type, "text/csv; charset=utf-8");
    assert_eq!(csv.text.as_bytes(), grpc.as_slice());
    assert_eq!(csv.text.lines().count(), 3);
    assert_eq!(xes.content_type, "application/xml; charset=utf-8");
    assert!(xes.text.starts_with("<?xml"), "{}", xes.text);
}

#[tokio::test]
async fn a_caller_that_leaves_mid_export_leaves_no_broken_connection_behind() {
    // Arrange: two connections, so the export's is soon another call's; and
    // a log of many pieces (XES is some 400 bytes an event), more than the
    // buffers between the database and the caller hold.
    let app = spawn_app_with_pool(
        PoolOptions {
            max_connections: 2,
            ..default_pool_options()
        },
        // The health probe would take the broken connection's one failure.
        |s| s.health_interval = Duration::from_secs(3600),
    )
    .await;
    let (org, _desk) = app.org_with_desk().await;
    let http = app.http(&org.admin_key);
    for batch in 0..12 {
        let encounters: Vec<Value> = (0..1000)
            .map(|i| line(&format!("{batch}-{i}"), "desk", 5))
            .collect();
        let summary = http
            .post("/v1/encounters:ingest", json!({ "encounters": encounters }))
            .await;
        assert_eq!(summary.json["accepted"], "1000", "{}", summary.text);
    }

    // Act: read the first piece of the export, then hang up.
    let response = http
        .request(
            Method::GET,
            "/v1/analyses/eventLog?scope.startTime=2026-01-01T00:00:00Z\
             &format=EVENT_LOG_FORMAT_XES",
        )
        .send()
        .await
        .unwrap();
    let mut pieces = response.bytes_stream();
    assert!(pieces.next().await.unwrap().is_ok());
    drop(pieces);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Assert: every later call is answered.
    for _ in 0..10 {
        let listed = http.get("/v1/touchpoints").await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
        let recorded = http.get("/v1/recoveryCases").await;
        assert_eq!(recorded.status, StatusCode::OK, "{}", recorded.text);
    }
}
