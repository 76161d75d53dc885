//! Message size limits, the per-call deadline and graceful shutdown.

use std::time::Duration;

use prost_types::FieldMask;
use sqlx::Executor;
use tonic::Code;
use verdad::proto::verdad::v1 as pb;

use verdad::store::PoolOptions;

use crate::helpers::{
    LOCK_WAITERS, assert_error, authed, default_pool_options, spawn_app, spawn_app_with,
    spawn_app_with_pool, touchpoint,
};

fn rename(id: &str) -> pb::UpdateTouchpointRequest {
    pb::UpdateTouchpointRequest {
        touchpoint: Some(pb::Touchpoint {
            id: id.into(),
            display_name: "Renamed".into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["display_name".into()],
        }),
    }
}

#[tokio::test]
async fn messages_over_the_size_limit_are_refused() {
    let app = spawn_app_with(|s| s.max_message_bytes = 1024).await;
    let org = app.create_org("St. Mary").await;
    let mut big = touchpoint("lobby");
    big.description = "x".repeat(2000);
    let status = app
        .touchpoints()
        .await
        .create_touchpoint(authed(
            &org.admin_key,
            pb::CreateTouchpointRequest {
                touchpoint: Some(big),
            },
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::ResourceExhausted, "MESSAGE_TOO_LARGE");
    assert!(
        status.message().contains("limit of 1024 bytes"),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_call_past_the_deadline_is_cut_and_writes_nothing() {
    let app = spawn_app_with(|s| s.request_timeout = Duration::from_millis(300)).await;
    let org = app.create_org("St. Mary").await;
    let created = app
        .create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;

    // Hold the row so the update waits past the deadline.
    let mut owner = app.hold_touchpoint(&created.id).await;
    let status = app
        .touchpoints()
        .await
        .update_touchpoint(authed(&org.admin_key, rename(&created.id)))
        .await
        .unwrap_err();
    assert_error(&status, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    owner.execute("rollback").await.unwrap();

    let after = app
        .touchpoints()
        .await
        .get_touchpoint(authed(
            &org.admin_key,
            pb::GetTouchpointRequest {
                id: created.id.clone(),
                code: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .touchpoint
        .unwrap();
    assert_eq!(after.display_name, created.display_name);
}

#[tokio::test]
async fn a_stuck_statement_is_cancelled_by_the_statement_timeout_and_the_pool_recovers() {
    let pool = PoolOptions {
        max_connections: 2,
        statement_timeout: Duration::from_millis(300),
        ..default_pool_options()
    };
    let app = spawn_app_with_pool(pool, |_| {}).await;
    let org = app.create_org("St. Mary").await;
    let created = app
        .create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;

    let mut owner = app.hold_touchpoint(&created.id).await;
    // Twice the pool's connections: each comes back after its statement
    // is cancelled, or the later calls would find none.
    for _ in 0..4 {
        let status = app
            .touchpoints()
            .await
            .update_touchpoint(authed(&org.admin_key, rename(&created.id)))
            .await
            .unwrap_err();
        assert_error(&status, Code::DeadlineExceeded, "STATEMENT_TIMEOUT");
        assert!(status.message().contains("statement timeout"), "{status:?}");
    }
    // PostgreSQL itself has let go: nothing of the server's waits on the lock.
    let waiting: i64 = sqlx::query_scalar(LOCK_WAITERS)
        .fetch_one(&mut owner)
        .await
        .unwrap();
    assert_eq!(waiting, 0);
    owner.execute("rollback").await.unwrap();

    let renamed = app
        .touchpoints()
        .await
        .update_touchpoint(authed(&org.admin_key, rename(&created.id)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.touchpoint.unwrap().display_name, "Renamed");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_call_finish() {
    let mut app = spawn_app().await;
    let org = app.create_org("St. Mary").await;
    let created = app
        .create_touchpoint(&org.admin_key, touchpoint("lobby"))
        .await;
    let mut owner = app.hold_touchpoint(&created.id).await;

    let mut client = app.touchpoints().await;
    let key = org.admin_key.clone();
    let id = created.id.clone();
    let in_flight =
        tokio::spawn(async move { client.update_touchpoint(authed(&key, rename(&id))).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let shutdown = tokio::spawn(async move {
        let result = app.shut_down().await;
        (app, result)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    owner.execute("rollback").await.unwrap();

    let answer = in_flight
        .await
        .unwrap()
        .expect("the in-flight call was cut");
    assert_eq!(
        answer.into_inner().touchpoint.unwrap().display_name,
        "Renamed"
    );
    let (_app, result) = shutdown.await.unwrap();
    result.expect("the server did not stop cleanly");
}
