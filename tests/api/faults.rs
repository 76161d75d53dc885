//! Faults: the server stopped mid-stream, the database gone and back.
//! Whatever happens, a batch is stored whole or not at all, and a sender
//! that resends after an error ends with every encounter stored once.

use std::time::Duration;

use sqlx::Row;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use uuid::Uuid;
use verdad::{
    proto::verdad::v1::{
        self as pb, api_key_service_client::ApiKeyServiceClient,
        encounter_service_client::EncounterServiceClient,
    },
    server::embedded_pg::{EmbeddedOptions, EmbeddedPostgres},
};

use crate::helpers::{
    ServeProcess, TestApp, authed, default_pool_options, encounter, spawn_app, spawn_app_on,
};

const BATCHES: usize = 40;
const BATCH_SIZE: usize = 250;

/// The feed: batch b holds the encounters "b-0" to "b-249", five to a
/// journey.
fn feed() -> Vec<Vec<pb::Encounter>> {
    (0..BATCHES)
        .map(|b| {
            (0..BATCH_SIZE)
                .map(|i| pb::Encounter {
                    journey_id: format!("visit-{b}-{}", i / 5),
                    ..encounter("reception-desk", "feed", &format!("{b}-{i}"))
                })
                .collect()
        })
        .collect()
}

/// How many of each batch's encounters are stored, for the batches with
/// any.
async fn stored_per_batch(app: &TestApp) -> Vec<(String, i64)> {
    let mut owner = app.owner_connection().await;
    sqlx::query(
        "select split_part(external_id, '-', 1) as batch, count(*) as stored
         from encounter where source = 'feed' group by 1 order by 1",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get("batch"), row.get("stored")))
    .collect()
}

/// Sends `batches` on the stream, `pause` apart, until the stream refuses
/// one (the call has ended); returns how many were sent.
async fn send_batches(
    sender: &mpsc::Sender<pb::IngestEncountersRequest>,
    batches: &[Vec<pb::Encounter>],
    pause: Duration,
) -> usize {
    let mut sent = 0;
    for encounters in batches {
        let batch = pb::IngestEncountersRequest {
            encounters: encounters.clone(),
        };
        if sender.send(batch).await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(pause).await;
    }
    sent
}

async fn count_feed(app: &TestApp) -> i64 {
    let mut owner = app.owner_connection().await;
    sqlx::query_scalar("select count(*) from encounter where source = 'feed'")
        .fetch_one(&mut owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn sigterm_mid_stream_stores_whole_batches_and_a_resend_completes_the_set_once() {
    let app = spawn_app().await;
    let key = app.demo_key().await;
    let batches = feed();
    let mut server = ServeProcess::start(&app.database_url, &["--shutdown-grace", "1s"]).await;

    let (sender, receiver) = mpsc::channel(1);
    let mut client = EncounterServiceClient::new(server.channel().await);
    let request = authed(&key, ReceiverStream::new(receiver));
    let call = tokio::spawn(async move { client.ingest_encounters(request).await });
    assert_eq!(
        send_batches(&sender, &batches[..10], Duration::ZERO).await,
        10
    );
    // Let the first batches commit, then stop the server while the stream
    // is still open and batches keep coming, past its shutdown grace.
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.sigterm();
    let sent = 10 + send_batches(&sender, &batches[10..], Duration::from_millis(100)).await;
    drop(sender);
    let status = server.wait().await;
    let answer = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the stream hung after the server stopped")
        .unwrap();
    assert!(
        answer.is_err(),
        "the stream outlived the server's grace: {answer:?} after {sent} batches"
    );
    assert!(status.success(), "the server exited with {status}");

    let stored = stored_per_batch(&app).await;
    eprintln!(
        "SIGTERM: {sent} batches sent, {} of {BATCHES} stored whole before the server stopped",
        stored.len()
    );
    assert!(
        stored.len() >= 5,
        "the batches sent before SIGTERM were not stored: {stored:?}"
    );
    assert!(
        stored.len() < BATCHES,
        "every batch was stored: the stream was not cut"
    );
    for (batch, count) in &stored {
        assert_eq!(*count, BATCH_SIZE as i64, "batch {batch} is stored in part");
    }

    // The sender resends the whole feed: what was stored comes back as
    // duplicates, the rest is stored, nothing twice.
    let resent = app.ingest(&key, batches).await.unwrap();
    let before = (stored.len() * BATCH_SIZE) as i64;
    assert_eq!(resent.accepted, (BATCHES * BATCH_SIZE) as i64 - before);
    assert_eq!(resent.duplicates, before);
    assert_eq!(resent.rejected, 0);
    assert_eq!(count_feed(&app).await, (BATCHES * BATCH_SIZE) as i64);
    let log = server.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains(&key), "the key was logged");
}

/// A PostgreSQL cluster of the test's own, which it may stop and start.
struct OwnCluster {
    options: EmbeddedOptions,
    cluster: Option<EmbeddedPostgres>,
}

impl OwnCluster {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("verdad-fault-{}", Uuid::now_v7().simple()));
        let mut own = OwnCluster {
            options: EmbeddedOptions {
                data_dir: dir.join("pg"),
                ephemeral: true,
                port: None,
            },
            cluster: None,
        };
        own.restart().await;
        own.options.port = own.cluster.as_ref().map(EmbeddedPostgres::port);
        own
    }

    fn url(&self) -> String {
        self.cluster
            .as_ref()
            .expect("the cluster is stopped")
            .url("postgres")
    }

    async fn stop(&mut self) {
        let cluster = self.cluster.take().expect("the cluster is stopped");
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .unwrap()
            .expect("cannot stop the test's cluster");
    }

    /// Starts the cluster, on its first port after the first start.
    async fn restart(&mut self) {
        let options = self.options.clone();
        let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&options))
            .await
            .unwrap()
            .expect("cannot start the test's cluster");
        self.cluster = Some(cluster);
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.take() {
            let _ = cluster.stop();
        }
        if let Some(dir) = self.options.data_dir.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[tokio::test]
async fn the_database_stopped_mid_stream_answers_unavailable_and_a_resend_after_it_returns_loses_nothing()
 {
    let mut cluster = OwnCluster::start().await;
    let app = spawn_app_on(&cluster.url(), default_pool_options(), |_| {}).await;
    let key = app.demo_key().await;
    assert_eq!(
        app.wait_for_health(ServingStatus::Serving).await,
        ServingStatus::Serving
    );
    let batches = feed();

    let (sender, receiver) = mpsc::channel(1);
    let mut client = app.encounters().await;
    let request = authed(&key, ReceiverStream::new(receiver));
    let call = tokio::spawn(async move { client.ingest_encounters(request).await });
    assert_eq!(
        send_batches(&sender, &batches[..5], Duration::ZERO).await,
        5
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.stop().await;
    let sent = 5 + send_batches(&sender, &batches[5..], Duration::from_millis(50)).await;
    drop(sender);
    let answer = tokio::time::timeout(Duration::from_secs(15), call)
        .await
        .expect("the stream hung with the database gone")
        .unwrap();
    let status = answer.expect_err("the stream succeeded without a database");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("send the request again"),
        "{status:?}"
    );
    assert_eq!(
        app.wait_for_health(ServingStatus::NotServing).await,
        ServingStatus::NotServing
    );

    cluster.restart().await;
    assert_eq!(
        app.wait_for_health(ServingStatus::Serving).await,
        ServingStatus::Serving
    );
    let stored = stored_per_batch(&app).await;
    eprintln!(
        "database stop: {sent} batches sent, {} of {BATCHES} stored whole before it stopped",
        stored.len()
    );
    assert!(!stored.is_empty(), "nothing was stored before the stop");
    for (batch, count) in &stored {
        assert_eq!(*count, BATCH_SIZE as i64, "batch {batch} is stored in part");
    }
    let resent = app.ingest(&key, batches).await.unwrap();
    let before = (stored.len() * BATCH_SIZE) as i64;
    assert_eq!(resent.accepted, (BATCHES * BATCH_SIZE) as i64 - before);
    assert_eq!(resent.duplicates, before);
    assert_eq!(count_feed(&app).await, (BATCHES * BATCH_SIZE) as i64);
}

#[tokio::test]
async fn after_a_database_restart_a_key_revoked_through_one_server_is_refused_by_another() {
    let mut cluster = OwnCluster::start().await;
    let app = spawn_app_on(&cluster.url(), default_pool_options(), |_| {}).await;
    let org = app.create_org("St. Mary").await;
    let mut replica = ApiKeyServiceClient::new(app.second_server(|_| {}).await);
    let second = app.key_known_to(&org, &mut replica).await;

    cluster.stop().await;
    cluster.restart().await;
    // Both listen again on new connections; what they remembered before is
    // forgotten, and revocations are heard again.
    app.servers_listening_for_revocations(2).await;
    let list = || authed(&second.secret, pb::ListApiKeysRequest::default());
    let mut attempts = 0;
    // The pool finds its cut connections as it hands them out.
    while let Err(status) = replica.list_api_keys(list()).await {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        attempts += 1;
        assert!(attempts < 20, "the database did not come back: {status:?}");
    }
    app.revoke_and_see_it_refused(&org, &second, &mut replica)
        .await;
}
